// SPDX-License-Identifier: MIT
// CPU reduction kernels: shifted fp32 lane sums folded into the fp64 moments accumulator.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "shiftnorm/backend/channel_pass.hpp"
#include "shiftnorm/config.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/core/moments.hpp"

namespace shiftnorm::backend::cpu {

//! Lanes of the vector-friendly accumulators (one AVX-512 register of floats).
inline constexpr int lane_count = 16;
//! Elements summed in fp32 lanes before the tile is folded into the fp64 accumulator
//! (64 per lane: keeps fp32 rounding of the shifted sums near 1e-7 relative).
inline constexpr index_t tile_elems = 1024;

namespace detail {

//! Asks for the cache lines of p[0..len) (at most 16 KiB of them) ahead of their use. The
//! channel-major passes walk N planes that lie C planes apart; the hardware prefetchers do not
//! cross into the next plane's page, so each plane would start with a run of misses: the passes
//! call this on plane n + 1 before working on plane n.
template <class T>
inline void prefetch_plane(const T* p, index_t len) {
#if defined(__GNUC__)
    const char* b = reinterpret_cast<const char*>(p);
    const std::size_t bytes = std::min<std::size_t>(std::size_t(len) * sizeof(T), std::size_t(16) << 10);
    for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(b + off, 0, 3);
#else
    (void)p, (void)len;
#endif
}

//! fp32 (or T) lane accumulators of shifted sums, and of min/max when MinMax.
template <class T>
struct lanes {
    alignas(64) T s1[lane_count];
    alignas(64) T s2[lane_count];
    alignas(64) T mn[lane_count];
    alignas(64) T mx[lane_count];
    index_t count;

