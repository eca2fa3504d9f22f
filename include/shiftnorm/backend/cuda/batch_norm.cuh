// SPDX-License-Identifier: MIT
// CUDA batch normalization layer mirroring shiftnorm::batch_norm on device tensor views.
#pragma once

#include <array>
#include <utility>

#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>
#include <vector>

#include "shiftnorm/backend/cuda/affine_params.cuh"
#include "shiftnorm/backend/cuda/bn_backward.cuh"
#include "shiftnorm/backend/cuda/channel_moments.cuh"
#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/backend/cuda/fold_queue.cuh"
#include "shiftnorm/backend/cuda/normalize.cuh"
#include "shiftnorm/backend/cuda/schedule.cuh"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/core/checks.hpp"

namespace shiftnorm::backend::cuda {
namespace detail {

//! Epilogue of the statistics pass of batch_norm: stores the channel's moments (for the host:
//! running buffers, rectification, NaN checks) and, when `coef` is set, the folded normalize
//! coefficients {mean, gamma*inv_std, beta, inv_std} computed in double exactly like the CPU
//! layer (training: from the double moments; `float_stats`: from the float-rounded mean and
//! biased variance, as channel_stats<float>::from_moments does for batch_stats inference).
template <class T, class Stat>
struct bn_stats_epilogue {
    channel_partial<double>* out;
    norm_coef<T>* coef;  //!< null: moments only
    const Stat* scale;   //!< null without affine
    const Stat* shift;
    double eps;
    bool float_stats;

    __device__ void operator()(index_t c, const channel_partial<double>& r) const {
        out[c] = r;
        if (!coef) return;
        double mean = r.m.mean, var = r.m.variance(variance_kind::biased);
        if (float_stats) mean = double(float(mean)), var = double(float(var));
        const Stat saved_mean = Stat(mean);
        const Stat inv_std = Stat(1.0 / sqrt(var + eps));
        const double gamma = scale ? double(scale[c]) : 1.0;
        const double beta = shift ? double(shift[c]) : 0.0;
        coef[c] = {T(saved_mean), T(gamma * double(inv_std)), T(beta), T(inv_std)};
    }
};

//! Coefficients from per-channel statistics given by the host (inference / rectified sources):
//! one thread per channel, the same double math as bn_stats_epilogue.
template <class T, class Stat>
__global__ void __launch_bounds__(block_threads)
    bn_coef_from_stats_kernel(const float* __restrict__ mean, const float* __restrict__ var, index_t channels,
                              const Stat* __restrict__ scale, const Stat* __restrict__ shift, double eps,
                              norm_coef<T>* __restrict__ coef) {
    for (index_t c = index_t(blockIdx.x) * block_threads + threadIdx.x; c < channels;
         c += index_t(gridDim.x) * block_threads) {
        const Stat saved_mean = Stat(mean[c]);
        const Stat inv_std = Stat(1.0 / sqrt(double(var[c]) + eps));
        const double gamma = scale ? double(scale[c]) : 1.0;
        const double beta = shift ? double(shift[c]) : 0.0;
        coef[c] = {T(saved_mean), T(gamma * double(inv_std)), T(beta), T(inv_std)};
    }
}

//! Epilogue of the backward sums: accumulates diff_scale / diff_shift (when set) and stores
//! the apply coefficients {mean, k, -k*m_dyx, -k*m_dy} of backend::cpu::channel_apply
//! (k = gamma*inv_std; m_dy = sum_dy/count and m_dyx = sum_dy_xc*inv_std^2/count when the
//! statistics depend on src, i.e. training; 0 with frozen statistics).
template <class T, class Stat>
struct bn_backward_epilogue {
    const norm_coef<T>* fwd;
    norm_coef<T>* bwd;
    const Stat* scale;  //!< null without affine
    Stat* diff_scale;   //!< null without affine
    Stat* diff_shift;
    double count;
    bool batch_dependent;

