// SPDX-License-Identifier: MIT
// The CPU channel-pass kernels (backend/channel_pass.hpp), scheduled by a schedule policy.
#pragma once

#include <cstddef>
#include <vector>

#include "shiftnorm/backend/channel_pass.hpp"
#include "shiftnorm/backend/group_pass.hpp"
#include "shiftnorm/backend/cpu/reduce.hpp"
#include "shiftnorm/backend/cpu/stream.hpp"
#include "shiftnorm/core/checks.hpp"
#include "shiftnorm/core/omp.hpp"

namespace shiftnorm::backend::cpu {

//! The channel-pass kernels on the CPU. `Schedule::channel_major(shape, sizeof(T))` picks the
//! order of forward's and backward's two passes:
//!  - plane-streaming: each pass over the whole tensor in memory order (statistics into
//!    per-channel fp32 lanes, then normalize / apply); channels split over the OpenMP threads;
//!  - channel-major: statistics then normalize per channel, the second pass re-reading the
//!    channel from cache; channels spread over the OpenMP threads.
//! Each channel is computed as on one thread, so results do not depend on the thread count.
//! `statistics` (rectification, batch-statistics inference) reads channel by channel whatever
//! the schedule: the order the published rectification numbers were computed in (the streaming
//! order would change their last bits at planes other than 32x32). `normalize` always streams
//! (an elementwise map: the order does not change a bit).
template <class Schedule>
struct channel_kernels {
    template <bool MinMax, bool Var, class T>
    static void statistics(const tensor_view<const T>& src, std::vector<moments<double>>& m,
                           std::vector<extreme_hint>* hints) {
        const index_t C = src.shape().c;
        m.assign(std::size_t(C), moments<double>{});
        if (hints) hints->assign(std::size_t(C), extreme_hint{});
        SHIFTNORM_OMP(omp parallel for schedule(static) if (worth_parallel(src.shape())))
        for (index_t c = 0; c < C; ++c)
            m[c] = channel_moments<MinMax, T, Var>(src, c, hints ? &(*hints)[std::size_t(c)] : nullptr);
    }

    //! With `relu`, dst = max(normalized, 0) with NaN kept (a ReLU layer after it, fused: the same
    //! bits; CPU only, what norm_modes::train_relu declares); with `add` (of src's shape, only
    //! with relu) dst = max(normalized + add, 0) (a residual's add before that ReLU).
    template <bool MinMax, bool Var, class T, class Coef>
    static bool forward(const tensor_view<const T>& src, const tensor_view<T>& dst, bool with_stats,
                        std::vector<moments<double>>& m, Coef&& coef, bool relu = false,
                        const T* add = nullptr) {
        const shape4& s = src.shape();
        const auto C = std::size_t(s.c);
        m.assign(C, moments<double>{});
        if (Schedule::channel_major(s, sizeof(T))) {
            std::vector<char> refused(C, 0);
            SHIFTNORM_OMP(omp parallel for schedule(static) if (worth_parallel(s)))
            for (index_t c = 0; c < s.c; ++c) {
                extreme_hint hint;
                if (with_stats) m[c] = channel_moments<MinMax, T, Var>(src, c, &hint);
                channel_coef<T> k;
                if (!coef(c, m[c], hint, k)) {
                    refused[c] = 1;
                    continue;
                }
                if (relu)
                    channel_normalize<T, true>(src, dst, c, k.mean, k.a, k.b, add);
                else
                    channel_normalize(src, dst, c, k.mean, k.a, k.b);
            }
            for (char r : refused)
                if (r) return false;
            return true;
        }
        std::vector<extreme_hint> hints;
        if (with_stats) stream_channel_moments<MinMax, T, Var>(src, m, MinMax ? &hints : nullptr);
        std::vector<channel_coef<T>> k(C);
        bool ok = true;
        for (std::size_t c = 0; c < C; ++c)
            ok = coef(index_t(c), m[c], hints.empty() ? extreme_hint{} : hints[c], k[c]) && ok;
        if (!ok) return false;
        if (relu)
            stream_normalize<T, true>(src.data(), dst.data(), src.shape(), k.data(), add);
        else
            normalize(src, dst, k.data());
        return true;
    }

    template <class T>
    static void normalize(const tensor_view<const T>& src, const tensor_view<T>& dst, const channel_coef<T>* coef) {
        stream_normalize(src.data(), dst.data(), src.shape(), coef);
    }

