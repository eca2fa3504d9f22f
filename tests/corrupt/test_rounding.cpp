// SPDX-License-Identifier: MIT
// Float32 rounding steps of the corruptions survive the optimizer: GCC 12.2 at -O3 dropped the
// double -> float -> double conversions of elastic_transform's six jittered control points (SLP
// vectorizer; two of six in a portable build, four with -march=native), so the two builds wrote
// different bytes and neither was the reference's float32 jitter (corrupt/kernel_attributes.hpp).
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "shiftnorm/corrupt.hpp"

namespace sc = shiftnorm::corrupt;

namespace {
//! float32 rounding that no vectorizer can elide (the expected values of the test)
double via_float(double v) {
    volatile float f = static_cast<float>(v);
    return f;
}
}  // namespace

TEST_CASE("elastic transform: the control-point jitter is rounded to float32, draw by draw", "[corrupt][rounding]") {
    const std::array<double, 6> pts1 = {26.0, 26.0, 26.0, 6.0, 6.0, 6.0};
    int checked = 0;
    for (std::uint64_t seed = 1; seed <= 200; ++seed) {
        for (const double jitter : {0.48, 2.24, 11.2}) {
            sc::generator gen(seed), ref(seed);
            const auto pts2 = sc::detail::jitter_points(pts1, jitter, gen);
            for (int i = 0; i < 6; ++i) {
                const double want = pts1[std::size_t(i)] + via_float(ref.uniform(-jitter, jitter));
                INFO("seed " << seed << " jitter " << jitter << " point " << i);
                REQUIRE(pts2[std::size_t(i)] == want);
                ++checked;
            }
            // the generator moved by exactly six draws
            CHECK(gen.uniform() == ref.uniform());
        }
    }
    CHECK(checked == 200 * 3 * 6);
}

TEST_CASE("elastic transform: the same bytes as its steps composed by hand", "[corrupt][rounding]") {
    // a 32x32 RGB image through elastic_transform and through its documented steps (the
    // jitter of the control points, the affine warp, the smoothed displacement field, sampling)
    const int H = 32, W = 32, C = 3;
    std::vector<std::uint8_t> src(std::size_t(H * W * C)), got(src.size()), want(src.size());
    sc::generator fill(7);
    for (auto& v : src) v = std::uint8_t(fill.randint(0, 256));
    for (int severity = 1; severity <= 5; ++severity) {
        sc::generator a(100 + std::uint64_t(severity)), b(100 + std::uint64_t(severity));
        sc::elastic_transform(sc::const_image_view{src.data(), H, W, C}, sc::image_view{got.data(), H, W, C},
                              severity, a, sc::param_table::cifar);
        namespace d = sc::detail;
        const auto p0 = sc::elastic_params_for(sc::param_table::cifar, severity);
        const double scale = 32 / p0.nominal_size, alpha = p0.alpha * scale, sigma = p0.sigma * scale;
        d::fimage img = d::to_unit(sc::const_image_view{src.data(), H, W, C});
        for (double& v : img.px) v = via_float(v);
        const std::array<double, 6> pts1 = {16 + 10.0, 16 + 10.0, 16 + 10.0, 16 - 10.0, 16 - 10.0, 16 - 10.0};
        std::array<double, 6> pts2{};
        for (int i = 0; i < 6; ++i)
            pts2[std::size_t(i)] = pts1[std::size_t(i)] + via_float(b.uniform(-p0.affine * scale, p0.affine * scale));
        const d::fimage warped = d::warp_affine(img, d::affine_from_points(pts1, pts2));
        d::fimage dx(H, W, 1), dy(H, W, 1);
        for (double& v : dx.px) v = b.uniform(-1.0, 1.0);
        for (double& v : dy.px) v = b.uniform(-1.0, 1.0);
        d::gaussian_filter(dx, sigma, d::border::reflect, 3.0);
        d::gaussian_filter(dy, sigma, d::border::reflect, 3.0);
        d::fimage f(H, W, C);
        for (int y = 0; y < H; ++y)
            for (int x = 0; x < W; ++x) {
                const double ddx = via_float(dx(y, x, 0) * alpha), ddy = via_float(dy(y, x, 0) * alpha);
                double v[3];
                d::sample_reflect_pixel(warped.px.data(), H, W, C, y + ddy, x + ddx, v);
                for (int k = 0; k < C; ++k) f(y, x, k) = v[k];
            }
        d::store_unit(f, sc::image_view{want.data(), H, W, C});
        INFO("severity " << severity);
        CHECK(got == want);
    }
}

TEST_CASE("round_float32: float32(v * scale) for every length (vector bodies and tails)", "[corrupt][rounding]") {
    sc::generator g(3);
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(2), std::size_t(3), std::size_t(6),
                          std::size_t(7), std::size_t(17), std::size_t(1024), std::size_t(1031)}) {
        std::vector<double> v(n);
        for (double& x : v) x = g.uniform(-3.0, 3.0);
        const std::vector<double> before = v;
        for (const double scale : {1.0, 0.37, 19.2}) {
            v = before;
            sc::detail::round_float32(v.data(), n, scale);
            for (std::size_t i = 0; i < n; ++i) {
                INFO("n " << n << " scale " << scale << " i " << i);
                REQUIRE(v[i] == via_float(before[i] * scale));
            }
        }
    }
}

TEST_CASE("byte_unit: b / 255.0 bit for bit for every byte, without a division", "[corrupt][rounding]") {
    // the two-term product rounds to the correctly rounded quotient on all 256 inputs; a volatile
    // quotient so that the compiler cannot fold the comparison into the formula's own arithmetic
    for (int b = 0; b < 256; ++b) {
        volatile double num = b, den = 255.0;
        const double want = num / den;
        const double got = sc::detail::byte_unit(num);
        CAPTURE(b);
        CHECK(std::memcmp(&want, &got, sizeof(double)) == 0);
    }
    // the ends
    CHECK(sc::detail::byte_unit(1.0) == 1.0 / 255.0);
    CHECK(sc::detail::byte_unit(255.0) == 1.0);
}
