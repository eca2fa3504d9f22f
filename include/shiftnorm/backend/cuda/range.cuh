// SPDX-License-Identifier: MIT
// RobustNorm kernels: range statistics (mean, max - min, first argmin/argmax) and range backward.
#pragma once

#include <cuda_runtime.h>

#include "shiftnorm/backend/cuda/bn_backward.cuh"
#include "shiftnorm/backend/cuda/channel_moments.cuh"
#include "shiftnorm/backend/cuda/normalize.cuh"
#include "shiftnorm/backend/cuda/schedule.cuh"

namespace shiftnorm::backend::cuda {

//! Statistics RobustNorm saves per channel (the CPU layer's saved_channel): mean, range r,
//! denominator r^p + eps, and the flat NCHW offsets of the first minimum / maximum of src
//! (-1 when the range did not come from the batch or no element qualifies, e.g. all NaN).
struct robust_saved {
    double mean = 0, range = 0, denom = 1;
    index_t argmin = -1, argmax = -1;
};

//! Range term of RobustNorm's backward for one channel: diff_src[argmax] += g and
//! diff_src[argmin] -= g after the elementwise part (argmin = argmax = -1: no term).
template <class T>
struct range_fix {
    T g = T(0);
    index_t argmin = -1, argmax = -1;
};

namespace detail {

//! Epilogue of RobustNorm's statistics pass (seed 003, eq. 3): chooses batch or tracked mean
//! and range per the flags, saves {mean, r, r^p + eps, argmin, argmax}, stores the batch
//! moments in `out` and the normalize coefficients {mean, gamma / denom, beta, 0}.
template <class T, class Stat>
struct robust_stats_epilogue {
    channel_partial<double>* out;
    robust_saved* saved;
    norm_coef<T>* coef;
    const Stat* running_mean;   //!< device copy; read when !batch_mean
    const Stat* running_range;  //!< device copy; read when !batch_range
    const Stat* scale;          //!< null without affine
    const Stat* shift;
    double p, eps;
    bool batch_mean, batch_range;
    index_t channels, hw_elems;

    __device__ index_t to_flat(index_t j, index_t c) const {
        if (j == no_index) return -1;
        const index_t n = j / hw_elems;
        return (n * channels + c) * hw_elems + (j - n * hw_elems);
    }
    __device__ void operator()(index_t c, const channel_partial<double>& r) const {
        out[c] = r;
        robust_saved s;
        s.mean = batch_mean ? r.m.mean : double(running_mean[c]);
        if (batch_range) {
            s.range = r.m.range();
            s.argmin = to_flat(r.argmin, c);
            s.argmax = to_flat(r.argmax, c);
        } else {
            s.range = double(running_range[c]);
        }
        s.denom = pow(s.range, p) + eps;
        saved[c] = s;
        const double gamma = scale ? double(scale[c]) : 1.0;
        const double beta = shift ? double(shift[c]) : 0.0;
        coef[c] = {T(s.mean), T(gamma / s.denom), T(beta), T(0)};
    }
};

//! Normalize coefficients from saved statistics filled on the host (tracked mean and range).
template <class T, class Stat>
__global__ void __launch_bounds__(block_threads)
    robust_coef_kernel(const robust_saved* __restrict__ saved, index_t channels, const Stat* __restrict__ scale,
                       const Stat* __restrict__ shift, norm_coef<T>* __restrict__ coef) {
    for (index_t c = index_t(blockIdx.x) * block_threads + threadIdx.x; c < channels;
         c += index_t(gridDim.x) * block_threads) {
        const robust_saved s = saved[c];
        const double gamma = scale ? double(scale[c]) : 1.0;
        const double beta = shift ? double(shift[c]) : 0.0;
        coef[c] = {T(s.mean), T(gamma / s.denom), T(beta), T(0)};
    }
}

//! Epilogue of RobustNorm's backward sums: accumulates diff_scale += sum(dy (x - mu)) / D and
//! diff_shift += sum(dy); apply coefficients k = gamma / D with the mean term sum(dy)/M when
//! the mean came from the batch; range term g = -gamma * sum(dy (x - mu)) * p r^(p-1) / D^2
//! for the first argmax (+) and argmin (-) when the range came from the batch and r > 0.
template <class T, class Stat>
struct robust_backward_epilogue {
    const robust_saved* saved;
    norm_coef<T>* bwd;
    range_fix<T>* fix;
    const Stat* scale;  //!< null without affine
    Stat* diff_scale;   //!< null without affine
    Stat* diff_shift;
    double count, p;
    bool mean_from_batch, range_from_batch;

    __device__ void operator()(index_t c, const grad_sums& r) const {
        const robust_saved s = saved[c];
        const double gamma = scale ? double(scale[c]) : 1.0;
        if (diff_scale) {
            diff_scale[c] += Stat(r.sum_dy_xc / s.denom);
            diff_shift[c] += Stat(r.sum_dy);
        }
        const T k = T(gamma / s.denom);
        const T m_dy = T(mean_from_batch ? r.sum_dy / count : 0.0);
        bwd[c] = {T(s.mean), k, -k * T(0), -k * m_dy};
        range_fix<T> f;
        if (range_from_batch && s.range > 0.0 && s.argmax >= 0 && s.argmin >= 0) {
            f.g = T(-gamma * r.sum_dy_xc * p * pow(s.range, p - 1.0) / (s.denom * s.denom));
            f.argmin = s.argmin;
            f.argmax = s.argmax;
        }
        fix[c] = f;
    }
};

//! channel_map op of RobustNorm's backward apply: the BN apply expression, plus the range
//! term on the (at most two) elements whose flat offset is the channel's argmax / argmin.
template <class T>
struct robust_apply_op {
    const norm_coef<T>* coef;
    const range_fix<T>* fix;
    template <int W, class Index>
    __device__ void apply(Index c, const vec<T, W>& x, const vec<T, W>& dy, vec<T, W>& dx, Index flat) const {
        const norm_coef<T> k = coef[c];
        const range_fix<T> f = fix[c];
#pragma unroll
        for (int e = 0; e < W; ++e) {
            T v = k.a * dy.v[e] + k.b * (x.v[e] - k.mean) + k.d;
            const index_t at = index_t(flat) + e;
            if (at == f.argmax) v += f.g;
            if (at == f.argmin) v -= f.g;
            dx.v[e] = v;
        }
    }
};

}  // namespace detail
}  // namespace shiftnorm::backend::cuda
