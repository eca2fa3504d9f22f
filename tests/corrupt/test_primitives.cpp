// SPDX-License-Identifier: MIT
// Building blocks checked against hand-computed or library-documented values.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <tuple>
#include <utility>
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

TEST_CASE("generator normals(): the values and the state of n normal() calls", "[corrupt][primitives]") {
    // counts around the block size (128 attempts) and the spare value, starting with and without
    // a cached spare; then the next draws of every kind must agree too
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(2), std::size_t(3), std::size_t(127),
                          std::size_t(128), std::size_t(199), std::size_t(200), std::size_t(201), std::size_t(255),
                          std::size_t(256), std::size_t(257), std::size_t(1001), std::size_t(50176)})
        for (bool spare : {false, true})
            for (std::uint64_t seed : {3u, 4u, 5u}) {
                INFO("n " << n << " spare " << spare << " seed " << seed);
                sc::generator a(seed), b(seed);
                if (spare) (void)a.normal(), (void)b.normal();
                std::vector<double> got(n + 1, -7.0), want(n);
                a.normals(got.data(), n, 0.25, 1.5);
                for (auto& v : want) v = b.normal(0.25, 1.5);
                CHECK(std::equal(want.begin(), want.end(), got.begin()));
                CHECK(got[n] == -7.0);  // nothing written past n
                CHECK(a.normal() == b.normal());
                CHECK(a.normal(1.0, 2.0) == b.normal(1.0, 2.0));
                CHECK(a.next() == b.next());
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
    // pixelate's downscales of a 224 px image (every factor of the three tables), against the naive form
    sc::image im(224, 224, 3);
    for (std::size_t i = 0; i < im.size(); ++i) im.data()[i] = std::uint8_t(g() & 255);
    for (const double f : {0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.5, 0.4, 0.3, 0.25}) {
        const int s = int(224 * f);
        CAPTURE(f, s);
        const sc::image a = sc::detail::pil_box_resize(im.view(), s, s);
        const sc::image b = naive(im.view(), s, s);
        CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
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

// clipped_zoom's definition per output value (the reference's four products in scipy's order,
// index checks on every read), as it was computed before the rows were weighted once per row.
template <class T>
SHIFTNORM_FP_EXACT static std::vector<T> clipped_zoom_naive(const std::vector<T>& src, int h, int w, int c, double z) {
    namespace d = sc::detail;
    const int ch = int(std::ceil(h / z)), cw = int(std::ceil(w / z));
    const int y0 = (h - ch) / 2, x0 = (w - cw) / 2;
    const int zh = int(std::nearbyint(ch * z)), zw = int(std::nearbyint(cw * z));
    const d::lin_axis ay = d::zoom_axis(ch, zh), ax = d::zoom_axis(cw, zw);
    const int ty = std::max((zh - h) / 2, 0), tx = std::max((zw - w) / 2, 0);
    std::vector<T> out(std::size_t(h) * w * c, T(0));
    auto at = [&](int yy, int xx, int k) -> double {
        if (yy < 0 || xx < 0) return 0.0;
        return src[(std::size_t(y0 + yy) * w + std::size_t(x0 + xx)) * c + k];
    };
    for (int y = 0; y < h && ty + y < zh; ++y)
        for (int x = 0; x < w && tx + x < zw; ++x)
            for (int k = 0; k < c; ++k) {
                const int oy = ty + y, ox = tx + x;
                double t = at(ay.i0[oy], ax.i0[ox], k) * ay.w0[oy] * ax.w0[ox];
                t += at(ay.i0[oy], ax.i1[ox], k) * ay.w0[oy] * ax.w1[ox];
                t += at(ay.i1[oy], ax.i0[ox], k) * ay.w1[oy] * ax.w0[ox];
                t += at(ay.i1[oy], ax.i1[ox], k) * ay.w1[oy] * ax.w1[ox];
                out[(std::size_t(y) * w + x) * c + k] = static_cast<T>(t);
            }
    return out;
}

TEST_CASE("clipped_zoom: the per-value definition, bit for bit (float and double, 1 and 3 channels)", "[corrupt][zoom]") {
    sc::generator g(29);
    for (auto [h, w, c] : {std::tuple{224, 224, 1}, std::tuple{32, 32, 1}, std::tuple{17, 5, 3}, std::tuple{1, 1, 1},
                           std::tuple{3, 40, 1}, std::tuple{64, 48, 3}})
        for (double z : {1.0, 1.06, 1.5, 2.0, 2.5, 3.7}) {
            INFO(h << "x" << w << "x" << c << " zoom " << z);
            // mixed magnitudes: a different summation order shows in the bits
            std::vector<double> xd(std::size_t(h) * w * c);
            for (auto& v : xd) v = g.uniform(-1.0, 1.0) * (g.uniform() < 0.5 ? 1e8 : 1e-3);
            std::vector<float> xf(xd.begin(), xd.end());
            const auto gd = sc::detail::clipped_zoom<double>(xd, h, w, c, z);
            const auto wd = clipped_zoom_naive(xd, h, w, c, z);
            CHECK(std::memcmp(gd.data(), wd.data(), wd.size() * sizeof(double)) == 0);
            const auto gf = sc::detail::clipped_zoom<float>(xf, h, w, c, z);
            const auto wf = clipped_zoom_naive(xf, h, w, c, z);
            CHECK(std::memcmp(gf.data(), wf.data(), wf.size() * sizeof(float)) == 0);
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

namespace {
// The per-pixel definitions (index checks and border_index on every read), as the spatter and
// fog helpers were written before they read padded planes.
std::vector<double> box3_naive(const sc::detail::scratch_vector<double>& src, int h, int w) {
    namespace d = sc::detail;
    std::vector<double> out(src.size());
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            double s = 0.0;
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx)
                    s += src[std::size_t(d::border_index(y + dy, h, d::border::mirror) * w +
                                         d::border_index(x + dx, w, d::border::mirror))];
            out[std::size_t(y * w + x)] = s / 9.0;
        }
    return out;
}

std::vector<double> distance_naive(const sc::detail::scratch_vector<std::uint8_t>& src, int h, int w) {
    const double INF = 1e9, a = 1.0, b = 1.4, c = 2.1969;
    std::vector<double> dist(src.size());
    for (std::size_t i = 0; i < dist.size(); ++i) dist[i] = src[i] == 0 ? 0.0 : INF;
    const int dys[] = {-2, -2, -1, -1, -1, -1, -1, 0}, dxs[] = {-1, 1, -2, -1, 0, 1, 2, -1};
    const double ws[] = {c, c, c, b, a, b, c, a};
    for (int pass = 0; pass < 2; ++pass)
        for (int k = 0; k < h * w; ++k) {
            const int p = pass == 0 ? k : h * w - 1 - k, y = p / w, x = p % w;
            double best = dist[std::size_t(p)];
            for (int o = 0; o < 8; ++o) {
                const int yy = y + (pass == 0 ? dys[o] : -dys[o]), xx = x + (pass == 0 ? dxs[o] : -dxs[o]);
                if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                best = std::min(best, dist[std::size_t(yy * w + xx)] + ws[o]);
            }
            dist[std::size_t(p)] = best;
        }
    return dist;
}

// Sobel (replicated border), the L1 magnitude and the non-maximum suppression of Canny, read
// with index checks: 0 suppressed, 1 kept weak, 2 kept strong (before hysteresis).
std::vector<int> canny_candidates_naive(const sc::detail::scratch_vector<std::uint8_t>& img, int h, int w, int low, int high) {
    namespace d = sc::detail;
    auto px = [&](int y, int x) -> int {
        return img[std::size_t(d::border_index(y, h, d::border::nearest) * w + d::border_index(x, w, d::border::nearest))];
    };
    std::vector<int> gx(img.size()), gy(img.size()), mag(img.size());
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int i = y * w + x;
            gx[std::size_t(i)] = (px(y - 1, x + 1) + 2 * px(y, x + 1) + px(y + 1, x + 1)) -
                                 (px(y - 1, x - 1) + 2 * px(y, x - 1) + px(y + 1, x - 1));
            gy[std::size_t(i)] = (px(y + 1, x - 1) + 2 * px(y + 1, x) + px(y + 1, x + 1)) -
                                 (px(y - 1, x - 1) + 2 * px(y - 1, x) + px(y - 1, x + 1));
            mag[std::size_t(i)] = std::abs(gx[std::size_t(i)]) + std::abs(gy[std::size_t(i)]);
        }
    auto m = [&](int y, int x) { return (y < 0 || y >= h || x < 0 || x >= w) ? 0 : mag[std::size_t(y * w + x)]; };
    std::vector<int> state(img.size(), 0);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const int i = y * w + x, v = mag[std::size_t(i)];
            if (v <= low) continue;
            const double xs = std::abs(gx[std::size_t(i)]), ys = std::abs(gy[std::size_t(i)]);
            const double tg22 = xs * 0.4142135623730950488, tg67 = tg22 + 2 * xs;
            bool keep;
            if (ys < tg22) keep = v > m(y, x - 1) && v >= m(y, x + 1);
            else if (ys > tg67) keep = v > m(y - 1, x) && v >= m(y + 1, x);
            else {
                const int s = ((gx[std::size_t(i)] ^ gy[std::size_t(i)]) < 0) ? -1 : 1;
                keep = v > m(y - 1, x - s) && v > m(y + 1, x + s);
            }
            if (keep) state[std::size_t(i)] = v > high ? 2 : 1;
        }
    return state;
}
}  // namespace

