// SPDX-License-Identifier: MIT
// filter_arithmetic::fast (corrupt/fast_filters.hpp): gaussian, defocus and motion blur (and snow's) in float32 give the
// reference arithmetic's bytes; the AVX-512 kernels give the plain loops' bits.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "corrupt/fixture_util.hpp"
#include "support/skip.hpp"
#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/data/npy.hpp"

namespace sc = shiftnorm::corrupt;

namespace {

//! A photograph-like test image: smooth gradients, hard-edged rectangles, flat regions at 0, 255
//! and mid-grey (windows there sum to an integer: the fallback's case), JPEG-like noise.
sc::image test_image(int h, int w, int c, unsigned seed) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    sc::image im(h, w, c);
    const double fy = 1.0 + 5.0 * u(g), fx = 1.0 + 5.0 * u(g);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k) {
                const double v = 128.0 + 100.0 * std::sin(fy * y / h + k) * std::cos(fx * x / w - k) + 12.0 * (u(g) - 0.5);
                im.data()[(static_cast<std::size_t>(y) * w + x) * c + k] = static_cast<std::uint8_t>(std::clamp(v, 0.0, 255.0));
            }
    std::uniform_int_distribution<int> py(0, h - 1), px(0, w - 1), level(0, 5);
    const int levels[6] = {0, 255, 128, 17, 254, 1};
    for (int r = 0; r < 6; ++r) {
        const int y0 = py(g), x0 = px(g), y1 = std::min(h, y0 + 1 + py(g) / 2), x1 = std::min(w, x0 + 1 + px(g) / 2);
        const int v = levels[level(g)];
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x)
                for (int k = 0; k < c; ++k) im.data()[(static_cast<std::size_t>(y) * w + x) * c + k] = static_cast<std::uint8_t>(v);
    }
    return im;
}

std::size_t differing(const sc::image& a, const sc::image& b) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) n += a.data()[i] != b.data()[i];
    return n;
}

}  // namespace

TEST_CASE("fast filter arithmetic gives the reference arithmetic's bytes", "[corrupt][fast_filters]") {
    struct shape {
        int h, w, c;
    };
    const shape shapes[] = {{224, 224, 3}, {32, 32, 3}, {28, 28, 1}, {37, 23, 3}, {9, 3, 3}, {2, 5, 1}, {1, 1, 3}};
    unsigned seed = 1;
    for (const auto c : {sc::corruption::gaussian_blur, sc::corruption::defocus_blur, sc::corruption::motion_blur,
                         sc::corruption::snow})
        for (const auto t : {sc::param_table::cifar, sc::param_table::imagenet, sc::param_table::mnist})
            for (const shape& s : shapes) {
                if (s.h * s.w > 1024 && t == sc::param_table::mnist) continue;
                const sc::image src = test_image(s.h, s.w, s.c, seed++);
                for (int sev = 1; sev <= 5; ++sev) {
                    CAPTURE(sc::name_of(c), sc::table_name(t), s.h, s.w, s.c, sev);
                    sc::corrupt_options ref{t}, fast{t};
                    ref.filters = sc::filter_arithmetic::reference;
                    fast.filters = sc::filter_arithmetic::fast;
                    const sc::image a = sc::corrupt(c, sev, src.view(), 0, ref), b = sc::corrupt(c, sev, src.view(), 0, fast);
                    CHECK(differing(a, b) == 0);
                    if (c == sc::corruption::snow) continue;  // its flakes, not the image, are blurred
                    // the same seed and pixels: the fast arithmetic changed nothing but the arithmetic
                    CHECK(differing(sc::corrupt(c, sev, src.view(), 1, fast), sc::corrupt(c, sev, src.view(), 1, ref)) == 0);
                }
            }
}

