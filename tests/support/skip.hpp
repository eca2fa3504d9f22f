// SPDX-License-Identifier: MIT
// Skipping a test whose optional data is absent, reported to ctest as "skipped" (exit code 77).
#pragma once

#include <catch2/catch.hpp>

namespace shiftnorm_test {
//! Number of test cases that skipped themselves in this process (catch_main.cpp returns 77 when
//! it is > 0 and nothing failed; tests/CMakeLists.txt runs such tests as their own ctest entry,
//! `<folder>_shared`, so a skip never hides a pass of another test).
inline int& skipped_count() {
    static int n = 0;
    return n;
}
}  // namespace shiftnorm_test

//! Ends the current test case as SKIPPED (not passed) when `cond` is false. Only for tests tagged
//! [shared] (optional data from ../shared or a Debian dataset package).
#define SHIFTNORM_SKIP_UNLESS(cond, why)                \
    do {                                                \
        if (!(cond)) {                                  \
            ++::shiftnorm_test::skipped_count();        \
            WARN("SKIPPED: " << why);                   \
            return;                                     \
        }                                               \
    } while (0)