TEST_CASE("spatter's planes: the 3x3 box, the distance transform and Canny against per-pixel loops", "[corrupt][spatter]") {
    namespace d = sc::detail;
    sc::generator g(11);
    for (auto [h, w] : {std::pair{1, 1}, {1, 7}, {7, 1}, {2, 2}, {2, 5}, {3, 3}, {5, 2}, {17, 23}, {32, 32}, {64, 41}}) {
        INFO(h << "x" << w);
        const std::size_t n = std::size_t(h) * std::size_t(w);
        // spatter's 3x3 box of the clipped distances, truncated (rows of the reflect-101 padded
        // plane): distances in [0, 20] whose sums round differently in any other order, and the
        // integers the truncation turns on
        d::scratch_vector<double> v(n);
        for (double& x : v) x = g.uniform() < 0.3 ? double(int(g.uniform(0.0, 21.0))) : g.uniform(0.0, 20.0);
        const auto box_ref = box3_naive(v, h, w);
        const auto pad = d::padded_plane(v.data(), h, w, 1, d::border::mirror);
        std::vector<int> box(n, -1);
        for (int y = 0; y < h; ++y) {
            const double* r0 = &pad[std::size_t(y) * std::size_t(w + 2)];
            d::spatter_box3_u8(r0, r0 + (w + 2), r0 + 2 * (w + 2), w, &box[std::size_t(y) * std::size_t(w)]);
        }
        for (std::size_t i = 0; i < n; ++i) CHECK(box[i] == int(box_ref[i]));
        // the distance transform: sparse, dense, no and only zero pixels
        for (double zero_share : {0.02, 0.5, 0.0, 1.0}) {
            d::scratch_vector<std::uint8_t> e(n);
            for (auto& x : e) x = g.uniform() < zero_share ? 0 : 255;
            const auto dt = d::distance_transform(e, h, w);
            const auto dt_ref = distance_naive(e, h, w);
            CHECK(std::equal(dt.begin(), dt.end(), dt_ref.begin(), dt_ref.end()));
        }
        // Canny: edges of a smooth field with blobs, every kept pixel strong or joined to a strong one
        d::scratch_vector<std::uint8_t> img(n);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                img[std::size_t(y * w + x)] =
                    std::uint8_t(std::clamp(int(120 + 100 * std::sin(0.5 * x) * std::cos(0.3 * y) + g.uniform(-20, 20)), 0, 255));
        const auto edges = d::canny(img, h, w, 50, 150);
        const auto cand = canny_candidates_naive(img, h, w, 50, 150);
        for (std::size_t i = 0; i < n; ++i) {
            if (cand[i] == 2) CHECK(edges[i] == 255);  // strong: always an edge
            if (cand[i] == 0) CHECK(edges[i] == 0);    // suppressed: never
        }
        // weak candidates are edges exactly when 8-connected through candidates to a strong one
        std::vector<int> reach(n, 0), stack;
        for (std::size_t i = 0; i < n; ++i)
            if (cand[i] == 2) reach[i] = 1, stack.push_back(int(i));
        while (!stack.empty()) {
            const int p = stack.back(), y = p / w, x = p % w;
            stack.pop_back();
            for (int yy = y - 1; yy <= y + 1; ++yy)
                for (int xx = x - 1; xx <= x + 1; ++xx)
                    if (yy >= 0 && yy < h && xx >= 0 && xx < w && cand[std::size_t(yy * w + xx)] && !reach[std::size_t(yy * w + xx)])
                        reach[std::size_t(yy * w + xx)] = 1, stack.push_back(yy * w + xx);
        }
        for (std::size_t i = 0; i < n; ++i) CHECK((edges[i] == 255) == (reach[i] == 1));
    }
}

