// SPDX-License-Identifier: MIT
// Batch normalization with a pluggable statistic source (population, batch, rectified, table).
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
#include "shiftnorm/stats/sources.hpp"

namespace shiftnorm {

namespace detail {
//! What the last forward call of a batch-norm layer (CPU or CUDA) saved for backward.
enum class bn_saved { none, training, inference };
//! state_error unless the last forward saved what backward `want`s; `batch_calls` names the
//! layer's batch-statistics forwards (e.g. "forward_training/forward_batch").
inline void check_bn_saved(const char* where, bn_saved want, bn_saved have, const char* batch_calls) {
    if (have == want) return;
    throw state_error(concat(where, ": needs the statistics saved by ",
                             want == bn_saved::training ? batch_calls : "forward_inference",
                             ", but the last forward call was ",
                             have == bn_saved::none       ? "none"
                             : have == bn_saved::training ? batch_calls
                                                          : "forward_inference/rectify"));
}
}  // namespace detail

//! Batch normalization (Ioffe & Szegedy 2015) over NCHW activations, per channel over
//! (N, H, W): y = gamma * (x - mean) / sqrt(var + eps) + beta; options: eps outside the square
//! root and unbiased batch variance (seed 003's reference baseline, CPU only).
//!
//! Source decides what inference normalizes with (population, batch_stats, rectified,
//! stats_table); Affine is `affine` or `no_affine`; Precision is precision<Src, Stat> (Stat must be float).
//! Modes are explicit calls, never guessed from the batch size:
//!  - forward_training: batch mean and BIASED variance normalize; the source's running
//!    buffers get the batch mean and UNBIASED variance (PyTorch convention). Saves mean and
//!    inv_std for backward.
//!  - forward_inference: the source's statistics (saved too, for backward_inference).
//!  - forward_rectify: rectifiable sources re-estimate and store their statistics from this
//!    batch and normalize with them (others: same as forward_inference).
//!  - forward_batch: the batch's mean and BIASED variance, as forward_training, but the
//!    running buffers are left untouched (inference with batch statistics, seed 003's "B";
//!    attacks differentiate through it with `backward`).
//!  - backward: gradient of forward_training / forward_batch (statistics depend on x).
//!  - backward_inference: gradient with frozen statistics (input gradients for attacks).
//! Parameter gradients ACCUMULATE into diff_scale / diff_shift (call zero_grad() first).
//! Cost: forward_training reads src twice and writes dst once; backward reads src and diff_dst
//! twice and writes diff_src once. Backend (backend/channel_pass.hpp) runs the data passes: a
//! CPU schedule (backend/cpu/schedule.hpp: over the whole tensor in memory order, the default
//! for planes below 64 KiB, or per channel with the second read from cache) or the naive
//! double-precision reference (backend/reference/kernels.hpp, the tests' oracle).
template <class Source, class Affine = affine, class Precision = fp32, class Backend = backend::cpu::auto_schedule>
class batch_norm : public affine_params<typename Precision::stat_type> {
    static_assert(is_stat_source_v<Source>, "batch_norm<Source>: Source must be a statistic source policy");
    static_assert(is_affine_policy_v<Affine>, "batch_norm<.., Affine>: use shiftnorm::affine or no_affine");
    static_assert(is_precision<Precision>::value, "batch_norm<.., Precision>: use shiftnorm::precision<...>");
    static_assert(backend::is_channel_backend_v<Backend>,
                  "batch_norm<.., Backend>: use a CPU schedule (backend::cpu::auto_schedule, plane_streaming, "
                  "channel_major_schedule) or backend::reference::kernels");

public:
    using source_type = Source;
    using backend_type = Backend;
    using T = typename Precision::src_type;
    using Stat = typename Precision::stat_type;
    static_assert(std::is_same_v<Stat, float>, "batch_norm: statistics are stored in float");

    //! Where eps enters the denominator: PyTorch's sqrt(var + eps) (default) or sqrt(var) + eps,
    //! the convention of seed 003's reference BN baseline (methods.md section 4).
    enum class eps_placement { inside_sqrt, outside_sqrt };