TEST_CASE("fast filter arithmetic keeps the reference's bytes on flat images of every value", "[corrupt][fast_filters]") {
    // The reference's kernels do not sum to exactly 1 (a flat 255 becomes 254 under ImageNet's
    // defocus severities 1-2, the radius-8 kernel sums to 1.013): every window of a flat image is
    // a case the float32 pass cannot decide alone.
    for (const auto c : {sc::corruption::gaussian_blur, sc::corruption::defocus_blur, sc::corruption::motion_blur})
        for (const auto t : {sc::param_table::cifar, sc::param_table::imagenet})
            for (int sev = 1; sev <= 5; ++sev) {
                std::size_t diff = 0, changed = 0;
                for (int v = 0; v < 256; ++v) {
                    sc::image src(12, 12, 3);
                    std::fill(src.data(), src.data() + src.size(), static_cast<std::uint8_t>(v));
                    sc::corrupt_options ref{t}, fast{t};
                    ref.filters = sc::filter_arithmetic::reference;
                    fast.filters = sc::filter_arithmetic::fast;
                    const sc::image a = sc::corrupt(c, sev, src.view(), 0, ref), b = sc::corrupt(c, sev, src.view(), 0, fast);
                    diff += differing(a, b);
                    changed += a.data()[0] != v;
                }
                CAPTURE(sc::name_of(c), sc::table_name(t), sev, changed);
                CHECK(diff == 0);
            }
}

TEST_CASE("the float32 byte stage lists the values near an integer for the float64 pass", "[corrupt][fast_filters]") {
    // The band is relative (fast_band_for): within band * |v| of an integer. With band 2^-10:
    // 3.001 is within (3 * 2^-10 = 0.0029), so are 200.003, 254.9995 and 77.99 (band 0.076), 78.2 is not.
    const float v[] = {3.0f, 3.001f, 2.999f, 3.0f + 1.0f / 256.0f, 3.01f, -0.5f, -0.001f, 254.9995f, 255.0f, 255.4f, 300.0f,
                       12.5f, 0.0f, 1e-7f, 77.99f, 78.2f, 100.0f, 200.003f, 0.5005f, 1.0005f, 0.9995f, 1.002f};
    const std::size_t n = sizeof(v) / sizeof(v[0]);
    const float band = 1.0f / 1024.0f;
    std::vector<std::uint8_t> a(n), b(n);
    std::vector<std::uint32_t> near_a(n), near_b(n);
    near_a.resize(sc::detail::fast_bytes_plain(v, n, band, a.data(), near_a.data()));
    near_b.resize(sc::detail::fast_bytes(v, n, band, b.data(), near_b.data()));
    // 0.0 exactly is final (sums of non-negative terms): not listed. Near 1 the band is 2^-10:
    // 1.0005 and 0.9995 are within it, 1.002 is not; 1e-7 is 1e-7 from 0, outside its band 1e-10;
    // 3 + 1/256 is outside 3's band (0.0029); 300 is an integer (clipped, but listed all the same)
    const std::vector<std::uint32_t> expect_near = {0, 1, 2, 7, 8, 10, 14, 16, 17, 19, 20};
    CHECK(near_a == expect_near);
    CHECK(near_b == expect_near);
    const std::vector<std::uint8_t> expect = {3, 3, 2, 3, 3, 0, 0, 254, 255, 255, 255, 12, 0, 0, 77, 78, 100, 200, 0, 1, 0, 1};
    CHECK(a == expect);
    CHECK(b == expect);
}

