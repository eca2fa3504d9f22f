// SPDX-License-Identifier: MIT
// CUDA group normalization (with instance / layer norm) mirroring shiftnorm::group_norm on device views.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "shiftnorm/backend/cuda/affine_params.cuh"
#include "shiftnorm/backend/cuda/batch_norm.cuh"
#include "shiftnorm/backend/cuda/bn_backward.cuh"
#include "shiftnorm/backend/cuda/channel_moments.cuh"
#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/backend/cuda/normalize.cuh"
#include "shiftnorm/backend/cuda/schedule.cuh"
#include "shiftnorm/norm/group_norm.hpp"

namespace shiftnorm::backend::cuda {
namespace detail {

//! Where the (n, g) statistics record of an NCHW plane q = n*C + c lives: k = n*G + c/(C/G).
//! The reductions and maps of this file run on reshaped views whose "channel" index is a
//! plane or a group block; this turns it back into (n, c, k).
struct group_layout {
    index_t channels = 1, groups = 1, group_size = 1;  //!< C, G, C/G

    template <class Index>
    __device__ void locate(Index q, Index& c, Index& k) const {
        const Index C = Index(channels);
        const Index n = q / C;
        c = q - n * C;
        k = n * Index(groups) + c / Index(group_size);
    }
};

//! gamma * inv_std rounded to T, as the CPU layer computes it (the double product of two
//! Stat values, then T). For float * float the double product is exact, so one correctly
//! rounded float multiply gives the same bits without touching the FP64 units.
template <class T, class Stat>
__device__ inline T scaled_inv_std(Stat gamma, Stat inv_std) {
    if constexpr (std::is_same_v<T, float> && std::is_same_v<Stat, float>)
        return __fmul_rn(gamma, inv_std);  // never contracted into an FMA
    else
        return T(double(gamma) * double(inv_std));
}

//! Epilogue of the statistics pass over the N*G contiguous blocks of (C/G)*H*W values:
//! saves mean and inv_std = 1/sqrt(var_biased + eps) (rounded to Stat, as the CPU layer),
//! and, when `out` is set (nan_policy::raise), the block's moments for the host check.
template <class Stat>
struct gn_stats_epilogue {
    Stat* mean;
    Stat* inv_std;
    moments<double>* out;  //!< null: no NaN check requested
    double eps;

    __device__ void operator()(index_t k, const channel_partial<double>& r) const {
        if (out) out[k] = r.m;
        mean[k] = Stat(r.m.mean);
        inv_std[k] = Stat(1.0 / sqrt(r.m.variance(variance_kind::biased) + eps));
    }
};

//! channel_map op of the forward pass over the plane view {1, N*C, H, W}:
//! dst = (src - mean_k) * T(gamma_c * inv_std_k) + beta_c (backend::cpu group_norm's expression).
template <class T, class Stat>
struct gn_normalize_op {
    const Stat* mean;
    const Stat* inv_std;
    const Stat* scale;  //!< null without affine
    const Stat* shift;
    group_layout at;

    template <int W, class Index>
    __device__ void apply(Index q, const vec<T, W>& x, const vec<T, W>&, vec<T, W>& y, Index) const {
        Index c, k;
        at.locate(q, c, k);
        const T a = scaled_inv_std<T>(scale ? scale[c] : Stat(1), inv_std[k]);
        const T b = shift ? T(shift[c]) : T(0), mu = T(mean[k]);
#pragma unroll
        for (int e = 0; e < W; ++e) y.v[e] = (x.v[e] - mu) * a + b;
    }
};

//! Policy of channel_reduce_kernel over the plane view {1, N*C, 1, H*W} of (src, diff_dst):
//! the per-plane sums sum(dy) and sum(dy * (x - mean_k)) of grad_sums_policy (same fp32
//! tiles folded into double), with the mean of the plane's (n, g) block instead of coef[c].
template <class T, class Stat>
struct gn_grad_sums_policy : grad_sums_policy<T, store_grad_sums_epilogue> {
    using base = grad_sums_policy<T, store_grad_sums_epilogue>;
    const Stat* mean;
    group_layout at;

