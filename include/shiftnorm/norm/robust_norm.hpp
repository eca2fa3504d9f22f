// SPDX-License-Identifier: MIT
// RobustNorm: (x - mean) / (range^p + eps), with running EMA of mean and range, RN/RNT/RNM.
#pragma once

#include <cmath>
#include <vector>

#include "shiftnorm/backend/channel_pass.hpp"
#include "shiftnorm/backend/cpu/schedule.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/policy.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/core/checks.hpp"
#include "shiftnorm/norm/affine_params.hpp"
#include "shiftnorm/norm/layer_concept.hpp"

namespace shiftnorm {

//! Which statistics RobustNorm's inference uses (Awais et al., seed 003, section 4):
//! rn: batch mean and batch range; rnt: tracked (running) mean and range; rnm: tracked mean,
//! batch range.
enum class robust_inference { rn, rnt, rnm };

//! RobustNorm (seed 003, eq. 3): y = gamma * (x - mu) / (r^p + eps) + beta, with mu the
//! per-channel mean and r = max - min over (N, H, W); eps is added AFTER the power.
//! Training keeps an EMA (momentum, PyTorch convention) of mu and of the RANGE r.
//!
//! Backward: r depends only on the arg-max and arg-min elements; its sub-gradient goes to the
//! FIRST occurrence in flat NCHW order of the maximum (+) and of the minimum (-). A constant
//! channel (r == 0, where d r^p / d r is unbounded for p < 1) receives no range gradient.
//! Saved by forward: mean, denominator r^p + eps, r, and the arg-min/arg-max offsets.
//! Backend runs the data passes (backend/channel_pass.hpp; see batch_norm).
template <class Affine = affine, class Precision = fp32, class Backend = backend::cpu::auto_schedule>
class robust_norm : public affine_params<typename Precision::stat_type> {
    static_assert(is_affine_policy_v<Affine>, "robust_norm<Affine>: use shiftnorm::affine or no_affine");
    static_assert(is_precision<Precision>::value, "robust_norm<.., Precision>: use shiftnorm::precision<...>");
    static_assert(backend::is_channel_backend_v<Backend>,
                  "robust_norm<.., Backend>: use a CPU schedule (backend::cpu::auto_schedule, plane_streaming, "
                  "channel_major_schedule) or backend::reference::kernels");

public:
    using T = typename Precision::src_type;
    using Stat = typename Precision::stat_type;
    using backend_type = Backend;

    struct options {
        double p = 0.2;          //!< power of the range
        double eps = 1e-5;       //!< added after the power
        double momentum = 0.1;   //!< EMA weight of the new batch for running mean / range
        robust_inference inference = robust_inference::rnt;
        nan_policy nan = nan_policy::propagate;
    };

    using params = affine_params<Stat>;  //!< scale, shift (gamma, beta), gradients
    using params::scale, params::shift, params::diff_scale, params::diff_shift, params::zero_grad;

    options opt;
    std::vector<Stat> running_mean, running_range;  //!< initialised to 0 and 1

    robust_norm() = default;
    explicit robust_norm(index_t channels, options o = {}) : opt(o), channels_(channels) {
        if (channels <= 0) detail::fail<shape_error>("robust_norm", "channels", "> 0", channels);
        if (!(o.p > 0.0)) detail::fail("robust_norm", "p", "> 0", o.p);
        if (!(o.eps >= 0.0)) detail::fail("robust_norm", "eps", ">= 0", o.eps);
        if (!(o.momentum >= 0.0 && o.momentum <= 1.0)) detail::fail("robust_norm", "momentum", "in [0, 1]", o.momentum);
        const auto C = std::size_t(channels);
        this->init_affine(channels);
        running_mean.assign(C, Stat(0));
        running_range.assign(C, Stat(1));
        saved_.resize(C);
        range_g_.resize(C);
    }

    index_t channels() const { return channels_; }

