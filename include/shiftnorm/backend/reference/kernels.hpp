// SPDX-License-Identifier: MIT
// The naive channel-pass backend: double-precision loops, the oracle of the CPU and CUDA kernels.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "shiftnorm/backend/channel_pass.hpp"
#include "shiftnorm/backend/group_pass.hpp"
#include "shiftnorm/core/checks.hpp"

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

    // The group-pass kernels (backend/group_pass.hpp), one (n, g) block at a time.

    template <class T, class Coef>
    static bool group_forward(const tensor_view<const T>& src, const tensor_view<T>& dst, index_t G,
                              std::vector<moments<double>>& m, Coef&& coef) {
        const shape4& s = src.shape();
        check_groups("reference::group_forward", s, G);
        const index_t cg = s.c / G;
        m.assign(std::size_t(s.n * G), moments<double>{});
        std::vector<channel_coef<T>> k(static_cast<std::size_t>(cg));
        bool ok = true;
        for (index_t n = 0; n < s.n; ++n)
            for (index_t g = 0; g < G; ++g) {
                moments<double>& r = m[std::size_t(n * G + g)];
                r = block(src, n, g * cg, cg);
                if (!coef(n, g, r, k.data())) {
                    ok = false;
                    continue;
                }
                for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
                    const channel_coef<T>& q = k[std::size_t(c - g * cg)];
                    for (index_t i = 0; i < s.spatial(); ++i)
                        dst.plane(n, c)[i] =
                            T((double(src.plane(n, c)[i]) - double(q.mean)) * double(q.a) + double(q.b));
                }
            }
        return ok;
    }

    template <class T, class Coef>
    static void group_backward(const tensor_view<const T>& src, const tensor_view<const T>& dy, const tensor_view<T>& dx,
                               index_t G, const T* mean, const T* gamma, Coef&& coef) {
        const shape4& s = src.shape();
        check_groups("reference::group_backward", s, G);
        const index_t cg = s.c / G;
        std::vector<double> sdy(static_cast<std::size_t>(cg)), sdyx(static_cast<std::size_t>(cg));
        for (index_t n = 0; n < s.n; ++n)
            for (index_t g = 0; g < G; ++g) {
                const double mu = double(mean[n * G + g]);
                for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
                    double a = 0, b = 0;
                    for (index_t i = 0; i < s.spatial(); ++i) {
                        const double d = double(dy.plane(n, c)[i]);
                        a += d;
                        b += d * (double(src.plane(n, c)[i]) - mu);
                    }
                    sdy[std::size_t(c - g * cg)] = a, sdyx[std::size_t(c - g * cg)] = b;
                }
                const group_backward_coef<T> q = coef(n, g, sdy.data(), sdyx.data());
                const double it = double(q.inv_std), m_g = double(q.m_g), m_gx = double(q.m_gx), qm = double(q.mean);
                for (index_t c = g * cg; c < (g + 1) * cg; ++c)
                    for (index_t i = 0; i < s.spatial(); ++i)
                        dx.plane(n, c)[i] = T(it * (double(gamma[c]) * double(dy.plane(n, c)[i]) - m_g -
                                                    (double(src.plane(n, c)[i]) - qm) * m_gx));
            }
    }

private:
    static void check_groups(const char* where, const shape4& s, index_t G) {
        if (G <= 0 || s.c % G != 0)
            shiftnorm::detail::fail<shape_error>(where, "groups", shiftnorm::detail::concat("a divisor of C=", s.c), G);
    }

    //! Moments of the cg planes of sample n from channel c0 on (two passes).
    template <class T>
    static moments<double> block(const tensor_view<const T>& src, index_t n, index_t c0, index_t cg) {
        const index_t hw = src.shape().spatial();
        moments<double> r;
        r.count = double(cg * hw);
        if (r.count == 0) return r;
        double sum = 0, m2 = 0;
        for (index_t c = c0; c < c0 + cg; ++c)
            for (index_t i = 0; i < hw; ++i) sum += double(src.plane(n, c)[i]);
        r.mean = sum / r.count;
        for (index_t c = c0; c < c0 + cg; ++c)
            for (index_t i = 0; i < hw; ++i) {
                const double d = double(src.plane(n, c)[i]) - r.mean;
                m2 += d * d;
            }
        r.m2 = std::isnan(r.mean) ? r.mean : m2;
        return r;
    }

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
