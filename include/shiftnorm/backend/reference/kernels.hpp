// SPDX-License-Identifier: MIT
// The naive channel-pass backend: double-precision loops, the oracle of the CPU and CUDA kernels.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "shiftnorm/backend/channel_pass.hpp"

namespace shiftnorm::backend::reference {

//! The channel-pass kernels (backend/channel_pass.hpp) written as plainly as possible: one
//! channel at a time, every sum in double, the mean by two passes, every output computed in
//! double and rounded once. Slow on purpose (one thread, no tiles, no shift): the tests check the
//! CPU schedules (and, through the layers, the CUDA ones) against it, e.g.
//! batch_norm<population, affine, fp32, backend::reference::kernels>.
//! NaN in a channel makes its mean, m2, min and max NaN (as the CPU accumulator does).
struct kernels {
    template <bool MinMax, bool Var, class T>
    static void statistics(const tensor_view<const T>& src, std::vector<moments<double>>& m,
                           std::vector<extreme_hint>* hints) {
        const shape4& s = src.shape();
        m.assign(std::size_t(s.c), moments<double>{});
        if (hints) hints->assign(std::size_t(s.c), extreme_hint{});
        for (index_t c = 0; c < s.c; ++c)
            m[std::size_t(c)] = channel<MinMax, Var>(src, c, hints ? &(*hints)[std::size_t(c)] : nullptr);
    }

    template <bool MinMax, bool Var, class T, class Coef>
    static bool forward(const tensor_view<const T>& src, const tensor_view<T>& dst, bool with_stats,
                        std::vector<moments<double>>& m, Coef&& coef) {
        std::vector<extreme_hint> hints;
        if (with_stats) statistics<MinMax, Var>(src, m, &hints);
        else m.assign(std::size_t(src.shape().c), moments<double>{}), hints.assign(std::size_t(src.shape().c), {});
        std::vector<channel_coef<T>> k(std::size_t(src.shape().c));
        bool ok = true;
        for (index_t c = 0; c < src.shape().c; ++c)
            ok = coef(c, m[std::size_t(c)], hints[std::size_t(c)], k[std::size_t(c)]) && ok;
        if (!ok) return false;
        normalize(src, dst, k.data());
        return true;
    }

    template <class T>
    static void normalize(const tensor_view<const T>& src, const tensor_view<T>& dst, const channel_coef<T>* coef) {
        const shape4& s = src.shape();
        for (index_t n = 0; n < s.n; ++n)
            for (index_t c = 0; c < s.c; ++c) {
                const double mean = double(coef[c].mean), a = double(coef[c].a), b = double(coef[c].b);
                const T* x = src.plane(n, c);
                T* y = dst.plane(n, c);
                for (index_t i = 0; i < s.spatial(); ++i) y[i] = T((double(x[i]) - mean) * a + b);
            }
    }

    template <class T, class Coef>
    static void backward(const tensor_view<const T>& src, const tensor_view<const T>& dy, const tensor_view<T>& dx,
                         const T* mean, bool with_sums, Coef&& coef) {
        const shape4& s = src.shape();
        for (index_t c = 0; c < s.c; ++c) {
            const double mu = double(mean[c]);
            double sdy = 0, sdyx = 0;
            if (with_sums)
                for (index_t n = 0; n < s.n; ++n)
                    for (index_t i = 0; i < s.spatial(); ++i) {
                        const double g = double(dy.plane(n, c)[i]);
                        sdy += g;
                        sdyx += g * (double(src.plane(n, c)[i]) - mu);
                    }
            const backward_coef<T> k = coef(c, sdy, sdyx);
            for (index_t n = 0; n < s.n; ++n)
                for (index_t i = 0; i < s.spatial(); ++i)
                    dx.plane(n, c)[i] = T(double(k.k) * double(dy.plane(n, c)[i]) +
                                          double(k.kx) * (double(src.plane(n, c)[i]) - mu) + double(k.off));
        }
    }

private:
    template <bool MinMax, bool Var, class T>
    static moments<double> channel(const tensor_view<const T>& src, index_t c, extreme_hint* hint) {
        const shape4& s = src.shape();
        moments<double> r;
        r.count = double(s.per_channel());
        if (r.count == 0) return r;
        double sum = 0;
        for (index_t n = 0; n < s.n; ++n)
            for (index_t i = 0; i < s.spatial(); ++i) sum += double(src.plane(n, c)[i]);
        r.mean = sum / r.count;
        if constexpr (Var) {
            double m2 = 0;
            for (index_t n = 0; n < s.n; ++n)
                for (index_t i = 0; i < s.spatial(); ++i) {
                    const double d = double(src.plane(n, c)[i]) - r.mean;
                    m2 += d * d;
                }
            r.m2 = m2;
        }
        if constexpr (MinMax) {
            for (index_t n = 0; n < s.n; ++n)
                for (index_t i = 0; i < s.spatial(); ++i) {
                    const double x = double(src.plane(n, c)[i]);
                    if (x < r.min) {
                        r.min = x;
                        if (hint) hint->min_n = n, hint->min_i = i;
                    }
                    if (x > r.max) {
                        r.max = x;
                        if (hint) hint->max_n = n, hint->max_i = i;
                    }
                }
        }
        if (std::isnan(r.mean)) {
            if (Var) r.m2 = r.mean;
            r.min = r.max = r.mean;
        }
        return r;
    }
};

}  // namespace shiftnorm::backend::reference
