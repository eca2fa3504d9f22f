// SPDX-License-Identifier: MIT
// Launch schedules shared by the CUDA kernels: per-channel 2-D grid reduction and channel-wise maps.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

#include <cub/block/block_reduce.cuh>
#include <cub/warp/warp_reduce.cuh>

#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/core/shape.hpp"

namespace shiftnorm::backend::cuda {

//! Threads per block of every kernel of this backend (a multiple of the warp size).
inline constexpr int block_threads = 256;
//! Independent loads each thread keeps in flight per loop round (memory-level parallelism).
inline constexpr int unroll = 4;

//! Scratch of the channel reductions: per-block partials and the per-channel done counters.
//! One workspace must not be used by two launches that may run concurrently.
class reduce_workspace {
public:
    //! Ensures room for `count` partials of `bytes_each` and `channels` zeroed counters.
    void ensure(std::size_t count, std::size_t bytes_each, index_t channels, cudaStream_t stream) {
        partials_.reserve_discard(count * bytes_each);
        if (counters_.reserve_discard(std::size_t(channels))) counters_.zero(stream);
    }
    void* partials() { return partials_.data(); }
    unsigned* counters() { return counters_.data(); }

private:
    device_buffer<unsigned char> partials_;
    device_buffer<unsigned> counters_;
};

namespace detail {

//! W consecutive elements loaded/stored as one vector access (16 bytes when W*sizeof(T) = 16).
template <class T, int W>
struct alignas(sizeof(T) * W) vec {
    T v[W];
};

//! Elements per 16-byte vector access.
template <class T>
inline constexpr int vec_width = int(16 / sizeof(T));

inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

//! Geometry of an NCHW tensor in units of W-element vectors: hw = H*W/W vectors per plane.
//! Channel c's elements form the sequence j = n * hw + i (n < N, i < hw), in flat NCHW order.
struct channel_geometry {
    index_t n = 0, c = 0, hw = 0;
};

//! Fixed-order reduction of `count` partials at `p` into one, by the block (every thread
//! combines a strided subset in ascending order, then a block reduction): deterministic.
//! Loads bypass L1 (__ldcg): the partials were written by other blocks of this grid.
template <class Partial>
__device__ inline Partial load_cg(const Partial* p) {
    static_assert(sizeof(Partial) % sizeof(unsigned) == 0, "partials are loaded in 4-byte words");
    Partial r;
    const unsigned* src = reinterpret_cast<const unsigned*>(p);
    unsigned* dst = reinterpret_cast<unsigned*>(&r);
#pragma unroll
    for (int i = 0; i < int(sizeof(Partial) / sizeof(unsigned)); ++i) dst[i] = __ldcg(src + i);
    return r;
}

//! One thread's share of channel c's vector sequence: indices j = first, first + Step, ... < end,
//! read `Unroll` vectors at a time (independent loads in flight) and accumulated with the
//! Policy in increasing j. Shared by the block and the warp schedule (Step = their thread count).
template <class T, int W, int Step, int Unroll, class Policy>
__device__ inline void accumulate_share(const T* __restrict__ a, const T* __restrict__ b, const channel_geometry& g,
                                        index_t c, index_t first, index_t end, const Policy& pol,
                                        typename Policy::state& st) {
    using V = vec<T, W>;
    const V* av = reinterpret_cast<const V*>(a);
    const V* bv = reinterpret_cast<const V*>(b);
    const index_t plane_stride = g.c * g.hw;
    // Advancing the sequence index by Step moves dn planes and di vectors.
    const index_t dn = index_t(Step) / g.hw, di = index_t(Step) % g.hw;
    index_t j = first;
    index_t i = j % g.hw;
    index_t off = (j / g.hw) * plane_stride + c * g.hw + i;
    while (j < end) {
        index_t offs[Unroll], js[Unroll];
#pragma unroll
        for (int u = 0; u < Unroll; ++u) {
            js[u] = j;
            offs[u] = off;
            j += Step;
            i += di;
            off += dn * plane_stride + di;
            if (i >= g.hw) {
                i -= g.hw;
                off += plane_stride - g.hw;
            }
        }
        V xa[Unroll], xb[Unroll];
#pragma unroll
        for (int u = 0; u < Unroll; ++u) {
            if (js[u] < end) {
                xa[u] = av[offs[u]];
                if constexpr (Policy::binary) xb[u] = bv[offs[u]];
            }
        }
#pragma unroll
        for (int u = 0; u < Unroll; ++u)
            if (js[u] < end) pol.template accumulate<W>(st, xa[u], xb[u], js[u]);
    }
}

//! Per-channel reduction over (N, H, W) on a 2-D grid: blockIdx.x is a chunk of `chunk`
//! vectors of one channel's sequence, blockIdx.y (grid-strided) the channel. Each thread
//! accumulates its strided share of the chunk in registers with the Policy, CUB BlockReduce
//! merges the block's partial with Policy::combine_op, and the LAST block to finish a channel
//! (atomic counter, threadfence reduction) merges the channel's partials in a fixed order and
//! runs Policy::epilogue(c, total) on thread 0. Small C therefore still fills every SM, and
//! the result does not depend on the order in which blocks run.
//!
//! Policy provides: `partial` (trivially copyable, default-constructed = identity), `state`,
//! `combine_op`, `static constexpr bool binary` (reads a second tensor `b` at the same
//! offsets), `state init(index_t c)` (called by every thread; may use warp collectives),
//! `accumulate<W>(state&, const vec& a, const vec& b, index_t j)` (j: vector sequence index),
//! `partial finish(state&)`, `epilogue(index_t c, const partial&)`.
//! `partials` holds C * gridDim.x entries; `counters` C zeros (reset again by the kernel).
template <class T, int W, class Policy>
__global__ void __launch_bounds__(block_threads)
    channel_reduce_kernel(const T* __restrict__ a, const T* __restrict__ b, channel_geometry g, index_t chunk,
                          Policy pol, typename Policy::partial* __restrict__ partials, unsigned* __restrict__ counters) {
    using partial = typename Policy::partial;
    using block_reduce = cub::BlockReduce<partial, block_threads>;
    __shared__ typename block_reduce::TempStorage temp;
    __shared__ bool is_last;

    const typename Policy::combine_op op{};
    const unsigned chunks = gridDim.x;
    const index_t total = g.n * g.hw;
    const index_t begin = index_t(blockIdx.x) * chunk;
    const index_t end = begin + chunk < total ? begin + chunk : total;

    for (index_t c = blockIdx.y; c < g.c; c += gridDim.y) {
        typename Policy::state st = pol.init(c);
        accumulate_share<T, W, block_threads, unroll>(a, b, g, c, begin + threadIdx.x, end, pol, st);
        const partial mine = pol.finish(st);
        const partial block_total = block_reduce(temp).Reduce(mine, op);
        if (chunks == 1) {
            if (threadIdx.x == 0) pol.epilogue(c, block_total);
        } else {
            if (threadIdx.x == 0) {
                partials[c * chunks + blockIdx.x] = block_total;
                __threadfence();  // publish the partial before counting this block as done
                is_last = atomicAdd(counters + c, 1u) == chunks - 1;
            }
            __syncthreads();
            if (is_last) {
                __threadfence();
                partial q{};
                for (unsigned k = threadIdx.x; k < chunks; k += block_threads)
                    q = op(q, load_cg(partials + c * chunks + k));
                __syncthreads();  // temp is reused
                const partial channel_total = block_reduce(temp).Reduce(q, op);
                if (threadIdx.x == 0) {
                    pol.epilogue(c, channel_total);
                    counters[c] = 0u;  // ready for the next launch on this workspace
                }
            }
        }
        __syncthreads();  // temp and is_last are reused by the next channel
    }
}

//! Threads of one channel_reduce_warp_kernel block: one warp, so that a few hundred channels
//! already spread over every SM.
inline constexpr int warp_threads = 32;
//! Independent loads each lane keeps in flight in the warp path (its lanes hold more work).
inline constexpr int warp_unroll = 8;

//! The warp path of the per-channel reduction, for many channels of little work each (large C
//! at 7x7 or 14x14, where a 256-thread block per channel chunk gives each thread a handful of
//! values and pays a block reduction, a threadfence and a second merge per channel): one warp
//! reduces a whole channel (blockIdx.x grid-strided over channels), each lane its strided share
//! in sequence order, cub::WarpReduce merges the lanes with Policy::combine_op and lane 0 runs
//! Policy::epilogue. Same Policy interface as channel_reduce_kernel; deterministic (fixed
//! lane assignment and merge tree), no workspace.
template <class T, int W, class Policy>
__global__ void __launch_bounds__(warp_threads)
    channel_reduce_warp_kernel(const T* __restrict__ a, const T* __restrict__ b, channel_geometry g, Policy pol) {
    using partial = typename Policy::partial;
    using warp_reduce = cub::WarpReduce<partial>;
    __shared__ typename warp_reduce::TempStorage temp;

    const typename Policy::combine_op op{};
    const index_t total = g.n * g.hw;
    for (index_t c = blockIdx.x; c < g.c; c += gridDim.x) {
        typename Policy::state st = pol.init(c);  // warp-uniform c: warp collectives are allowed
        accumulate_share<T, W, warp_threads, warp_unroll>(a, b, g, c, threadIdx.x, total, pol, st);
        const partial mine = pol.finish(st);
        const partial channel_total = warp_reduce(temp).Reduce(mine, op);
        if (threadIdx.x == 0) pol.epilogue(c, channel_total);
        __syncwarp();  // temp is reused by the next channel
    }
}

//! Policy::init_alone(c) when the Policy has it (an init whose warp collectives a thread alone
//! cannot run), else Policy::init(c).
template <class P, class = void>
struct has_init_alone : std::false_type {};
template <class P>
struct has_init_alone<P, std::void_t<decltype(std::declval<const P&>().init_alone(index_t{}))>> : std::true_type {};

//! The policy the small-channel schedules run: Policy::alone() when the Policy has it (a variant
//! with wider per-thread sums, since a lane may sum whole tiles), else the policy itself.
template <class P, class = void>
struct has_alone : std::false_type {};
template <class P>
struct has_alone<P, std::void_t<decltype(std::declval<const P&>().alone())>> : std::true_type {};
template <class P>
auto alone_policy(const P& p) {
    if constexpr (has_alone<P>::value)
        return p.alone();
    else
        return p;
}

//! Threads of one channel_reduce_lanes_kernel block.
inline constexpr int lanes_path_block = 128;

//! The small-channel path, for very many tiny channels (instance norm's N*C planes at 7x7, a BN
//! over thousands of channels of a few values): L lanes (1, or a logical warp of 2-16 threads)
//! reduce one channel, each its strided share in sequence order; cub::WarpReduce<partial, L>
//! merges them (no merge at all for L = 1) and lane 0 runs Policy::epilogue. More loads in
//! flight per channel for larger L, less merging than a whole warp. Deterministic. Launched with
//! alone_policy(policy) (a lane may sum whole tiles); L chosen by small_channel_lanes.
template <class T, int W, int L, class Policy>
__global__ void __launch_bounds__(lanes_path_block)
    channel_reduce_lanes_kernel(const T* __restrict__ a, const T* __restrict__ b, channel_geometry g, Policy pol) {
    static_assert(L >= 1 && L <= 32 && (L & (L - 1)) == 0, "L: a power of two up to the warp size");
    using partial = typename Policy::partial;
    using group_reduce = cub::WarpReduce<partial, L == 1 ? 2 : L>;  // unused for L = 1
    constexpr int groups = lanes_path_block / L;
    __shared__ typename group_reduce::TempStorage temp[L == 1 ? 1 : groups];

    const int group = int(threadIdx.x) / L, lane = int(threadIdx.x) % L;
    // the lanes of this logical warp within the hardware warp (groups may leave the loop apart)
    const unsigned mask = (L == 32 ? 0xffffffffu : ((1u << L) - 1u)) << ((group * L) % 32);
    const index_t total = g.n * g.hw;
    const index_t stride = index_t(gridDim.x) * groups;
    for (index_t c = index_t(blockIdx.x) * groups + group; c < g.c; c += stride) {
        typename Policy::state st;
        if constexpr (has_init_alone<Policy>::value)
            st = pol.init_alone(c);
        else
            st = pol.init(c);
        accumulate_share<T, W, L, unroll>(a, b, g, c, index_t(lane), total, pol, st);
        const partial mine = pol.finish(st);
        if constexpr (L == 1) {
            pol.epilogue(c, mine);
        } else {
            const partial channel_total = group_reduce(temp[group]).Reduce(mine, typename Policy::combine_op{});
            if (lane == 0) pol.epilogue(c, channel_total);
            __syncwarp(mask);  // temp[group] is reused by the next channel
        }
    }
}

//! How many lanes reduce one channel of a small-channel reduction: 1-16 (channel_reduce_lanes_kernel;
//! 1 is "the thread path") or 32 (the warp path, when use_warp_reduce); 0 when a
//! channel holds more than thread_max_vectors vectors (the warp or block path). The largest
//! power of two L <= 32 with C * L <= lanes_threads_per_sm * SMs: about 400 threads per SM in
//! all. Fitted on an H200 (132 SMs), per-plane moments of instance norm (BM_PlaneMoments*_CUDA,
//! us; planes x vectors per plane: warp / thread / L = 2, 4, 8, 16):
//!   4096 x 64 (128x32x16x16)      12.8 / 15.8 / 11.9, 10.4, 9.36, 9.26  -> L = 8
//!   8192 x 16 (128x64x8x8)        17.5 / 8.83 / 8.65, 8.44, 9.59, 11.8  -> L = 4
//!   12800 x 49 (50x256x14x14)     24.9 / 13.9 / 11.9, 11.1, 12.8, 15.1  -> L = 4
//!   25600 x 49 (50x512x7x7)       39.5 / 13.9 / 13.0, 13.7, 16.0, 21.1  -> L = 2
//!   51200 x 49 (50x1024x14x14)    82.3 / 18.1 / 23.3, 23.2, 28.6, 41.2  -> thread
//!   102400 x 49 (50x2048x7x7)     132 / 21.2 / 23.1, 28.8, 40.7, 60.7   -> thread
inline constexpr index_t thread_max_vectors = 64;
inline constexpr index_t lanes_threads_per_sm = 400;
inline int small_channel_lanes(const channel_geometry& g, int sms) {
    if (g.n * g.hw > thread_max_vectors) return 0;
    const index_t budget = index_t(sms) * lanes_threads_per_sm;
    int lanes = 1;
    while (lanes < 32 && g.c * index_t(lanes * 2) <= budget) lanes *= 2;
    return lanes;
}

//! Whether a channel reduction takes the warp path: at least one channel per SM (so the warps
//! spread over the whole GPU) and at most warp_max_vectors vectors per channel (each lane then
//! loads at most warp_max_vectors / 32 vectors, a few rounds of warp_unroll loads).
inline constexpr index_t warp_max_vectors = index_t(warp_threads) * 128;
inline bool use_warp_reduce(const channel_geometry& g, int sms) {
    return g.c >= index_t(sms) && g.n * g.hw <= warp_max_vectors;
}

//! Which kernel a channel reduction runs: chosen by shape (automatic), or forced (tests).
enum class reduce_path { automatic, block, warp, thread, lanes2, lanes4, lanes8, lanes16 };

//! Grid of a channel reduction: chunks per channel (grid.x) and channel rows (grid.y).
struct reduce_plan {
    index_t chunk = 0;   //!< vectors per block
    unsigned chunks = 1; //!< blocks per channel
    dim3 grid{1, 1, 1};
};

//! Chooses chunks so that about 4 blocks per SM run in all (C * chunks), but no block gets
//! fewer than one full unrolled round of vectors per thread.
inline reduce_plan plan_reduce(const channel_geometry& g, int sms) {
    reduce_plan p;
    const index_t total = g.n * g.hw;
    const index_t target_blocks = index_t(sms) * 4;
    const index_t min_chunk = index_t(block_threads) * unroll;
    const index_t by_work = std::max<index_t>(1, (total + min_chunk - 1) / min_chunk);
    index_t chunks = std::max<index_t>(1, (target_blocks + g.c - 1) / g.c);
    chunks = std::min<index_t>({chunks, by_work, index_t(4096)});
    p.chunk = (total + chunks - 1) / chunks;
    chunks = (total + p.chunk - 1) / p.chunk;  // no empty chunk
    p.chunks = unsigned(std::max<index_t>(1, chunks));
    p.grid = dim3(p.chunks, unsigned(std::min<index_t>(g.c, 65535)), 1);
    return p;
}

//! Launches the channel reduction over contiguous NCHW `a` (and `b` when Policy::binary):
//! channel_reduce_lanes_kernel for very many tiny channels (small_channel_lanes), else
//! channel_reduce_warp_kernel when use_warp_reduce (many channels of little work each), else
//! channel_reduce_kernel; `path` forces one of them (tests, benchmarks). Vectorized with 16-byte loads when H*W is
//! a multiple of the vector width and the pointers are 16-byte aligned. The shape must be
//! non-empty (the layers check this first).
template <class T, class Policy>
void launch_channel_reduce(const T* a, const T* b, const shape4& s, const Policy& pol, reduce_workspace& ws,
                           cudaStream_t stream, reduce_path path = reduce_path::automatic) {
    constexpr int W = vec_width<T>;
    const bool vectorize = s.spatial() % W == 0 && aligned16(a) && (!Policy::binary || aligned16(b));
    const int sms = sm_count();
    auto go = [&](auto width) {
        constexpr int w = decltype(width)::value;
        const channel_geometry g{s.n, s.c, s.spatial() / w};
        const bool automatic = path == reduce_path::automatic;
        const int lanes = automatic                      ? small_channel_lanes(g, sms)
                          : path == reduce_path::thread  ? 1
                          : path == reduce_path::lanes2  ? 2
                          : path == reduce_path::lanes4  ? 4
                          : path == reduce_path::lanes8  ? 8
                          : path == reduce_path::lanes16 ? 16
                                                         : 0;
        if (lanes >= 1 && lanes <= 16) {
            const auto alone = alone_policy(pol);
            const index_t groups = lanes_path_block / lanes;
            const unsigned blocks = unsigned(std::min<index_t>((g.c + groups - 1) / groups, 65535));
            auto go_lanes = [&](auto l) {
                constexpr int L = decltype(l)::value;
                channel_reduce_lanes_kernel<T, w, L, decltype(alone)>
                    <<<blocks, lanes_path_block, 0, stream>>>(a, b, g, alone);
            };
            switch (lanes) {
            case 1: go_lanes(std::integral_constant<int, 1>{}); break;
            case 2: go_lanes(std::integral_constant<int, 2>{}); break;
            case 4: go_lanes(std::integral_constant<int, 4>{}); break;
            case 8: go_lanes(std::integral_constant<int, 8>{}); break;
            default: go_lanes(std::integral_constant<int, 16>{}); break;
            }
            SHIFTNORM_CUDA_CHECK(cudaGetLastError());
            return;
        }
        if (path == reduce_path::warp || (automatic && use_warp_reduce(g, sms))) {
            const unsigned blocks = unsigned(std::min<index_t>(g.c, 65535));
            channel_reduce_warp_kernel<T, w, Policy><<<blocks, warp_threads, 0, stream>>>(a, b, g, pol);
            SHIFTNORM_CUDA_CHECK(cudaGetLastError());
            return;
        }
        const reduce_plan p = plan_reduce(g, sms);
        using partial = typename Policy::partial;
        if (p.chunks > 1) ws.ensure(std::size_t(s.c) * p.chunks, sizeof(partial), s.c, stream);
        channel_reduce_kernel<T, w, Policy><<<p.grid, block_threads, 0, stream>>>(
            a, b, g, p.chunk, pol, static_cast<partial*>(p.chunks > 1 ? ws.partials() : nullptr),
            p.chunks > 1 ? ws.counters() : nullptr);
        SHIFTNORM_CUDA_CHECK(cudaGetLastError());
    };
    if (vectorize)
        go(std::integral_constant<int, W>{});
    else
        go(std::integral_constant<int, 1>{});
}

//! Channel-wise elementwise map over a contiguous NCHW tensor: out = op(c, a, b, flat) per
//! W-vector, grid-strided, `unroll` independent vectors per thread per round. Index is
//! 32-bit when the tensor has fewer than 2^31 elements (cheaper channel arithmetic).
//! Op: `void operator()<W>(Index c, const vec& a, const vec& b, vec& out, Index flat) const`.
template <class T, int W, class Index, bool Binary, class Op>
__global__ void __launch_bounds__(block_threads)
    channel_map_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out, Index vectors,
                       Index hw, Index channels, Op op) {
    using V = vec<T, W>;
    const V* av = reinterpret_cast<const V*>(a);
    const V* bv = reinterpret_cast<const V*>(b);
    V* ov = reinterpret_cast<V*>(out);
    const Index stride = Index(gridDim.x) * block_threads;
    for (Index base = Index(blockIdx.x) * block_threads * unroll + threadIdx.x; base < vectors;
         base += stride * unroll) {
        V xa[unroll], xb[unroll];
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            const Index p = base + Index(u) * block_threads;
            if (p < vectors) {
                xa[u] = av[p];
                if constexpr (Binary) xb[u] = bv[p];
            }
        }
#pragma unroll
        for (int u = 0; u < unroll; ++u) {
            const Index p = base + Index(u) * block_threads;
            if (p < vectors) {
                V o;
                op.template apply<W>((p / hw) % channels, xa[u], xb[u], o, p * Index(W));
                ov[p] = o;
            }
        }
    }
}

