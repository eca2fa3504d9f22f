// SPDX-License-Identifier: MIT
// The JPEG corruption's round trip without a file (jpeg_codec.hpp) against libjpeg's own encode +
// decode at the same settings: the same bytes for every size, quality, content and channel count.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/data/image_io.hpp"

namespace sc = shiftnorm::corrupt;
namespace sd = shiftnorm::data;

namespace {

// kind 0: uniform noise (large coefficients), 1: ramps with noise, 2: hard-edged checks (the
// coefficients quantization rounds most), 3: constant.
std::vector<std::uint8_t> jpeg_test_image(int h, int w, int c, int kind, std::mt19937& rng) {
    std::vector<std::uint8_t> img(static_cast<std::size_t>(h) * w * c);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k) {
                int v = 0;
                if (kind == 0) v = static_cast<int>(rng() % 256);
                if (kind == 1) v = (x * 7 + y * 13 + k * 50 + static_cast<int>(rng() % 20)) % 256;
                if (kind == 2) v = ((x / 3 + y / 2 + k) % 2) ? 255 : 0;
                if (kind == 3) v = 77 + 40 * k;
                img[(static_cast<std::size_t>(y) * w + x) * c + k] = static_cast<std::uint8_t>(v);
            }
    return img;
}

// Number of bytes in which the codec's round trip differs from libjpeg's.
std::size_t jpeg_mismatches(const std::vector<std::uint8_t>& img, int h, int w, int c, int quality) {
    const auto file = sd::encode_jpeg(img.data(), h, w, c, quality);
    const sd::decoded_image lib = sd::decode_jpeg(file.data(), file.size(), "test");
    std::vector<std::uint8_t> ours(img.size());
    sc::detail::jpeg_round_trip({img.data(), h, w, c}, {ours.data(), h, w, c}, quality);
    std::size_t bad = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) bad += ours[i] != lib.pixels[i];
    return bad;
}

}  // namespace

TEST_CASE("the JPEG round trip writes libjpeg's bytes at every quality", "[corrupt][jpeg]") {
    std::mt19937 rng(7);
    // Sizes around the 8 / 16 block and MCU edges, an odd and an even last row and column, the
    // subsampled widths 1 and 2 (libjpeg-turbo replicates there) and 3 (the first fancy width).
    for (int quality = 1; quality <= 100; ++quality)
        for (int c : {1, 3})
            for (auto hw : {std::pair<int, int>{8, 8}, {17, 33}, {6, 7}}) {
                const int kind = quality % 3;
                const auto img = jpeg_test_image(hw.first, hw.second, c, kind, rng);
                INFO("quality " << quality << ", " << hw.first << "x" << hw.second << "x" << c << ", kind " << kind);
                CHECK(jpeg_mismatches(img, hw.first, hw.second, c, quality) == 0);
            }
}

TEST_CASE("the JPEG round trip writes libjpeg's bytes at every size", "[corrupt][jpeg]") {
    std::mt19937 rng(11);
    const int qualities[] = {1, 7, 18, 50, 58, 80, 95, 100};
    int k = 0;
    for (int h = 1; h <= 34; ++h)
        for (int w : {1, 2, 3, 4, 5, 6, 9, 16, 18, 31, 32, 33}) {
            const int c = (h + w) % 2 ? 3 : 1;
            const int quality = qualities[k % 8], kind = k % 4;
            ++k;
            const auto img = jpeg_test_image(h, w, c, kind, rng);
            INFO("quality " << quality << ", " << h << "x" << w << "x" << c << ", kind " << kind);
            CHECK(jpeg_mismatches(img, h, w, c, quality) == 0);
        }
    for (auto hw : {std::pair<int, int>{100, 75}, {64, 48}, {224, 224}, {37, 250}})
        for (int c : {1, 3}) {
            const auto img = jpeg_test_image(hw.first, hw.second, c, 1, rng);
            CHECK(jpeg_mismatches(img, hw.first, hw.second, c, 18) == 0);
        }
}

TEST_CASE("jpeg_compression writes libjpeg's bytes for both tables, also in place", "[corrupt][jpeg]") {
    std::mt19937 rng(3);
    for (auto table : {sc::param_table::cifar, sc::param_table::imagenet})
        for (int severity = 1; severity <= 5; ++severity) {
            const int h = 32 + severity, w = 40 - severity;
            const auto img = jpeg_test_image(h, w, 3, 1, rng);
            const int q = sc::jpeg_quality(table, severity);
            const auto file = sd::encode_jpeg(img.data(), h, w, 3, q);
            const sd::decoded_image lib = sd::decode_jpeg(file.data(), file.size(), "test");
            std::vector<std::uint8_t> out(img.size());
            sc::jpeg_compression({img.data(), h, w, 3}, {out.data(), h, w, 3}, severity, table);
            CHECK(out == lib.pixels);
            std::vector<std::uint8_t> inplace = img;
            sc::jpeg_compression({inplace.data(), h, w, 3}, {inplace.data(), h, w, 3}, severity, table);
            CHECK(inplace == lib.pixels);
        }
}

TEST_CASE("the JPEG quantization tables follow jpeg_set_quality with baseline clipping", "[corrupt][jpeg]") {
    // libjpeg: scale 5000 / q below 50, 200 - 2 q above; (t s + 50) / 100 in [1, 255].
    CHECK(sc::detail::jpeg_quant_table(50, false)[0] == 16);
    CHECK(sc::detail::jpeg_quant_table(50, true)[63] == 99);
    CHECK(sc::detail::jpeg_quant_table(100, false)[63] == 1);
    CHECK(sc::detail::jpeg_quant_table(80, false)[0] == 6);    // (16 * 40 + 50) / 100
    CHECK(sc::detail::jpeg_quant_table(7, false)[0] == 114);   // (16 * 714 + 50) / 100
    CHECK(sc::detail::jpeg_quant_table(7, false)[63] == 255);  // 99 * 714 / 100 clipped
    CHECK(sc::detail::jpeg_quant_table(1, true)[0] == 255);
    // The divisor's multiplier gives floor(a / 8q) for every a the quantizer can see.
    for (int q : {1, 3, 7, 100, 255}) {
        std::array<std::int32_t, 64> t{};
        t.fill(q);
        const sc::detail::jpeg_divisors d(t);
        for (std::uint32_t a = 0; a < (1u << 17); a += 1 + a / 997)
            REQUIRE(static_cast<std::uint32_t>((static_cast<std::uint64_t>(a) * d.mul[0]) >> 32) == a / (8u * q));
    }
}