    __device__ typename base::state init(index_t q) const {
        index_t c, k;
        at.locate(q, c, k);
        typename base::state s;
        s.mean = T(mean[k]);
        s.a = s.b = T(0);
        s.count = 0;
        return s;
    }
};

//! Warps per block of gn_backward_finalize_kernel.
inline constexpr int finalize_warps = block_threads / 32;

//! Sum over the warp of a double, by xor butterfly: every lane ends with the same bits, and
//! the order never depends on timing (deterministic).
__device__ inline double warp_sum(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

//! Second step of the backward: one warp per task, tasks grid-strided.
//!  - task k < N*G (block (n, g)): sg = sum_c gamma_c sum(dy), sgx = sum_c gamma_c sum(dy (x - mu))
//!    over the group's planes, stored as the apply record {mu, inv_std, m_g, m_gx} with
//!    m_g = sg / count and m_gx = sgx inv_std^2 / count (count = (C/G) H W);
//!  - task N*G + c (affine only): diff_scale[c] += sum_n sum(dy (x - mu)) inv_std_ng,
//!    diff_shift[c] += sum_n sum(dy).
//! Lanes take a strided subset in ascending order, then warp_sum: deterministic.
template <class T, class Stat>
__global__ void __launch_bounds__(block_threads)
    gn_backward_finalize_kernel(const grad_sums* __restrict__ plane, const Stat* __restrict__ mean,
                                const Stat* __restrict__ inv_std, const Stat* __restrict__ scale,
                                Stat* __restrict__ diff_scale, Stat* __restrict__ diff_shift, index_t samples,
                                group_layout at, double count, norm_coef<T>* __restrict__ bwd) {
    const index_t lane = index_t(threadIdx.x % 32u);
    const index_t group_tasks = samples * at.groups;
    const index_t tasks = group_tasks + (diff_scale ? at.channels : 0);
    const index_t warps = index_t(gridDim.x) * finalize_warps;
    // t is uniform across a warp, so every lane reaches the shuffles of warp_sum
    for (index_t t = index_t(blockIdx.x) * finalize_warps + threadIdx.x / 32u; t < tasks; t += warps) {
        double s_dy = 0, s_dyx = 0;
        if (t < group_tasks) {
            const index_t n = t / at.groups, c0 = (t - n * at.groups) * at.group_size;
            const grad_sums* p = plane + n * at.channels + c0;
            for (index_t i = lane; i < at.group_size; i += 32) {
                const double gamma = scale ? double(scale[c0 + i]) : 1.0;
                s_dy += gamma * p[i].sum_dy;
                s_dyx += gamma * p[i].sum_dy_xc;
            }
        } else {
            const index_t c = t - group_tasks, g = c / at.group_size;
            for (index_t n = lane; n < samples; n += 32) {
                const grad_sums r = plane[n * at.channels + c];
                s_dy += r.sum_dy;
                s_dyx += r.sum_dy_xc * double(inv_std[n * at.groups + g]);
            }
        }
        s_dy = warp_sum(s_dy);
        s_dyx = warp_sum(s_dyx);
        if (lane != 0) continue;
        if (t < group_tasks) {
            const double istd = double(inv_std[t]);
            bwd[t] = {T(mean[t]), T(istd), T(s_dy / count), T(s_dyx * istd * istd / count)};
        } else {
            const index_t c = t - group_tasks;
            diff_scale[c] += Stat(s_dyx);
            diff_shift[c] += Stat(s_dy);
        }
    }
}

//! channel_map op of the backward apply over the plane view {1, N*C, H, W}, with the record
//! r = {mu, inv_std, m_g, m_gx} of the plane's block: diff_src = inv_std * (gamma_c * dy - m_g
//! - (x - mu) * m_gx) (Wu & He 2018 / the CPU layer's expression, same order of operations).
template <class T, class Stat>
struct gn_backward_apply_op {
    const norm_coef<T>* bwd;
    const Stat* scale;  //!< null without affine
    group_layout at;

    template <int W, class Index>
    __device__ void apply(Index q, const vec<T, W>& x, const vec<T, W>& dy, vec<T, W>& dx, Index) const {
        Index c, k;
        at.locate(q, c, k);
        const norm_coef<T> r = bwd[k];
        const T gamma = scale ? T(scale[c]) : T(1);
#pragma unroll
        for (int e = 0; e < W; ++e) dx.v[e] = r.a * (gamma * dy.v[e] - r.b - (x.v[e] - r.mean) * r.d);
    }
};

}  // namespace detail

//! Group normalization on CUDA (Wu & He 2018), mirroring shiftnorm::group_norm<Affine,
//! Precision>: for each sample n and group g of C/G channels, statistics over (C/G, H, W),
//! y = gamma_c (x - mean_ng) / sqrt(var_ng + eps) + beta_c with the biased variance, on
//! contiguous NCHW views of DEVICE memory. Training and inference are the same call (forward).
//! Instance norm: G = C; layer norm over (C, H, W): G = 1 (the CPU side's make_instance_norm /
//! make_layer_norm name the same two choices).
//!
//! `scale`, `shift`, `diff_scale`, `diff_shift` are device arrays of C values; gradients
//! accumulate across backward calls until zero_grad. Saved per (n, g) on device: mean and
//! inv_std (saved_mean / saved_inv_std copy them to the host, size N*G). Per call:
//!  - forward: 2 launches, no synchronization. The statistics pass reduces the N*G contiguous
//!    blocks with the shared Welford/Chan functor on the channel_reduce 2-D grid (blocks of
//!    (C/G)*H*W values are split over several CTAs and merged in a fixed order, so small N*G
//!    still fills the GPU); the normalize pass is one 16-byte-vectorized map. Reads src twice,
//!    writes dst once. nan_policy::raise adds a N*G-record copy and one synchronization.
//!  - backward: 3 launches, no synchronization: per-plane sum(dy), sum(dy (x - mu)) (one read
//!    of src and diff_dst), a tiny per-group / per-channel finalize, the apply map.
//! A layer must not be used from two streams concurrently (it owns one reduction workspace).
template <class Affine = affine, class Precision = fp32>
class group_norm : public device_affine_params<typename Precision::stat_type> {
    static_assert(is_affine_policy_v<Affine>, "cuda::group_norm<Affine>: use shiftnorm::affine or no_affine");
    static_assert(is_precision<Precision>::value, "cuda::group_norm<.., Precision>: use shiftnorm::precision<...>");

public:
    using cpu_type = shiftnorm::group_norm<Affine, Precision>;
    using T = typename Precision::src_type;
    using Stat = typename Precision::stat_type;
    using options = typename cpu_type::options;

