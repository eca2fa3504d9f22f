// SPDX-License-Identifier: MIT
// Adapter that makes any shiftnorm normalization layer (batch_norm, group_norm, ...) a network module.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>

#include "shiftnorm/core/moments.hpp"
#include "shiftnorm/nn/module.hpp"
#include "shiftnorm/norm/layer_concept.hpp"

namespace shiftnorm::nn {

//! The engine's name for the knobs every normalization layer takes (norm/layer_concept.hpp).
using shiftnorm::norm_config;

//! How a network builds and drives a normalization layer type Norm, from what the layer
//! declares (the concept of norm/layer_concept.hpp: kind, modes, grouped, configure,
//! visit_state); nothing is probed. Specialize it for a layer with another interface.
template <class Norm>
struct norm_traits {
    static_assert(is_norm_layer_v<Norm>,
                  "nn::norm_layer<Norm>: Norm must declare the normalization-layer concept of "
                  "shiftnorm/norm/layer_concept.hpp (static constexpr kind, modes, grouped; configure(norm_config); "
                  "visit_state(visitor); zero_grad())");
    static constexpr bool batch_like = Norm::kind == norm_interface::batch_like;

    //! The layer for `channels`, configured by `cfg` (whose eps / momentum the layer's configure
    //! checks).
    static Norm make(index_t channels, const norm_config& cfg) {
        if constexpr (Norm::grouped) {
            if (cfg.exact_groups && cfg.groups > 0 && channels % cfg.groups != 0)
                throw value_error(shiftnorm::detail::concat("norm_config: groups=", cfg.groups, " does not divide the ",
                                                            channels, " channels of a normalization layer (exact_groups)"));
            const index_t g = cfg.groups < 0 ? channels : std::gcd(channels, cfg.groups > 0 ? cfg.groups : index_t(1));
            Norm n(channels, g);
            n.configure(cfg);
            return n;
        } else {
            Norm n(channels);
            n.configure(cfg);
            return n;
        }
    }
    //! Whether the layer can run mode::batch (normalize with the batch's statistics without
    //! updating stored ones); per-sample layers have no stored statistics and always can.
    static constexpr bool supports_batch_mode = !batch_like || Norm::modes.batch;

    static void forward(Norm& n, const tensor<float>& src, tensor<float>& dst, mode m) {
        if constexpr (batch_like) {
            if (m == mode::train) {
                n.forward_training(src.view(), dst.view());
            } else if (m == mode::batch) {
                if constexpr (Norm::modes.batch)
                    n.forward_batch(src.view(), dst.view());
                else
                    throw state_error("norm_layer::forward: this normalization layer has no batch-statistics inference "
                                      "mode (mode::batch needs forward_batch)");
            } else if (m == mode::rectify) {
                if constexpr (Norm::modes.rectify)
                    n.forward_rectify(src.view(), dst.view());
                else
                    n.forward_inference(src.view(), dst.view());
            } else {
                n.forward_inference(src.view(), dst.view());
            }
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
            else if constexpr (Norm::modes.backward_inference)
                n.backward_inference(src.view(), diff_dst.view(), diff_src.view());
            else
                throw state_error("norm_layer::backward: this normalization layer has no gradient for inference mode");
        } else {
            (void)m;
            n.backward(src.view(), diff_dst.view(), diff_src.view());
        }
    }
};

namespace detail {
//! visit_state visitor that appends a layer's state to a param_set under a prefix.
struct collect_state {
    const std::string& prefix;
    param_set& out;
    void tensor(const char* name, float* data, float* grad, index_t size, state_role role) {
        const param_kind kind = role == state_role::weight ? param_kind::norm_weight
                                : role == state_role::bias ? param_kind::norm_bias
                                                           : param_kind::buffer;
        out.params.push_back({join_name(prefix, name), {size}, data, grad, size, kind});
    }
    void counter(const char* name, long long* value) { out.counters.push_back({join_name(prefix, name), value}); }
};
//! visit_state visitor that sets weights to 1 and biases to 0 (PyTorch's reset_parameters).
struct reset_affine {
    void tensor(const char*, float* data, float*, index_t size, state_role role) {
        if (role == state_role::weight) std::fill(data, data + size, 1.0f);
        if (role == state_role::bias) std::fill(data, data + size, 0.0f);
    }
    void counter(const char*, long long*) {}
};
}  // namespace detail

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

