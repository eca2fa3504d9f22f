// SPDX-License-Identifier: MIT
// Per-channel moments (count, mean, M2, min, max, first argmin/argmax) of NCHW device tensors.
#pragma once

#include <cuda_runtime.h>

#include <limits>
#include <vector>

#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/backend/cuda/schedule.cuh"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/core/moments.hpp"

namespace shiftnorm::backend::cuda {

//! Sentinel sequence index of "no element" (empty partial, or every value NaN).
inline constexpr index_t no_index = std::numeric_limits<index_t>::max();

//! One channel's (partial) statistics: the shared moments accumulator plus the position of
//! the FIRST minimum and maximum. Inside the kernels argmin/argmax are channel-sequence
//! indices j = n*H*W + i (monotone in flat NCHW order); the epilogues turn them into flat
//! NCHW offsets. Default-constructed = the identity of channel_partial_op.
template <class Acc = double>
struct channel_partial {
    moments<Acc> m;
    index_t argmin = no_index;
    index_t argmax = no_index;
};

//! Combine of channel_partial: welford_op::combine (Chan) for the moments; on equal extremes
//! the smaller index wins, so the merge order never changes which occurrence is reported.
template <class Acc, bool MinMax>
struct channel_partial_op {
    SHIFTNORM_HOST_DEVICE channel_partial<Acc> operator()(const channel_partial<Acc>& a,
                                                          const channel_partial<Acc>& b) const {
        channel_partial<Acc> r;
        r.m = welford_op<Acc>::combine(a.m, b.m);
        if constexpr (MinMax) {
            r.argmin = b.m.min < a.m.min ? b.argmin : a.m.min < b.m.min ? a.argmin : (a.argmin < b.argmin ? a.argmin : b.argmin);
            r.argmax = b.m.max > a.m.max ? b.argmax : a.m.max > b.m.max ? a.argmax : (a.argmax < b.argmax ? a.argmax : b.argmax);
        }
        return r;
    }
};

namespace detail {

//! Elements one thread sums in T (shifted) before folding them into its Acc accumulator with
//! welford_op::from_shifted_sums + combine (the CPU backend's 64 values per fp32 lane).
inline constexpr int tile_elems = 64;

//! Warp-cooperative shift of channel c: mean of the first min(32, H*W) values of plane (0, c),
//! rounded to T (0 when not finite), exactly as the CPU backend's pick_shift chooses it. Every
//! lane of the warp must call it; all lanes get the same value.
template <class T>
__device__ inline T warp_channel_shift(const T* src, index_t c, index_t hw_elems) {
    const int lane = int(threadIdx.x % 32u);
    const int m = hw_elems < 32 ? int(hw_elems) : 32;
    double v = lane < m ? double(src[c * hw_elems + lane]) : 0.0;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const T r = T(v / double(m));
    return (r == r && r - r == T(0)) ? r : T(0);  // finite test without <cmath> overload issues
}

//! Policy of channel_reduce_kernel computing channel_partial<Acc> with the shared Welford/Chan
//! functor: per-thread shifted Sum sums folded every tile_elems values, then Chan merges.
//! With MinMax, also min/max and the first argmin/argmax (strict compares in sequence order).
//! Sum is T for the block and warp schedules, where a thread sums a few values of a channel;
//! the thread schedule (one thread sums whole tiles of 64 values, shifted by the tile's first
//! value) takes alone(), the same policy with Sum = Acc: in fp32 those tiles measured up to
//! 2.8e-6 relative error in the variance on an H200 (shift up to ~3 std from the mean).
template <class T, class Acc, bool MinMax, class Epilogue, class Sum = T>
struct moments_policy {
    static constexpr bool binary = false;
    using partial = channel_partial<Acc>;
    using combine_op = channel_partial_op<Acc, MinMax>;

    const T* src;
    index_t hw_elems;  //!< H*W in elements
    Epilogue ep;

    struct state {
        partial acc;
        T shift, mn, mx;
        Sum s1, s2;
        int tile;
        index_t imin, imax;
    };

    //! This policy summing in Acc: what the thread schedule runs (see above).
    moments_policy<T, Acc, MinMax, Epilogue, Acc> alone() const { return {src, hw_elems, ep}; }

