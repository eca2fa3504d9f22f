// SPDX-License-Identifier: MIT
// Double-precision references of a same/stride-1 convolution (cross-correlation, zero padding
// k/2, groups) for the convolution tests: the worst error of a float result relative to the sum
// of the magnitudes of its terms.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::test {

//! n standard-normal floats (plus `offset`) from mt19937(seed): the convolution tests' inputs.
inline std::vector<float> randn(std::size_t n, unsigned seed, float offset = 0.0f) {
    std::mt19937 g(seed);
    std::normal_distribution<float> nd;
    std::vector<float> v(n);
    for (auto& x : v) x = offset + nd(g);
    return v;
}

//! n images of c channels, h x w, o outputs, a k x k window (pad k / 2), `groups` groups; the
//! input gradient's reference also takes a stride (the forward's and weight gradient's: 1 only).
struct conv_dims {
    index_t n, c, o, h, w, k, groups;
    index_t stride = 1;
};

//! Worst |y - ref| / sum |terms| of the forward y = conv(x, w).
inline double conv_forward_error(const conv_dims& d, const std::vector<float>& w, const tensor<float>& x,
                                 const tensor<float>& y) {
    const index_t Cg = d.c / d.groups, Og = d.o / d.groups, p = d.k / 2;
    double worst = 0;
    for (index_t n = 0; n < d.n; ++n)
        for (index_t oc = 0; oc < d.o; ++oc)
            for (index_t oh = 0; oh < d.h; ++oh)
                for (index_t ow = 0; ow < d.w; ++ow) {
                    const index_t gi = oc / Og;
                    double s = 0, mag = 0;
                    for (index_t c = 0; c < Cg; ++c)
                        for (index_t i = 0; i < d.k; ++i)
                            for (index_t j = 0; j < d.k; ++j) {
                                const index_t ih = oh - p + i, iw = ow - p + j;
                                if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) continue;
                                const double t = double(w[std::size_t(((oc * Cg + c) * d.k + i) * d.k + j)]) *
                                                 double(x.data()[((n * d.c + gi * Cg + c) * d.h + ih) * d.w + iw]);
                                s += t;
                                mag += std::fabs(t);
                            }
                    const double got = y.data()[((n * d.o + oc) * d.h + oh) * d.w + ow];
                    worst = std::max(worst, std::fabs(got - s) / (mag + 1e-30));
                }
    return worst;
}

//! The same for the input gradient dx of diff_dst dy (stride d.stride: output pixel (oh, ow) read
//! input pixel (s oh - p + i, s ow - p + j)); NaN when a value's finiteness differs from the
//! definition's (NaN / Inf in dy must reach exactly the values the definition says).
inline double conv_input_grad_error(const conv_dims& d, const std::vector<float>& w, const tensor<float>& dy,
                                    const tensor<float>& dx) {
    const index_t Cg = d.c / d.groups, Og = d.o / d.groups, p = d.k / 2, st = d.stride;
    const index_t OH = (d.h + 2 * p - d.k) / st + 1, OW = (d.w + 2 * p - d.k) / st + 1;
    double worst = 0;
    for (index_t n = 0; n < d.n; ++n)
        for (index_t ci = 0; ci < d.c; ++ci)
            for (index_t ih = 0; ih < d.h; ++ih)
                for (index_t iw = 0; iw < d.w; ++iw) {
                    const index_t gi = ci / Cg, c = ci % Cg;
                    double s = 0, mag = 0;
                    for (index_t o = 0; o < Og; ++o)
                        for (index_t i = 0; i < d.k; ++i)
                            for (index_t j = 0; j < d.k; ++j) {
                                const index_t th = ih + p - i, tw = iw + p - j;  // st * (oh, ow)
                                if (th < 0 || tw < 0 || th % st || tw % st) continue;
                                const index_t oh = th / st, ow = tw / st;
                                if (oh >= OH || ow >= OW) continue;
                                const index_t oc = gi * Og + o;
                                const double t = double(w[std::size_t(((oc * Cg + c) * d.k + i) * d.k + j)]) *
                                                 double(dy.data()[((n * d.o + oc) * OH + oh) * OW + ow]);
                                s += t;
                                mag += std::fabs(t);
                            }
                    const double got = dx.data()[((n * d.c + ci) * d.h + ih) * d.w + iw];
                    if (std::isfinite(s) != std::isfinite(got)) return std::numeric_limits<double>::quiet_NaN();
                    if (std::isfinite(s)) worst = std::max(worst, std::fabs(got - s) / (mag + 1e-30));
                }
    return worst;
}

//! The same for the weight gradient: dw[o][c][i][j] = sum over images and output pixels of
//! dy[n][o][h][w] * x[n][c][h - p + i][w - p + j].
inline double conv_weight_grad_error(const conv_dims& d, const tensor<float>& x, const tensor<float>& dy,
                                     const std::vector<float>& dw) {
    const index_t Cg = d.c / d.groups, Og = d.o / d.groups, p = d.k / 2;
    double worst = 0;
    for (index_t oc = 0; oc < d.o; ++oc)
        for (index_t c = 0; c < Cg; ++c)
            for (index_t i = 0; i < d.k; ++i)
                for (index_t j = 0; j < d.k; ++j) {
                    const index_t gi = oc / Og;
                    double s = 0, mag = 0;
                    for (index_t n = 0; n < d.n; ++n)
                        for (index_t oh = 0; oh < d.h; ++oh)
                            for (index_t ow = 0; ow < d.w; ++ow) {
                                const index_t ih = oh - p + i, iw = ow - p + j;
                                if (ih < 0 || ih >= d.h || iw < 0 || iw >= d.w) continue;
                                const double t = double(dy.data()[((n * d.o + oc) * d.h + oh) * d.w + ow]) *
                                                 double(x.data()[((n * d.c + gi * Cg + c) * d.h + ih) * d.w + iw]);
                                s += t;
                                mag += std::fabs(t);
                            }
                    const double got = dw[std::size_t(((oc * Cg + c) * d.k + i) * d.k + j)];
                    worst = std::max(worst, std::fabs(got - s) / (mag + 1e-30));
                }
    return worst;
}

}  // namespace shiftnorm::test
