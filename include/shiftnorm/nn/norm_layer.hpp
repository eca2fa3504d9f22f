// SPDX-License-Identifier: MIT
// Adapter that makes any shiftnorm normalization layer (batch_norm, group_norm, ...) a network module.
#pragma once

#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>

#include "shiftnorm/core/moments.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! Construction knobs a network passes to every normalization layer it builds.
struct norm_config {
    double eps = 1e-5;       //!< added to the variance (BN/GN), PyTorch's default
    double momentum = 0.1;   //!< running-statistics EMA weight (layers with running statistics)
    index_t groups = 32;     //!< group count for group-wise layers (reduced to gcd(groups, C)
                             //!< unless exact_groups); < 0: one group per channel (instance
                             //!< norm), 1: layer norm
    bool exact_groups = false;  //!< throw value_error when groups does not divide a layer's C
    //! Seed 003's reference BN baseline: 1 / (sqrt(var) + eps) with the UNBIASED batch variance,
    //! instead of PyTorch's 1 / sqrt(var + eps) with the biased one (batch_norm layers only).
    bool reference_bn = false;
};

namespace detail {
template <class N, class = void>
struct has_forward_training : std::false_type {};
template <class N>
struct has_forward_training<N, std::void_t<decltype(std::declval<N&>().forward_training(
                                   std::declval<tensor_view<const float>>(), std::declval<tensor_view<float>>()))>>
    : std::true_type {};
template <class N, class = void>
struct has_forward_rectify : std::false_type {};
template <class N>
struct has_forward_rectify<N, std::void_t<decltype(std::declval<N&>().forward_rectify(
                                  std::declval<tensor_view<const float>>(), std::declval<tensor_view<float>>()))>>
    : std::true_type {};
template <class N, class = void>
struct has_backward_inference : std::false_type {};
template <class N>
struct has_backward_inference<N, std::void_t<decltype(std::declval<N&>().backward_inference(
                                     std::declval<tensor_view<const float>>(), std::declval<tensor_view<const float>>(),
                                     std::declval<tensor_view<float>>()))>> : std::true_type {};
template <class N, class = void>
struct has_forward_batch : std::false_type {};
template <class N>
struct has_forward_batch<N, std::void_t<decltype(std::declval<N&>().forward_batch(
                                std::declval<tensor_view<const float>>(), std::declval<tensor_view<float>>()))>>
    : std::true_type {};
template <class N, class = void>
struct has_running : std::false_type {};
template <class N>
struct has_running<N, std::void_t<decltype(std::declval<N&>().source.running.stats.mean)>> : std::true_type {};
template <class N, class = void>
struct has_running_range : std::false_type {};
template <class N>
struct has_running_range<N, std::void_t<decltype(std::declval<N&>().running_mean),
                                        decltype(std::declval<N&>().running_range)>> : std::true_type {};
template <class N, class = void>
struct has_opt_momentum : std::false_type {};
template <class N>
struct has_opt_momentum<N, std::void_t<decltype(std::declval<N&>().opt.momentum)>> : std::true_type {};
template <class N, class = void>
struct has_opt_eps_at : std::false_type {};
template <class N>
struct has_opt_eps_at<N, std::void_t<decltype(std::declval<N&>().opt.eps_at), decltype(std::declval<N&>().opt.batch_variance)>>
    : std::true_type {};
template <class N, class = void>
struct has_opt_eps : std::false_type {};
template <class N>
struct has_opt_eps<N, std::void_t<decltype(std::declval<N&>().opt.eps)>> : std::true_type {};
}  // namespace detail

//! How a network builds and drives a normalization layer type Norm. The default covers
//!  - batch-norm-like layers (forward_training / forward_inference / forward_rectify,
//!    backward / backward_inference, constructed from (channels));
//!  - group-norm-like layers (forward / backward, constructed from (channels, groups)).
//! Specialize it for a layer with another interface.
template <class Norm>
struct norm_traits {
    static constexpr bool batch_like = detail::has_forward_training<Norm>::value;