// one fog value, each operation rounded as written (no contraction into FMAs)
SHIFTNORM_FP_EXACT static std::uint8_t fog_step_by_step(double f, double strength, double plasma, double mx) {
    double v = f + strength * plasma;
    v = v * mx / (mx + strength);
    v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
    return sc::detail::trunc_u8(v * 255.0);
}

// The reference's plasma_fractal transliterated element by element (numpy's strided slices and
// np.roll as index arithmetic, one uniform draw per element in numpy's row-major order).
SHIFTNORM_FP_EXACT static std::vector<double> plasma_like_numpy(int n, double decay, sc::generator& gen) {
    std::vector<double> m(std::size_t(n) * n, 0.0);
    auto at = [&](int y, int x) -> double& { return m[std::size_t(((y % n) + n) % n) * n + std::size_t(((x % n) + n) % n)]; };
    double wibble = 100.0;
    for (int step = n; step >= 2; step /= 2) {
        const int hs = step / 2;
        for (int y = hs; y < n; y += step)  // fillsquares
            for (int x = hs; x < n; x += step) {
                const double s = (at(y - hs, x - hs) + at(y + hs, x - hs)) + (at(y - hs, x + hs) + at(y + hs, x + hs));
                at(y, x) = s / 4 + wibble * gen.uniform(-wibble, wibble);
            }
        std::vector<double> lt, tt;
        for (int y = 0; y < n; y += step)  // ltsum = (drgrid + roll(drgrid, 1, 0)) + (ulgrid + roll(ulgrid, -1, 1))
            for (int x = hs; x < n; x += step)
                lt.push_back((at(y + hs, x) + at(y - hs, x)) + (at(y, x - hs) + at(y, x + hs)));
        for (int y = hs; y < n; y += step)  // ttsum = (drgrid + roll(drgrid, 1, 1)) + (ulgrid + roll(ulgrid, -1, 0))
            for (int x = 0; x < n; x += step)
                tt.push_back((at(y, x + hs) + at(y, x - hs)) + (at(y - hs, x) + at(y + hs, x)));
        std::size_t k = 0;
        for (int y = 0; y < n; y += step)
            for (int x = hs; x < n; x += step) at(y, x) = lt[k++] / 4 + wibble * gen.uniform(-wibble, wibble);
        k = 0;
        for (int y = hs; y < n; y += step)
            for (int x = 0; x < n; x += step) at(y, x) = tt[k++] / 4 + wibble * gen.uniform(-wibble, wibble);
        wibble /= decay;
    }
    const double mn = *std::min_element(m.begin(), m.end());
    for (double& v : m) v -= mn;
    const double mx = *std::max_element(m.begin(), m.end());
    for (double& v : m) v = mx > 0 ? v / mx : 0.0;
    return m;
}