    using params = device_affine_params<Stat>;  //!< scale, shift (gamma, beta), gradients on device
    using params::scale, params::shift, params::diff_scale, params::diff_shift;

    options opt;

    group_norm() = default;
    //! C channels in G groups (G divides C); gamma = 1, beta = 0, zero gradients (waits for the uploads).
    group_norm(index_t channels, index_t groups, options o = {}) : opt(o), channels_(channels), groups_(groups) {
        const char* where = "cuda::group_norm";
        if (channels <= 0) shiftnorm::detail::fail<shape_error>(where, "channels", "> 0", channels);
        if (groups <= 0 || channels % groups != 0)
            shiftnorm::detail::fail<shape_error>(where, "groups",
                                                 shiftnorm::detail::concat("a divisor of channels=", channels), groups);
        if (!(o.eps >= 0.0)) shiftnorm::detail::fail(where, "eps", ">= 0", o.eps);
        this->init_affine(channels);
    }

    index_t channels() const { return channels_; }
    index_t groups() const { return groups_; }
    void zero_grad(cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        this->zero_affine_grad(stream);
    }

    //! Mean and inv_std per (n, g) saved by the last forward call (size N*G, empty before any;
    //! copies to the host and waits for `stream`).
    std::vector<Stat> saved_mean(cudaStream_t stream = nullptr) const { return saved_field(mean_, stream); }
    std::vector<Stat> saved_inv_std(cudaStream_t stream = nullptr) const { return saved_field(inv_std_, stream); }