    __device__ void operator()(index_t c, const grad_sums& r) const {
        const norm_coef<T> f = fwd[c];
        const double istd = double(f.d);
        const double gamma = scale ? double(scale[c]) : 1.0;
        if (diff_scale) {
            diff_scale[c] += Stat(r.sum_dy_xc * istd);
            diff_shift[c] += Stat(r.sum_dy);
        }
        const T k = T(gamma * istd);
        const T m_dy = batch_dependent ? T(r.sum_dy / count) : T(0);
        const T m_dyx = batch_dependent ? T(r.sum_dy_xc * istd * istd / count) : T(0);
        bwd[c] = {f.mean, k, -k * m_dyx, -k * m_dy};
    }
};

//! Backward with frozen statistics and no affine: k = inv_std, read straight from the forward
//! coefficients (no reduction needed).
template <class T>
struct frozen_apply_op {
    const norm_coef<T>* coef;
    template <int W, class Index>
    __device__ void apply(Index c, const vec<T, W>& x, const vec<T, W>& dy, vec<T, W>& dx, Index) const {
        const norm_coef<T> f = coef[c];
        const T k = f.d, z = -f.d * T(0);
#pragma unroll
        for (int e = 0; e < W; ++e) dx.v[e] = k * dy.v[e] + z * (x.v[e] - f.mean) + z;
    }
};

//! Common argument checks of the CUDA layers: the CPU layer's checks plus device pointers.
template <class A, class B>
void check_device_io(const char* where, const tensor_view<A>& src, const tensor_view<B>& dst, index_t channels) {
    shiftnorm::detail::check_norm_io(where, src, dst, channels);
    check_device_pointer(where, "src", src.data());
    check_device_pointer(where, "dst", dst.data());
}

}  // namespace detail

//! Batch normalization on CUDA, mirroring shiftnorm::batch_norm<Source, Affine, Precision>
//! (same modes, statistics conventions, errors and saved values) on contiguous NCHW views of
//! DEVICE memory; every call takes the stream it runs on (default: the legacy default stream).
//!
//! Where things live: `source` (running buffers, rectified / table statistics, options) is the
//! same host policy object as on the CPU; the parameters `scale`, `shift` and the accumulated
//! gradients `diff_scale`, `diff_shift` are device arrays of C values (copy_from / copy_to
//! move a whole layer between backends). Per call:
//!  - forward_training: 2 launches (statistics on a 2-D channel x chunk grid, normalize) and an
//!    asynchronous C-record copy of the batch moments to pinned host memory; NO synchronization.
//!    The moments are folded into the host running buffers (running_stats::observe, as the CPU
//!    layer does, in call order, so the result is the same) later: by sync_statistics(), by any
//!    call that reads the host source (forward_inference, forward_rectify, copy_to/copy_from),
//!    by the next forward_training for the copies already done, or when max_pending_folds
//!    copies are in flight. Call sync_statistics() before reading or writing `source` directly.
//!  - forward_inference: population / rectified / table sources upload 2*C floats (pinned,
//!    asynchronous) + 2 launches (coefficients, normalize), no synchronization; batch_stats:
//!    2 launches (statistics, normalize), no synchronization.
//!  - forward_rectify: statistics, one synchronization (the source's host logic), 2 launches.
//!  - backward: 2 launches (sums, apply); backward_inference: 2 (affine) or 1 launch.
//! nan_policy::raise adds one synchronization before normalizing (the check is on the host),
//! also in forward_training.
//! A layer must not be used from two streams concurrently (it owns one workspace).
template <class Source, class Affine = affine, class Precision = fp32>
class batch_norm : public device_affine_params<typename Precision::stat_type> {
    static_assert(is_stat_source_v<Source>, "cuda::batch_norm<Source>: Source must be a statistic source policy");
    static_assert(is_affine_policy_v<Affine>, "cuda::batch_norm<.., Affine>: use shiftnorm::affine or no_affine");
    static_assert(is_precision<Precision>::value, "cuda::batch_norm<.., Precision>: use shiftnorm::precision<...>");

public:
    using source_type = Source;
    using cpu_type = shiftnorm::batch_norm<Source, Affine, Precision>;
    using T = typename Precision::src_type;
    using Stat = typename Precision::stat_type;
    using options = typename cpu_type::options;
    static_assert(std::is_same_v<Stat, float>, "cuda::batch_norm: statistics are stored in float");

