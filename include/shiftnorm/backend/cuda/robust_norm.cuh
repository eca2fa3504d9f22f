// SPDX-License-Identifier: MIT
// CUDA RobustNorm layer mirroring shiftnorm::robust_norm (RN / RNT / RNM) on device tensor views.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "shiftnorm/backend/cuda/affine_params.cuh"
#include "shiftnorm/backend/cuda/batch_norm.cuh"
#include "shiftnorm/backend/cuda/range.cuh"
#include "shiftnorm/norm/robust_norm.hpp"

namespace shiftnorm::backend::cuda {

//! RobustNorm on CUDA, mirroring shiftnorm::robust_norm<Affine, Precision> (Awais et al.,
//! seed 003, eq. 3): y = gamma * (x - mu) / (r^p + eps) + beta, r = max - min over (N, H, W).
//! Same modes, saved values and backward rule (range gradient to the FIRST argmax/argmin in
//! flat NCHW order; none for a constant channel) on contiguous NCHW views of device memory.
//!
//! `scale`, `shift`, `diff_scale`, `diff_shift` are device arrays; the tracked statistics
//! `running_mean`, `running_range` are host vectors as in the CPU layer. Per call:
//!  - forward_training: 2 launches (statistics with min/max/argmin/argmax in the same single
//!    read, normalize) and an asynchronous copy of the batch mean and range to pinned memory;
//!    NO synchronization. They are folded into the host EMA in call order by
//!    sync_statistics(), by any call that reads the tracked statistics (forward_inference,
//!    copy_to, copy_from), for finished copies at the next forward_training, or when
//!    max_pending_folds copies are in flight (fold_queue). Call sync_statistics() before
//!    reading or writing running_mean / running_range directly.
//!  - forward_inference: RN 2 launches; RNM uploads running_mean then 2 launches; RNT uploads
//!    the saved statistics then 2 launches (coefficients, normalize). No synchronization
//!    unless nan_policy::raise.
//!  - backward: 2 launches (sums, apply with the range term fused).
template <class Affine = affine, class Precision = fp32>
class robust_norm : public device_affine_params<typename Precision::stat_type> {
    static_assert(is_affine_policy_v<Affine>, "cuda::robust_norm<Affine>: use shiftnorm::affine or no_affine");
    static_assert(is_precision<Precision>::value, "cuda::robust_norm<.., Precision>: use shiftnorm::precision<...>");

public:
    using cpu_type = shiftnorm::robust_norm<Affine, Precision>;
    using T = typename Precision::src_type;
    using Stat = typename Precision::stat_type;
    using options = typename cpu_type::options;
    using saved_channel = typename cpu_type::saved_channel;

    using params = device_affine_params<Stat>;  //!< scale, shift (gamma, beta), gradients on device
    using params::scale, params::shift, params::diff_scale, params::diff_shift;

    options opt;
    std::vector<Stat> running_mean, running_range;             //!< host, initialised to 0 and 1

    robust_norm() = default;
    explicit robust_norm(index_t channels, options o = {}) : opt(o), channels_(channels) {
        const char* where = "cuda::robust_norm";
        if (channels <= 0) shiftnorm::detail::fail<shape_error>(where, "channels", "> 0", channels);
        if (!(o.p > 0.0)) shiftnorm::detail::fail(where, "p", "> 0", o.p);
        if (!(o.eps >= 0.0)) shiftnorm::detail::fail(where, "eps", ">= 0", o.eps);
        if (!(o.momentum >= 0.0 && o.momentum <= 1.0)) shiftnorm::detail::fail(where, "momentum", "in [0, 1]", o.momentum);
        this->init_affine(channels);
        const auto C = std::size_t(channels);
        running_mean.assign(C, Stat(0));
        running_range.assign(C, Stat(1));
        coef_.resize_discard(C);
        bwd_coef_.resize_discard(C);
        fix_.resize_discard(C);
        saved_.resize_discard(C);
        moments_.resize_discard(C);
        folds_.reserve(C);
        host_moments_.reserve_discard(C);
        stage_saved_.reserve_discard(C);
        stage_stats_.reserve_discard(2 * C);
        running_dev_.resize_discard(2 * C);
    }

    index_t channels() const { return channels_; }
    void zero_grad(cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        this->zero_affine_grad(stream);
    }