    __device__ state init(index_t c) const { return init_with_shift(warp_channel_shift(src, c, hw_elems)); }
    //! init for one thread alone (the thread schedule: no warp collective). The first shift only
    //! matters when a tile's first value is not finite (accumulate takes every tile's shift
    //! from its first value), and then the sums are not finite either way.
    __device__ state init_alone(index_t c) const {
        const T f = src[c * hw_elems];
        return init_with_shift(f == f && f - f == T(0) ? f : T(0));
    }
    __device__ state init_with_shift(T shift) const {
        state s;
        s.shift = shift;
        s.s1 = s.s2 = Sum(0);
        s.mn = T(INFINITY);
        s.mx = T(-INFINITY);
        s.tile = 0;
        s.imin = s.imax = no_index;
        return s;
    }
    __device__ void fold(state& s) const {
        if (s.tile == 0) return;
        auto p = welford_op<Acc>::from_shifted_sums(Acc(s.tile), Acc(s.shift), Acc(s.s1), Acc(s.s2),
                                                    MinMax ? Acc(s.mn) : Acc(INFINITY), MinMax ? Acc(s.mx) : Acc(-INFINITY));
        if (p.mean != p.mean) p.min = p.max = p.mean;  // NaN propagation, as the CPU fold does
        s.acc.m = welford_op<Acc>::combine(s.acc.m, p);
        s.s1 = s.s2 = Sum(0);
        s.tile = 0;
    }
    template <int W>
    __device__ void accumulate(state& s, const vec<T, W>& x, const vec<T, W>&, index_t j) const {
        // every tile gets its own shift, a value of the tile: large per-image offsets (an image
        // far from plane (0, c), which chose the first shift) cannot swamp the squares
        if (s.tile == 0) {
            const T f = x.v[0];
            if (f == f && f - f == T(0)) s.shift = f;
        }
#pragma unroll
        for (int e = 0; e < W; ++e) {
            const T v = x.v[e];
            const Sum d = Sum(v) - Sum(s.shift);
            s.s1 += d;
            s.s2 += d * d;
            if constexpr (MinMax) {
                if (v < s.mn) s.mn = v, s.imin = j * W + e;
                if (v > s.mx) s.mx = v, s.imax = j * W + e;
            }
        }
        s.tile += W;
        if (s.tile >= tile_elems) fold(s);
    }
    __device__ partial finish(state& s) const {
        fold(s);
        if constexpr (MinMax) {
            // strict compares never select NaN: an all-NaN share keeps the sentinel index
            s.acc.argmin = s.imin;
            s.acc.argmax = s.imax;
        }
        return s.acc;
    }
    __device__ void epilogue(index_t c, const partial& r) const { ep(c, r); }
};

//! Epilogue storing the channel's partial as is (sequence indices turned into flat offsets).
template <class Acc>
struct store_partial_epilogue {
    channel_partial<Acc>* out;
    index_t channels, hw_elems;
    __device__ void operator()(index_t c, channel_partial<Acc> r) const {
        r.argmin = to_flat(r.argmin, c);
        r.argmax = to_flat(r.argmax, c);
        out[c] = r;
    }
    //! Channel-sequence index -> flat NCHW offset; no_index -> -1.
    __device__ index_t to_flat(index_t j, index_t c) const {
        if (j == no_index) return -1;
        const index_t n = j / hw_elems;
        return (n * channels + c) * hw_elems + (j - n * hw_elems);
    }
};

}  // namespace detail

//! Per-channel moments of a contiguous NCHW device tensor over (N, H, W), asynchronously on
//! `stream`: out[c] (device, size C) receives count, mean, M2, and with MinMax min, max and
//! the flat NCHW offsets of the first minimum / maximum (-1 when none, e.g. all NaN).
//! One launch, one read of src; `ws` holds the cross-block partials (reuse it across calls).
template <bool MinMax, class T, class Acc = double>
void channel_moments(const tensor_view<const T>& src, channel_partial<Acc>* out, reduce_workspace& ws,
                     cudaStream_t stream = nullptr) {
    const char* where = "cuda::channel_moments";
    if (src.empty()) shiftnorm::detail::fail<shape_error>(where, "src", "a non-empty tensor", src.shape());
    if (!src.is_contiguous()) shiftnorm::detail::fail<shape_error>(where, "src", "a contiguous NCHW view", "a strided view");
    detail::check_device_pointer(where, "src", src.data());
    detail::check_device_pointer(where, "out", out);
    const shape4& s = src.shape();
    using epi = detail::store_partial_epilogue<Acc>;
    const detail::moments_policy<T, Acc, MinMax, epi> pol{src.data(), s.spatial(), epi{out, s.c, s.spatial()}};
    detail::launch_channel_reduce<T>(src.data(), nullptr, s, pol, ws, stream);
}

//! Convenience: the per-channel moments as a host vector (allocates, waits for `stream`).
template <bool MinMax, class T, class Acc = double>
std::vector<channel_partial<Acc>> channel_moments(const tensor_view<const T>& src, cudaStream_t stream = nullptr) {
    device_buffer<channel_partial<Acc>> out(std::size_t(src.shape().c > 0 ? src.shape().c : 0));
    reduce_workspace ws;
    channel_moments<MinMax, T, Acc>(src, out.data(), ws, stream);
    return out.to_vector_sync(stream);
}

}  // namespace shiftnorm::backend::cuda