    struct options {
        double eps = 1e-5;  //!< added to the variance inside the square root (or to the std, see eps_at)
        nan_policy nan = nan_policy::propagate;
        eps_placement eps_at = eps_placement::inside_sqrt;
        //! Variance that batch statistics normalize with (forward_training, forward_batch):
        //! biased (PyTorch) or unbiased (the reference BN baseline). The running buffers always
        //! get the unbiased variance.
        variance_kind batch_variance = variance_kind::biased;
    };

    using params = affine_params<Stat>;  //!< scale, shift (gamma, beta; unused without affine), gradients
    using params::scale, params::shift, params::diff_scale, params::diff_shift, params::zero_grad;

    Source source;
    options opt;

    batch_norm() = default;
    explicit batch_norm(index_t channels, options o = {}) : opt(o) {
        if (channels <= 0) detail::fail<shape_error>("batch_norm", "channels", "> 0", channels);
        if (!(o.eps >= 0.0)) detail::fail("batch_norm", "eps", ">= 0", o.eps);
        channels_ = channels;
        source.running.init(channels);
        this->init_affine(channels);
    }

    index_t channels() const { return channels_; }

    // The normalization-layer concept (norm/layer_concept.hpp).
    static constexpr norm_interface kind = norm_interface::batch_like;
    //! Foldable (norm_modes::fold) with statistics that do not come from the batch, on a CPU schedule
    //! (the reference backend normalizes in double).
    //! Training with a fused ReLU (norm_modes::train_relu) on a CPU schedule too.
    static constexpr norm_modes modes{true, true, true,
                                      !Source::uses_batch_at_inference &&
                                          std::is_base_of_v<backend::cpu::channel_kernels<Backend>, Backend>,
                                      std::is_base_of_v<backend::cpu::channel_kernels<Backend>, Backend>};
    static constexpr bool grouped = false;
    //! eps, the source's running momentum and, with reference_bn, seed 003's reference convention.
    void configure(const norm_config& cfg) {
        check_norm_config(cfg);
        opt.eps = cfg.eps;
        source.running.momentum = cfg.momentum;
        opt.eps_at = cfg.reference_bn ? eps_placement::outside_sqrt : eps_placement::inside_sqrt;
        opt.batch_variance = cfg.reference_bn ? variance_kind::unbiased : variance_kind::biased;
    }
    //! PyTorch's state: weight, bias (when the layer has them), running_mean, running_var
    //! (unbiased), num_batches_tracked.
    template <class V>
    void visit_state(V&& v) {
        this->visit_affine(v);
        auto& r = source.running;
        v.tensor("running_mean", r.stats.mean.data(), nullptr, channels_, state_role::buffer);
        v.tensor("running_var", r.stats.var.data(), nullptr, channels_, state_role::buffer);
        v.counter("num_batches_tracked", &r.num_batches_tracked);
    }

    //! Mean and inv_std saved by the last forward call (size C).
    const std::vector<Stat>& saved_mean() const { return saved_mean_; }
    const std::vector<Stat>& saved_inv_std() const { return saved_inv_std_; }

    void forward_training(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        source.running.observe(normalize_batch("batch_norm::forward_training", src, dst));
    }

    //! forward_training followed by a ReLU in the same pass (norm_modes::train_relu): dst =
    //! max(y, 0) with NaN kept, the bits of forward_training and an nn::relu after it.
    void forward_training_relu(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        static_assert(modes.train_relu, "batch_norm::forward_training_relu: a CPU schedule only");
        source.running.observe(normalize_batch("batch_norm::forward_training_relu", src, dst, true));
    }

    //! dst = max(y + add, 0) with NaN kept for forward_training's y (norm_modes::train_relu): a
    //! residual's add and the ReLU after it in the same pass, their bits. `add` has src's shape;
    //! `backward` (not backward_relu) is then this layer's gradient.
    void forward_training_add_relu(const tensor_view<const T>& src, const tensor_view<const T>& add,
                                   const tensor_view<T>& dst) {
        static_assert(modes.train_relu, "batch_norm::forward_training_add_relu: a CPU schedule only");
        if (add.shape() != src.shape())
            detail::fail<shape_error>("batch_norm::forward_training_add_relu", "add", src.shape(), add.shape());
        source.running.observe(
            normalize_batch("batch_norm::forward_training_add_relu", src, dst, true, add.data()));
    }