TEST_CASE("plasma_fractal: numpy's plasma element by element, the same draws and bits", "[corrupt][fog]") {
    for (int n : {1, 2, 4, 8, 16, 32, 64, 256})
        for (double decay : {1.5, 2.0, 3.0, 10.0})
            for (std::uint64_t seed : {1u, 77u}) {
                INFO("mapsize " << n << " decay " << decay << " seed " << seed);
                sc::generator a(seed), b(seed);
                const auto got = sc::detail::plasma_fractal(n, decay, a);
                const auto want = plasma_like_numpy(n, decay, b);
                REQUIRE(got.size() == want.size());
                CHECK(std::equal(got.begin(), got.end(), want.begin()));
                CHECK(a.next() == b.next());  // the same number of draws
            }
}

TEST_CASE("fog: the fused pass gives the bytes of its steps one by one", "[corrupt][fog]") {
    // fog's documented steps (plasma with the same draws, x / 255, + strength * plasma, times
    // max / (max + strength), np.uint8(np.clip(., 0, 1) * 255)) against the fused row pass
    for (auto [h, w, c] : {std::tuple{32, 32, 3}, {1, 1, 3}, {5, 3, 1}, {40, 17, 3}})
        for (auto table : {sc::param_table::cifar, sc::param_table::imagenet})
            for (int s = 1; s <= 5; ++s) {
                INFO(h << "x" << w << "x" << c << " severity " << s);
                sc::generator g(5 + s), a(100 + s), b(100 + s);
                std::vector<std::uint8_t> src(std::size_t(h * w * c)), got(src.size()), want(src.size());
                for (auto& x : src) x = std::uint8_t(g.randint(0, 255));
                sc::fog(sc::const_image_view{src.data(), h, w, c}, sc::image_view{got.data(), h, w, c}, s, a, table);
                const auto p = sc::fog_params_for(table, s);
                int n = 2;
                while (n < std::max(h, w)) n *= 2;
                const auto plasma = sc::detail::plasma_fractal(n, p.decay, b);
                const auto f = sc::detail::to_unit(sc::const_image_view{src.data(), h, w, c});
                const double mx = *std::max_element(f.px.begin(), f.px.end());
                for (int y = 0; y < h; ++y)
                    for (int x = 0; x < w; ++x)
                        for (int k = 0; k < c; ++k) {
                            const std::size_t i = std::size_t((y * w + x) * c + k);
                            want[i] = fog_step_by_step(f.px[i], p.strength, plasma[std::size_t(y * n + x)], mx);
                        }
                CHECK(got == want);
            }
}