    void reset_parameters(rng_type&) override { impl.visit_state(nn::detail::reset_affine{}); }

    const tensor<float>& forward(const tensor<float>& src, mode m) override {
        output_shape(src.shape());
        nn::detail::ensure_shape(dst_, src.shape());
        traits::forward(impl, src, dst_, m);
        src_ = &src;
        mode_ = m;
        relu_ = false;
        if (observer) observer(src, dst_, m);
        return dst_;
    }

    //! Norm declares norm_modes::train_relu and no observer watches (it would see the ReLU's
    //! output instead of the layer's).
    bool takes_train_relu() const override {
        if constexpr (traits::batch_like) {
            if constexpr (Norm::modes.train_relu) return !observer;
        }
        return false;
    }
    //! mode::train forward with the ReLU after it fused (Norm::forward_training_relu); the next
    //! backward takes the ReLU's output gradient (Norm::backward_relu). Same bits as the two.
    const tensor<float>& forward_train_relu(const tensor<float>& src) override {
        if (!takes_train_relu()) return module::forward_train_relu(src);
        if constexpr (traits::batch_like) {
            if constexpr (Norm::modes.train_relu) {
                output_shape(src.shape());
                nn::detail::ensure_shape(dst_, src.shape());
                impl.forward_training_relu(src.view(), dst_.view());
                src_ = &src;
                mode_ = mode::train;
                relu_ = true;
            }
        }
        return dst_;
    }

    //! As takes_train_relu: a batch norm on a CPU schedule without an observer.
    bool takes_train_add_relu() const override { return takes_train_relu(); }
    //! mode::train forward, then + add and a ReLU in the same pass (Norm::forward_training_add_relu);
    //! the next backward takes the gradient of the layer's own output (the caller masks by the
    //! ReLU). Same bits as the layer, the add and the ReLU one by one.
    const tensor<float>& forward_train_add_relu(const tensor<float>& src, const tensor<float>& add) override {
        if (!takes_train_add_relu()) return module::forward_train_add_relu(src, add);
        if constexpr (traits::batch_like) {
            if constexpr (Norm::modes.train_relu) {
                output_shape(src.shape());
                nn::detail::ensure_shape(dst_, src.shape());
                impl.forward_training_add_relu(src.view(), add.view(), dst_.view());
                src_ = &src;
                mode_ = mode::train;
                relu_ = false;
            }
        }
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        nn::detail::check_forwarded("norm_layer::backward", src_);
        nn::detail::ensure_shape(diff_src_, src_->shape());
        if constexpr (traits::batch_like) {
            if constexpr (Norm::modes.train_relu) {
                if (relu_) {
                    impl.backward_relu(src_->view(), diff_dst.view(), diff_src_.view());
                    return diff_src_;
                }
            }
        }
        traits::backward(impl, *src_, diff_dst, diff_src_, mode_);
        return diff_src_;
    }

    //! Foldable in mode::eval without an observer when Norm declares norm_modes::fold (and the
    //! layer agrees at run time: inference_coefficients).
    bool inference_affine(mode m, std::vector<backend::channel_coef<float>>& k) override {
        if constexpr (traits::batch_like) {
            if constexpr (Norm::modes.fold) {
                if (m != mode::eval || observer) return false;
                k.resize(std::size_t(channels_));
                return impl.inference_coefficients(k.data());
            }
        }
        (void)m, (void)k;
        return false;
    }

    //! The layer's declared state (visit_state) under `prefix`.
    void collect(const std::string& prefix, param_set& out) override {
        impl.visit_state(nn::detail::collect_state{prefix, out});
    }

    std::string describe() const override {
        return shiftnorm::detail::concat(traits::batch_like ? "batch_norm(" : "norm(", channels_, ")");
    }

private:
    index_t channels_;
    const tensor<float>* src_ = nullptr;
    mode mode_ = mode::eval;
    bool relu_ = false;  //!< the last forward was forward_train_relu
    tensor<float> dst_, diff_src_;
};

}  // namespace shiftnorm::nn