    //! Normalizes with this batch's mean and biased variance like forward_training, without
    //! touching the source's running buffers; `backward` is its gradient (through the
    //! statistics). Needs N*H*W >= 2 per channel.
    void forward_batch(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        (void)normalize_batch("batch_norm::forward_batch", src, dst);
    }

private:
    std::vector<moments<double>> normalize_batch(const char* where, const tensor_view<const T>& src, const tensor_view<T>& dst,
                                                 bool relu = false, const T* add = nullptr) {
        detail::check_norm_io(where, src, dst, channels_);
        detail::check_reducible(where, src.shape().per_channel(), 2,
                                "N*H*W per channel (the variance of one value is undefined)");
        std::vector<moments<double>> m;
        reserve_saved();
        // forward_training_relu keeps its coefficients: backward_relu recomputes the ReLU's mask
        // from src with them (the same expression, so the same signs) instead of reading dst
        const bool keep = relu && !add;
        relu_saved_ = false;
        if (keep) relu_coef_.resize(std::size_t(channels_));
        auto coefs = [this, keep](index_t c, const moments<double>& mc, const backend::extreme_hint&,
                                  backend::channel_coef<T>& k) {
            if (!finite_or_allowed(mc)) return false;
            save_batch(c, mc);
            k = coef(c);
            if (keep) relu_coef_[std::size_t(c)] = k;
            return true;
        };
        bool ok = false;
        if constexpr (modes.train_relu)
            ok = Backend::template forward<false, true>(src, dst, true, m, coefs, relu, add);
        else
            ok = Backend::template forward<false, true>(src, dst, true, m, coefs);
        if (!ok)
            for (index_t c = 0; c < channels_; ++c) check_finite(where, m[c], c);  // throws for the first such channel
        saved_kind_ = saved::training;
        saved_shape_ = src.shape();
        relu_saved_ = keep;
        return m;
    }

public:

    void forward_inference(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        detail::check_norm_io("batch_norm::forward_inference", src, dst, channels_);
        if (opt.nan == nan_policy::raise) check_finite_src("batch_norm::forward_inference", src);
        if constexpr (Source::uses_batch_at_inference) {
            const auto m = batch_moments("batch_norm::forward_inference", src);
            const auto b = channel_stats<float>::from_moments(m, variance_kind::biased);
            normalize_with(src, dst, source.inference_stats(&b));
        } else {
            normalize_with(src, dst, source.inference_stats(nullptr));
        }
    }

    //! forward_inference as coefficients (norm_modes::fold): k[c] such that forward_inference's
    //! dst = backend::normalize_value(src, k[c].mean, k[c].a, k[c].b) in channel c, for a caller
    //! that applies them inside another kernel. Sets saved_mean() / saved_inv_std() as
    //! forward_inference does, but backward_inference still needs a forward_inference (state_error
    //! otherwise). False (k untouched) under nan_policy::raise, whose input check only
    //! forward_inference does.
    bool inference_coefficients(backend::channel_coef<T>* k) {
        static_assert(modes.fold, "batch_norm::inference_coefficients: this source / backend cannot fold");
        if (opt.nan == nan_policy::raise) return false;
        const channel_stats<float>& s = source.inference_stats(nullptr);
        if (s.channels() != channels_)
            detail::fail<shape_error>("batch_norm", "statistics channels", channels_, s.channels());
        reserve_saved();
        for (index_t c = 0; c < channels_; ++c) save(c, s.mean[c], s.var[c]), k[c] = coef(c);
        saved_kind_ = saved::none;
        relu_saved_ = false;
        return true;
    }

    //! Rectification pass (seed 000): for rectifiable sources, estimate this layer's statistics
    //! from the batch, store them in the source, and normalize with the pass statistics
    //! (rectify_options::pass; by default the batch mean and biased variance, as PyTorch's
    //! training-mode forward does) so the following layers see rectified activations.
    void forward_rectify(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        if constexpr (Source::rectifiable) {
            detail::check_norm_io("batch_norm::forward_rectify", src, dst, channels_);
            if (!source.options.enabled) return forward_inference(src, dst);
            const auto m = batch_moments("batch_norm::forward_rectify", src);
            normalize_with(src, dst, source.rectify(m, src.shape().n));
        } else {
            forward_inference(src, dst);
        }
    }