    using params = device_affine_params<Stat>;  //!< scale, shift (gamma, beta), gradients on device
    using params::scale, params::shift, params::diff_scale, params::diff_shift;

    Source source;
    options opt;

    batch_norm() = default;
    //! C channels; gamma = 1, beta = 0, zero gradients (waits for the initial uploads).
    explicit batch_norm(index_t channels, options o = {}) : opt(o) {
        if (channels <= 0) shiftnorm::detail::fail<shape_error>("cuda::batch_norm", "channels", "> 0", channels);
        if (!(o.eps >= 0.0)) shiftnorm::detail::fail("cuda::batch_norm", "eps", ">= 0", o.eps);
        channels_ = channels;
        source.running.init(channels);
        this->init_affine(channels);
        allocate_state();
    }

    index_t channels() const { return channels_; }

    //! At most this many forward_training calls have their moments in flight; one more waits
    //! for the oldest.
    static constexpr std::size_t max_pending_folds = 8;
    //! Waits for the moment copies of earlier forward_training calls and folds them into
    //! source.running, oldest first. Needed only before reading or writing `source` directly.
    void sync_statistics() {
        folds_.drain([this](const channel_partial<double>* p, std::size_t C) { fold_moments(p, C); });
    }
    //! forward_training calls whose moments are not yet in source.running.
    std::size_t pending_folds() const { return folds_.pending(); }

    void zero_grad(cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        this->zero_affine_grad(stream);
    }

    //! Mean and inv_std saved by the last forward call (size C; copies to host, waits).
    std::vector<Stat> saved_mean(cudaStream_t stream = nullptr) const { return saved_field(stream, false); }
    std::vector<Stat> saved_inv_std(cudaStream_t stream = nullptr) const { return saved_field(stream, true); }

