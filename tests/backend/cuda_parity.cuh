// SPDX-License-Identifier: MIT
// Helpers of the CPU/CUDA parity tests: host <-> device copies and shared hostile inputs.
#pragma once

#include <cmath>
#include <vector>

#include "shiftnorm/cuda.cuh"
#include "support/reference.hpp"

namespace shiftnorm::test {

namespace cu = shiftnorm::backend::cuda;

//! Keeps the GPU busy for about `ns` nanoseconds, so that a host wait inside a call shows as a
//! finished stream (tests that calls do not synchronize). Launch with <<<1, 1, 0, stream>>>.
template <int = 0>
__global__ void busy_wait_kernel(unsigned long long ns) {
    for (unsigned long long waited = 0; waited < ns; waited += 1000) __nanosleep(1000);
}

inline cu::device_tensor<float> to_device(const tensor<float>& t) { return cu::device_tensor<float>::from_host(t); }
template <class T>
inline tensor<T> to_host(const cu::device_tensor<T>& d) { return d.to_host(); }

//! Shapes every parity test runs: CIFAR-like, N = 1, H = W = 1, odd H*W (scalar path),
//! many chunks per channel, and a channel count of one.
inline std::vector<shape4> parity_shapes() {
    return {shape4{4, 3, 5, 7}, shape4{1, 2, 6, 6}, shape4{8, 5, 1, 1}, shape4{1, 3, 1, 1},
            shape4{16, 4, 7, 7}, shape4{32, 3, 32, 32}, shape4{2, 1, 64, 64}, shape4{8, 16, 8, 8},
            // many small channels: the warp schedule of the channel reductions (C >= SM count)
            shape4{3, 264, 7, 7}, shape4{2, 264, 4, 4},
            // very many tiny channels: 9000 of 12 values (thread schedule, vector loads) and 5000
            // of 2x3x3 values (thread schedule, scalar loads)
            shape4{3, 9000, 2, 2}, shape4{2, 5000, 3, 3}};
}

//! Gaussian input with |mean|/std = ratio in channel 0, a constant channel 1 (when C > 1),
//! and plain N(0.5, 1) elsewhere: the cases that break naive kernels.
inline tensor<float> hostile_tensor(shape4 s, unsigned seed, double ratio = 1e3) {
    auto t = random_tensor(s, seed, 0.5, 1.0);
    const index_t hw = s.spatial();
    auto base = random_tensor(s, seed + 1, ratio, 1.0);
    for (index_t n = 0; n < s.n; ++n)
        for (index_t i = 0; i < hw; ++i) {
            t[(n * s.c + 0) * hw + i] = base[(n * s.c + 0) * hw + i];
            if (s.c > 1) t[(n * s.c + 1) * hw + i] = 2.5f;
        }
    return t;
}

//! Values rounded to multiples of 0.5 in [-2, 2]: many ties of the minimum and maximum.
inline tensor<float> tied_tensor(shape4 s, unsigned seed) {
    auto t = random_tensor(s, seed, 0.0, 1.0);
    for (auto& v : t) v = std::fmin(2.f, std::fmax(-2.f, std::round(v * 2.f) / 2.f));
    return t;
}

}  // namespace shiftnorm::test
