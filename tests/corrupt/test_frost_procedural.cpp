// SPDX-License-Identifier: MIT
// The procedural frost's parameters: v1() reproduces the pre-calibration texture bit for bit,
// the style / contrast / jitter parameters set the moments they claim, bad values are refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "shiftnorm/corrupt/frost.hpp"

namespace sc = shiftnorm::corrupt;
using shiftnorm::value_error;
using sc::generator;
using sc::image;
using sc::procedural_frost_params;

namespace {
std::uint64_t fnv(const image& t, std::uint64_t h) {
    for (std::size_t i = 0; i < t.size(); ++i) h = (h ^ t.data()[i]) * 1099511628211ull;
    return h;
}
struct moments2 {
    double mean, sd;
};
moments2 image_moments(const image& t, int channel) {
    double s = 0, q = 0;
    const int n = t.height() * t.width();
    for (int y = 0; y < t.height(); ++y)
        for (int x = 0; x < t.width(); ++x) s += t(y, x, channel);
    const double m = s / n;
    for (int y = 0; y < t.height(); ++y)
        for (int x = 0; x < t.width(); ++x) q += (t(y, x, channel) - m) * (t(y, x, channel) - m);
    return {m / 255.0, std::sqrt(q / n) / 255.0};
}
}  // namespace

TEST_CASE("procedural_frost_params::v1 reproduces the procedural frost used before calibration", "[corrupt][frost]") {
    // Hashes of 10 textures (seeds 0-9, 32x32, cell 8) made by the code before the parameters
    // existed (git show 0cac581:include/shiftnorm/corrupt/frost.hpp), RGB and gray.
    const std::pair<int, std::uint64_t> want[] = {{3, 13441123565652583690ull}, {1, 205605552925147940ull}};
    for (const auto& [channels, hash] : want) {
        std::uint64_t h = 1469598103934665603ull;
        for (std::uint64_t seed = 0; seed < 10; ++seed) {
            generator g(seed);
            h = fnv(sc::detail::procedural_frost(32, 32, channels, 8.0, g, procedural_frost_params::v1()), h);
        }
        CHECK(h == hash);
    }
}

TEST_CASE("procedural frost: a style sets the texture's mean and contrast, jitter and styles vary per image",
          "[corrupt][frost]") {
    procedural_frost_params p;
    p.styles = {{0.5, 0.1, {1.0, 1.0, 1.0}}};
    for (double contrast : {1.0, 2.0}) {
        p.contrast = contrast;
        for (std::uint64_t seed = 0; seed < 5; ++seed) {
            generator g(seed);
            const auto m = image_moments(sc::detail::procedural_frost(64, 64, 3, 8.0, g, p), 1);
            CHECK(m.mean == Approx(0.5).margin(0.003));               // rounding to 8 bits only
            CHECK(m.sd == Approx(0.1 * contrast).margin(0.003));      // no clipping at these values
        }
    }
    SECTION("tint scales each channel") {
        p.contrast = 1;
        p.styles = {{0.5, 0.1, {0.6, 1.0, 1.2}}};
        generator g(3);
        const auto t = sc::detail::procedural_frost(64, 64, 3, 8.0, g, p);
        CHECK(image_moments(t, 0).mean == Approx(0.3).margin(0.003));
        CHECK(image_moments(t, 2).mean == Approx(0.6).margin(0.003));
        CHECK(image_moments(t, 2).sd == Approx(0.12).margin(0.003));
    }
    SECTION("the calibrated default draws a style and a mean shift per image") {
        const auto cal = procedural_frost_params::calibrated();
        REQUIRE(cal.styles.size() == 5);
        std::set<int> levels;
        double s = 0, q = 0;
        const int n = 200;
        for (int seed = 0; seed < n; ++seed) {
            generator g(std::uint64_t(seed) + 100);
            const double m = image_moments(sc::detail::procedural_frost(32, 32, 3, 8.0, g, cal), 1).mean;
            s += m, q += m * m;
            levels.insert(int(std::lround(m * 20)));
        }
        const double mean = s / n, sd = std::sqrt(q / n - mean * mean);
        // five styles with grey means 0.48-0.81 (green tint ~1) plus N(0, 0.045): a spread of
        // image means like the photographs' crops (0.15), not the single level of v1 (sd 0)
        CHECK(sd > 0.1);
        CHECK(sd < 0.2);
        CHECK(levels.size() >= 6);
    }
}

TEST_CASE("procedural frost parameters are checked", "[corrupt][frost][errors]") {
    generator g(1);
    auto bad = procedural_frost_params::calibrated();
    bad.contrast = -1;
    CHECK_THROWS_AS(sc::detail::procedural_frost(8, 8, 3, 8.0, g, bad), value_error);
    bad = procedural_frost_params::calibrated();
    bad.styles.clear();
    CHECK_THROWS_AS(sc::detail::procedural_frost(8, 8, 3, 8.0, g, bad), value_error);
    bad = procedural_frost_params::calibrated();
    bad.styles[0].mean = std::nan("");
    CHECK_THROWS_AS(sc::detail::procedural_frost(8, 8, 3, 8.0, g, bad), value_error);
    bad = procedural_frost_params::calibrated();
    bad.mean_jitter = 2;
    CHECK_THROWS_AS(sc::detail::procedural_frost(8, 8, 3, 8.0, g, bad), value_error);
}