    void backward(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst,
                  const tensor_view<T>& diff_src) {
        check_backward("batch_norm::backward", saved::training, src, diff_dst, diff_src);
        const double count = double(src.shape().per_channel());
        const std::vector<T> mean = saved_means();
        Backend::backward(src, diff_dst, diff_src, mean.data(), true, [&](index_t c, double sdy, double sdyx) {
            const T k = param_grads(c, sdy, sdyx);
            const T mdy = T(sdy / count), mdyx = T(sdyx * saved_var_grad_[c]);
            return backend::backward_coef<T>{k, -k * mdyx, -k * mdy};
        });
    }

    //! The gradient of forward_training_relu (the last forward; state_error otherwise): diff_dst
    //! is the ReLU's output gradient, masked inside both passes by dst > 0, which is recomputed
    //! from src with that forward's coefficients (the expression it computed, so the same signs:
    //! the bits of the layer and an nn::relu one by one) instead of read: one stream fewer in
    //! each pass.
    void backward_relu(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst,
                       const tensor_view<T>& diff_src) {
        static_assert(modes.train_relu, "batch_norm::backward_relu: a CPU schedule only");
        check_backward("batch_norm::backward_relu", saved::training, src, diff_dst, diff_src);
        if (!relu_saved_)
            throw state_error("batch_norm::backward_relu: the last forward was not forward_training_relu");
        const double count = double(src.shape().per_channel());
        const std::vector<T> mean = saved_means();
        Backend::backward(
            src, diff_dst, diff_src, mean.data(), true,
            [&](index_t c, double sdy, double sdyx) {
                const T k = param_grads(c, sdy, sdyx);
                const T mdy = T(sdy / count), mdyx = T(sdyx * saved_var_grad_[c]);
                return backend::backward_coef<T>{k, -k * mdyx, -k * mdy};
            },
            relu_coef_.data());
    }

    void backward_inference(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst,
                            const tensor_view<T>& diff_src) {
        check_backward("batch_norm::backward_inference", saved::inference, src, diff_dst, diff_src);
        const std::vector<T> mean = saved_means();
        Backend::backward(src, diff_dst, diff_src, mean.data(), Affine::enabled, [&](index_t c, double sdy, double sdyx) {
            const T k = param_grads(c, sdy, sdyx);
            return backend::backward_coef<T>{k, -k * T(0), -k * T(0)};
        });
    }

private:
    using saved = detail::bn_saved;

