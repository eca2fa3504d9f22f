// SPDX-License-Identifier: MIT
// CPU schedule policies of the normalization layers: the CPU backends, by the order of their passes.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "shiftnorm/backend/cpu/kernels.hpp"
#include "shiftnorm/backend/cpu/stream.hpp"
#include "shiftnorm/core/shape.hpp"

namespace shiftnorm::backend::cpu {

//! A schedule policy answers one question for a layer: does a tensor of this shape run
//! channel-major (statistics then normalize per channel; backward's sums then apply per
//! channel) or plane-streaming (each pass over the whole tensor in memory order)? The math is
//! the same: the two orders differ only in where the fp32 lane tiles are folded into fp64, and
//! for planes of 1024 values not even there (tests/norm/test_schedule.cpp). Each policy is a
//! channel-pass backend (backend/channel_pass.hpp) through channel_kernels<policy>; layers take
//! it as their Backend parameter (batch_norm<Source, Affine, Precision, Backend>).

//! By shape (the default): prefer_channel_major (planes of at least 64 KiB whose channel fits
//! in 1 MiB), plane-streaming otherwise.
struct auto_schedule : channel_kernels<auto_schedule> {
    static bool channel_major(const shape4& s, std::size_t elem_size) { return prefer_channel_major(s, elem_size); }
};

//! Always plane-streaming.
struct plane_streaming : channel_kernels<plane_streaming> {
    static constexpr bool channel_major(const shape4&, std::size_t) { return false; }
};

//! Always channel-major.
struct channel_major_schedule : channel_kernels<channel_major_schedule> {
    static constexpr bool channel_major(const shape4&, std::size_t) { return true; }
};

template <class S, class = void>
struct is_schedule : std::false_type {};
template <class S>
struct is_schedule<S, std::void_t<decltype(bool(S::channel_major(std::declval<const shape4&>(), std::size_t(4))))>>
    : std::true_type {};
template <class S>
inline constexpr bool is_schedule_v = is_schedule<S>::value;

}  // namespace shiftnorm::backend::cpu