TEST_CASE("the AVX-512 twins of one-body kernels give the plain build's bits", "[corrupt][primitives]") {
    // store_unit, fog's and snow's row passes, the symmetric filter row, warp_affine and elastic's sampling:
    // each body compiled twice (kernel_attributes.hpp), here run side by side on the same data
    if (!sc::detail::avx512_kernels_available()) {
        WARN("this CPU lacks AVX-512 F/BW/DQ/VL: only the plain builds run here");
        return;
    }
#if defined(SHIFTNORM_CORRUPT_AVX512)
    namespace d = sc::detail;
    std::mt19937 g(9);
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    const double specials[] = {0.0, -0.0, 1.0, 1.0 + 1e-16, -1e-300, 254.5 / 255.0, 255.0 / 255.0,
                               std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                               -std::numeric_limits<double>::infinity()};
    for (const std::size_t n : {std::size_t(1), std::size_t(7), std::size_t(16), std::size_t(63), std::size_t(672)}) {
        CAPTURE(n);
        std::vector<double> v(n), add(n);
        std::vector<std::uint8_t> x(n), a(n + 1, 7), b(n + 1, 7);
        for (std::size_t i = 0; i < n; ++i) {
            v[i] = i % 5 == 0 ? specials[(i / 5) % 10] : u(g) * 1.2 + 0.5;
            add[i] = i % 7 == 0 ? specials[(i / 7) % 10] : u(g) * 0.6;
            x[i] = std::uint8_t(g() % 256);
        }
        d::store_unit_plain(v.data(), nullptr, nullptr, a.data(), n);
        d::store_unit_avx512(v.data(), nullptr, nullptr, b.data(), n);
        CHECK(a == b);
        d::store_unit_plain(nullptr, x.data(), add.data(), a.data(), n);
        d::store_unit_avx512(nullptr, x.data(), add.data(), b.data(), n);
        CHECK(a == b);
        d::fog_row_plain(x.data(), add.data(), 0.93, 0.93 + 1.7, a.data(), n);
        d::fog_row_avx512(x.data(), add.data(), 0.93, 0.93 + 1.7, b.data(), n);
        CHECK(a == b);
        for (const int c : {1, 3}) {  // snow's blend: n / c pixels of c channels
            const int w = int(n) / c;
            d::snow_row_plain(x.data(), add.data(), 0.55f, 0.45f, w, c, a.data());
            d::snow_row_avx512(x.data(), add.data(), 0.55f, 0.45f, w, c, b.data());
            CHECK(a == b);
        }
        // the symmetric row: 1e8-scaled values, so that any other summation order shows
        const int r = 5;
        std::vector<double> rows(std::size_t(2 * r + 1) * n), w(std::size_t(r) + 1), oa(n + 1, -3.0), ob(n + 1, -3.0);
        for (double& q : rows) q = u(g) * (g() % 2 ? 1e8 : 1e-3);
        for (double& q : w) q = u(g);
        std::vector<const double*> ra(static_cast<std::size_t>(r)), rb(static_cast<std::size_t>(r));
        for (int j = 0; j < r; ++j) ra[std::size_t(j)] = &rows[std::size_t(j + 1) * n], rb[std::size_t(j)] = &rows[std::size_t(r + j + 1) * n];
        d::sym_tap_row_plain(rows.data(), ra.data(), rb.data(), w.data(), r, oa.data(), n);
        d::sym_tap_row_avx512(rows.data(), ra.data(), rb.data(), w.data(), r, ob.data(), n);
        CHECK(std::memcmp(oa.data(), ob.data(), oa.size() * sizeof(double)) == 0);
    }
    // warp_affine and elastic's sampling on a 23 x 17 x 3 image, coordinates beyond the borders
    const int h = 23, w = 17, c = 3;
    std::vector<double> img(std::size_t(h * w * c)), dx(std::size_t(h * w)), dy(std::size_t(h * w));
    for (double& q : img) q = u(g) * 0.7 + 0.5;
    for (std::size_t i = 0; i < dx.size(); ++i) dx[i] = u(g) * (i % 11 == 0 ? 40.0 : 3.0), dy[i] = u(g) * 3.0;
    const double m[6] = {0.93, 0.11, 1.7, -0.08, 1.05, -2.3};
    std::vector<double> wa(img.size()), wb(img.size());
    d::warp_affine_plain(img.data(), h, w, c, m, wa.data());
    d::warp_affine_avx512(img.data(), h, w, c, m, wb.data());
    CHECK(std::memcmp(wa.data(), wb.data(), wa.size() * sizeof(double)) == 0);
    std::vector<std::uint8_t> ea(img.size()), eb(img.size());
    d::elastic_sample_plain(img.data(), h, w, c, dx.data(), dy.data(), ea.data());
    d::elastic_sample_avx512(img.data(), h, w, c, dx.data(), dy.data(), eb.data());
    CHECK(ea == eb);
#endif
}