    static Norm make(index_t channels, const norm_config& cfg) {
        validate(cfg);
        if constexpr (!batch_like && std::is_constructible_v<Norm, index_t, index_t>)
            if (cfg.exact_groups && cfg.groups > 0 && channels % cfg.groups != 0)
                throw value_error(shiftnorm::detail::concat("norm_config: groups=", cfg.groups, " does not divide the ",
                                                            channels, " channels of a normalization layer (exact_groups)"));
        if constexpr (batch_like) {
            Norm n(channels);
            configure(n, cfg);
            return n;
        } else if constexpr (std::is_constructible_v<Norm, index_t, index_t>) {
            const index_t g = cfg.groups < 0 ? channels : std::gcd(channels, cfg.groups > 0 ? cfg.groups : index_t(1));
            Norm n(channels, g);
            configure(n, cfg);
            return n;
        } else {
            Norm n(channels);
            configure(n, cfg);
            return n;
        }
    }
    //! eps finite and >= 0, momentum in [0, 1] (checked here: configure() sets them after the
    //! layer's constructor, which would otherwise be bypassed).
    static void validate(const norm_config& cfg) {
        if (!(cfg.eps >= 0.0) || !std::isfinite(cfg.eps)) shiftnorm::detail::fail("norm_config", "eps", "finite and >= 0", cfg.eps);
        if (!(cfg.momentum >= 0.0 && cfg.momentum <= 1.0))
            shiftnorm::detail::fail("norm_config", "momentum", "a value in [0, 1]", cfg.momentum);
    }
    static void configure(Norm& n, const norm_config& cfg) {
        validate(cfg);
        if constexpr (detail::has_opt_eps<Norm>::value) n.opt.eps = cfg.eps;
        if constexpr (detail::has_running<Norm>::value) n.source.running.momentum = cfg.momentum;
        if constexpr (detail::has_opt_momentum<Norm>::value) n.opt.momentum = cfg.momentum;
        if constexpr (detail::has_opt_eps_at<Norm>::value) {
            using O = decltype(n.opt);
            n.opt.eps_at = cfg.reference_bn ? decltype(O::eps_at)::outside_sqrt : decltype(O::eps_at)::inside_sqrt;
            n.opt.batch_variance = cfg.reference_bn ? variance_kind::unbiased : variance_kind::biased;
        } else if (cfg.reference_bn) {
            throw value_error("norm_config: reference_bn applies to batch_norm layers only");
        }
    }
    //! Whether the layer can run mode::batch (normalize with the batch's statistics without
    //! updating stored ones); group-wise layers have no stored statistics and always can.
    static constexpr bool supports_batch_mode = !batch_like || detail::has_forward_batch<Norm>::value;

    static void forward(Norm& n, const tensor<float>& src, tensor<float>& dst, mode m) {
        if constexpr (batch_like) {
            if (m == mode::train)
                n.forward_training(src.view(), dst.view());
            else if (m == mode::batch) {
                if constexpr (detail::has_forward_batch<Norm>::value)
                    n.forward_batch(src.view(), dst.view());
                else
                    throw state_error("norm_layer::forward: this normalization layer has no batch-statistics inference "
                                      "mode (mode::batch needs forward_batch)");
            }
            else if (m == mode::rectify && detail::has_forward_rectify<Norm>::value) {
                if constexpr (detail::has_forward_rectify<Norm>::value) n.forward_rectify(src.view(), dst.view());
            }
            else
                n.forward_inference(src.view(), dst.view());
        } else {
            (void)m;
            n.forward(src.view(), dst.view());
        }
    }
    static void backward(Norm& n, const tensor<float>& src, const tensor<float>& diff_dst, tensor<float>& diff_src,
                         mode m) {
        if constexpr (batch_like) {
            if (m == mode::train || m == mode::batch)
                n.backward(src.view(), diff_dst.view(), diff_src.view());
            else if constexpr (detail::has_backward_inference<Norm>::value)
                n.backward_inference(src.view(), diff_dst.view(), diff_src.view());
            else
                throw state_error("norm_layer::backward: this normalization layer has no gradient for inference mode");
        } else {
            (void)m;
            n.backward(src.view(), diff_dst.view(), diff_src.view());
        }
    }
};

