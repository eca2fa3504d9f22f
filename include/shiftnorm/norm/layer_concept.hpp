// SPDX-License-Identifier: MIT
// What a normalization layer declares about itself: its call set, its modes, its state.
#pragma once

#include <cmath>
#include <type_traits>
#include <utility>

#include "shiftnorm/core/checks.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm {

//! Construction knobs a network passes to every normalization layer it builds; each layer's
//! `configure` applies the ones it has (and rejects `reference_bn` when it is not a BN).
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

//! eps finite and >= 0, momentum in [0, 1]: value_error naming the field otherwise.
inline void check_norm_config(const norm_config& cfg) {
    if (!(cfg.eps >= 0.0) || !std::isfinite(cfg.eps)) detail::fail("norm_config", "eps", "finite and >= 0", cfg.eps);
    if (!(cfg.momentum >= 0.0 && cfg.momentum <= 1.0))
        detail::fail("norm_config", "momentum", "a value in [0, 1]", cfg.momentum);
}

//! The call set of a normalization layer.
enum class norm_interface {
    //! BN-like: forward_training / forward_inference (+ the optional calls of norm_modes),
    //! backward (after training or batch mode); constructed from (channels).
    batch_like,
    //! Statistics from each sample alone (GroupNorm, no normalization): forward / backward, one
    //! call for every mode; constructed from (channels), or (channels, groups) when `grouped`.
    per_sample,
};

//! The optional calls of a batch-like layer.
struct norm_modes {
    bool rectify = false;             //!< forward_rectify (else mode::rectify runs forward_inference)
    bool batch = false;               //!< forward_batch: the batch's statistics, stored ones untouched
    bool backward_inference = false;  //!< gradient with the statistics frozen (attacks in P mode)
    //! bool inference_coefficients(backend::channel_coef<float>* k): forward_inference is the
    //! per-channel map y = backend::normalize_value(x, k[c].mean, k[c].a, k[c].b) (what the CPU
    //! normalize pass computes), so a network may fold it into the layer before it (nn::infer:
    //! a convolution's epilogue, same bits). The call returns false when forward_inference must
    //! run as it is (e.g. nan_policy::raise checks the input).
    bool fold = false;
    //! forward_training_relu(src, dst) / backward_relu(src, diff_dst, diff_src): training with a
    //! ReLU after the layer fused into its passes (dst = relu(forward_training's dst);
    //! backward_relu takes the ReLU's output gradient and masks it by dst > 0 inside its own
    //! passes, recomputing that sign from src rather than reading dst): the bits of the layer and
    //! a ReLU one by one, two passes fewer.
    bool train_relu = false;
};

//! Role of one tensor of a layer's state (PyTorch's split of parameters and buffers).
enum class state_role { weight, bias, buffer };

//! A normalization layer type `N` is usable by the engine (nn::norm_layer<N>) when it declares
//!   static constexpr norm_interface kind;        // its call set ("kind", not "interface":
//!                                                // a macro once windows.h is included)
//!   static constexpr norm_modes modes;           // batch-like layers: its optional calls
//!   static constexpr bool grouped;               // per-sample layers: built from (C, groups)
//!   void configure(const norm_config&);          // applies eps, momentum, ... (throws for knobs it lacks)
//!   template <class V> void visit_state(V&& v);  // v.tensor(name, data, grad, size, role) for
//!                                                // every parameter (grad non-null) and buffer
//!                                                // (grad null), v.counter(name, long long*) for
//!                                                // counters; names are PyTorch's
//!   void zero_grad();
//! The engine reads nothing else of the layer: no member is probed.
template <class N, class = void>
struct is_norm_layer : std::false_type {};

namespace detail {
//! Visitor that ignores everything (used to check that visit_state exists).
struct null_state_visitor {
    void tensor(const char*, float*, float*, index_t, state_role) {}
    void counter(const char*, long long*) {}
};
}  // namespace detail

template <class N>
struct is_norm_layer<N, std::void_t<decltype(N::kind), decltype(N::modes), decltype(N::grouped),
                                    decltype(std::declval<N&>().configure(std::declval<const norm_config&>())),
                                    decltype(std::declval<N&>().visit_state(std::declval<detail::null_state_visitor&>())),
                                    decltype(std::declval<N&>().zero_grad())>>
    : std::bool_constant<std::is_same_v<std::decay_t<decltype(N::kind)>, norm_interface> &&
                         std::is_same_v<std::decay_t<decltype(N::modes)>, norm_modes> &&
                         std::is_same_v<std::decay_t<decltype(N::grouped)>, bool>> {};

template <class N>
inline constexpr bool is_norm_layer_v = is_norm_layer<N>::value;

namespace detail {
//! For configure() of layers that are not a BatchNorm.
inline void reject_reference_bn(const norm_config& cfg, const char* layer) {
    if (cfg.reference_bn)
        throw value_error(concat("norm_config: reference_bn applies to batch_norm layers only, not to ", layer));
}
}  // namespace detail

}  // namespace shiftnorm
