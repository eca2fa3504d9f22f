// SPDX-License-Identifier: MIT
// Peak resident memory of the process (what `train` and `eval` report), from getrusage.
#pragma once

#include <cstdint>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/resource.h>
#endif

namespace shiftnorm {

//! The process's peak resident set size in bytes since it started (getrusage ru_maxrss: KiB on
//! Linux, bytes on macOS); 0 where the platform does not report it.
inline std::uint64_t peak_memory_bytes() {
#if defined(__unix__) || defined(__APPLE__)
    rusage u{};
    if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
#if defined(__APPLE__)
    return std::uint64_t(u.ru_maxrss);
#else
    return std::uint64_t(u.ru_maxrss) * 1024u;
#endif
#else
    return 0;
#endif
}

//! peak_memory_bytes() in MiB, rounded.
inline std::uint64_t peak_memory_mib() { return (peak_memory_bytes() + (1u << 19)) >> 20; }

}  // namespace shiftnorm