    void check_finite(const char* where, const moments<double>& m, index_t c) const {
        if (opt.nan == nan_policy::raise && !(std::isfinite(m.mean) && std::isfinite(m.m2)))
            detail::throw_non_finite(where, detail::concat("channel ", c), detail::concat("mean ", m.mean, ", M2 ", m.m2));
    }
    //! nan_policy::raise outside training: one pass over src (only in that policy).
    void check_finite_src(const char* where, const tensor_view<const T>& src) const {
        const shape4 s = src.shape();
        for (index_t n = 0; n < s.n; ++n)
            for (index_t c = 0; c < s.c; ++c) {
                const T* p = src.data() + (n * s.c + c) * s.spatial();
                for (index_t i = 0; i < s.spatial(); ++i)
                    if (!std::isfinite(double(p[i])))
                        throw numeric_error(detail::concat(where, ": src(n=", n, ", c=", c, ") has the non-finite value ",
                                                           double(p[i]), " under nan_policy::raise"));
            }
    }
    std::vector<moments<double>> batch_moments(const char* where, const tensor_view<const T>& src) const {
        std::vector<moments<double>> m;
        Backend::template statistics<false, true>(src, m, nullptr);
        for (index_t c = 0; c < channels_; ++c) check_finite(where, m[c], c);
        return m;
    }
    //! False when nan_policy::raise forbids these moments (check_finite would throw).
    bool finite_or_allowed(const moments<double>& m) const {
        return opt.nan != nan_policy::raise || (std::isfinite(m.mean) && std::isfinite(m.m2));
    }
    //! Sizes the saved-statistics buffers before channels write them from several threads.
    void reserve_saved() {
        saved_mean_.resize(std::size_t(channels_));
        saved_inv_std_.resize(std::size_t(channels_));
        saved_var_grad_.resize(std::size_t(channels_));
    }
    void save(index_t c, double mean, double var) {
        if (saved_mean_.size() != std::size_t(channels_)) {
            saved_mean_.resize(std::size_t(channels_));
            saved_inv_std_.resize(std::size_t(channels_));
        }
        saved_mean_[c] = Stat(mean);
        saved_inv_std_[c] = Stat(1.0 / (opt.eps_at == eps_placement::inside_sqrt ? std::sqrt(var + opt.eps)
                                                                                  : std::sqrt(var) + opt.eps));
    }
    //! Saves batch statistics and the factor of backward's variance term: with D the
    //! denominator, v the variance over d = count (biased) or count - 1 values, the term is
    //! k (x_i - mean) sum_j dy_j (x_j - mean) * istd * g / d, g = 2 dD/dv = 1/D (eps inside the
    //! root) or 1/sqrt(v) (outside; 0 for a constant channel, where the sum vanishes anyway).
    void save_batch(index_t c, const moments<double>& m) {
        const double v = m.variance(opt.batch_variance);
        save(c, m.mean, v);
        if (saved_var_grad_.size() != std::size_t(channels_)) saved_var_grad_.resize(std::size_t(channels_));
        const double istd = opt.eps_at == eps_placement::inside_sqrt ? 1.0 / std::sqrt(v + opt.eps) : 1.0 / (std::sqrt(v) + opt.eps);
        const double g = opt.eps_at == eps_placement::inside_sqrt ? istd : (v > 0 ? 1.0 / std::sqrt(v) : 0.0);
        const double d = opt.batch_variance == variance_kind::unbiased ? m.count - 1.0 : m.count;
        saved_var_grad_[c] = istd * g / d;
    }
    //! Normalize coefficients of channel c from the saved statistics.
    backend::channel_coef<T> coef(index_t c) const {
        const double gamma = Affine::enabled ? double(scale[c]) : 1.0;
        const double beta = Affine::enabled ? double(shift[c]) : 0.0;
        return {T(saved_mean_[c]), T(gamma * saved_inv_std_[c]), T(beta)};
    }
    //! Accumulates channel c's parameter gradients from its sums (sum dy, sum dy (x - mean)) and
    //! returns the apply factor k = gamma * inv_std.
    T param_grads(index_t c, double sdy, double sdyx) {
        const double istd = saved_inv_std_[c];
        if constexpr (Affine::enabled) {
            diff_scale[c] += Stat(sdyx * istd);
            diff_shift[c] += Stat(sdy);
        }
        return T((Affine::enabled ? double(scale[c]) : 1.0) * istd);
    }
    std::vector<T> saved_means() const { return std::vector<T>(saved_mean_.begin(), saved_mean_.end()); }
    void normalize_with(const tensor_view<const T>& src, const tensor_view<T>& dst, const channel_stats<float>& s) {
        if (s.channels() != channels_)
            detail::fail<shape_error>("batch_norm", "statistics channels", channels_, s.channels());
        std::vector<backend::channel_coef<T>> k(static_cast<std::size_t>(channels_));
        for (index_t c = 0; c < channels_; ++c) save(c, s.mean[c], s.var[c]), k[c] = coef(c);
        Backend::normalize(src, dst, k.data());
        saved_kind_ = saved::inference;
        saved_shape_ = src.shape();
        relu_saved_ = false;
    }
    void check_backward(const char* where, saved want, const tensor_view<const T>& src,
                        const tensor_view<const T>& diff_dst, const tensor_view<T>& diff_src) const {
        detail::check_bn_saved(where, want, saved_kind_, "forward_training/forward_batch");
        detail::check_backward_io(where, true, saved_shape_, src, diff_dst, diff_src);
    }

    index_t channels_ = 0;
    std::vector<Stat> saved_mean_, saved_inv_std_;
    std::vector<double> saved_var_grad_;  //!< backward's variance-term factor (training / batch mode)
    std::vector<backend::channel_coef<T>> relu_coef_;  //!< forward_training_relu's coefficients (backward_relu)
    bool relu_saved_ = false;                          //!< the last forward was forward_training_relu
    saved saved_kind_ = saved::none;
    shape4 saved_shape_{};
};

}  // namespace shiftnorm
