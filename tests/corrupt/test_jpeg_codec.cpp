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

namespace {

// One instruction set's twins of the codec's kernels and of Pillow's BOX rows.
struct codec_twins {
    void (*luma_blocks)(const sc::detail::jpeg_plane<std::uint8_t>*, int, const sc::detail::jpeg_divisors&);
    void (*chroma_blocks)(const sc::detail::jpeg_plane<std::int32_t>*, int, const sc::detail::jpeg_divisors&);
    void (*to_ycc)(const std::uint8_t*, std::size_t, std::uint8_t*, std::int32_t*, std::int32_t*);
    void (*subsample)(const std::int32_t*, int, int, int, int, std::int32_t*);
    void (*upsample)(const std::int32_t*, int, int, int, std::int32_t*);
    void (*to_rgb)(const std::uint8_t*, const std::int32_t*, const std::int32_t*, std::size_t, std::uint8_t*);
    void (*box_rows)(const std::uint8_t*, int, int, const std::int32_t*, const std::int32_t*, int, int, std::int32_t*,
                     std::int32_t*, std::uint8_t*);
};

// Each twin against the portable kernel on the same random input: blocks of a luma plane and of
// two chroma planes (groups across rows and planes, a partial last group), the colour stages and
// the resampling at odd and CIFAR sizes, the BOX rows (and the VBMI rows when `vbmi`).
void check_twins(const codec_twins& t, bool vbmi) {
    namespace d = sc::detail;
    std::mt19937 rng(21);
    auto bytes = [&](std::size_t n) {
        std::vector<std::uint8_t> v(n);
        for (auto& b : v) b = static_cast<std::uint8_t>(rng() % 256);
        return v;
    };
    for (int q : {1, 18, 50, 100}) {
        const auto& tables = d::jpeg_tables(q);
        auto y = bytes(24 * 40);
        auto y2 = y;
        const d::jpeg_plane<std::uint8_t> py{y.data(), 24, 40}, py2{y2.data(), 24, 40};
        d::jpeg_luma_blocks_portable(&py, 1, tables[0]);
        t.luma_blocks(&py2, 1, tables[0]);
        CHECK(y == y2);
        std::vector<std::int32_t> c(2 * 16 * 24), c2;
        for (auto& v : c) v = static_cast<std::int32_t>(rng() % 256);
        c2 = c;
        const d::jpeg_plane<std::int32_t> pc[2] = {{c.data(), 16, 24}, {c.data() + 16 * 24, 16, 24}};
        const d::jpeg_plane<std::int32_t> pc2[2] = {{c2.data(), 16, 24}, {c2.data() + 16 * 24, 16, 24}};
        d::jpeg_chroma_blocks_portable(pc, 2, tables[1]);
        t.chroma_blocks(pc2, 2, tables[1]);
        CHECK(c == c2);
    }
    for (auto hw : {std::pair<int, int>{7, 9}, {32, 32}, {17, 250}}) {
        const int h = hw.first, w = hw.second, wc = (w + 15) / 16 * 8, hc = (h + 15) / 16 * 8;
        const std::size_t n = static_cast<std::size_t>(h) * w;
        const auto rgb = bytes(3 * n);
        std::vector<std::uint8_t> ya(n), yb(n);
        std::vector<std::int32_t> ca(2 * n), cb(2 * n);
        d::jpeg_to_ycc_portable(rgb.data(), n, ya.data(), ca.data(), ca.data() + n);
        t.to_ycc(rgb.data(), n, yb.data(), cb.data(), cb.data() + n);
        CHECK(ya == yb);
        CHECK(ca == cb);
        std::vector<std::int32_t> sa(static_cast<std::size_t>(hc) * wc + 2), sb(sa.size());
        d::jpeg_subsample_portable(ca.data(), h, w, hc, wc, sa.data() + 1);
        t.subsample(ca.data(), h, w, hc, wc, sb.data() + 1);
        CHECK(sa == sb);
        std::vector<std::int32_t> ua(n + 1), ub(n + 1);
        d::jpeg_upsample_portable(sa.data() + 1, wc, h, w, ua.data());
        t.upsample(sa.data() + 1, wc, h, w, ub.data());
        CHECK(ua == ub);
        std::vector<std::uint8_t> ra(3 * n), rb(3 * n);
        d::jpeg_to_rgb_portable(ya.data(), ua.data(), ua.data(), n, ra.data());
        t.to_rgb(ya.data(), ua.data(), ua.data(), n, rb.data());
        CHECK(ra == rb);
    }
    for (auto io : {std::pair<int, int>{224, 89}, {32, 12}, {250, 3}, {9, 4}})
        for (int c : {1, 3}) {
            const int in_w = io.first, out_w = io.second, h = 5;
            const auto src = bytes(static_cast<std::size_t>(h) * in_w * c);
            const auto& e = d::pil_box_axis(in_w, out_w, c);
            const int in_bytes = in_w * c, n = out_w * c;
            std::vector<std::int32_t> work(static_cast<std::size_t>(in_bytes + n));
            std::vector<std::uint8_t> a(static_cast<std::size_t>(h) * n), b(a.size()), v(a.size());
            d::pil_box_rows_plain(src.data(), h, in_bytes, e.bidx.data(), e.bk.data(), e.a.ksize, n, work.data(),
                                  work.data() + in_bytes, a.data());
            t.box_rows(src.data(), h, in_bytes, e.bidx.data(), e.bk.data(), e.a.ksize, n, work.data(), work.data() + in_bytes,
                       b.data());
            CAPTURE(in_w, out_w, c, e.block);
            CHECK(a == b);
#if defined(SHIFTNORM_CORRUPT_AVX512)
            if (vbmi && e.block > 0) {
                d::pil_box_rows_vbmi(src.data(), h, in_bytes, e, v.data());
                CHECK(a == v);
            }
#else
            (void)vbmi;
#endif
        }
}

}  // namespace

TEST_CASE("the JPEG and BOX-resize kernels' AVX-512 twins give the portable bytes", "[corrupt][jpeg]") {
    if (!sc::detail::avx512_kernels_available()) {
        WARN("this CPU has no AVX-512: the AVX-512 twins are not checked here");
        return;
    }
#if defined(SHIFTNORM_CORRUPT_AVX512)
    namespace d = sc::detail;
    check_twins({d::jpeg_luma_blocks_avx512, d::jpeg_chroma_blocks_avx512, d::jpeg_to_ycc_avx512, d::jpeg_subsample_avx512,
                 d::jpeg_upsample_avx512, d::jpeg_to_rgb_avx512, d::pil_box_rows_avx512},
                d::avx512_vbmi_available());
#endif
}

TEST_CASE("the JPEG and BOX-resize kernels' AVX2 twins give the portable bytes", "[corrupt][jpeg]") {
    if (!sc::detail::avx2_kernels_available()) {
        WARN("this CPU has no AVX2: the AVX2 twins are not checked here");
        return;
    }
#if defined(SHIFTNORM_CORRUPT_AVX2)
    namespace d = sc::detail;
    check_twins({d::jpeg_luma_blocks_avx2, d::jpeg_chroma_blocks_avx2, d::jpeg_to_ycc_avx2, d::jpeg_subsample_avx2,
                 d::jpeg_upsample_avx2, d::jpeg_to_rgb_avx2, d::pil_box_rows_avx2},
                false);
#endif
}