TEST_CASE("AVX-512 kernels of the fast filters give the plain loops' bits", "[corrupt][fast_filters]") {
    if (!sc::detail::avx512_kernels_available()) {  // F for the float32 rows, F/BW/DQ/VL for the tap runs
        WARN("this CPU lacks AVX-512 F/BW/DQ/VL: only the plain kernels run here");
        return;
    }
#if defined(SHIFTNORM_CORRUPT_AVX512)
    std::mt19937 g(9);
    std::uniform_real_distribution<float> u(0.0f, 255.0f);
    for (const std::size_t n : {1, 15, 16, 17, 63, 64, 65, 100, 672}) {
        for (const int taps : {1, 2, 13, 49}) {
            {  // the motion blur's float32 tap run
                std::vector<std::uint8_t> bytes(n + 3);
                for (auto& b : bytes) b = static_cast<std::uint8_t>(u(g));
                std::vector<float> r1(n + 1, 0.5f), r2(n + 1, 0.5f);
                for (int k = 0; k < taps; ++k) {
                    const float w = u(g) / 255.0f / taps;
                    sc::detail::tap_run_plain(r1.data(), bytes.data() + k % 3, static_cast<std::ptrdiff_t>(n), w);
                    sc::detail::tap_run_avx512(r2.data(), bytes.data() + k % 3, static_cast<std::ptrdiff_t>(n), w);
                }
                CHECK(std::memcmp(r1.data(), r2.data(), r1.size() * sizeof(float)) == 0);
                // all taps of a row at once (registers across the taps): the tap runs' bits, from 0
                // and in tap order; exact-size runs (the masked tail reads nothing past them)
                std::vector<std::vector<std::uint8_t>> runs(static_cast<std::size_t>(taps));
                sc::detail::byte_taps bt;
                for (int k = 0; k < taps; ++k) {
                    runs[static_cast<std::size_t>(k)].resize(n);
                    for (auto& b : runs[static_cast<std::size_t>(k)]) b = static_cast<std::uint8_t>(u(g));
                    bt.add(k % 4 == 0 ? u(g) * 1e3f : u(g) / 255.0f / taps, runs[static_cast<std::size_t>(k)].data());
                }
                std::vector<float> o1(n + 1, -3.0f), o2(n + 1, -3.0f), o3(n + 1, -3.0f);
                sc::detail::byte_tap_rows_plain(bt, o1.data(), n);
                sc::detail::tap_rows_x64<sc::detail::byte_taps_loader>(bt, o2.data(), n);
                // the sum as written, tap k into accumulator k mod 4 (volatile: no FMA contraction)
                for (std::size_t j = 0; j < n; ++j) {
                    volatile float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
                    for (int k = 0; k < taps; ++k) {
                        const std::size_t kk = static_cast<std::size_t>(k);
                        const volatile float p = bt.k[kk] * static_cast<float>(bt.s[kk][j]);
                        acc[k % 4] = acc[k % 4] + p;
                    }
                    const float lo = acc[0] + acc[1], hi = acc[2] + acc[3];
                    o3[j] = lo + hi;
                }
                CHECK(std::memcmp(o1.data(), o2.data(), o1.size() * sizeof(float)) == 0);  // incl. the sentinel
                CHECK(std::memcmp(o1.data(), o3.data(), o1.size() * sizeof(float)) == 0);
            }
            CAPTURE(n, taps);
            std::vector<float> rows(static_cast<std::size_t>(taps) * 2 * (n + 5));
            for (auto& x : rows) x = std::floor(u(g));  // integers, as the filters feed them
            sc::detail::sym_taps t;
            for (int k = 0; k < taps; ++k) {
                const float* a = rows.data() + static_cast<std::size_t>(2 * k) * (n + 5) + k % 5;
                const float* b = k % 3 == 0 ? nullptr : rows.data() + static_cast<std::size_t>(2 * k + 1) * (n + 5) + k % 4;
                t.add(u(g) / 255.0f / taps, a, b);
            }
            std::vector<float> p(n + 1, -5.0f), q(n + 1, -5.0f);
            sc::detail::sym_rows_plain(t, p.data(), n);
            sc::detail::tap_rows_x64<sc::detail::sym_taps_loader>(t, q.data(), n);
            CHECK(std::memcmp(p.data(), q.data(), p.size() * sizeof(float)) == 0);  // incl. the untouched sentinel
            std::vector<std::uint8_t> bp(n), bq(n);
            std::vector<std::uint32_t> np(n), nq(n);
            np.resize(sc::detail::fast_bytes_plain(p.data(), n, 0.01f, bp.data(), np.data()));
            nq.resize(sc::detail::fast_bytes_avx512(p.data(), n, 0.01f, bq.data(), nq.data()));
            CHECK(bp == bq);
            CHECK(np == nq);
            std::vector<float> s(n), s2(n);
            sc::detail::add_rows_plain(rows.data(), rows.data() + n + 5, s.data(), n);
            sc::detail::add_rows_avx512(rows.data(), rows.data() + n + 5, s2.data(), n);
            CHECK(s == s2);
        }
    }
#endif
}