//! A normalization layer as a module. PyTorch names: `weight` (scale), `bias` (shift) and, for
//! layers with running statistics, `running_mean`, `running_var` (unbiased) and
//! `num_batches_tracked`; RobustNorm-like layers export `running_mean` and `running_range`. The
//! mode of forward picks the layer's call (train -> forward_training, eval -> forward_inference,
//! rectify -> forward_rectify, batch -> forward_batch); backward uses the matching gradient
//! (backward after training and batch, backward_inference otherwise).
template <class Norm>
class norm_layer : public module {
public:
    using traits = norm_traits<Norm>;
    Norm impl;
    //! Optional tap called after every forward with the layer's input and output (feature
    //! analysis, e.g. seed 000's Figs. 2 and 3); the tensors are valid only during the call.
    std::function<void(const tensor<float>& src, const tensor<float>& dst, mode m)> observer;

    explicit norm_layer(index_t channels, const norm_config& cfg = {}) : impl(traits::make(channels, cfg)), channels_(channels) {}

    index_t channels() const { return channels_; }

    shape4 output_shape(const shape4& s) const override {
        if (s.c != channels_) shiftnorm::detail::fail<shape_error>("norm_layer", "src channels", channels_, s.c);
        return s;
    }

    void reset_parameters(rng_type&) override {
        std::fill(impl.scale.begin(), impl.scale.end(), 1.0f);
        std::fill(impl.shift.begin(), impl.shift.end(), 0.0f);
    }

    const tensor<float>& forward(const tensor<float>& src, mode m) override {
        output_shape(src.shape());
        nn::detail::ensure_shape(dst_, src.shape());
        traits::forward(impl, src, dst_, m);
        src_ = &src;
        mode_ = m;
        if (observer) observer(src, dst_, m);
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        nn::detail::check_forwarded("norm_layer::backward", src_);
        nn::detail::ensure_shape(diff_src_, src_->shape());
        traits::backward(impl, *src_, diff_dst, diff_src_, mode_);
        return diff_src_;
    }

    void collect(const std::string& prefix, param_set& out) override {
        if (!impl.scale.empty()) {
            out.params.push_back({join_name(prefix, "weight"), {channels_}, impl.scale.data(), impl.diff_scale.data(),
                                  channels_, param_kind::norm_weight});
            out.params.push_back({join_name(prefix, "bias"), {channels_}, impl.shift.data(), impl.diff_shift.data(),
                                  channels_, param_kind::norm_bias});
        }
        if constexpr (nn::detail::has_running<Norm>::value) {
            auto& r = impl.source.running;
            out.params.push_back({join_name(prefix, "running_mean"), {channels_}, r.stats.mean.data(), nullptr,
                                  channels_, param_kind::buffer});
            out.params.push_back({join_name(prefix, "running_var"), {channels_}, r.stats.var.data(), nullptr,
                                  channels_, param_kind::buffer});
            out.counters.push_back({join_name(prefix, "num_batches_tracked"), &r.num_batches_tracked});
        }
        if constexpr (nn::detail::has_running_range<Norm>::value) {  // RobustNorm's mean and range
            out.params.push_back({join_name(prefix, "running_mean"), {channels_}, impl.running_mean.data(), nullptr,
                                  channels_, param_kind::buffer});
            out.params.push_back({join_name(prefix, "running_range"), {channels_}, impl.running_range.data(), nullptr,
                                  channels_, param_kind::buffer});
        }
    }

    std::string describe() const override {
        return shiftnorm::detail::concat(traits::batch_like ? "batch_norm(" : "norm(", channels_, ")");
    }

private:
    index_t channels_;
    const tensor<float>* src_ = nullptr;
    mode mode_ = mode::eval;
    tensor<float> dst_, diff_src_;
};

}  // namespace shiftnorm::nn
