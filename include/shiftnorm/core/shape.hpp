// SPDX-License-Identifier: MIT
// NCHW shape of an activation tensor, with printing and comparison.
#pragma once

#include <cstdint>
#include <ostream>

#include "shiftnorm/config.hpp"

namespace shiftnorm {

using index_t = std::int64_t;

//! Shape of an NCHW tensor. A matrix (batch x features) is {n, c, 1, 1}.
struct shape4 {
    index_t n = 0, c = 0, h = 0, w = 0;

    SHIFTNORM_HOST_DEVICE constexpr index_t spatial() const { return h * w; }
    SHIFTNORM_HOST_DEVICE constexpr index_t numel() const { return n * c * h * w; }
    //! Elements reduced per channel by batch statistics: N*H*W.
    SHIFTNORM_HOST_DEVICE constexpr index_t per_channel() const { return n * h * w; }
    SHIFTNORM_HOST_DEVICE constexpr bool empty() const { return numel() == 0; }
    SHIFTNORM_HOST_DEVICE constexpr bool valid() const { return n >= 0 && c >= 0 && h >= 0 && w >= 0; }

    friend constexpr bool operator==(const shape4& a, const shape4& b) {
        return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
    }
    friend constexpr bool operator!=(const shape4& a, const shape4& b) { return !(a == b); }
    friend std::ostream& operator<<(std::ostream& os, const shape4& s) {
        return os << '[' << s.n << ',' << s.c << ',' << s.h << ',' << s.w << ']';
    }
};

//! Row-major (C order) strides of a contiguous NCHW tensor, in elements.
struct strides4 {
    index_t n = 0, c = 0, h = 0, w = 0;
    static constexpr strides4 contiguous(const shape4& s) { return {s.c * s.h * s.w, s.h * s.w, s.w, 1}; }
    friend constexpr bool operator==(const strides4& a, const strides4& b) {
        return a.n == b.n && a.c == b.c && a.h == b.h && a.w == b.w;
    }
};

}  // namespace shiftnorm
