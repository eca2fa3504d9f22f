// SPDX-License-Identifier: MIT
// Catch2 main for CUDA tests: exits with 77 (ctest SKIP_RETURN_CODE) when no GPU is present.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cuda_runtime.h>
#include <cstdio>

int main(int argc, char** argv) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
        std::printf("no CUDA device present: CUDA tests skipped (exit 77)\n");
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
