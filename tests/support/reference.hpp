// SPDX-License-Identifier: MIT
// Double-precision naive references and helpers for the tests (the oracle of every kernel).
#pragma once

#include <cmath>
#include <complex>
#include <functional>
#include <random>
#include <vector>

#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::test {

//! Gaussian tensor with per-channel offset `offset` and spread `stddev`, seeded.
inline tensor<float> random_tensor(shape4 s, unsigned seed, double offset = 0.0, double stddev = 1.0) {
    tensor<float> t(s);
    std::mt19937 g(seed);
    std::normal_distribution<double> d(offset, stddev);
    for (auto& v : t) v = float(d(g));
    return t;
}

inline std::vector<double> to_double(const tensor<float>& t) { return {t.begin(), t.end()}; }

//! Per-channel (over N,H,W) mean and biased variance, two-pass in double.
inline void naive_channel_moments(const std::vector<double>& x, shape4 s, std::vector<double>& mean,
                                  std::vector<double>& var) {
    const index_t hw = s.spatial(), m = s.per_channel();
    mean.assign(std::size_t(s.c), 0.0);
    var.assign(std::size_t(s.c), 0.0);
    for (index_t c = 0; c < s.c; ++c) {
        double sum = 0;
        for (index_t n = 0; n < s.n; ++n)
            for (index_t i = 0; i < hw; ++i) sum += x[std::size_t((n * s.c + c) * hw + i)];
        const double mu = sum / double(m);
        double ss = 0;
        for (index_t n = 0; n < s.n; ++n)
            for (index_t i = 0; i < hw; ++i) {
                const double d = x[std::size_t((n * s.c + c) * hw + i)] - mu;
                ss += d * d;
            }
        mean[c] = mu;
        var[c] = ss / double(m);
    }
}

//! Naive BN forward in double with given per-channel mean/var (biased) and gamma/beta.
inline std::vector<double> naive_bn(const std::vector<double>& x, shape4 s, const std::vector<double>& mean,
                                    const std::vector<double>& var, const std::vector<double>& gamma,
                                    const std::vector<double>& beta, double eps) {
    std::vector<double> y(x.size());
    const index_t hw = s.spatial();
    for (index_t n = 0; n < s.n; ++n)
        for (index_t c = 0; c < s.c; ++c)
            for (index_t i = 0; i < hw; ++i) {
                const std::size_t k = std::size_t((n * s.c + c) * hw + i);
                y[k] = gamma[c] * (x[k] - mean[c]) / std::sqrt(var[c] + eps) + beta[c];
            }
    return y;
}

//! Central-difference gradient of a scalar function f(x) with respect to every element of x.
inline std::vector<double> numeric_gradient(std::vector<double> x, const std::function<double(const std::vector<double>&)>& f,
                                            double h = 1e-5) {
    std::vector<double> g(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double old = x[i];
        x[i] = old + h;
        const double fp = f(x);
        x[i] = old - h;
        const double fm = f(x);
        x[i] = old;
        g[i] = (fp - fm) / (2 * h);
    }
    return g;
}

//! max |a - b| / (atol + rtol*|b|) <= 1 ?  Returns the worst ratio for reporting.
template <class A, class B>
inline double worst_error(const A& a, const B& b, double atol, double rtol) {
    double worst = 0;
    for (std::size_t i = 0; i < std::size_t(b.size()); ++i) {
        const double d = std::abs(double(a[i]) - double(b[i]));
        const double r = d / (atol + rtol * std::abs(double(b[i])));
        if (!(r <= worst)) worst = r;  // NaN-safe: a NaN makes it NaN-worst
        if (std::isnan(r)) return INFINITY;
    }
    return worst;
}

//! Naive 2-D DFT of a real h x w row-major image in double, separable (O(h w (h + w))):
//! F[u][v] = sum_{y,x} src[y][x] exp(-2 pi i (u y / h + v x / w)), the full h x w spectrum.
//! Angles are reduced modulo the length in integers, so no phase error grows with u y.
inline std::vector<std::complex<double>> naive_dft2(const std::vector<double>& src, index_t h, index_t w) {
    const double two_pi = 6.283185307179586476925286766559;
    std::vector<std::complex<double>> rows(std::size_t(h * w)), out(std::size_t(h * w));
    for (index_t y = 0; y < h; ++y)
        for (index_t v = 0; v < w; ++v) {
            std::complex<double> acc = 0;
            for (index_t x = 0; x < w; ++x)
                acc += src[std::size_t(y * w + x)] * std::polar(1.0, -two_pi * double((v * x) % w) / double(w));
            rows[std::size_t(y * w + v)] = acc;
        }
    for (index_t u = 0; u < h; ++u)
        for (index_t v = 0; v < w; ++v) {
            std::complex<double> acc = 0;
            for (index_t y = 0; y < h; ++y)
                acc += rows[std::size_t(y * w + v)] * std::polar(1.0, -two_pi * double((u * y) % h) / double(h));
            out[std::size_t(u * w + v)] = acc;
        }
    return out;
}

}  // namespace shiftnorm::test
