// SPDX-License-Identifier: MIT
// Building blocks checked against hand-computed or library-documented values.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "shiftnorm/corrupt.hpp"

namespace sc = shiftnorm::corrupt;

TEST_CASE("np_arange reproduces numpy's float lengths", "[corrupt][primitives]") {
    // numpy 1.24: len(np.arange(1, 1.06, 0.01)) == 7, 1.11 -> 12, 1.16 -> 16, (1.31, .03) -> 11
    CHECK(sc::detail::np_arange(1, 1.06, 0.01).size() == 7);
    CHECK(sc::detail::np_arange(1, 1.11, 0.01).size() == 12);
    CHECK(sc::detail::np_arange(1, 1.16, 0.01).size() == 16);
    CHECK(sc::detail::np_arange(1, 1.26, 0.01).size() == 26);
    CHECK(sc::detail::np_arange(1, 1.31, 0.03).size() == 11);
}

TEST_CASE("generator draws have the right moments", "[corrupt][primitives]") {
    sc::generator g(123);
    const int n = 200000;
    for (double lam : {0.5, 7.0, 42.0, 500.0}) {
        double s = 0, sq = 0;
        for (int i = 0; i < n; ++i) {
            const double k = static_cast<double>(g.poisson(lam));
            s += k, sq += k * k;
        }
        const double m = s / n, v = sq / n - m * m;
        INFO("lambda " << lam << " mean " << m << " var " << v);
        CHECK(std::fabs(m - lam) < 5 * std::sqrt(lam / n));
        CHECK(std::fabs(v / lam - 1) < 0.03);
    }
    double s = 0, sq = 0;
    for (int i = 0; i < n; ++i) {
        const double z = g.normal();
        s += z, sq += z * z;
    }
    CHECK(std::fabs(s / n) < 0.01);
    CHECK(std::fabs(sq / n - 1) < 0.01);
    for (int i = 0; i < 1000; ++i) {
        const auto r = g.randint(-2, 2);
        CHECK((r >= -2 && r < 2));
    }
}

TEST_CASE("motion blur kernel at angle 0 averages to the right along the row", "[corrupt][primitives]") {
    // A single bright column at x = 10: with angle 0 the kernel samples x, x+1, ..., so pixels at
    // x <= 10 receive light and pixels right of the column do not.
    sc::image img(5, 20, 1, 0);
    for (int y = 0; y < 5; ++y) img(y, 10, 0) = 255;
    const sc::image out = sc::detail::motion_blur_u8(img, 6, 1, 0);
    CHECK(out(2, 11, 0) == 0);
    CHECK(out(2, 10, 0) > out(2, 9, 0));
    CHECK(out(2, 9, 0) > out(2, 8, 0));
    CHECK(out(2, 9, 0) > 0);
}

TEST_CASE("gaussian filter uses scipy's truncated, normalised kernel", "[corrupt][primitives]") {
    // scipy.ndimage.gaussian_filter1d(delta, sigma=1) with truncate=4: weights exp(-x^2/2) for
    // |x| <= 4, divided by their sum S = 1 + 2(e^-0.5 + e^-2 + e^-4.5 + e^-8) = 2.50662...; the
    // response to a centred delta is the kernel itself (computed here in closed form).
    sc::detail::fimage f(1, 9, 1);
    f.px = {0, 0, 0, 0, 1, 0, 0, 0, 0};
    sc::detail::correlate1d_symmetric(f, 1, sc::detail::gaussian_half_kernel(1.0), sc::detail::border::nearest);
    const double S = 1 + 2 * (std::exp(-0.5) + std::exp(-2.0) + std::exp(-4.5) + std::exp(-8.0));
    for (int i = 0; i < 9; ++i) CHECK(f.px[i] == Approx(std::exp(-0.5 * (i - 4) * (i - 4)) / S).margin(1e-15));
    CHECK(sc::detail::gaussian_half_kernel(0.05).size() == 1);  // radius int(4*0.05 + 0.5) = 0
    CHECK(sc::detail::gaussian_half_kernel(0.7, 3.0).size() == 3);  // radius int(2.1 + 0.5) = 2
    // nearest-mode edge: a constant image stays constant
    sc::detail::fimage g(6, 7, 3, 0.25);
    sc::detail::gaussian_filter(g, 1.3);
    for (double v : g.px) CHECK(v == Approx(0.25).margin(1e-15));
}

TEST_CASE("border modes follow scipy's definitions", "[corrupt][primitives]") {
    using sc::detail::border;
    using sc::detail::border_index;
    // n = 4: reflect  c b a | a b c d | d c b ; mirror d c b | a b c d | c b a
    CHECK(border_index(-1, 4, border::reflect) == 0);
    CHECK(border_index(-2, 4, border::reflect) == 1);
    CHECK(border_index(4, 4, border::reflect) == 3);
    CHECK(border_index(-1, 4, border::mirror) == 1);
    CHECK(border_index(4, 4, border::mirror) == 2);
    CHECK(border_index(-3, 4, border::nearest) == 0);
}