    // The normalization-layer concept (norm/layer_concept.hpp). mode::rectify runs
    // forward_inference (RobustNorm has no rectification).
    static constexpr norm_interface kind = norm_interface::batch_like;
    static constexpr norm_modes modes{false, true, true};
    static constexpr bool grouped = false;
    //! eps (after the power) and the running momentum; p stays as constructed.
    void configure(const norm_config& cfg) {
        check_norm_config(cfg);
        detail::reject_reference_bn(cfg, "robust_norm");
        opt.eps = cfg.eps;
        opt.momentum = cfg.momentum;
    }
    //! weight, bias (when the layer has them), running_mean, running_range.
    template <class V>
    void visit_state(V&& v) {
        this->visit_affine(v);
        v.tensor("running_mean", running_mean.data(), nullptr, channels_, state_role::buffer);
        v.tensor("running_range", running_range.data(), nullptr, channels_, state_role::buffer);
    }

    //! Training: batch mean and range normalize; running buffers get an EMA update.
    void forward_training(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        run("robust_norm::forward_training", src, dst, true, true);
        for (index_t c = 0; c < channels_; ++c) {
            const double w = opt.momentum;
            running_mean[c] = Stat((1 - w) * double(running_mean[c]) + w * saved_[c].mean);
            running_range[c] = Stat((1 - w) * double(running_range[c]) + w * saved_[c].range);
        }
    }

    //! Inference with the variant `mode` (default opt.inference): RN, RNT or RNM.
    void forward_inference(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        forward_inference(src, dst, opt.inference);
    }
    void forward_inference(const tensor_view<const T>& src, const tensor_view<T>& dst, robust_inference mode) {
        run("robust_norm::forward_inference", src, dst, mode == robust_inference::rn, mode != robust_inference::rnt);
    }

    //! Batch mean and batch range (the RN variant) whatever opt.inference says, running buffers
    //! untouched: nn::mode::batch.
    void forward_batch(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        run("robust_norm::forward_batch", src, dst, true, true);
    }

    //! Gradient of the last forward call, inference variants included: the same as backward,
    //! which differentiates through exactly the statistics the last forward took from the batch
    //! (none for RNT, the range for RNM, mean and range for RN). Input gradients for attacks.
    void backward_inference(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst,
                            const tensor_view<T>& diff_src) {
        backward(src, diff_dst, diff_src);
    }

    //! Gradient of the last forward call (its variant decides which statistics depend on x).
    void backward(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst, const tensor_view<T>& diff_src) {
        const char* where = "robust_norm::backward";
        detail::check_backward_io(where, has_saved_, saved_shape_, src, diff_dst, diff_src);
        locate_extremes(src);
        const double count = double(src.shape().per_channel());
        std::vector<T> mean(static_cast<std::size_t>(channels_));
        for (index_t c = 0; c < channels_; ++c) mean[c] = T(saved_[c].mean);
        Backend::backward(src, diff_dst, diff_src, mean.data(), true, [&](index_t c, double sdy, double sdyx) {
            const auto& s = saved_[c];
            const double gamma = Affine::enabled ? double(scale[c]) : 1.0;
            if constexpr (Affine::enabled) {
                diff_scale[c] += Stat(sdyx / s.denom);
                diff_shift[c] += Stat(sdy);
            }
            const T k = T(gamma / s.denom);
            const T mdy = T(mean_from_batch_ ? sdy / count : 0.0);
            range_g_[c] = 0.0;
            if (range_from_batch_ && s.range > 0.0 && s.argmax >= 0 && s.argmin >= 0)
                // dL/dr = sum_j dy_j * gamma * (x_j - mu) * d(1/D)/dr, D = r^p + eps
                range_g_[c] = -gamma * sdyx * opt.p * std::pow(s.range, opt.p - 1.0) / (s.denom * s.denom);
            return backend::backward_coef<T>{k, T(0), -k * mdy};
        });
        for (index_t c = 0; c < channels_; ++c) {  // the range term touches two elements only
            if (range_g_[c] == 0.0) continue;
            diff_src.data()[saved_[c].argmax] += T(range_g_[c]);
            diff_src.data()[saved_[c].argmin] -= T(range_g_[c]);
        }
    }

