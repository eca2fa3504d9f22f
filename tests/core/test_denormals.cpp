// SPDX-License-Identifier: MIT
// Flush-to-zero / denormals-are-zero on every compute thread (issue 14: the denormal slowdown).
#include <catch2/catch.hpp>

#include <atomic>
#include <limits>
#include <thread>

#include "shiftnorm/core/denormals.hpp"

using namespace shiftnorm;

namespace {
// volatile: computed at run time, under the thread's MXCSR
float tiny_product(float a, float b) {
    volatile float x = a, y = b;
    return x * y;
}
}  // namespace

TEST_CASE("FTZ/DAZ flush subnormal results and inputs to zero, and can be switched back", "[denormals]") {
#if defined(SHIFTNORM_DENORMALS_X86) || defined(__aarch64__)
    const bool before = set_flush_denormals(false);
    const float tiny = std::numeric_limits<float>::min();  // 1.18e-38, the smallest normal
    CHECK(tiny_product(tiny, 0.5f) > 0.0f);                // a subnormal result, kept
    set_flush_denormals(true);
    CHECK(flush_denormals_enabled());
    CHECK(tiny_product(tiny, 0.5f) == 0.0f);  // flushed
    CHECK(tiny_product(tiny, 2.0f) == 2.0f * tiny);  // normal results unchanged
    set_flush_denormals(false);
    CHECK_FALSE(flush_denormals_enabled());
    CHECK(tiny_product(tiny, 0.5f) > 0.0f);
    set_flush_denormals(before);
#else
    WARN("no FTZ/DAZ control on this architecture");
#endif
}

TEST_CASE("set_flush_denormals_all_threads reaches every OpenMP thread; new threads inherit it", "[denormals]") {
#if defined(SHIFTNORM_DENORMALS_X86)
    set_flush_denormals_all_threads(true);
    std::atomic<int> off{0};
#if defined(_OPENMP)
#pragma omp parallel num_threads(4)
    if (!flush_denormals_enabled()) ++off;
#endif
    CHECK(off == 0);
    bool child = false;
    std::thread t([&] { child = flush_denormals_enabled(); });  // Linux copies the FP state on clone
    t.join();
    CHECK(child);
    set_flush_denormals_all_threads(false);
#if defined(_OPENMP)
#pragma omp parallel num_threads(4)
    if (flush_denormals_enabled()) ++off;
#endif
    CHECK(off == 0);
#endif
}