TEST_CASE("AVX-512 tap sums give the plain loop's bits", "[corrupt][primitives]") {
    if (!sc::detail::avx512_rows_available()) {
        WARN("this CPU has no AVX-512F: only the plain kernel runs here");
        return;
    }
#if defined(SHIFTNORM_CORRUPT_AVX512)
    std::mt19937 g(5);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    for (const int n : {1, 7, 8, 31, 32, 33, 100, 224}) {
        for (const int taps : {1, 9, 177}) {
            CAPTURE(n, taps);
            std::vector<double> rows(static_cast<std::size_t>(taps) * (n + 3)), w(static_cast<std::size_t>(taps));
            for (auto& v : rows) v = u(g) * 1e3;  // wide magnitudes: rounding differences would show
            for (auto& v : w) v = u(g) / 3.0;
            std::vector<const double*> src(static_cast<std::size_t>(taps));
            for (int t = 0; t < taps; ++t) src[t] = rows.data() + std::size_t(t) * (n + 3) + t % 3;
            std::vector<double> a(std::size_t(n) + 1, -5.0), b(std::size_t(n) + 1, -5.0);
            sc::detail::tap_sum_row_plain(src.data(), w.data(), taps, a.data(), n);
            sc::detail::tap_sum_row_avx512(src.data(), w.data(), taps, b.data(), n);
            CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);  // incl. the untouched sentinel
        }
    }
#endif
}

TEST_CASE("pil_box_resize equals Pillow's per-pixel fixed-point formula", "[corrupt][primitives]") {
    // the naive form of Resample.c's 8-bit path: one int64 sum per output value and pass
    auto naive = [](sc::const_image_view src, int ow, int oh) {
        auto pass = [](const sc::image& in, int out_w, int out_h, bool horizontal) {
            sc::image out(out_h, out_w, in.channels());
            const sc::detail::pil_axis a =
                horizontal ? sc::detail::pil_box_coeffs(in.width(), out_w) : sc::detail::pil_box_coeffs(in.height(), out_h);
            for (int y = 0; y < out_h; ++y)
                for (int x = 0; x < out_w; ++x)
                    for (int k = 0; k < in.channels(); ++k) {
                        const int o = horizontal ? x : y;
                        std::int64_t ss = std::int64_t(1) << 21;
                        for (int i = 0; i < a.xcount[o]; ++i) {
                            const int j = a.xmin[o] + i;
                            ss += std::int64_t(horizontal ? in.view()(y, j, k) : in.view()(j, x, k)) * a.k[std::size_t(o) * a.ksize + i];
                        }
                        out.view()(y, x, k) = sc::detail::pil_clip8(ss);
                    }
            return out;
        };
        sc::image t = ow != src.width ? pass(sc::image(src), ow, src.height, true) : sc::image(src);
        return oh != src.height ? pass(t, ow, oh, false) : t;
    };
    std::mt19937 g(9);
    for (const int c : {1, 3, 4})
        for (const auto& wh : {std::pair<int, int>{224, 224}, {31, 17}, {5, 40}, {1, 1}}) {
            sc::image im(wh.second, wh.first, c);
            for (std::size_t i = 0; i < im.size(); ++i) im.data()[i] = std::uint8_t(g() & 255);
            for (const auto& o : {std::pair<int, int>{wh.first / 3 + 1, wh.second / 2 + 1}, {wh.first * 2, wh.second},
                                  {wh.first, wh.second * 3}, {7, 3}}) {
                CAPTURE(c, wh.first, wh.second, o.first, o.second);
                const sc::image a = sc::detail::pil_box_resize(im.view(), o.first, o.second);
                const sc::image b = naive(im.view(), o.first, o.second);
                REQUIRE(a.size() == b.size());
                CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
            }
        }
}

TEST_CASE("contrast: channel sums of every length and the per-channel table against the formula", "[corrupt][contrast]") {
    sc::generator g(3);
    for (int C : {1, 3}) {
        for (std::size_t size : {std::size_t(3), std::size_t(47), std::size_t(48), std::size_t(49), std::size_t(96 * 7 + 5) * 3}) {
            if (size % static_cast<std::size_t>(C)) continue;
            std::vector<std::uint8_t> v(size);
            for (auto& b : v) b = static_cast<std::uint8_t>(g.next() >> 56);
            const auto s = sc::detail::channel_sums(v.data(), size, C);
            std::uint64_t naive[3] = {0, 0, 0};
            for (std::size_t i = 0; i < size; ++i) naive[i % C] += v[i];
            for (int k = 0; k < C; ++k) CHECK(s[k] == naive[k]);
            // contrast itself: the formula per value with the mean in long double
            const int W = static_cast<int>(size / C);
            std::vector<std::uint8_t> out(size);
            sc::contrast({v.data(), 1, W, C}, {out.data(), 1, W, C}, 2, sc::param_table::imagenet);
            const double c = sc::contrast_factor(sc::param_table::imagenet, 2);
            for (std::size_t i = 0; i < size; ++i) {
                const long double m = static_cast<long double>(naive[i % C]) / (255.0L * W);
                long double y = (v[i] / 255.0L - m) * c + m;
                y = std::min<long double>(std::max<long double>(y, 0), 1) * 255;
                // exact, except where y sits on an integer (double rounding may land either side)
                const bool boundary = std::fabs(y - std::nearbyint(y)) < 1e-9L;
                INFO("value " << i << " x " << int(v[i]) << " y " << static_cast<double>(y));
                if (boundary) CHECK(std::fabs(static_cast<long double>(out[i]) - std::floor(y)) <= 1);
                else CHECK(static_cast<long double>(out[i]) == std::floor(y));
            }
        }
    }
}

