// SPDX-License-Identifier: MIT
// The kernel interface of group normalization (and instance / layer norm): what a backend supplies.
#pragma once

#include <type_traits>
#include <utility>
#include <vector>

#include "shiftnorm/backend/channel_pass.hpp"
#include "shiftnorm/core/moments.hpp"
#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::backend {

//! Backward coefficients of one (sample, group): dx = inv_std * (gamma_c * dy - m_g - (x - mean) * m_gx)
//! for each channel c of the group (gamma_c given per channel).
template <class T>
struct group_backward_coef {
    T mean{}, inv_std{}, m_g{}, m_gx{};
};

//! A group-pass backend supplies the data passes of group_norm, whose statistics are per sample
//! n and group g (the G groups of C/G consecutive channels: one contiguous block of C/G*H*W
//! values per (n, g), indexed k = n * G + g). The layer keeps modes, saved state, checks, the
//! NaN policy, coefficient math and the parameter gradients. Every (n, g) is computed as on
//! one thread, so results do not depend on the thread count. Functions:
//!
//!  - `group_forward(src, dst, G, m, coef)`: the moments<double> of every (n, g) into m
//!    (size N*G), then `bool coef(n, g, m[k], channel_coef<T>* k)` fills the C/G coefficients
//!    of the group's channels and dst = (src - mean) * a + b per channel. A coef returning false
//!    refuses its (n, g) (its planes are not written): group_forward then returns false.
//!  - `group_backward(src, dy, dx, G, mean, gamma, coef)`: for every (n, g) with mean[k] (size
//!    N*G), each channel's sum(dy) and sum(dy * (x - mean)) over its plane, then
//!    `group_backward_coef<T> coef(n, g, const double* sum_dy, const double* sum_dy_xc)`
//!    (C/G sums each) and dx by group_backward_coef with gamma[c] (size C).
//!
//! coef may run on several threads at once, for different (n, g).
//! Backends: the CPU schedules (backend/cpu/schedule.hpp; blocks are contiguous, so every
//! schedule runs them in memory order) and the naive reference (backend/reference).
namespace detail {
//! A coefficient function for is_group_backend's probe.
struct probe_group_coef {
    group_backward_coef<float> operator()(index_t, index_t, const double*, const double*) const { return {}; }
};
}  // namespace detail

template <class B, class = void>
struct is_group_backend : std::false_type {};
template <class B>
struct is_group_backend<
    B, std::void_t<decltype(B::group_backward(
           std::declval<const tensor_view<const float>&>(), std::declval<const tensor_view<const float>&>(),
           std::declval<const tensor_view<float>&>(), index_t(1), static_cast<const float*>(nullptr),
           static_cast<const float*>(nullptr),
           detail::probe_group_coef{}))>>
    : std::true_type {};
template <class B>
inline constexpr bool is_group_backend_v = is_group_backend<B>::value;

}  // namespace shiftnorm::backend
