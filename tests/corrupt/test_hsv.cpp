// SPDX-License-Identifier: MIT
// skimage's HSV round trip (brightness, saturate): kernels against each other on every RGB colour, pinned bytes.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "../support/skip.hpp"
#include "shiftnorm/corrupt.hpp"

namespace sc = shiftnorm::corrupt;
namespace scd = shiftnorm::corrupt::detail;

namespace {
//! Every RGB colour once: pixel i = (i & 255, (i >> 8) & 255, i >> 16), 2^24 pixels.
std::vector<std::uint8_t> all_colours() {
    const std::size_t n = std::size_t(1) << 24;
    std::vector<std::uint8_t> v(3 * n);
    for (std::size_t i = 0; i < n; ++i) {
        v[3 * i] = static_cast<std::uint8_t>(i & 255);
        v[3 * i + 1] = static_cast<std::uint8_t>((i >> 8) & 255);
        v[3 * i + 2] = static_cast<std::uint8_t>(i >> 16);
    }
    return v;
}

std::uint64_t fnv1a(const std::vector<std::uint8_t>& v) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (std::uint8_t b : v) h = (h ^ b) * 0x100000001b3ull;
    return h;
}
}  // namespace

TEST_CASE("HSV round trip: the AVX-512 kernel gives the portable kernel's bytes on every RGB colour", "[corrupt][hsv]") {
    SHIFTNORM_SKIP_UNLESS(scd::avx512_rows_available(), "no AVX-512F kernel on this CPU or in this build (SHIFTNORM_NO_AVX512)");
    const auto src = all_colours();
    const std::size_t n = src.size() / 3;
    // brightness ImageNet s5 and saturate ImageNet s5 (the largest scale: most clipping)
    for (const scd::hsv_edit e : {scd::hsv_edit{scd::hsv_edit::value_shift, 0.5, 0.0},
                                  scd::hsv_edit{scd::hsv_edit::saturation_affine, 20.0, 0.2}}) {
        std::vector<std::uint8_t> p(src.size()), v(src.size());
        scd::hsv_rgb_plain(e, src.data(), p.data(), n);
        scd::hsv_map({src.data(), 4096, 4096, 3}, {v.data(), 4096, 4096, 3}, e);
        std::size_t diff = 0;
        for (std::size_t i = 0; i < p.size(); ++i) diff += p[i] != v[i];
        INFO("edit kind " << int(e.kind) << " a " << e.a);
        CHECK(diff == 0);
    }
    // a tail of 1..7 pixels after the 8-pixel blocks
    for (std::size_t m : {1, 7, 9, 15}) {
        const scd::hsv_edit e{scd::hsv_edit::value_shift, 0.2, 0.0};
        std::vector<std::uint8_t> p(3 * m), v(3 * m);
        scd::hsv_rgb_plain(e, src.data() + 3 * 777777, p.data(), m);
        scd::hsv_map({src.data() + 3 * 777777, 1, int(m), 3}, {v.data(), 1, int(m), 3}, e);
        CHECK(p == v);
    }
}

TEST_CASE("brightness and saturate bytes are pinned (any CPU, compiler or flags must give these)", "[corrupt][hsv]") {
    // Pinned 2026-12-03: the portable build's bytes before the AVX-512 kernel (GCC, x86-64
    // baseline: no FMA), which both kernels reproduce; a -march=native build used to contract
    // into FMA and differ in ~1 byte in 2,000.
    const auto src = all_colours();
    const sc::const_batch_view in{src.data(), 1, 4096, 4096, 3};
    std::vector<std::uint64_t> got;
    for (const char* name : {"brightness", "saturate"}) {
        std::vector<std::uint8_t> out(src.size());
        sc::corrupt_batch(sc::parse_corruption(name), 5, in, {out.data(), 1, 4096, 4096, 3}, 0, {sc::param_table::imagenet}, 1);
        got.push_back(fnv1a(out));
    }
    for (auto h : got) UNSCOPED_INFO(std::hex << h);
    CHECK(got == std::vector<std::uint64_t>{0xc27094eb5591a89aull, 0x3a3de72409aad7full});
}