TEST_CASE("fast filter arithmetic on the CIFAR-10-C reference fixtures", "[corrupt][fast_filters][fixture][shared]") {
    const std::string dir = shiftnorm_test::cifar_c_fixture_dir();
    SHIFTNORM_SKIP_UNLESS(!dir.empty(), "the CIFAR-10-C reference fixtures (../shared/fixtures) are absent");
    const auto in = shiftnorm::data::read_npy(dir + "/input_16x32x32x3.npy");
    const sc::const_batch_view batch{in.data<std::uint8_t>(), 16, 32, 32, 3};
    sc::corrupt_options fast{sc::param_table::cifar}, ref{sc::param_table::cifar};
    fast.filters = sc::filter_arithmetic::fast;
    ref.filters = sc::filter_arithmetic::reference;
    for (const char* name : {"defocus_blur", "gaussian_blur"}) {
        const auto c = sc::parse_corruption(name);
        CHECK(sc::corrupt_all_severities(c, batch, 0, fast, 2) == sc::corrupt_all_severities(c, batch, 0, ref, 2));
    }
}

TEST_CASE("defocus_blur's disk path: which kernels it takes, and the reference's bytes", "[corrupt][fast_filters]") {
    namespace d = sc::detail;
    // kappa = G * (D / s) matches the reference's float32 kernel to a few roundings where the disk,
    // widened by the alias blur, stays inside the grid; the ImageNet table's radius 8 and 10 reflect
    const struct {
        sc::param_table t;
        int severity;
        bool disk;
    } cases[] = {{sc::param_table::cifar, 1, true},    {sc::param_table::cifar, 5, true},
                 {sc::param_table::imagenet, 1, true}, {sc::param_table::imagenet, 3, true},
                 {sc::param_table::imagenet, 4, false}, {sc::param_table::imagenet, 5, false},
                 {sc::param_table::mnist, 5, true}};
    for (const auto& c : cases) {
        const sc::defocus_params p = sc::defocus_blur_params(c.t, c.severity);
        const d::defocus_plan& plan = d::defocus_plan_cached(p.radius, p.alias_blur);
        CAPTURE(sc::table_name(c.t), c.severity, plan.theta_u);
        CHECK(plan.disk_ok == c.disk);
        if (!plan.disk_ok) continue;
        CHECK(plan.theta_u < 4.0);  // a few float32 roundings, not a reflected or underflowed weight
        for (const auto& shape : {std::pair<int, int>{32, 32}, {1, 1}, {3, 40}, {61, 2}}) {
            const sc::image src = test_image(shape.first, shape.second, 3, 77u + static_cast<unsigned>(c.severity));
            sc::image fast(shape.first, shape.second, 3), ref(shape.first, shape.second, 3);
            REQUIRE(d::fast_defocus_disk_u8(src.view(), fast.view(), plan));  // the disk path ran
            sc::corrupt_options o{c.t};
            o.filters = sc::filter_arithmetic::reference;
            ref = sc::corrupt(sc::corruption::defocus_blur, c.severity, src.view(), 0, o);
            CHECK(differing(fast, ref) == 0);
        }
    }
    // flat images: every window sums to about an integer (the float64 pass decides them)
    const sc::defocus_params p = sc::defocus_blur_params(sc::param_table::imagenet, 3);
    const d::defocus_plan& plan = d::defocus_plan_cached(p.radius, p.alias_blur);
    std::size_t diff = 0;
    for (int v = 0; v < 256; v += 5) {
        sc::image src(20, 20, 3), fast(20, 20, 3);
        std::fill(src.data(), src.data() + src.size(), static_cast<std::uint8_t>(v));
        REQUIRE(d::fast_defocus_disk_u8(src.view(), fast.view(), plan));
        sc::corrupt_options o{sc::param_table::imagenet};
        o.filters = sc::filter_arithmetic::reference;
        diff += differing(fast, sc::corrupt(sc::corruption::defocus_blur, 3, src.view(), 0, o));
    }
    CHECK(diff == 0);
}