    void reset() {
        for (int j = 0; j < lane_count; ++j) {
            s1[j] = s2[j] = T(0);
            mn[j] = INFINITY;
            mx[j] = -INFINITY;
        }
        count = 0;
    }
};

//! Adds p[0..len) to the lanes as d = p[i] - shift. Written as fixed-width lane updates (not
//! a horizontal reduction) so GCC vectorizes min/max too (performance.md).
#if defined(__GNUC__) || defined(__clang__)
//! One vector of lane_count elements (GCC/Clang vector extension: always vectorized, split
//! into the widest registers the target has: 1 x AVX-512, 2 x AVX2, 4 x SSE).
template <class T>
struct lane_vec {
    typedef T type __attribute__((vector_size(lane_count * sizeof(T))));
};
template <class T>
using vec_t = typename lane_vec<T>::type;
#define SHIFTNORM_HAS_VECTOR_EXT 1
#else
#define SHIFTNORM_HAS_VECTOR_EXT 0
#endif

//! Adds p[0..len) to the lanes as d = p[i] - shift (and p[i] to min/max when MinMax). Lanes
//! are updated elementwise, never horizontally, so min/max vectorize too (performance.md).
template <bool MinMax, class T, bool Var = true>
inline void accumulate(lanes<T>& a, const T* SHIFTNORM_RESTRICT p, index_t len, T shift) {
    index_t i = 0;
#if SHIFTNORM_HAS_VECTOR_EXT
    using V = vec_t<T>;
    V s1, s2, mn, mx;
    std::memcpy(&s1, a.s1, sizeof s1);
    std::memcpy(&s2, a.s2, sizeof s2);
    std::memcpy(&mn, a.mn, sizeof mn);
    std::memcpy(&mx, a.mx, sizeof mx);
    const V sh = shift - V{};
    for (; i + lane_count <= len; i += lane_count) {
        V v;
        std::memcpy(&v, p + i, sizeof v);
        const V d = v - sh;
        s1 += d;
        if constexpr (Var) s2 += d * d;
        if constexpr (MinMax) {
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
    }
    std::memcpy(a.s1, &s1, sizeof s1);
    std::memcpy(a.s2, &s2, sizeof s2);
    std::memcpy(a.mn, &mn, sizeof mn);
    std::memcpy(a.mx, &mx, sizeof mx);
#endif
    for (int j = 0; i < len; ++i, j = (j + 1) % lane_count) {
        const T v = p[i];
        const T d = v - shift;
        a.s1[j] += d;
        if constexpr (Var) a.s2[j] += d * d;
        if constexpr (MinMax) {
            a.mn[j] = v < a.mn[j] ? v : a.mn[j];
            a.mx[j] = v > a.mx[j] ? v : a.mx[j];
        }
    }
    a.count += len;
}

//! Folds the lanes into an fp64 moments partial (Chan-mergeable) and resets them.
template <class T>
inline moments<double> fold(lanes<T>& a, T shift) {
    double s1 = 0, s2 = 0, mn = INFINITY, mx = -INFINITY;
    for (int j = 0; j < lane_count; ++j) {
        s1 += double(a.s1[j]);
        s2 += double(a.s2[j]);
        mn = std::min(mn, double(a.mn[j]));
        mx = std::max(mx, double(a.mx[j]));
    }
    auto r = welford_op<double>::from_shifted_sums(double(a.count), double(shift), s1, s2, mn, mx);
    if (std::isnan(r.mean)) r.min = r.max = r.mean;
    a.reset();
    return r;
}

//! Shift for a reduction: mean of the first (up to 32) values, rounded to T. Any value near
//! the data's mean removes the cancellation of s2 - s1^2/n at large |mean|/std.
template <class T>
inline T pick_shift(const T* p, index_t len) {
    const index_t m = std::min<index_t>(len, 32);
    if (m == 0) return T(0);
    double s = 0;
    for (index_t i = 0; i < m; ++i) s += double(p[i]);
    const T r = T(s / double(m));
    return std::isfinite(r) ? r : T(0);
}

//! Whether a plane starting at p needs a shift of its own: the mean of its first (up to 8)
//! values is farther from `shift` than 16x their spread (max - min). Data around one mean almost
//! never triggers it; per-image offsets far beyond the within-image spread always do (without a
//! new shift, fp32 sums of (x - shift)^2 would lose the variance to the offsets' squares).
template <class T>
inline bool needs_new_shift(const T* p, index_t len, T shift, T& out) {
    const index_t m = std::min<index_t>(len, 8);
    if (m == 0) return false;
    double s = 0, mn = double(p[0]), mx = double(p[0]);
    for (index_t i = 0; i < m; ++i) s += double(p[i]), mn = std::min(mn, double(p[i])), mx = std::max(mx, double(p[i]));
    const double local = s / double(m);
    if (!std::isfinite(local) || std::fabs(local - double(shift)) <= 16.0 * (mx - mn)) return false;
    out = T(local);
    return true;
}

}  // namespace detail

//! Where the first extreme value of a reduction lies (tile granularity; refined by a scan).
using backend::extreme_hint;

//! Moments of one channel c of a contiguous NCHW view, over (N, H, W): one pass over the data.
//! With MinMax, also min/max and, if `hint` is given, the first tile holding each extreme.
//! With Var = false the squares are not accumulated and the returned m2 is 0 (RobustNorm).
template <bool MinMax, class T, bool Var = true>
inline moments<double> channel_moments(const tensor_view<const T>& x, index_t c, extreme_hint* hint = nullptr) {
    const auto& s = x.shape();
    const index_t hw = s.spatial();
    moments<double> acc;
    if (s.n == 0 || hw == 0) return acc;
    T shift = detail::pick_shift(x.plane(0, c), hw);
    detail::lanes<T> l;
    l.reset();
    index_t tile_n = 0, tile_i = 0;  // where the pending tile starts
    auto flush = [&](index_t next_n, index_t next_i) {
        const auto part = detail::fold(l, shift);
        if constexpr (MinMax) {
            if (hint) {
                if (part.min < acc.min) hint->min_n = tile_n, hint->min_i = tile_i;
                if (part.max > acc.max) hint->max_n = tile_n, hint->max_i = tile_i;
            }
        }
        acc = welford_op<double>::combine(acc, part);
        tile_n = next_n;
        tile_i = next_i;
    };
    for (index_t n = 0; n < s.n; ++n) {
        const T* p = x.plane(n, c);
        if (n + 1 < s.n) detail::prefetch_plane(x.plane(n + 1, c), hw);
        T new_shift;
        if (n > 0 && detail::needs_new_shift(p, hw, shift, new_shift)) {  // a large per-image offset
            if (l.count > 0) flush(n, 0);
            shift = new_shift;
        }
        for (index_t i = 0; i < hw;) {
            const index_t len = std::min(hw - i, tile_elems - l.count);
            detail::accumulate<MinMax, T, Var>(l, p + i, len, shift);
            i += len;
            if (l.count >= tile_elems) flush(i == hw ? n + 1 : n, i == hw ? 0 : i);
        }
    }
    if (l.count > 0) flush(0, 0);
    return acc;
}

//! First flat offset (NCHW, within channel c's planes) at or after (n0, i0) whose value equals v.
template <class T>
inline index_t find_first_equal(const tensor_view<const T>& x, index_t c, index_t n0, index_t i0, double v) {
    const index_t hw = x.shape().spatial();
    const T t = T(v);  // v is a value of x, so exactly representable in T
    for (index_t n = n0; n < x.shape().n; ++n) {
        const T* p = x.plane(n, c);
        const index_t start = n == n0 ? i0 : 0;
        int any = 0;  // vectorizable presence test first, then the scalar search in that plane
        for (index_t i = start; i < hw; ++i) any |= int(p[i] == t);
        if (!any) continue;
        for (index_t i = start; i < hw; ++i)
            if (p[i] == t) return (p + i) - x.data();
    }
    return -1;
}

//! Moments of a contiguous span (group/layer/instance norm reduce contiguous blocks).
template <class T>
inline moments<double> span_moments(const T* p, index_t len) {
    moments<double> acc;
    if (len == 0) return acc;
    const T shift = detail::pick_shift(p, len);
    detail::lanes<T> l;
    l.reset();
    for (index_t i = 0; i < len; i += tile_elems) {
        detail::accumulate<false>(l, p + i, std::min(tile_elems, len - i), shift);
        acc = welford_op<double>::combine(acc, detail::fold(l, shift));
    }
    return acc;
}

namespace detail {
//! Lanes of sum(dy) and sum(dy * (x - mean)) for one channel.
template <class T>
struct grad_lanes {
    alignas(64) T a[lane_count];
    alignas(64) T b[lane_count];
    void reset() { std::fill(a, a + lane_count, T(0)), std::fill(b, b + lane_count, T(0)); }
};

//! With `relu` (non-null), dy is the gradient of a ReLU after this layer, whose input was
//! normalize_value(x, relu->mean, relu->a, relu->b) (the forward's coefficients): the sums take
//! that value > 0 ? pd[i] : 0, the ReLU's backward value for value (the forward computed the same
//! expression, so its sign is the ReLU output's), and a batch norm followed by a ReLU gives the
//! bits of the two layers one by one without reading the ReLU's output.
template <class T>
inline void accumulate_grad(grad_lanes<T>& l, const T* SHIFTNORM_RESTRICT px, const T* SHIFTNORM_RESTRICT pd,
                            index_t len, T mean, const channel_coef<T>* relu = nullptr) {
    index_t i = 0;
#if SHIFTNORM_HAS_VECTOR_EXT
    using V = vec_t<T>;
    V va, vb;
    std::memcpy(&va, l.a, sizeof va);
    std::memcpy(&vb, l.b, sizeof vb);
    const V m = mean - V{};
    if (relu) {
        const V rm = relu->mean - V{}, ra = relu->a - V{}, rb = relu->b - V{};
        for (; i + lane_count <= len; i += lane_count) {
            V x, g;
            std::memcpy(&x, px + i, sizeof x);
            std::memcpy(&g, pd + i, sizeof g);
            const V v = (x - rm) * ra + rb;  // normalize_value
            g = v > V{} ? g : V{};
            va += g;
            vb += g * (x - m);
        }
    } else {
        for (; i + lane_count <= len; i += lane_count) {
            V x, g;
            std::memcpy(&x, px + i, sizeof x);
            std::memcpy(&g, pd + i, sizeof g);
            va += g;
            vb += g * (x - m);
        }
    }
    std::memcpy(l.a, &va, sizeof va);
    std::memcpy(l.b, &vb, sizeof vb);
#endif
    for (int j = 0; i < len; ++i, j = (j + 1) % lane_count) {
        const T g = relu ? (normalize_value(px[i], relu->mean, relu->a, relu->b) > T(0) ? pd[i] : T(0)) : pd[i];
        l.a[j] += g;
        l.b[j] += g * (px[i] - mean);
    }
}
//! Adds the lanes to the fp64 sums (lane order) and clears them.
template <class T>
inline void fold_grad(grad_lanes<T>& l, double& sum_dy, double& sum_dy_xc) {
    for (int j = 0; j < lane_count; ++j) {
        sum_dy += double(l.a[j]);
        sum_dy_xc += double(l.b[j]);
    }
    l.reset();
}
}  // namespace detail

//! sum(dy) and sum(dy * (x - mean)) of a contiguous span, fp32 lanes folded into fp64 per tile
//! (with `relu`: dy masked as detail::accumulate_grad says).
template <class T>
inline void span_grad_sums(const T* SHIFTNORM_RESTRICT px, const T* SHIFTNORM_RESTRICT pd, index_t len, T mean,
                           double& sum_dy, double& sum_dy_xc, const channel_coef<T>* relu = nullptr) {
    detail::grad_lanes<T> l;
    l.reset();
    for (index_t i0 = 0; i0 < len; i0 += tile_elems) {
        const index_t end = std::min(len, i0 + tile_elems);
        detail::accumulate_grad<T>(l, px + i0, pd + i0, end - i0, mean, relu);
        detail::fold_grad(l, sum_dy, sum_dy_xc);
    }
}

//! sum(dy) and sum(dy * (x - mean)) over one channel (N planes). With `relu` (the forward's
//! coefficients of this channel, a ReLU after the layer, dy its gradient): dy masked by
//! normalize_value(x, relu) > 0 (detail::accumulate_grad).
template <class T>
inline void channel_grad_sums(const tensor_view<const T>& x, const tensor_view<const T>& dy, index_t c, T mean,
                              double& sum_dy, double& sum_dy_xc, const channel_coef<T>* relu = nullptr) {
    sum_dy = 0;
    sum_dy_xc = 0;
    const index_t hw = x.shape().spatial();
    for (index_t n = 0; n < x.shape().n; ++n) {
        if (n + 1 < x.shape().n) detail::prefetch_plane(x.plane(n + 1, c), hw), detail::prefetch_plane(dy.plane(n + 1, c), hw);
        span_grad_sums(x.plane(n, c), dy.plane(n, c), hw, mean, sum_dy, sum_dy_xc, relu);
    }
}

//! y = (x - mean) * a + b over one channel's planes (normalize with folded scale a = gamma *
//! inv_std, b = beta), then max(y, 0) with NaN kept when Relu (relu_value: the bits of a ReLU
//! layer after it). Subtracting first keeps precision at large |mean|/std. With `add` (a tensor
//! of x's shape): y = normalized + add before the ReLU (a residual's add, the same bits).
template <class T, bool Relu = false>
inline void channel_normalize(const tensor_view<const T>& x, const tensor_view<T>& y, index_t c, T mean, T a,
                              T b, const T* add = nullptr) {
    const index_t hw = x.shape().spatial();
    for (index_t n = 0; n < x.shape().n; ++n) {
        const T* SHIFTNORM_RESTRICT px = x.plane(n, c);
        T* SHIFTNORM_RESTRICT py = y.plane(n, c);
        if (add) {
            const T* SHIFTNORM_RESTRICT pa = add + (n * x.shape().c + c) * hw;
#pragma GCC ivdep
            for (index_t i = 0; i < hw; ++i) {
                const T v = normalize_value(px[i], mean, a, b) + pa[i];
                py[i] = Relu ? relu_value(v) : v;
            }
            continue;
        }
#pragma GCC ivdep
        for (index_t i = 0; i < hw; ++i) {
            const T v = normalize_value(px[i], mean, a, b);
            py[i] = Relu ? relu_value(v) : v;
        }
    }
}

//! dx = k * dy + kx * (x - mean) + off over one channel's planes (backward apply; x - mean
//! first: no cancellation). With `relu` (the forward's coefficients of this channel): dy masked
//! by normalize_value(x, relu) > 0 first (the ReLU's backward, value for value).
template <class T>
inline void channel_apply(const tensor_view<const T>& x, const tensor_view<const T>& dy, const tensor_view<T>& dx,
                          index_t c, T mean, const backward_coef<T>& coef, const channel_coef<T>* relu = nullptr) {
    const index_t hw = x.shape().spatial();
    const T k = coef.k, kx = coef.kx, off = coef.off;
    for (index_t n = 0; n < x.shape().n; ++n) {
        const T* SHIFTNORM_RESTRICT px = x.plane(n, c);
        const T* SHIFTNORM_RESTRICT pd = dy.plane(n, c);
        T* SHIFTNORM_RESTRICT po = dx.plane(n, c);
        if (relu) {
            const T rm = relu->mean, ra = relu->a, rb = relu->b;
#pragma GCC ivdep
            for (index_t i = 0; i < hw; ++i) {
                const T g = normalize_value(px[i], rm, ra, rb) > T(0) ? pd[i] : T(0);
                po[i] = k * g + kx * (px[i] - mean) + off;
            }
        } else {
#pragma GCC ivdep
            for (index_t i = 0; i < hw; ++i) po[i] = k * pd[i] + kx * (px[i] - mean) + off;
        }
    }
}

}  // namespace shiftnorm::backend::cpu
