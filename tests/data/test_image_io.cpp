// SPDX-License-Identifier: MIT
// JPEG and PNG encode/decode round trips, and io_errors on truncated or foreign data.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "shiftnorm/data/image_io.hpp"

namespace sd = shiftnorm::data;
using Catch::Matchers::Contains;

namespace {
std::vector<std::uint8_t> pattern(int h, int w, int c) {
    std::vector<std::uint8_t> v(static_cast<std::size_t>(h) * w * c);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k) v[(y * w + x) * c + k] = static_cast<std::uint8_t>(60 + x * 3 + y * 2 + 20 * k);
    return v;
}
double mean_abs(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
    double s = 0;
    for (std::size_t i = 0; i < a.size(); ++i) s += std::abs(int(a[i]) - int(b[i]));
    return s / a.size();
}
}  // namespace

TEST_CASE("PNG round trip is exact for 1-4 channels", "[data][image_io]") {
    for (int c = 1; c <= 4; ++c) {
        const auto img = pattern(17, 23, c);
        const auto png = sd::encode_png(img.data(), 17, 23, c);
        const auto d = sd::decode_png(png.data(), png.size());
        CHECK(d.height == 17);
        CHECK(d.width == 23);
        CHECK(d.channels == c);
        CHECK(d.pixels == img);
    }
}

TEST_CASE("JPEG round trip is close and quality orders the error", "[data][image_io]") {
    for (int c : {1, 3}) {
        const auto img = pattern(32, 40, c);
        double prev = 1e9;
        for (int q : {20, 60, 95}) {
            const auto jpg = sd::encode_jpeg(img.data(), 32, 40, c, q);
            const auto d = sd::decode_jpeg(jpg.data(), jpg.size());
            REQUIRE(d.channels == c);
            REQUIRE(d.height == 32);
            REQUIRE(d.width == 40);
            const double e = mean_abs(d.pixels, img);
            INFO("channels " << c << " quality " << q << " mean |diff| " << e);
            CHECK(e < prev);
            CHECK(e < 6.0);
            prev = e;
        }
    }
}

TEST_CASE("JPEG subsampling choice changes the stream", "[data][image_io]") {
    const auto img = pattern(16, 16, 3);
    const auto a = sd::encode_jpeg(img.data(), 16, 16, 3, 75, sd::jpeg_subsampling::s420);
    const auto b = sd::encode_jpeg(img.data(), 16, 16, 3, 75, sd::jpeg_subsampling::s444);
    CHECK(a != b);
}

TEST_CASE("truncated, corrupt or foreign data throws io_error", "[data][image_io]") {
    const auto img = pattern(32, 32, 3);
    const auto jpg = sd::encode_jpeg(img.data(), 32, 32, 3, 80);
    const auto png = sd::encode_png(img.data(), 32, 32, 3);
    CHECK_THROWS_AS(sd::decode_jpeg(jpg.data(), jpg.size() / 2), shiftnorm::io_error);
    CHECK_THROWS_WITH(sd::decode_jpeg(jpg.data(), 100, "cut.jpg"), Contains("cut.jpg"));
    CHECK_THROWS_AS(sd::decode_jpeg(png.data(), png.size()), shiftnorm::io_error);
    CHECK_THROWS_AS(sd::decode_png(png.data(), png.size() / 2), shiftnorm::io_error);
    CHECK_THROWS_AS(sd::decode_png(jpg.data(), jpg.size()), shiftnorm::io_error);
    std::vector<std::uint8_t> garbage = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1};
    CHECK_THROWS_AS(sd::decode_jpeg(garbage.data(), garbage.size()), shiftnorm::io_error);
    CHECK_THROWS_WITH(sd::read_image("/nonexistent/x.png"), Contains("/nonexistent/x.png"));
}

TEST_CASE("encoders reject bad arguments", "[data][image_io]") {
    const auto img = pattern(4, 4, 3);
    CHECK_THROWS_WITH(sd::encode_jpeg(img.data(), 4, 4, 2, 80), Contains("channels") && Contains("1 or 3") && Contains("2"));
    CHECK_THROWS_WITH(sd::encode_jpeg(img.data(), 4, 4, 3, 0), Contains("quality") && Contains("[1, 100]"));
    CHECK_THROWS_AS(sd::encode_png(img.data(), 0, 4, 3), shiftnorm::shape_error);
    CHECK_THROWS_AS(sd::encode_png(nullptr, 4, 4, 3), shiftnorm::shape_error);
    CHECK_THROWS_AS(sd::encode_png(img.data(), 4, 4, 5), shiftnorm::shape_error);
}