    //! Takes options and parameters (gamma, beta, gradients) of a CPU layer of the same C and G.
    void copy_from(const cpu_type& cpu, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        check_same_layout("cuda::group_norm::copy_from", cpu);
        opt = cpu.opt;
        this->upload_affine(cpu, "cuda::group_norm::copy_from", stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    //! Gives options and parameters to a CPU layer of the same C and G (waits for `stream`).
    void copy_to(cpu_type& cpu, cudaStream_t stream = nullptr) const {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        check_same_layout("cuda::group_norm::copy_to", cpu);
        cpu.opt = opt;
        this->download_affine(cpu, stream);
    }

    //! dst = group-normalized src (shapes equal, C = channels(), non-empty, contiguous, device
    //! memory, not overlapping). Saves mean and inv_std per (n, g) for backward.
    void forward(const tensor_view<const T>& src, const tensor_view<T>& dst, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        const char* where = "cuda::group_norm::forward";
        detail::check_device_io(where, src, dst, channels_);
        const shape4& s = src.shape();
        const index_t blocks = s.n * groups_, block_len = (channels_ / groups_) * s.spatial();
        const bool raise = opt.nan == nan_policy::raise;
        has_saved_ = false;  // the saved statistics are overwritten below
        reserve_state(s.n, raise);

        using epi = detail::gn_stats_epilogue<Stat>;
        const epi e{mean_.data(), inv_std_.data(), raise ? moments_.data() : nullptr, opt.eps};
        const detail::moments_policy<T, double, false, epi> pol{src.data(), block_len, e};
        // the N*G blocks are contiguous: reduce them as the "channels" of a {1, N*G, 1, L} view
        detail::launch_channel_reduce<T>(src.data(), nullptr, shape4{1, blocks, 1, block_len}, pol, ws_, stream);
        if (raise) check_finite(where, s.n, stream);

        const detail::gn_normalize_op<T, Stat> op{mean_.data(), inv_std_.data(), scale_ptr(), shift_ptr(), layout()};
        detail::launch_channel_map<false, T>(src.data(), nullptr, dst.data(), plane_view(s), op, stream);
        saved_count_ = blocks;
        saved_shape_ = s;
        has_saved_ = true;
    }

    //! diff_src = d loss / d src given diff_dst, for the src of the last forward call;
    //! diff_scale += sum dy * xhat and diff_shift += sum dy per channel (affine only).
    void backward(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst, const tensor_view<T>& diff_src,
                  cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        const char* where = "cuda::group_norm::backward";
        shiftnorm::detail::check_backward_io(where, has_saved_, saved_shape_, src, diff_dst, diff_src);
        if (!src.is_contiguous()) shiftnorm::detail::fail<shape_error>(where, "src", "a contiguous NCHW view", "a strided view");
        detail::check_device_pointer(where, "src", src.data());
        detail::check_device_pointer(where, "diff_dst", diff_dst.data());
        detail::check_device_pointer(where, "diff_src", diff_src.data());
        const shape4& s = src.shape();
        const detail::group_layout at = layout();

        // 1. per-plane sums around the plane's group mean: {1, N*C, 1, H*W} view
        using policy = detail::gn_grad_sums_policy<T, Stat>;
        const policy pol{{nullptr, {plane_sums_.data()}}, mean_.data(), at};
        detail::launch_channel_reduce<T>(src.data(), diff_dst.data(), shape4{1, s.n * s.c, 1, s.spatial()}, pol, ws_,
                                         stream);
        // 2. per-group apply records and per-channel parameter gradients
        const index_t tasks = s.n * groups_ + (Affine::enabled ? channels_ : 0);
        const index_t blocks = std::min<index_t>((tasks + detail::finalize_warps - 1) / detail::finalize_warps,
                                                 index_t(detail::sm_count()) * 16);
        detail::gn_backward_finalize_kernel<T, Stat><<<unsigned(blocks), block_threads, 0, stream>>>(
            plane_sums_.data(), mean_.data(), inv_std_.data(), scale_ptr(),
            Affine::enabled ? diff_scale.data() : nullptr, Affine::enabled ? diff_shift.data() : nullptr, s.n, at,
            double((channels_ / groups_) * s.spatial()), bwd_.data());
        SHIFTNORM_CUDA_CHECK(cudaGetLastError());
        // 3. the elementwise apply
        detail::launch_channel_map<true, T>(src.data(), diff_dst.data(), diff_src.data(), plane_view(s),
                                            detail::gn_backward_apply_op<T, Stat>{bwd_.data(), scale_ptr(), at}, stream);
    }

private:
    const Stat* scale_ptr() const { return Affine::enabled ? scale.data() : nullptr; }
    const Stat* shift_ptr() const { return Affine::enabled ? shift.data() : nullptr; }
    detail::group_layout layout() const { return {channels_, groups_, channels_ / groups_}; }
    //! The NCHW tensor as N*C planes: the map's "channel" index is then the plane q = n*C + c.
    static shape4 plane_view(const shape4& s) { return shape4{1, s.n * s.c, s.h, s.w}; }

    //! Device state for a batch of N samples (grows only; sizes are tracked separately).
    void reserve_state(index_t n, bool with_moments) {
        const auto blocks = std::size_t(n * groups_), planes = std::size_t(n * channels_);
        mean_.reserve_discard(blocks);
        inv_std_.reserve_discard(blocks);
        bwd_.reserve_discard(blocks);
        plane_sums_.reserve_discard(planes);
        if (with_moments) {
            moments_.reserve_discard(blocks);
            host_moments_.reserve_discard(blocks);
        }
    }

    //! nan_policy::raise: copies the N*G moments to the host, waits, and throws on a non-finite one.
    void check_finite(const char* where, index_t n_samples, cudaStream_t stream) {
        const auto blocks = std::size_t(n_samples * groups_);
        moments_.download(host_moments_.data(), blocks, stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
        for (std::size_t k = 0; k < blocks; ++k) {
            const auto& m = host_moments_[k];
            if (!(std::isfinite(m.mean) && std::isfinite(m.m2)))
                shiftnorm::detail::throw_non_finite(where,
                                                    shiftnorm::detail::concat("sample ", index_t(k) / groups_, " group ", index_t(k) % groups_));
        }
    }

    std::vector<Stat> saved_field(const device_buffer<Stat>& d, cudaStream_t stream) const {
        std::vector<Stat> r(std::size_t(has_saved_ ? saved_count_ : 0));
        d.download(r.data(), r.size(), stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
        return r;
    }
    void check_same_layout(const char* where, const cpu_type& cpu) const {
        if (cpu.channels() != channels_) shiftnorm::detail::fail<shape_error>(where, "channels", channels_, cpu.channels());
        if (cpu.groups() != groups_) shiftnorm::detail::fail<shape_error>(where, "groups", groups_, cpu.groups());
    }

    index_t channels_ = 0, groups_ = 1;
    device_buffer<Stat> mean_, inv_std_;          // saved per (n, g)
    device_buffer<norm_coef<T>> bwd_;             // backward apply record per (n, g)
    device_buffer<grad_sums> plane_sums_;         // backward sums per (n, c)
    device_buffer<moments<double>> moments_;      // nan_policy::raise only
    pinned_buffer<moments<double>> host_moments_;
    reduce_workspace ws_;
    mutable stream_order order_;  //!< orders this layer's calls across streams
    index_t saved_count_ = 0;
    bool has_saved_ = false;
    shape4 saved_shape_{};
};

}  // namespace shiftnorm::backend::cuda
