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

//! Precision policy: Src is the activation type, Stat the type of stored statistics and
//! parameters. Partial sums are always merged in fp64 (`moments<double>`, core/moments.hpp):
//! there is no accumulator parameter, because no kernel would read it.
template <class Src = float, class Stat = Src>
struct precision {
    using src_type = Src;
    using stat_type = Stat;
    static_assert(std::is_floating_point_v<Src> && std::is_floating_point_v<Stat>,
                  "precision<Src, Stat>: both must be floating-point types");
};
using fp32 = precision<float, float>;
using fp64 = precision<double, double>;

template <class P, class = void>
struct is_precision : std::false_type {};
template <class P>
struct is_precision<P, std::void_t<typename P::src_type, typename P::stat_type>> : std::true_type {};

//! What a layer does when statistics it computes from `src` are not finite (NaN or Inf in the
//! input): `propagate` (default, like PyTorch: the channel's outputs become NaN) or `raise`
//! (throw numeric_error naming the layer and channel). Stored statistics are never updated
//! from a non-finite batch under `raise`.
enum class nan_policy { propagate, raise };

}  // namespace shiftnorm
