// SPDX-License-Identifier: MIT
// Hostile activations for kernel tests: planes with large offsets, constants, sign-alternating
// offsets and uint8-like values.
#pragma once

#include <cmath>
#include <random>

#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::test {

//! Per plane (n, c), by k = c % 5 (or (c + n) % 5 when `vary_with_sample`, so that a group of
//! channels mixes them): 0 an offset of 1e4 with std 1, 1 the constant -7.25, 2 an offset of
//! +-3e3 alternating over the samples (an accumulator must renew its shift), 3 uint8-like values
//! around 128, else N(2, 3).
inline tensor<float> hostile(shape4 s, unsigned seed, bool vary_with_sample = false) {
    tensor<float> t(s);
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.f, 1.f);
    for (index_t n = 0; n < s.n; ++n)
        for (index_t c = 0; c < s.c; ++c) {
            float* p = t.view().plane(n, c);
            for (index_t i = 0; i < s.spatial(); ++i) {
                switch ((vary_with_sample ? c + n : c) % 5) {
                    case 0: p[i] = 1e4f + d(g); break;
                    case 1: p[i] = -7.25f; break;
                    case 2: p[i] = (n % 2 ? 3e3f : -3e3f) + d(g); break;
                    case 3: p[i] = std::floor(128.f + 20.f * d(g)); break;
                    default: p[i] = 2.f + 3.f * d(g);
                }
            }
        }
    return t;
}

}  // namespace shiftnorm::test
