// SPDX-License-Identifier: MIT
// The kernel interface of the per-channel normalization layers: what a backend supplies.
#pragma once

#include <type_traits>
#include <utility>
#include <vector>

#include "shiftnorm/core/moments.hpp"
#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::backend {

//! Normalize coefficients of one channel: y = (x - mean) * a + b (a = gamma * inv_std or
//! gamma / denominator, b = beta). x - mean first keeps precision at large |mean|/std.
template <class T>
struct channel_coef {
    T mean{}, a{}, b{};
};

//! (x - mean) * a + b: the one expression every CPU normalize pass applies, so that a pass fused
//! into another kernel (nn::conv2d's inference epilogue) gives the same bits as the layer's own.
template <class T>
inline T normalize_value(T x, T mean, T a, T b) {
    return (x - mean) * a + b;
}

//! max(x, 0) with NaN kept (x > 0 or x is NaN: x, else +0): the one ReLU expression of every
//! kernel (nn::relu, the fused epilogues and the training fusion of batch norm), so that fusion
//! does not change a bit.
template <class T>
inline T relu_value(T x) {
    return (x > T(0) || x != x) ? x : T(0);
}

//! The ReLU's gradient from its output y: dy where y > 0, else +0 (PyTorch's subgradient 0 at 0;
//! NaN outputs pass no gradient).
template <class T>
inline T relu_grad_value(T y, T dy) {
    return y > T(0) ? dy : T(0);
}

//! Backward coefficients of one channel: dx = k * dy + kx * (x - mean) + off.
template <class T>
struct backward_coef {
    T k{}, kx{}, off{};
};

//! Where the first extreme value of a channel lies: a lower bound (plane n, offset i) from which
//! a forward scan finds the first element equal to the minimum / maximum.
struct extreme_hint {
    index_t min_n = 0, min_i = 0, max_n = 0, max_i = 0;
};

//! A channel-pass backend supplies the data passes of batch_norm and robust_norm; the layers
//! keep everything else (modes, saved state, checks, NaN policy, coefficient math, running
//! updates). Kernels know no statistic source. Every function takes contiguous NCHW views:
//!
//!  - `statistics<MinMax, Var>(src, m, hints)`: the moments<double> of every channel over
//!    (N, H, W) (m.size() = C; m2 = 0 when !Var; min / max and, when `hints` is non-null, where
//!    each extreme first lies, when MinMax).
//!  - `forward<MinMax, Var>(src, dst, with_stats, m, coef)`: with_stats: the statistics as above
//!    into m, then for every channel `bool coef(c, m[c], hint, channel_coef<T>& out)` and
//!    dst = (src - out.mean) * out.a + out.b; without: coef gets empty moments. A coef returning
//!    false refuses its channel (e.g. non-finite statistics under nan_policy::raise): forward
//!    then returns false and dst is unspecified. coef may run on several threads at once, for
//!    different channels.
//!  - `normalize(src, dst, coef)`: dst = (src - mean_c) * a_c + b_c with C given coefficients.
//!  - `backward(src, dy, dx, mean, with_sums, coef)`: with_sums: sum(dy) and
//!    sum(dy * (x - mean_c)) of every channel, then `backward_coef<T> coef(c, sum_dy, sum_dy_xc)`
//!    (0, 0 without sums) and dx = k * dy + kx * (x - mean_c) + off. coef may run on several
//!    threads at once, for different channels.
//!
//! Backends: the CPU schedules (backend/cpu/schedule.hpp: auto_schedule, plane_streaming,
//! channel_major_schedule) and the naive double-precision reference (backend/reference), the
//! oracle of the tests. group_norm's passes: backend/group_pass.hpp. backend/cuda has its own
//! layer classes (issue 9).
template <class B, class = void>
struct is_channel_backend : std::false_type {};
template <class B>
struct is_channel_backend<
    B, std::void_t<decltype(B::template statistics<false, true, float>(
                       std::declval<const tensor_view<const float>&>(), std::declval<std::vector<moments<double>>&>(),
                       static_cast<std::vector<extreme_hint>*>(nullptr))),
                   decltype(B::template normalize<float>(std::declval<const tensor_view<const float>&>(),
                                                         std::declval<const tensor_view<float>&>(),
                                                         static_cast<const channel_coef<float>*>(nullptr)))>>
    : std::true_type {};
template <class B>
inline constexpr bool is_channel_backend_v = is_channel_backend<B>::value;

}  // namespace shiftnorm::backend