//! Launches channel_map_kernel (b may be null when !Binary); the shape must be non-empty.
template <bool Binary, class T, class Op>
void launch_channel_map(const T* a, const T* b, T* out, const shape4& s, const Op& op, cudaStream_t stream) {
    constexpr int W = vec_width<T>;
    const bool vectorize = s.spatial() % W == 0 && aligned16(a) && aligned16(out) && (!Binary || aligned16(b));
    const bool narrow = s.numel() < index_t(std::numeric_limits<std::int32_t>::max());
    const index_t max_blocks = index_t(sm_count()) * 8;
    auto go = [&](auto width, auto index) {
        constexpr int w = decltype(width)::value;
        using I = decltype(index);
        const index_t vectors = s.numel() / w;
        const index_t per_block = index_t(block_threads) * unroll;
        const index_t blocks = std::min<index_t>((vectors + per_block - 1) / per_block, max_blocks);
        channel_map_kernel<T, w, I, Binary, Op><<<unsigned(std::max<index_t>(blocks, 1)), block_threads, 0, stream>>>(
            a, b, out, I(vectors), I(s.spatial() / w), I(s.c), op);
        SHIFTNORM_CUDA_CHECK(cudaGetLastError());
    };
    if (vectorize) {
        if (narrow)
            go(std::integral_constant<int, W>{}, std::uint32_t{});
        else
            go(std::integral_constant<int, W>{}, std::int64_t{});
    } else {
        if (narrow)
            go(std::integral_constant<int, 1>{}, std::uint32_t{});
        else
            go(std::integral_constant<int, 1>{}, std::int64_t{});
    }
}

}  // namespace detail
}  // namespace shiftnorm::backend::cuda