    //! Takes source, options and parameters (gamma, beta, gradients) of a CPU layer.
    void copy_from(const cpu_type& cpu, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        sync_statistics();  // pending folds belong to the statistics being replaced
        if (cpu.channels() != channels_)
            shiftnorm::detail::fail<shape_error>("cuda::batch_norm::copy_from", "channels", channels_, cpu.channels());
        source = cpu.source;
        opt = cpu.opt;
        this->upload_affine(cpu, "cuda::batch_norm::copy_from", stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    //! Gives source, options and parameters to a CPU layer with the same channel count.
    void copy_to(cpu_type& cpu, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        if (cpu.channels() != channels_)
            shiftnorm::detail::fail<shape_error>("cuda::batch_norm::copy_to", "channels", channels_, cpu.channels());
        sync_statistics();
        cpu.source = source;
        cpu.opt = opt;
        this->download_affine(cpu, stream);
    }

    void forward_training(const tensor_view<const T>& src, const tensor_view<T>& dst, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        const char* where = "cuda::batch_norm::forward_training";
        detail::check_device_io(where, src, dst, channels_);
        shiftnorm::detail::check_reducible(where, src.shape().per_channel(), 2,
                                           "N*H*W per channel (the variance of one value is undefined in training)");
        launch_stats(src, true, false, stream);
        if (opt.nan == nan_policy::raise) {
            sync_statistics();  // keep the call order of the folds
            const auto m = download_moments(where, stream);
            channel_normalize<T>(src, dst, coef_.data(), stream);
            source.running.observe(m);
        } else {
            channel_normalize<T>(src, dst, coef_.data(), stream);
            folds_.push(moments_, stream, [this](const channel_partial<double>* p, std::size_t C) { fold_moments(p, C); });
        }
        saved_kind_ = saved::training;
        saved_shape_ = src.shape();
    }

    void forward_inference(const tensor_view<const T>& src, const tensor_view<T>& dst, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        const char* where = "cuda::batch_norm::forward_inference";
        detail::check_device_io(where, src, dst, channels_);
        sync_statistics();
        if constexpr (std::is_same_v<Source, batch_stats>) {
            // inference_stats(&b) is b itself: the statistics never leave the device
            launch_stats(src, true, true, stream);
            if (opt.nan == nan_policy::raise) (void)download_moments(where, stream);
            channel_normalize<T>(src, dst, coef_.data(), stream);
            mark_inference(src.shape());
        } else if constexpr (Source::uses_batch_at_inference) {
            launch_stats(src, false, false, stream);
            const auto b = channel_stats<float>::from_moments(download_moments(where, stream), variance_kind::biased);
            normalize_with(src, dst, source.inference_stats(&b), stream);
        } else {
            normalize_with(src, dst, source.inference_stats(nullptr), stream);
        }
    }

    //! Rectification pass (see shiftnorm::batch_norm::forward_rectify): one synchronization.
    void forward_rectify(const tensor_view<const T>& src, const tensor_view<T>& dst, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        if constexpr (Source::rectifiable) {
            const char* where = "cuda::batch_norm::forward_rectify";
            detail::check_device_io(where, src, dst, channels_);
            sync_statistics();
            if (!source.options.enabled) return forward_inference(src, dst, stream);
            launch_stats(src, false, false, stream);
            const auto m = download_moments(where, stream);
            normalize_with(src, dst, source.rectify(m, src.shape().n), stream);
        } else {
            forward_inference(src, dst, stream);
        }
    }

    void backward(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst, const tensor_view<T>& diff_src,
                  cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        check_backward("cuda::batch_norm::backward", saved::training, src, diff_dst, diff_src);
        launch_backward_sums(src, diff_dst, true, stream);
        channel_backward_apply<T>(src, diff_dst, diff_src, bwd_coef_.data(), stream);
    }

    void backward_inference(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst,
                            const tensor_view<T>& diff_src, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        check_backward("cuda::batch_norm::backward_inference", saved::inference, src, diff_dst, diff_src);
        if constexpr (Affine::enabled) {
            launch_backward_sums(src, diff_dst, false, stream);
            channel_backward_apply<T>(src, diff_dst, diff_src, bwd_coef_.data(), stream);
        } else {
            detail::launch_channel_map<true, T>(src.data(), diff_dst.data(), diff_src.data(), src.shape(),
                                                detail::frozen_apply_op<T>{coef_.data()}, stream);
        }
    }

private:
    using saved = shiftnorm::detail::bn_saved;

    void allocate_state() {
        const auto C = std::size_t(channels_);
        coef_.resize_discard(C);
        bwd_coef_.resize_discard(C);
        moments_.resize_discard(C);
        host_moments_.reserve_discard(C);
        folds_.reserve(C);
        stage_.reserve_discard(2 * C);
        stage_dev_.resize_discard(2 * C);
    }
    const Stat* scale_ptr() const { return Affine::enabled ? scale.data() : nullptr; }
    const Stat* shift_ptr() const { return Affine::enabled ? shift.data() : nullptr; }

    //! Statistics pass; with_coef: also the normalize coefficients (float_stats: batch_stats rounding).
    void launch_stats(const tensor_view<const T>& src, bool with_coef, bool float_stats, cudaStream_t stream) {
        using epi = detail::bn_stats_epilogue<T, Stat>;
        const shape4& s = src.shape();
        const epi e{moments_.data(), with_coef ? coef_.data() : nullptr, scale_ptr(), shift_ptr(), opt.eps, float_stats};
        const detail::moments_policy<T, double, false, epi> pol{src.data(), s.spatial(), e};
        detail::launch_channel_reduce<T>(src.data(), nullptr, s, pol, ws_, stream);
    }

    //! The host side of a queued fold: the running-statistics update of the CPU layer.
    void fold_moments(const channel_partial<double>* p, std::size_t C) {
        std::vector<moments<double>> m(C);
        for (std::size_t c = 0; c < C; ++c) m[c] = p[c].m;
        source.running.observe(m);
    }

    //! Copies the C moments to the host, waits, and applies the NaN policy.
    std::vector<moments<double>> download_moments(const char* where, cudaStream_t stream) {
        const auto C = std::size_t(channels_);
        moments_.download(host_moments_.data(), C, stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
        std::vector<moments<double>> m(C);
        for (std::size_t c = 0; c < C; ++c) {
            m[c] = host_moments_[c].m;
            if (opt.nan == nan_policy::raise && !(std::isfinite(m[c].mean) && std::isfinite(m[c].m2)))
                shiftnorm::detail::throw_non_finite(where, shiftnorm::detail::concat("channel ", c),
                                                    shiftnorm::detail::concat("mean ", m[c].mean, ", M2 ", m[c].m2));
        }
        return m;
    }

    //! Normalizes with host statistics: 2*C floats through pinned staging, then 2 launches.
    void normalize_with(const tensor_view<const T>& src, const tensor_view<T>& dst, const channel_stats<float>& s,
                        cudaStream_t stream) {
        if (s.channels() != channels_)
            shiftnorm::detail::fail<shape_error>("cuda::batch_norm", "statistics channels", channels_, s.channels());
        const auto C = std::size_t(channels_);
        stage_done_.synchronize();  // the previous upload has left the staging buffer
        std::copy(s.mean.begin(), s.mean.end(), stage_.data());
        std::copy(s.var.begin(), s.var.end(), stage_.data() + C);
        stage_dev_.upload(stage_.data(), 2 * C, stream);
        stage_done_.record(stream);
        const unsigned blocks = unsigned((channels_ + block_threads - 1) / block_threads);
        detail::bn_coef_from_stats_kernel<T, Stat><<<blocks, block_threads, 0, stream>>>(
            stage_dev_.data(), stage_dev_.data() + C, channels_, scale_ptr(), shift_ptr(), opt.eps, coef_.data());
        SHIFTNORM_CUDA_CHECK(cudaGetLastError());
        channel_normalize<T>(src, dst, coef_.data(), stream);
        mark_inference(src.shape());
    }
    void mark_inference(const shape4& s) {
        saved_kind_ = saved::inference;
        saved_shape_ = s;
    }

    void launch_backward_sums(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst, bool batch_dependent,
                              cudaStream_t stream) {
        using epi = detail::bn_backward_epilogue<T, Stat>;
        const epi e{coef_.data(),
                    bwd_coef_.data(),
                    scale_ptr(),
                    Affine::enabled ? diff_scale.data() : nullptr,
                    Affine::enabled ? diff_shift.data() : nullptr,
                    double(src.shape().per_channel()),
                    batch_dependent};
        const detail::grad_sums_policy<T, epi> pol{coef_.data(), e};
        detail::launch_channel_reduce<T>(src.data(), diff_dst.data(), src.shape(), pol, ws_, stream);
    }

    void check_backward(const char* where, saved want, const tensor_view<const T>& src,
                        const tensor_view<const T>& diff_dst, const tensor_view<T>& diff_src) const {
        shiftnorm::detail::check_bn_saved(where, want, saved_kind_, "forward_training");
        shiftnorm::detail::check_backward_io(where, true, saved_shape_, src, diff_dst, diff_src);
        detail::check_device_pointer(where, "src", src.data());
        detail::check_device_pointer(where, "diff_dst", diff_dst.data());
        detail::check_device_pointer(where, "diff_src", diff_src.data());
    }

    std::vector<Stat> saved_field(cudaStream_t stream, bool inv_std) const {
        if (saved_kind_ == saved::none) return {};
        const auto c = coef_.to_vector_sync(stream);
        std::vector<Stat> r(c.size());
        for (std::size_t i = 0; i < c.size(); ++i) r[i] = Stat(inv_std ? c[i].d : c[i].mean);
        return r;
    }

    index_t channels_ = 0;
    device_buffer<norm_coef<T>> coef_, bwd_coef_;      // forward {mean, a, b, inv_std}; backward apply
    device_buffer<channel_partial<double>> moments_;  // batch moments of the last statistics pass
    pinned_buffer<channel_partial<double>> host_moments_;
    //! Moment copies of forward_training calls not yet folded into source.running.
    fold_queue<channel_partial<double>, max_pending_folds> folds_;
    pinned_buffer<float> stage_;  // host statistics on their way to the device
    device_buffer<float> stage_dev_;
    event stage_done_;
    reduce_workspace ws_;
    mutable stream_order order_;  //!< orders this layer's calls across streams
    saved saved_kind_ = saved::none;
    shape4 saved_shape_{};
};

}  // namespace shiftnorm::backend::cuda
