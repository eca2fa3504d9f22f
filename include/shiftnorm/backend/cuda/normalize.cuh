// SPDX-License-Identifier: MIT
// Channel-wise normalize dst = (src - mean) * a + b on device, vectorized with 16-byte accesses.
#pragma once

#include <cuda_runtime.h>

#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/backend/cuda/schedule.cuh"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::backend::cuda {

//! Folded per-channel coefficients of a normalization, one 4*sizeof(T) record per channel so
//! a kernel fetches them with one access. Forward: dst = (src - mean) * a + b, with `d`
//! free for the layer (batch_norm keeps inv_std there). Backward (bn_backward.cuh):
//! diff_src = a * diff_dst + b * (src - mean) + d.
template <class T>
struct alignas(4 * sizeof(T) <= 16 ? 4 * sizeof(T) : 16) norm_coef {
    T mean, a, b, d;
};

namespace detail {

//! channel_map op of the forward normalization. Subtracting the mean first keeps precision
//! at large |mean|/std (same expression as backend::cpu::channel_normalize).
template <class T>
struct normalize_op {
    const norm_coef<T>* coef;
    template <int W, class Index>
    __device__ void apply(Index c, const vec<T, W>& x, const vec<T, W>&, vec<T, W>& y, Index) const {
        const norm_coef<T> k = coef[c];
#pragma unroll
        for (int e = 0; e < W; ++e) y.v[e] = (x.v[e] - k.mean) * k.a + k.b;
    }
};

}  // namespace detail

//! dst = (src - coef[c].mean) * coef[c].a + coef[c].b over contiguous NCHW device tensors of
//! equal shape; `coef` is a device array of C records. One launch, reads src once, writes dst
//! once (16-byte vectors when H*W % (16/sizeof(T)) == 0 and both pointers are aligned).
//! Throws shape_error (empty, mismatched or strided views) or value_error (a host pointer)
//! before launching.
template <class T>
void channel_normalize(const tensor_view<const T>& src, const tensor_view<T>& dst, const norm_coef<T>* coef,
                       cudaStream_t stream = nullptr) {
    const char* where = "cuda::channel_normalize";
    if (src.empty()) shiftnorm::detail::fail<shape_error>(where, "src", "a non-empty tensor", src.shape());
    if (dst.shape() != src.shape()) shiftnorm::detail::fail<shape_error>(where, "dst", src.shape(), dst.shape());
    if (!src.is_contiguous() || !dst.is_contiguous())
        shiftnorm::detail::fail<shape_error>(where, "src/dst", "contiguous NCHW views", "a strided view");
    detail::check_device_pointer(where, "src", src.data());
    detail::check_device_pointer(where, "dst", dst.data());
    detail::check_device_pointer(where, "coef", coef);
    detail::launch_channel_map<false, T>(src.data(), nullptr, dst.data(), src.shape(), detail::normalize_op<T>{coef},
                                         stream);
}

}  // namespace shiftnorm::backend::cuda
