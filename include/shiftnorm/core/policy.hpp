// SPDX-License-Identifier: MIT
// Small policy types shared by the normalization layers: affine, precision, NaN policy.
#pragma once

#include <type_traits>

namespace shiftnorm {

//! Learnable per-channel scale (gamma) and shift (beta) after normalization.
struct affine {
    static constexpr bool enabled = true;
};
//! No affine transform: y = normalized x.
struct no_affine {
    static constexpr bool enabled = false;
};
template <class A>
inline constexpr bool is_affine_policy_v = std::is_same_v<A, affine> || std::is_same_v<A, no_affine>;

//! Precision policy (ATen style): Src is the activation type, Stat the type of stored
//! statistics and parameters, Acc the accumulator into which partial sums are merged.
template <class Src = float, class Stat = Src, class Acc = double>
struct precision {
    using src_type = Src;
    using stat_type = Stat;
    using acc_type = Acc;
    static_assert(std::is_floating_point_v<Src> && std::is_floating_point_v<Stat> && std::is_floating_point_v<Acc>,
                  "precision<Src, Stat, Acc>: all three must be floating-point types");
    static_assert(sizeof(Acc) >= sizeof(Src), "precision: the accumulator must be at least as wide as Src");
};
using fp32 = precision<float, float, double>;
using fp64 = precision<double, double, double>;

template <class P, class = void>
struct is_precision : std::false_type {};
template <class P>
struct is_precision<P, std::void_t<typename P::src_type, typename P::stat_type, typename P::acc_type>>
    : std::true_type {};

//! What a layer does when statistics it computes from `src` are not finite (NaN or Inf in the
//! input): `propagate` (default, like PyTorch: the channel's outputs become NaN) or `raise`
//! (throw numeric_error naming the layer and channel). Stored statistics are never updated
//! from a non-finite batch under `raise`.
enum class nan_policy { propagate, raise };

}  // namespace shiftnorm
