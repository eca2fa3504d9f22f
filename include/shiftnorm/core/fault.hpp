// SPDX-License-Identifier: MIT
// Fault injection for crash-consistency tests: SHIFTNORM_FAULT_AT ends the process abruptly at a
// named point (e.g. between the steps of a checkpoint save), as a kill -9 there would.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace shiftnorm::fault {

//! Exit status of a process ended by an injected fault.
inline constexpr int exit_code = 86;

//! A fault-injection point. When the environment variable SHIFTNORM_FAULT_AT equals `name`, or
//! is a decimal number k and this is the k-th point the process reaches (1-based, counted only
//! while the variable is set), the process ends at once with std::_Exit(exit_code): no
//! destructors, no stream flushes, no atexit handlers, so the files look as after a kill -9 at
//! that point. Without the variable a point costs one getenv. The points of a checkpoint save
//! are listed by train::checkpoint_save_steps().
inline void point(const char* name) {
    const char* at = std::getenv("SHIFTNORM_FAULT_AT");
    if (at == nullptr || *at == '\0') return;
    static std::atomic<long long> reached{0};
    const long long k = ++reached;
    bool hit = std::strcmp(at, name) == 0;
    if (!hit && std::strspn(at, "0123456789") == std::strlen(at)) hit = std::strtoll(at, nullptr, 10) == k;
    if (!hit) return;
    std::fprintf(stderr, "shiftnorm: fault injected at '%s' (SHIFTNORM_FAULT_AT=%s), exiting with status %d\n", name, at,
                 exit_code);
    std::_Exit(exit_code);
}

}  // namespace shiftnorm::fault