    //! Saved statistics of channel c from the last forward call.
    struct saved_channel {
        double mean = 0, range = 0, denom = 1;
        //! Flat offsets into src of the first min / max; -1 until located by backward or
        //! locate_extremes (the search is part of the range term's cost, not of forward).
        index_t argmin = -1, argmax = -1;
        double min = 0, max = 0;
        backend::extreme_hint hint{};  //!< first tile (or fold of planes) holding each extreme
    };
    const saved_channel& saved(index_t c) const { return saved_.at(std::size_t(c)); }

    //! Finds the first arg-min / arg-max of every channel of `src` (the tensor of the last forward
    //! call, which used batch ranges); backward calls it. Scans only the tile the forward pass
    //! recorded for each extreme.
    void locate_extremes(const tensor_view<const T>& src) {
        if (!has_saved_ || !range_from_batch_) return;
        if (src.shape() != saved_shape_)
            detail::fail<shape_error>("robust_norm::locate_extremes", "src", saved_shape_, src.shape());
        for (index_t c = 0; c < channels_; ++c) {
            auto& s = saved_[c];
            if (s.argmax >= 0 && s.argmin >= 0) continue;
            s.argmax = backend::cpu::find_first_equal(src, c, s.hint.max_n, s.hint.max_i, s.max);
            s.argmin = backend::cpu::find_first_equal(src, c, s.hint.min_n, s.hint.min_i, s.min);
        }
    }

private:
    void run(const char* where, const tensor_view<const T>& src, const tensor_view<T>& dst, bool batch_mean,
             bool batch_range) {
        detail::check_norm_io(where, src, dst, channels_);
        std::vector<moments<double>> m;
        const bool ok = Backend::template forward<true, false>(
            src, dst, batch_mean || batch_range, m,
            [&](index_t c, const moments<double>& mc, const backend::extreme_hint& hint, backend::channel_coef<T>& k) {
                auto& s = saved_[c];
                if (batch_mean || batch_range) {
                    if (opt.nan == nan_policy::raise && !(std::isfinite(mc.mean) && std::isfinite(mc.range())))
                        return false;
                    s.mean = batch_mean ? mc.mean : double(running_mean[c]);
                    if (batch_range) {
                        s.range = mc.range();
                        s.min = mc.min;
                        s.max = mc.max;
                        s.hint = hint;
                        s.argmin = s.argmax = -1;  // located lazily (backward / locate_extremes)
                    } else {
                        s.range = double(running_range[c]);
                    }
                } else {
                    s.mean = double(running_mean[c]);
                    s.range = double(running_range[c]);
                }
                s.denom = std::pow(s.range, opt.p) + opt.eps;
                const double gamma = Affine::enabled ? double(scale[c]) : 1.0;
                k = {T(s.mean), T(gamma / s.denom), T(Affine::enabled ? double(shift[c]) : 0.0)};
                return true;
            });
        if (!ok)
            for (index_t c = 0; c < channels_; ++c)
                if (!(std::isfinite(m[c].mean) && std::isfinite(m[c].range()))) {
                    has_saved_ = false;
                    detail::throw_non_finite(where, detail::concat("channel ", c),
                                             detail::concat("mean ", m[c].mean, ", range ", m[c].range()));
                }
        mean_from_batch_ = batch_mean;
        range_from_batch_ = batch_range;
        has_saved_ = true;
        saved_shape_ = src.shape();
    }

    index_t channels_ = 0;
    std::vector<saved_channel> saved_;
    std::vector<double> range_g_;
    bool has_saved_ = false, mean_from_batch_ = false, range_from_batch_ = false;
    shape4 saved_shape_{};
};

}  // namespace shiftnorm