namespace {

//! The disk path's kernels (defocus.hpp) of one instruction set against the portable ones.
struct disk_twins {
    void (*run_sums)(const std::int32_t*, std::size_t, int, int, std::int32_t*);
    void (*widen)(const std::uint8_t*, std::size_t, std::int32_t*);
    void (*box)(const std::int32_t* const*, int, std::size_t, std::int32_t*);
    void (*blur_row)(const std::int32_t*, std::size_t, int, const float*, int, float*);
    void (*blur_col)(const float* const*, std::size_t, const float*, int, float, float*);
};

void check_disk_twins(const disk_twins& t) {
    namespace d = sc::detail;
    std::mt19937 g(5);
    for (const std::size_t n : {1, 15, 16, 17, 100, 722}) {
        CAPTURE(n);
        const int C = 3, w = 6, rg = 2;
        std::vector<std::uint8_t> u(n + 2 * w * C);
        for (auto& b : u) b = static_cast<std::uint8_t>(g() % 256);
        std::vector<std::int32_t> x1(u.size()), x2(u.size());
        d::disk_widen_portable(u.data(), u.size(), x1.data());
        t.widen(u.data(), u.size(), x2.data());
        CHECK(x1 == x2);
        std::vector<std::int32_t> h1((w + 1) * n), h2(h1.size());
        d::disk_run_sums_portable(x1.data() + w * C, n, C, w, h1.data());
        t.run_sums(x1.data() + w * C, n, C, w, h2.data());
        CHECK(h1 == h2);
        CHECK(h1[w * n] == x1[0] + x1[3] + x1[6] + x1[9] + x1[12] + x1[15] + x1[18] + x1[21] + x1[24] + x1[27] + x1[30] +
                               x1[33] + x1[36]);  // column 0's 13 pixels of channel 0
        for (const int count : {1, 2, 5, 7}) {
            std::vector<const std::int32_t*> rows;
            for (int k = 0; k < count; ++k) rows.push_back(h1.data() + static_cast<std::size_t>(k % (w + 1)) * n);
            std::vector<std::int32_t> b1(n + 2 * rg * C, 0), b2(b1.size(), 0);
            d::disk_box_portable(rows.data(), count, n, b1.data());
            t.box(rows.data(), count, n, b2.data());
            CHECK(b1 == b2);
        }
        std::vector<std::int32_t> b(n + 2 * rg * C);
        for (auto& v : b) v = static_cast<std::int32_t>(g() % 30000);
        const float gk[3] = {0.4f, 0.2f, 0.1f};
        const std::size_t m = n > 2 * rg * C ? n - 2 * rg * C : 1;
        std::vector<float> r1(m), r2(m);
        d::disk_blur_row_portable(b.data() + rg * C, m, C, gk, rg, r1.data());
        t.blur_row(b.data() + rg * C, m, C, gk, rg, r2.data());
        CHECK(std::memcmp(r1.data(), r2.data(), m * sizeof(float)) == 0);
        std::vector<std::vector<float>> cols(5, std::vector<float>(n));
        std::vector<const float*> cp;
        for (auto& c : cols) {
            for (auto& v : c) v = static_cast<float>(g() % 100000) / 7.0f;
            cp.push_back(c.data());
        }
        std::vector<float> c1(n), c2(n);
        d::disk_blur_col_portable(cp.data(), n, gk, rg, 1.0f / 113.0f, c1.data());
        t.blur_col(cp.data(), n, gk, rg, 1.0f / 113.0f, c2.data());
        CHECK(std::memcmp(c1.data(), c2.data(), n * sizeof(float)) == 0);
    }
}

}  // namespace

TEST_CASE("defocus_blur's disk kernels: AVX-512 and AVX2 twins give the portable bits", "[corrupt][fast_filters]") {
    namespace d = sc::detail;
    (void)d::disk_box_portable;
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (d::avx512_kernels_available())
        check_disk_twins({d::disk_run_sums_avx512, d::disk_widen_avx512, d::disk_box_avx512, d::disk_blur_row_avx512,
                          d::disk_blur_col_avx512});
    else
        WARN("this CPU lacks AVX-512 F/BW/DQ/VL: its twins are not checked here");
#endif
#if defined(SHIFTNORM_CORRUPT_AVX2)
    if (d::avx2_kernels_available())
        check_disk_twins({d::disk_run_sums_avx2, d::disk_widen_avx2, d::disk_box_avx2, d::disk_blur_row_avx2, d::disk_blur_col_avx2});
    else
        WARN("this CPU has no AVX2: its twins are not checked here");
#endif
}