TEST_CASE("contrast: the AVX-512 VBMI table lookups give the plain loop's bytes", "[corrupt][contrast]") {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (!sc::detail::avx512_vbmi_available()) {
        WARN("this CPU has no AVX-512 VBMI: only the plain lookups run here");
        return;
    }
    sc::generator g(21);
    std::uint8_t lut[3][256];
    for (auto& t : lut)
        for (auto& e : t) e = static_cast<std::uint8_t>(g.next() >> 56);
    for (const int c : {1, 3})
        for (const std::size_t pixels : {std::size_t(1), std::size_t(21), std::size_t(63), std::size_t(64), std::size_t(65),
                                         std::size_t(192), std::size_t(1000), std::size_t(50176)}) {
            const std::size_t n = pixels * std::size_t(c);
            CAPTURE(c, n);
            std::vector<std::uint8_t> src(n), a(n + 1, 9), b(n + 1, 9);
            for (auto& v : src) v = static_cast<std::uint8_t>(g.next() >> 56);
            for (std::size_t i = 0; i < std::min<std::size_t>(n, 256); ++i) src[i] = static_cast<std::uint8_t>(i);  // every byte
            sc::detail::channel_lut_plain(src.data(), a.data(), n, c, lut);
            sc::detail::channel_lut_vbmi(src.data(), b.data(), n, c, lut);
            CHECK(a == b);  // incl. the untouched sentinel
            std::vector<std::uint8_t> in_place = src;  // src == dst, as corrupt() allows
            sc::detail::channel_lut_vbmi(in_place.data(), in_place.data(), n, c, lut);
            CHECK(std::equal(in_place.begin(), in_place.end(), a.begin()));
        }
#else
    WARN("built without the AVX-512 kernels");
#endif
}

