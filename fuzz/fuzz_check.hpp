// SPDX-License-Identifier: MIT
// Shared by the fuzz targets: an invariant check that aborts (a libFuzzer finding) when a decoder
// returns something inconsistent instead of throwing.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                         \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                        \
        }                                                                                        \
    } while (0)