    //! With `relu` (one entry per channel: the coefficients forward applied before a ReLU fused
    //! after this layer), dy is that ReLU's output gradient: masked by normalize_value(src,
    //! relu[c]) > 0 inside both passes, i.e. by the ReLU's output > 0 recomputed from src instead
    //! of read (the ReLU's backward, value for value: the same bits as the two layers one by one).
    template <class T, class Coef>
    static void backward(const tensor_view<const T>& src, const tensor_view<const T>& dy, const tensor_view<T>& dx,
                         const T* mean, bool with_sums, Coef&& coef, const channel_coef<T>* relu = nullptr) {
        const shape4& s = src.shape();
        const auto C = std::size_t(s.c);
        if (with_sums && Schedule::channel_major(s, sizeof(T))) {
            SHIFTNORM_OMP(omp parallel for schedule(static) if (worth_parallel(s)))
            for (index_t c = 0; c < s.c; ++c) {
                double sdy = 0, sdyx = 0;
                channel_grad_sums(src, dy, c, mean[c], sdy, sdyx, relu ? relu + c : nullptr);
                const backward_coef<T> k = coef(c, sdy, sdyx);
                channel_apply(src, dy, dx, c, mean[c], k, relu ? relu + c : nullptr);
            }
            return;
        }
        std::vector<double> sdy(C, 0.0), sdyx(C, 0.0);
        if (with_sums) stream_grad_sums(src, dy, mean, sdy, sdyx, relu);
        std::vector<backward_coef<T>> k(C);
        for (std::size_t c = 0; c < C; ++c) k[c] = coef(index_t(c), sdy[c], sdyx[c]);
        stream_backward_apply(src.data(), dy.data(), dx.data(), s, mean, k.data(), relu);
    }

    // The group-pass kernels (backend/group_pass.hpp): each (n, g) block is contiguous, so every
    // schedule reads it in memory order; the blocks are spread over the OpenMP threads.

    template <class T, class Coef>
    static bool group_forward(const tensor_view<const T>& src, const tensor_view<T>& dst, index_t G,
                              std::vector<moments<double>>& m, Coef&& coef) {
        const shape4& s = src.shape();
        check_groups("group_forward", s, G);
        const index_t cg = s.c / G, hw = s.spatial(), blocks = s.n * G;
        m.assign(std::size_t(blocks), moments<double>{});
        std::vector<char> refused(std::size_t(blocks), 0);
        SHIFTNORM_OMP(omp parallel if (blocks > 1 && worth_parallel(s)))
        {
            std::vector<channel_coef<T>> k(static_cast<std::size_t>(cg));  // per thread
            SHIFTNORM_OMP(omp for schedule(static))
            for (index_t b = 0; b < blocks; ++b) {
                const index_t n = b / G, c0 = (b % G) * cg;
                m[std::size_t(b)] = span_moments(src.plane(n, c0), cg * hw);
                if (!coef(n, b % G, m[std::size_t(b)], k.data())) {
                    refused[std::size_t(b)] = 1;
                    continue;
                }
                for (index_t c = c0; c < c0 + cg; ++c) {
                    const T a = k[std::size_t(c - c0)].a, bias = k[std::size_t(c - c0)].b, mu = k[std::size_t(c - c0)].mean;
                    const T* SHIFTNORM_RESTRICT px = src.plane(n, c);
                    T* SHIFTNORM_RESTRICT py = dst.plane(n, c);
                    for (index_t i = 0; i < hw; ++i) py[i] = normalize_value(px[i], mu, a, bias);
                }
            }
        }
        for (char r : refused)
            if (r) return false;
        return true;
    }

    template <class T, class Coef>
    static void group_backward(const tensor_view<const T>& src, const tensor_view<const T>& dy, const tensor_view<T>& dx,
                               index_t G, const T* mean, const T* gamma, Coef&& coef) {
        const shape4& s = src.shape();
        check_groups("group_backward", s, G);
        const index_t cg = s.c / G, hw = s.spatial(), blocks = s.n * G;
        SHIFTNORM_OMP(omp parallel if (blocks > 1 && worth_parallel(s)))
        {
            std::vector<double> sdy(static_cast<std::size_t>(cg)), sdyx(static_cast<std::size_t>(cg));  // per thread
            SHIFTNORM_OMP(omp for schedule(static))
            for (index_t b = 0; b < blocks; ++b) {
                const index_t n = b / G, c0 = (b % G) * cg;
                const T mu = mean[b];
                for (index_t c = c0; c < c0 + cg; ++c) {
                    double& a = sdy[std::size_t(c - c0)];
                    double& ax = sdyx[std::size_t(c - c0)];
                    a = 0, ax = 0;
                    span_grad_sums(src.plane(n, c), dy.plane(n, c), hw, mu, a, ax);
                }
                const group_backward_coef<T> q = coef(n, b % G, sdy.data(), sdyx.data());
                const T m_g = q.m_g, m_gx = q.m_gx, mut = q.mean, it = q.inv_std;
                for (index_t c = c0; c < c0 + cg; ++c) {
                    const T gc = gamma[c];
                    const T* SHIFTNORM_RESTRICT px = src.plane(n, c);
                    const T* SHIFTNORM_RESTRICT pd = dy.plane(n, c);
                    T* SHIFTNORM_RESTRICT po = dx.plane(n, c);
                    for (index_t i = 0; i < hw; ++i) po[i] = it * (gc * pd[i] - m_g - (px[i] - mut) * m_gx);
                }
            }
        }
    }

private:
    static void check_groups(const char* where, const shape4& s, index_t G) {
        if (G <= 0 || s.c % G != 0)
            shiftnorm::detail::fail<shape_error>(where, "groups", shiftnorm::detail::concat("a divisor of C=", s.c), G);
    }
};

}  // namespace shiftnorm::backend::cpu