namespace {
// spatter's row kernels of one build (portable, AVX2 or AVX-512 twin), for side-by-side runs
struct spatter_kernels {
    void (*sobel)(const int*, const int*, const int*, int, int*, int*, int*);
    void (*nms)(const int*, std::size_t, const int*, const int*, int, int, int, int*);
    void (*seed)(const int*, int, int, double*);
    void (*liquid)(const double*, double, int*, std::size_t);
    void (*box)(const double*, const double*, const double*, int, int*);
    void (*emboss)(const int*, const int*, const int*, int, int*);
    void (*m)(const int*, const int*, const int*, const int*, int, float*);
    void (*water)(const float*, const std::uint8_t*, double, double, const double*, int, std::uint8_t*, std::size_t);
};

// Runs every kernel of `k` and of the portable build on the same rows (widths 1 to 70: the 32 px
// rows and the strips' tails) and compares the results bit for bit.
void check_spatter_twins(const spatter_kernels& k) {
    namespace d = sc::detail;
    const spatter_kernels p{d::canny_sobel_row_portable, d::canny_nms_row_portable,   d::dt_seed_row_portable,
                            d::spatter_liquid_u8_portable, d::spatter_box3_u8_portable, d::spatter_emboss_row_portable,
                            d::spatter_m_row_portable,    d::spatter_water_portable};
    std::mt19937 g(5);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    for (const int w : {1, 2, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 70}) {
        CAPTURE(w);
        const std::size_t pw = std::size_t(w) + 2, n = std::size_t(w);
        // three padded rows of bytes held in ints; a zero-bordered magnitude plane of three rows
        std::vector<int> rows(3 * pw), mag(3 * pw, 0);
        for (int& v : rows) v = int(g() % 256);
        std::vector<int> gx(n), gy(n), mr(n), gx2(n), gy2(n), mr2(n);
        p.sobel(&rows[0], &rows[pw], &rows[2 * pw], w, gx.data(), gy.data(), mr.data());
        k.sobel(&rows[0], &rows[pw], &rows[2 * pw], w, gx2.data(), gy2.data(), mr2.data());
        CHECK(gx == gx2);
        CHECK(gy == gy2);
        CHECK(mr == mr2);
        for (std::size_t i = 0; i < 3 * pw; ++i)
            if (i % pw != 0 && i % pw != pw - 1) mag[i] = int(g() % 300);
        std::vector<int> st(n, -1), st2(n, -1);
        p.nms(&mag[pw + 1], pw, gx.data(), gy.data(), w, 50, 150, st.data());
        k.nms(&mag[pw + 1], pw, gx.data(), gy.data(), w, 50, 150, st2.data());
        CHECK(st == st2);
        std::vector<double> seed(n), seed2(n);
        p.seed(st.data(), 2, w, seed.data());
        k.seed(st.data(), 2, w, seed2.data());
        CHECK(seed == seed2);
        // the liquid field around the threshold, with NaN and the clip's ends
        std::vector<double> field(n);
        for (std::size_t i = 0; i < n; ++i)
            field[i] = i % 9 == 4 ? std::numeric_limits<double>::quiet_NaN() : i % 9 == 5 ? 1.5 : u(g) * 0.4 + 0.5;
        std::vector<int> lq(n), lq2(n);
        p.liquid(field.data(), 0.68, lq.data(), n);
        k.liquid(field.data(), 0.68, lq2.data(), n);
        CHECK(lq == lq2);
        std::vector<double> dist(3 * pw);
        for (double& v : dist) v = u(g) * 20.0;
        std::vector<int> box(n), box2(n);
        p.box(&dist[0], &dist[pw], &dist[2 * pw], w, box.data());
        k.box(&dist[0], &dist[pw], &dist[2 * pw], w, box2.data());
        CHECK(box == box2);
        std::vector<int> emb(n), emb2(n);
        p.emboss(&rows[0], &rows[pw], &rows[2 * pw], w, emb.data());
        k.emboss(&rows[0], &rows[pw], &rows[2 * pw], w, emb2.data());
        CHECK(emb == emb2);
        std::vector<float> m(n), m2(n);
        p.m(&rows[0], &rows[pw], &rows[2 * pw], lq.data(), w, m.data());
        k.m(&rows[0], &rows[pw], &rows[2 * pw], lq.data(), w, m2.data());
        CHECK(std::memcmp(m.data(), m2.data(), n * sizeof(float)) == 0);
        // the water's blend over w pixels of 3 channels and of 1
        static constexpr double water[3] = {175 / 255.0, 238 / 255.0, 238 / 255.0};
        std::vector<std::uint8_t> x(3 * n);
        for (auto& v : x) v = std::uint8_t(g() % 256);
        const float mmax = *std::max_element(m.begin(), m.end()) + 1.0f;
        for (const int c : {3, 1}) {
            std::vector<std::uint8_t> o(n * std::size_t(c), 7), o2(n * std::size_t(c), 9);
            p.water(m.data(), x.data(), mmax, 0.6, water, c, o.data(), n);
            k.water(m.data(), x.data(), mmax, 0.6, water, c, o2.data(), n);
            CHECK(o == o2);
        }
    }
}
}  // namespace

TEST_CASE("spatter's row kernels: AVX-512 and AVX2 twins give the portable bits", "[corrupt][spatter]") {
    namespace d = sc::detail;
    (void)check_spatter_twins;
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (d::avx512_kernels_available())
        check_spatter_twins({d::canny_sobel_row_avx512, d::canny_nms_row_avx512, d::dt_seed_row_avx512,
                             d::spatter_liquid_u8_avx512, d::spatter_box3_u8_avx512, d::spatter_emboss_row_avx512,
                             d::spatter_m_row_avx512, d::spatter_water_avx512});
    else
        WARN("this CPU lacks AVX-512 F/BW/DQ/VL: its twins are not checked here");
#endif
#if defined(SHIFTNORM_CORRUPT_AVX2)
    if (d::avx2_kernels_available())
        check_spatter_twins({d::canny_sobel_row_avx2, d::canny_nms_row_avx2, d::dt_seed_row_avx2, d::spatter_liquid_u8_avx2,
                             d::spatter_box3_u8_avx2, d::spatter_emboss_row_avx2, d::spatter_m_row_avx2,
                             d::spatter_water_avx2});
    else
        WARN("this CPU has no AVX2: its twins are not checked here");
#endif
}