TEST_CASE("motion blur rows: clamped shifts and the run kernels against the per-pixel loop", "[corrupt][motion]") {
    sc::generator g(11);
    for (int C : {1, 3}) {
        for (int W : {1, 2, 5, 17, 40}) {
            std::vector<std::uint8_t> row(static_cast<std::size_t>(W) * C);
            for (auto& b : row) b = static_cast<std::uint8_t>(g.next() >> 56);
            for (int ox = -W - 2; ox <= W + 2; ++ox) {
                std::vector<double> acc(row.size(), 0.25), ref(row.size(), 0.25);
                const double k = 0.0373;
                sc::detail::motion_tap_row(acc.data(), row.data(), W, C, ox, k);
                for (int x = 0; x < W; ++x)
                    for (int c = 0; c < C; ++c) {
                        const int sx = std::min(std::max(x + ox, 0), W - 1);
                        const volatile double t = k * row[static_cast<std::size_t>(sx) * C + c];  // rounded product
                        ref[static_cast<std::size_t>(x) * C + c] += t;
                    }
                INFO("C " << C << " W " << W << " ox " << ox);
                CHECK(acc == ref);
            }
        }
    }
    for (std::ptrdiff_t n = 0; n <= 40; ++n) {
        std::vector<std::uint8_t> s(static_cast<std::size_t>(n));
        for (auto& b : s) b = static_cast<std::uint8_t>(g.next() >> 56);
        std::vector<double> a(s.size(), 1.5), b(s.size(), 1.5);
        sc::detail::tap_run_plain(a.data(), s.data(), n, 0.123456789);
        sc::detail::tap_run(b.data(), s.data(), n, 0.123456789);  // AVX-512 where the CPU has it
        CHECK(a == b);
    }
}

TEST_CASE("frost blend: the dispatched kernel gives the plain loop's bytes", "[corrupt][frost]") {
    sc::generator g(12);
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(7), std::size_t(8), std::size_t(9), std::size_t(100), std::size_t(1003)}) {
        std::vector<std::uint8_t> x(n), t(n), a(n), b(n);
        for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<std::uint8_t>(g.next() >> 56), t[i] = static_cast<std::uint8_t>(g.next() >> 56);
        for (auto [wa, wb] : {std::pair{1.0, 0.4}, std::pair{0.8, 0.6}, std::pair{0.7, 0.7}, std::pair{0.65, 0.7}, std::pair{0.6, 0.75}}) {
            sc::detail::blend_plain(x.data(), t.data(), a.data(), n, wa, wb);
            sc::detail::blend(x.data(), t.data(), b.data(), n, wa, wb);
            INFO("n " << n << " weights " << wa << ", " << wb);
            CHECK(a == b);
            for (std::size_t i = 0; i < n; ++i) {  // the formula, clipped and truncated
                const double v = std::min(std::max(wa * x[i] + wb * t[i], 0.0), 255.0);
                REQUIRE(std::fabs(a[i] - std::floor(v)) <= (std::fabs(v - std::nearbyint(v)) < 1e-9 ? 1 : 0));
            }
        }
    }
}

TEST_CASE("zoom blur: zoom_accumulate adds exactly what clipped_zoom returns", "[corrupt][zoom]") {
    sc::generator g(13);
    for (auto [h, w, c] : {std::tuple{32, 32, 3}, std::tuple{28, 28, 1}, std::tuple{17, 5, 3}, std::tuple{1, 1, 3}, std::tuple{3, 40, 1},
                           std::tuple{64, 48, 3}}) {
        std::vector<float> x(static_cast<std::size_t>(h) * w * c);
        for (auto& v : x) v = static_cast<float>(static_cast<double>(g.next() >> 56) / 255.0);
        for (double z : {1.0, 1.01, 1.06, 1.11, 1.3, 1.56, 2.0, 3.7}) {
            std::vector<float> acc(x.size()), ref(x.size());
            for (std::size_t i = 0; i < x.size(); ++i) acc[i] = ref[i] = static_cast<float>(i % 7) * 0.25f;
            sc::detail::zoom_accumulate(x, h, w, c, z, acc);
            const auto zz = sc::detail::clipped_zoom<float>(x, h, w, c, z);
            for (std::size_t i = 0; i < ref.size(); ++i) {
                const volatile float s = ref[i] + zz[i];  // one float addition, as zoom_blur did
                ref[i] = s;
            }
            INFO(h << "x" << w << "x" << c << " zoom " << z);
            CHECK(acc == ref);
        }
    }
}
