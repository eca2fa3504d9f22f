// SPDX-License-Identifier: MIT
// 64-bit FNV-1a digests: identify weights and data in checkpoints and result provenance (not crypto).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace shiftnorm {

//! Running 64-bit FNV-1a digest. Start from fnv1a_offset; feed bytes in a fixed order.
inline constexpr std::uint64_t fnv1a_offset = 0xcbf29ce484222325ull;
inline void fnv1a(std::uint64_t& h, const void* data, std::size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (std::size_t i = 0; i < n; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
}
//! 16 lowercase hex digits.
inline std::string digest_hex(std::uint64_t h) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

}  // namespace shiftnorm
