// SPDX-License-Identifier: MIT
// Normalization backward on device: per-channel sum(dy), sum(dy * (x - mean)), then the apply pass.
#pragma once

#include <cuda_runtime.h>

#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/backend/cuda/normalize.cuh"
#include "shiftnorm/backend/cuda/schedule.cuh"
#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::backend::cuda {

//! Per-channel gradient sums of a normalization backward: sum(diff_dst) and
//! sum(diff_dst * (src - mean)), in double.
struct grad_sums {
    double sum_dy = 0;
    double sum_dy_xc = 0;
};

namespace detail {

struct grad_sums_op {
    SHIFTNORM_HOST_DEVICE grad_sums operator()(const grad_sums& a, const grad_sums& b) const {
        return {a.sum_dy + b.sum_dy, a.sum_dy_xc + b.sum_dy_xc};
    }
};

//! Policy of channel_reduce_kernel over (src, diff_dst): each thread sums in T over tiles of
//! tile_elems values (as backend::cpu::channel_grad_sums does per fp32 lane) and folds the
//! tiles into double; blocks and chunks are summed in double. The mean is coef[c].mean.
template <class T, class Epilogue>
struct grad_sums_policy {
    static constexpr bool binary = true;
    static constexpr int tile = 64;
    using partial = grad_sums;
    using combine_op = grad_sums_op;

    const norm_coef<T>* coef;
    Epilogue ep;

    struct state {
        grad_sums acc;
        T mean, a, b;
        int count;
    };
    __device__ state init(index_t c) const {
        state s;
        s.mean = coef[c].mean;
        s.a = s.b = T(0);
        s.count = 0;
        return s;
    }
    __device__ void fold(state& s) const {
        s.acc.sum_dy += double(s.a);
        s.acc.sum_dy_xc += double(s.b);
        s.a = s.b = T(0);
        s.count = 0;
    }
    template <int W>
    __device__ void accumulate(state& s, const vec<T, W>& x, const vec<T, W>& dy, index_t) const {
#pragma unroll
        for (int e = 0; e < W; ++e) {
            s.a += dy.v[e];
            s.b += dy.v[e] * (x.v[e] - s.mean);
        }
        s.count += W;
        if (s.count >= tile) fold(s);
    }
    __device__ grad_sums finish(state& s) const {
        fold(s);
        return s.acc;
    }
    __device__ void epilogue(index_t c, const grad_sums& r) const { ep(c, r); }
};

//! Epilogue storing the sums (device array of C grad_sums).
struct store_grad_sums_epilogue {
    grad_sums* out;
    __device__ void operator()(index_t c, const grad_sums& r) const { out[c] = r; }
};

//! channel_map op of the backward apply: diff_src = a*dy + b*(x - mean) + d (the expression of
//! backend::cpu::channel_apply with k, kx = -k*m_dyx, off = -k*m_dy).
template <class T>
struct backward_apply_op {
    const norm_coef<T>* coef;
    template <int W, class Index>
    __device__ void apply(Index c, const vec<T, W>& x, const vec<T, W>& dy, vec<T, W>& dx, Index) const {
        const norm_coef<T> k = coef[c];
#pragma unroll
        for (int e = 0; e < W; ++e) dx.v[e] = k.a * dy.v[e] + k.b * (x.v[e] - k.mean) + k.d;
    }
};

}  // namespace detail

//! Per-channel grad_sums of (src, diff_dst) around coef[c].mean, into the device array `out`
//! (size C), asynchronously on `stream`. One launch; reads src and diff_dst once.
template <class T>
void channel_grad_sums(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst, const norm_coef<T>* coef,
                       grad_sums* out, reduce_workspace& ws, cudaStream_t stream = nullptr) {
    const char* where = "cuda::channel_grad_sums";
    if (src.empty()) shiftnorm::detail::fail<shape_error>(where, "src", "a non-empty tensor", src.shape());
    if (diff_dst.shape() != src.shape()) shiftnorm::detail::fail<shape_error>(where, "diff_dst", src.shape(), diff_dst.shape());
    if (!src.is_contiguous() || !diff_dst.is_contiguous())
        shiftnorm::detail::fail<shape_error>(where, "src/diff_dst", "contiguous NCHW views", "a strided view");
    detail::check_device_pointer(where, "src", src.data());
    detail::check_device_pointer(where, "diff_dst", diff_dst.data());
    detail::check_device_pointer(where, "coef", coef);
    detail::check_device_pointer(where, "out", out);
    const detail::grad_sums_policy<T, detail::store_grad_sums_epilogue> pol{coef, {out}};
    detail::launch_channel_reduce<T>(src.data(), diff_dst.data(), src.shape(), pol, ws, stream);
}

//! diff_src = coef[c].a * diff_dst + coef[c].b * (src - coef[c].mean) + coef[c].d, one launch.
//! Contiguous, equal-shape device views; throws shape_error / value_error before launching.
template <class T>
void channel_backward_apply(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst,
                            const tensor_view<T>& diff_src, const norm_coef<T>* coef, cudaStream_t stream = nullptr) {
    const char* where = "cuda::channel_backward_apply";
    if (src.empty()) shiftnorm::detail::fail<shape_error>(where, "src", "a non-empty tensor", src.shape());
    if (diff_dst.shape() != src.shape()) shiftnorm::detail::fail<shape_error>(where, "diff_dst", src.shape(), diff_dst.shape());
    if (diff_src.shape() != src.shape()) shiftnorm::detail::fail<shape_error>(where, "diff_src", src.shape(), diff_src.shape());
    if (!src.is_contiguous() || !diff_dst.is_contiguous() || !diff_src.is_contiguous())
        shiftnorm::detail::fail<shape_error>(where, "src/diff_dst/diff_src", "contiguous NCHW views", "a strided view");
    detail::check_device_pointer(where, "src", src.data());
    detail::check_device_pointer(where, "diff_dst", diff_dst.data());
    detail::check_device_pointer(where, "diff_src", diff_src.data());
    detail::check_device_pointer(where, "coef", coef);
    detail::launch_channel_map<true, T>(src.data(), diff_dst.data(), diff_src.data(), src.shape(),
                                        detail::backward_apply_op<T>{coef}, stream);
}

}  // namespace shiftnorm::backend::cuda