    //! Takes options, tracked statistics and parameters of a CPU layer.
    void copy_from(const cpu_type& cpu, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        sync_statistics();  // pending folds belong to the statistics being replaced
        const char* where = "cuda::robust_norm::copy_from";
        if (cpu.channels() != channels_) shiftnorm::detail::fail<shape_error>(where, "channels", channels_, cpu.channels());
        opt = cpu.opt;
        running_mean = cpu.running_mean;
        running_range = cpu.running_range;
        this->upload_affine(cpu, "cuda::robust_norm::copy_from", stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    //! Gives options, tracked statistics and parameters to a CPU layer of the same width.
    void copy_to(cpu_type& cpu, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        sync_statistics();
        if (cpu.channels() != channels_)
            shiftnorm::detail::fail<shape_error>("cuda::robust_norm::copy_to", "channels", channels_, cpu.channels());
        cpu.opt = opt;
        cpu.running_mean = running_mean;
        cpu.running_range = running_range;
        this->download_affine(cpu, stream);
    }

    //! Training: batch mean and range normalize; the host running buffers get the EMA update.
    void forward_training(const tensor_view<const T>& src, const tensor_view<T>& dst, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        run("cuda::robust_norm::forward_training", src, dst, true, true, stream);
        // the batch statistics reach the host EMA later, in call order (no synchronization)
        folds_.push(saved_, stream, [this](const robust_saved* p, std::size_t C) { fold_saved(p, C); });
    }

    //! At most this many forward_training calls have their statistics in flight.
    static constexpr std::size_t max_pending_folds = 8;
    //! Waits for the statistics of earlier forward_training calls and folds them into
    //! running_mean / running_range (EMA, momentum opt.momentum), oldest first.
    void sync_statistics() {
        folds_.drain([this](const robust_saved* p, std::size_t C) { fold_saved(p, C); });
    }
    //! forward_training calls whose statistics are not yet in the running buffers.
    std::size_t pending_folds() const { return folds_.pending(); }

    //! Inference with the variant `mode` (default opt.inference): RN, RNT or RNM.
    void forward_inference(const tensor_view<const T>& src, const tensor_view<T>& dst, cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        forward_inference(src, dst, opt.inference, stream);
    }
    void forward_inference(const tensor_view<const T>& src, const tensor_view<T>& dst, robust_inference mode,
                           cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        if (mode != robust_inference::rn) sync_statistics();  // RNM / RNT read the tracked statistics
        run("cuda::robust_norm::forward_inference", src, dst, mode == robust_inference::rn,
            mode != robust_inference::rnt, stream);
    }

    //! Gradient of the last forward call (its variant decides which statistics depend on x).
    void backward(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst, const tensor_view<T>& diff_src,
                  cudaStream_t stream = nullptr) {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        const char* where = "cuda::robust_norm::backward";
        shiftnorm::detail::check_backward_io(where, has_saved_, saved_shape_, src, diff_dst, diff_src);
        detail::check_device_pointer(where, "src", src.data());
        detail::check_device_pointer(where, "diff_dst", diff_dst.data());
        detail::check_device_pointer(where, "diff_src", diff_src.data());
        using epi = detail::robust_backward_epilogue<T, Stat>;
        const epi e{saved_.data(),
                    bwd_coef_.data(),
                    fix_.data(),
                    Affine::enabled ? scale.data() : nullptr,
                    Affine::enabled ? diff_scale.data() : nullptr,
                    Affine::enabled ? diff_shift.data() : nullptr,
                    double(src.shape().per_channel()),
                    opt.p,
                    mean_from_batch_,
                    range_from_batch_};
        const detail::grad_sums_policy<T, epi> pol{coef_.data(), e};
        detail::launch_channel_reduce<T>(src.data(), diff_dst.data(), src.shape(), pol, ws_, stream);
        detail::launch_channel_map<true, T>(src.data(), diff_dst.data(), diff_src.data(), src.shape(),
                                            detail::robust_apply_op<T>{bwd_coef_.data(), fix_.data()}, stream);
    }

    //! Saved statistics of the last forward call (copies to host, waits).
    std::vector<saved_channel> saved(cudaStream_t stream = nullptr) const {
        const auto order_guard = order_.enter(stream);  // workspaces shared across streams
        const auto s = saved_.to_vector_sync(stream);
        std::vector<saved_channel> r(s.size());
        for (std::size_t c = 0; c < s.size(); ++c) {
            r[c].mean = s[c].mean;
            r[c].range = s[c].range;
            r[c].denom = s[c].denom;
            r[c].argmin = s[c].argmin;
            r[c].argmax = s[c].argmax;
        }
        return r;
    }

private:
    void run(const char* where, const tensor_view<const T>& src, const tensor_view<T>& dst, bool batch_mean,
             bool batch_range, cudaStream_t stream) {
        detail::check_device_io(where, src, dst, channels_);
        const auto C = std::size_t(channels_);
        const Stat* gamma = Affine::enabled ? scale.data() : nullptr;
        const Stat* beta = Affine::enabled ? shift.data() : nullptr;
        if (batch_mean || batch_range) {
            if (!batch_mean || !batch_range) {  // RNM: tracked statistics to the device
                stage_done_.synchronize();
                std::copy(running_mean.begin(), running_mean.end(), stage_stats_.data());
                std::copy(running_range.begin(), running_range.end(), stage_stats_.data() + C);
                running_dev_.upload(stage_stats_.data(), 2 * C, stream);
                stage_done_.record(stream);
            }
            using epi = detail::robust_stats_epilogue<T, Stat>;
            const shape4& s = src.shape();
            const epi e{moments_.data(), saved_.data(), coef_.data(), running_dev_.data(), running_dev_.data() + C,
                        gamma, beta, opt.p, opt.eps, batch_mean, batch_range, s.c, s.spatial()};
            const detail::moments_policy<T, double, true, epi> pol{src.data(), s.spatial(), e};
            detail::launch_channel_reduce<T>(src.data(), nullptr, s, pol, ws_, stream);
            if (opt.nan == nan_policy::raise) check_finite(where, stream);
        } else {  // RNT: everything from the tracked statistics, computed on the host like the CPU layer
            stage_done_.synchronize();
            for (std::size_t c = 0; c < C; ++c) {
                robust_saved& s = stage_saved_[c];
                s = robust_saved{};
                s.mean = double(running_mean[c]);
                s.range = double(running_range[c]);
                s.denom = std::pow(s.range, opt.p) + opt.eps;
            }
            saved_.upload(stage_saved_.data(), C, stream);
            stage_done_.record(stream);
            const unsigned blocks = unsigned((channels_ + block_threads - 1) / block_threads);
            detail::robust_coef_kernel<T, Stat><<<blocks, block_threads, 0, stream>>>(saved_.data(), channels_, gamma,
                                                                                       beta, coef_.data());
            SHIFTNORM_CUDA_CHECK(cudaGetLastError());
        }
        channel_normalize<T>(src, dst, coef_.data(), stream);
        mean_from_batch_ = batch_mean;
        range_from_batch_ = batch_range;
        has_saved_ = true;
        saved_shape_ = src.shape();
    }

    //! The host side of a queued fold: the CPU layer's EMA of mean and range.
    void fold_saved(const robust_saved* p, std::size_t C) {
        const double w = opt.momentum;
        for (std::size_t c = 0; c < C; ++c) {
            running_mean[c] = Stat((1 - w) * double(running_mean[c]) + w * p[c].mean);
            running_range[c] = Stat((1 - w) * double(running_range[c]) + w * p[c].range);
        }
    }

    void check_finite(const char* where, cudaStream_t stream) {
        const auto C = std::size_t(channels_);
        moments_.download(host_moments_.data(), C, stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
        for (std::size_t c = 0; c < C; ++c) {
            const auto& m = host_moments_[c].m;
            if (!(std::isfinite(m.mean) && std::isfinite(m.range())))
                shiftnorm::detail::throw_non_finite(where, shiftnorm::detail::concat("channel ", c),
                                                    shiftnorm::detail::concat("mean ", m.mean, ", range ", m.range()));
        }
    }

    index_t channels_ = 0;
    device_buffer<norm_coef<T>> coef_, bwd_coef_;
    device_buffer<range_fix<T>> fix_;
    device_buffer<robust_saved> saved_;
    device_buffer<channel_partial<double>> moments_;
    device_buffer<Stat> running_dev_;  // running_mean | running_range (RNM)
    pinned_buffer<robust_saved> stage_saved_;
    pinned_buffer<channel_partial<double>> host_moments_;
    pinned_buffer<Stat> stage_stats_;
    event stage_done_;
    fold_queue<robust_saved, max_pending_folds> folds_;  //!< training statistics not yet in the EMA
    reduce_workspace ws_;
    mutable stream_order order_;  //!< orders this layer's calls across streams
    bool has_saved_ = false, mean_from_batch_ = false, range_from_batch_ = false;
    shape4 saved_shape_{};
};

}  // namespace shiftnorm::backend::cuda
