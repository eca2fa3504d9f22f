// SPDX-License-Identifier: MIT
// CPU plane-streaming schedule: per-channel statistics of small planes read in memory order.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

#include "shiftnorm/backend/cpu/reduce.hpp"
#include "shiftnorm/core/omp.hpp"

namespace shiftnorm::backend::cpu {

//! Whether a kernel over a tensor of this shape is worth an OpenMP team (about 32k values: below
//! that, forking costs more than the loop). Every parallel kernel splits work so that each
//! channel (or element) is computed exactly as on one thread: results do not depend on the
//! thread count.
inline bool worth_parallel(const shape4& s) { return s.numel() >= (index_t(1) << 15); }

namespace detail {
//! The channel range [c0, c1) of this OpenMP thread when C channels are split evenly.
inline void thread_channels(index_t C, index_t& c0, index_t& c1) {
    index_t t = 0, nt = 1;
#if defined(_OPENMP)
    t = omp_get_thread_num();
    nt = omp_get_num_threads();
#endif
    c0 = C * t / nt;
    c1 = C * (t + 1) / nt;
}
}  // namespace detail

//! Schedule choice. Plane-streaming (the tensor in memory order: statistics, then normalize)
//! moves 3T but every stream is contiguous; channel-major (statistics then normalize per
//! channel, the second pass from L2) moves 2T but walks N planes that lie C planes apart, and
//! each plane restarts the hardware prefetchers (which stop at page boundaries), for the reads
//! and for the read-for-ownership of the writes. Measured on Zen 4 (2026-12-02,
//! docs/benchmarks.md, same run): at one thread plane-streaming was 1.3-2.1x faster at 32x32,
//! 28x28 and 56x56 planes and equal at 112x112; at two threads faster on the CIFAR shapes and
//! the small planes, within +-25% either way on the large ResNet-50 ones. Channel-major is
//! kept for planes of at least 64 KiB (128x128 and up) whose channel fits in 1 MiB.
inline bool prefer_channel_major(const shape4& s, std::size_t elem_size) {
    const std::size_t plane_bytes = std::size_t(s.spatial()) * elem_size;
    const std::size_t channel_bytes = std::size_t(s.per_channel()) * elem_size;
    return plane_bytes >= (std::size_t(64) << 10) && channel_bytes <= (std::size_t(1) << 20);
}

//! Planes accumulated in fp32 lanes before a fold into fp64 (about tile_elems values).
inline index_t planes_per_fold(index_t hw) { return std::max<index_t>(1, tile_elems / std::max<index_t>(hw, 1)); }

//! Moments of every channel, planes read in memory order (n-major). Each channel keeps its own
//! fp32 lanes (no horizontal reduction per plane), folded into its fp64 accumulator every
//! planes_per_fold planes; shift_c = mean of the first values of plane (0, c), renewed for a plane
//! far from it (detail::needs_new_shift: large per-image offsets). Var = false skips
//! the squares (m2 = 0). With MinMax and
//! `hints`, each hint gives the first plane of the fold-tile holding the channel's extreme.
template <bool MinMax = false, class T, bool Var = true>
inline void stream_channel_moments_range(const tensor_view<const T>& x, std::vector<moments<double>>& out,
                                         std::vector<extreme_hint>* hints, index_t c_begin, index_t c_end);

//! Channels are split over the OpenMP threads (each thread streams its own channels' planes in
//! memory order), so every channel's accumulation is the single-thread one.
template <bool MinMax = false, class T, bool Var = true>
inline void stream_channel_moments(const tensor_view<const T>& x, std::vector<moments<double>>& out,
                                   std::vector<extreme_hint>* hints = nullptr) {
    const auto& s = x.shape();
    out.assign(std::size_t(s.c), moments<double>{});
    if (hints) hints->assign(std::size_t(s.c), extreme_hint{});
    if (s.n == 0 || s.spatial() == 0) return;
    const bool par = worth_parallel(s) && s.c > 1;
    SHIFTNORM_OMP(omp parallel if (par))
    {
        index_t c0 = 0, c1 = s.c;
        if (par) detail::thread_channels(s.c, c0, c1);
        stream_channel_moments_range<MinMax, T, Var>(x, out, hints, c0, c1);
    }
}

//! stream_channel_moments over channels [c_begin, c_end) only (out and hints already sized).
template <bool MinMax, class T, bool Var>
inline void stream_channel_moments_range(const tensor_view<const T>& x, std::vector<moments<double>>& out,
                                         std::vector<extreme_hint>* hints, index_t c_begin, index_t c_end) {
    const auto& s = x.shape();
    const index_t hw = s.spatial(), C = s.c;
    if (c_begin >= c_end) return;
    std::vector<T> shift(static_cast<std::size_t>(C));
    std::vector<detail::lanes<T>> st(static_cast<std::size_t>(C));
    for (index_t c = c_begin; c < c_end; ++c) {
        shift[c] = detail::pick_shift(x.plane(0, c), hw);
        st[c].reset();
    }
    const index_t fold_every = planes_per_fold(hw);
    // hint = n0, the first plane of the fold-tile: a lower bound of where the extreme lies
    auto fold_channel = [&](index_t c, index_t n0) {
        const auto part = detail::fold(st[c], shift[c]);
        if constexpr (MinMax) {
            if (hints) {
                if (part.min < out[c].min) (*hints)[c].min_n = n0, (*hints)[c].min_i = 0;
                if (part.max > out[c].max) (*hints)[c].max_n = n0, (*hints)[c].max_i = 0;
            }
        }
        out[c] = welford_op<double>::combine(out[c], part);
    };
    for (index_t n0 = 0; n0 < s.n; n0 += fold_every) {
        const index_t n1 = std::min(s.n, n0 + fold_every);
        for (index_t n = n0; n < n1; ++n)
            for (index_t c = c_begin; c < c_end; ++c) {
                T new_shift;  // a large per-image offset: fold what is pending, continue with a new shift
                if (n > 0 && detail::needs_new_shift(x.plane(n, c), hw, shift[c], new_shift)) {
                    if (st[c].count > 0) fold_channel(c, n0);
                    shift[c] = new_shift;
                }
                detail::accumulate<MinMax, T, Var>(st[c], x.plane(n, c), hw, shift[c]);
            }
        for (index_t c = c_begin; c < c_end; ++c)
            if (st[c].count > 0) fold_channel(c, n0);
    }
}


//! sum(dy) and sum(dy * (x - mean_c)) of every channel, planes read in memory order, fp32
//! lanes per channel folded into fp64 every planes_per_fold planes.
//! With `relu` (the forward's coefficients per channel: a ReLU after this layer, dy its
//! gradient): dy masked by normalize_value(x, relu[c]) > 0 (detail::accumulate_grad).
template <class T>
inline void stream_grad_sums(const tensor_view<const T>& x, const tensor_view<const T>& dy, const T* mean,
                             std::vector<double>& sum_dy, std::vector<double>& sum_dy_xc,
                             const channel_coef<T>* relu = nullptr) {
    const auto& s = x.shape();
    const index_t hw = s.spatial(), C = s.c;
    sum_dy.assign(std::size_t(C), 0.0);
    sum_dy_xc.assign(std::size_t(C), 0.0);
    const index_t fold_every = planes_per_fold(hw);
    const bool par = worth_parallel(s) && C > 1;
    // channels split over the threads: each channel's sums are the single-thread ones
    SHIFTNORM_OMP(omp parallel if (par))
    {
        index_t c0 = 0, c1 = C;
        if (par) detail::thread_channels(C, c0, c1);
        std::vector<detail::grad_lanes<T>> st(static_cast<std::size_t>(std::max<index_t>(c1 - c0, 0)));
        for (auto& l : st) l.reset();
        for (index_t n0 = 0; n0 < s.n && c0 < c1; n0 += fold_every) {
            const index_t n1 = std::min(s.n, n0 + fold_every);
            for (index_t n = n0; n < n1; ++n)
                for (index_t c = c0; c < c1; ++c)
                    detail::accumulate_grad(st[c - c0], x.plane(n, c), dy.plane(n, c), hw, mean[c],
                                            relu ? relu + c : nullptr);
            for (index_t c = c0; c < c1; ++c) detail::fold_grad(st[c - c0], sum_dy[c], sum_dy_xc[c]);
        }
    }
}

//! y = (x - mean_c) * a_c + b_c over every plane in memory order (normalize, folded affine),
//! then max(y, 0) with NaN kept when Relu (relu_value: the bits of a ReLU layer after it). With
//! `add` (of x's shape): normalized + add before the ReLU (a residual's add, the same bits).
template <class T, bool Relu = false>
inline void stream_normalize(const T* SHIFTNORM_RESTRICT x, T* SHIFTNORM_RESTRICT y, const shape4& s,
                             const channel_coef<T>* coef, const T* SHIFTNORM_RESTRICT add = nullptr) {
    const index_t hw = s.spatial();
    SHIFTNORM_OMP(omp parallel for schedule(static) if (worth_parallel(s)))
    for (index_t n = 0; n < s.n; ++n)
        for (index_t c = 0; c < s.c; ++c) {
            const T m = coef[c].mean, k = coef[c].a, o = coef[c].b;
            const index_t base = (n * s.c + c) * hw;
            if (add) {
                for (index_t i = 0; i < hw; ++i) {
                    const T v = normalize_value(x[base + i], m, k, o) + add[base + i];
                    y[base + i] = Relu ? relu_value(v) : v;
                }
                continue;
            }
            for (index_t i = 0; i < hw; ++i) {
                const T v = normalize_value(x[base + i], m, k, o);
                y[base + i] = Relu ? relu_value(v) : v;
            }
        }
}

//! dx = k_c * dy + kx_c * (x - mean_c) + off_c over every plane in memory order (backward apply).
//! With `relu` (the forward's coefficients per channel): dy masked by normalize_value(x,
//! relu[c]) > 0 first (the ReLU after this layer, value for value).
template <class T>
inline void stream_backward_apply(const T* SHIFTNORM_RESTRICT x, const T* SHIFTNORM_RESTRICT dy,
                                  T* SHIFTNORM_RESTRICT dx, const shape4& s, const T* mean,
                                  const backward_coef<T>* coef, const channel_coef<T>* relu = nullptr) {
    const index_t hw = s.spatial();
    SHIFTNORM_OMP(omp parallel for schedule(static) if (worth_parallel(s)))
    for (index_t n = 0; n < s.n; ++n)
        for (index_t c = 0; c < s.c; ++c) {
            const T m = mean[c], a = coef[c].k, b = coef[c].kx, o = coef[c].off;
            const index_t base = (n * s.c + c) * hw;
            if (relu) {
                const T rm = relu[c].mean, ra = relu[c].a, rb = relu[c].b;
                for (index_t i = 0; i < hw; ++i) {
                    const T g = normalize_value(x[base + i], rm, ra, rb) > T(0) ? dy[base + i] : T(0);
                    dx[base + i] = a * g + b * (x[base + i] - m) + o;
                }
            } else {
                for (index_t i = 0; i < hw; ++i) dx[base + i] = a * dy[base + i] + b * (x[base + i] - m) + o;
            }
        }
}

}  // namespace shiftnorm::backend::cpu
