// SPDX-License-Identifier: MIT
// Catch2 main for the CPU test executables: exit code 77 (ctest: skipped) when a test skipped
// itself for lack of optional data and nothing failed.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "support/skip.hpp"

int main(int argc, char* argv[]) {
    const int rc = Catch::Session().run(argc, argv);
    if (rc == 0 && shiftnorm_test::skipped_count() > 0) {
        std::fprintf(stderr, "%d test case(s) skipped: optional data absent (see the SKIPPED warnings)\n",
                     shiftnorm_test::skipped_count());
        return 77;
    }
    return rc;
}
