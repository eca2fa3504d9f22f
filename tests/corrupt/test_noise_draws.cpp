// SPDX-License-Identifier: MIT
// The counter noise stream: kernels against each other and a double reference, its laws, pinned bytes.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <vector>

#include "../support/skip.hpp"
#include "shiftnorm/corrupt.hpp"

namespace sc = shiftnorm::corrupt;
namespace scd = shiftnorm::corrupt::detail;

namespace {
std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed) {
    sc::generator g(seed);
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(g.next() >> 56);
    return v;
}

//! FNV-1a over bytes.
std::uint64_t fnv1a(const std::vector<std::uint8_t>& v) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (std::uint8_t b : v) h = (h ^ b) * 0x100000001b3ull;
    return h;
}

//! The normals of words [0, 16 m) of `key`, cosine then sine normal of each word.
std::vector<float> normals(std::uint64_t key, std::size_t m) {
    std::vector<float> z;
    std::uint64_t w[16];
    float zc[16], zs[16];
    for (std::size_t b = 0; b < m; ++b) {
        for (int j = 0; j < 16; ++j) w[j] = scd::counter_word(key, 16 * b + j);
        scd::box_muller_block16(w, zc, zs);
        for (int j = 0; j < 16; ++j) z.push_back(zc[j]), z.push_back(zs[j]);
    }
    return z;
}

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }
}  // namespace

TEST_CASE("counter_word is splitmix64's stream", "[corrupt][noise]") {
    std::uint64_t state = 12345;
    for (std::uint64_t i = 0; i < 100; ++i) CHECK(scd::counter_word(12345, i) == shiftnorm::splitmix64(state));
}

TEST_CASE("box_muller_block16 against the double-precision formula", "[corrupt][noise]") {
    const double pi = 3.14159265358979323846;
    double worst = 0;
    std::uint64_t w[16];
    float zc[16], zs[16];
    for (std::uint64_t b = 0; b < 4096; ++b) {
        for (int j = 0; j < 16; ++j) w[j] = scd::counter_word(7, 16 * b + j);
        // edge words: u1 = 2^-24 (the largest radius), u1 = 1 (radius 0), every quadrant boundary
        if (b == 0) {
            w[0] = 0;                      // top 0 -> u1 = 2^-24, angle 0
            w[1] = ~0ull;                  // u1 = 1, angle just under 2 pi
            w[2] = 0x0000000000400000ull;  // angle pi/2
            w[3] = 0x0000000000800000ull;  // angle pi
            w[4] = 0x0000000000C00000ull;  // angle 3 pi/2
            w[5] = 0x3504F30000000000ull;  // mantissa near sqrt(2)
        }
        scd::box_muller_block16(w, zc, zs);
        for (int j = 0; j < 16; ++j) {
            const double u1 = (static_cast<double>(w[j] >> 40) + 1.0) / 16777216.0;
            const double th = 2.0 * pi * static_cast<double>(w[j] & 0xFFFFFFu) / 16777216.0;
            const double r = std::sqrt(-2.0 * std::log(u1));
            worst = std::max({worst, std::fabs(zc[j] - r * std::cos(th)), std::fabs(zs[j] - r * std::sin(th))});
            REQUIRE(std::isfinite(zc[j]));
            REQUIRE(std::isfinite(zs[j]));
        }
    }
    INFO("worst |z - z_double| " << worst);
    CHECK(worst < 4e-6);  // float rounding of values up to 5.77 (ulp 4.8e-7) through ~10 operations
}

TEST_CASE("the counter normals are standard normal and independent", "[corrupt][noise]") {
    const std::size_t m = 1 << 15;  // 2^20 normals
    const auto z = normals(99, m);
    const double n = static_cast<double>(z.size());
    double s1 = 0, s2 = 0, s4 = 0, cross = 0;
    for (std::size_t i = 0; i < z.size(); ++i) {
        s1 += z[i];
        s2 += double(z[i]) * z[i];
        s4 += double(z[i]) * z[i] * z[i] * z[i];
        if (i % 2 == 0) cross += double(z[i]) * z[i + 1];
    }
    // 5 standard errors: mean 1/sqrt(n), variance sqrt(2/n), kurtosis sqrt(96/n), pair product 1/sqrt(n/2)
    CHECK(std::fabs(s1 / n) < 5 / std::sqrt(n));
    CHECK(std::fabs(s2 / n - 1) < 5 * std::sqrt(2 / n));
    CHECK(std::fabs(s4 / n - 3) < 5 * std::sqrt(96 / n));
    CHECK(std::fabs(cross / (n / 2)) < 5 / std::sqrt(n / 2));
    // the law: empirical CDF at 13 points within 5 binomial standard errors
    for (double x : {-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0}) {
        std::size_t below = 0;
        for (float v : z) below += v < x;
        const double p = normal_cdf(x);
        INFO("x " << x);
        CHECK(std::fabs(below / n - p) < 5 * std::sqrt(p * (1 - p) / n));
    }
}

namespace {
using normal_kernel = void (*)(scd::normal_noise_kind, const std::uint8_t*, std::uint8_t*, std::size_t, float, std::uint64_t);
using impulse_kernel = void (*)(const std::uint8_t*, std::uint8_t*, std::size_t, std::uint32_t, std::uint64_t);

//! A SIMD kernel pair against the portable loops: sizes around the block lengths, weights from 0
//! to far beyond the clipping range, every impulse amount from none to all.
void check_against_portable(normal_kernel normal, impulse_kernel impulse) {
    for (std::size_t n : {std::size_t(1), std::size_t(8), std::size_t(15), std::size_t(16), std::size_t(17), std::size_t(31),
                          std::size_t(32), std::size_t(33), std::size_t(1000), std::size_t(224 * 224 * 3 + 5)}) {
        const auto src = random_bytes(n, n);
        for (float a : {0.0f, 0.06f * 255, 0.38f * 255, 1e4f, 0.6f}) {
            for (auto kind : {scd::normal_noise_kind::additive, scd::normal_noise_kind::multiplicative}) {
                std::vector<std::uint8_t> p(n), v(n);
                scd::normal_noise_plain(kind, src.data(), p.data(), n, a, 42 + n);
                normal(kind, src.data(), v.data(), n, a, 42 + n);
                INFO("n " << n << " a " << a << " kind " << int(kind));
                CHECK(p == v);
            }
        }
        for (double amount : {0.0, 0.03, 0.27, 1.0}) {
            std::vector<std::uint8_t> p(n), v(n);
            scd::impulse_noise_plain(src.data(), p.data(), n, scd::impulse_threshold(amount), 5 + n);
            impulse(src.data(), v.data(), n, scd::impulse_threshold(amount), 5 + n);
            INFO("impulse n " << n << " amount " << amount);
            CHECK(p == v);
        }
    }
}
}  // namespace

TEST_CASE("normal and impulse noise: the AVX-512 kernels give the portable kernels' bytes", "[corrupt][noise]") {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    SHIFTNORM_SKIP_UNLESS(scd::avx512_noise_available(), "this CPU has no AVX-512F/DQ (only the other kernels run)");
    check_against_portable(scd::normal_noise_avx512, scd::impulse_noise_avx512);
#else
    SHIFTNORM_SKIP_UNLESS(false, "built without the AVX-512 kernels (not x86-64 GCC/Clang, or SHIFTNORM_NO_AVX512)");
#endif
}

TEST_CASE("normal and impulse noise: the AVX2 kernels give the portable kernels' bytes", "[corrupt][noise]") {
#if defined(SHIFTNORM_CORRUPT_AVX2)
    SHIFTNORM_SKIP_UNLESS(scd::avx2_noise_available(), "this CPU has no AVX2 (only the portable kernels run)");
    check_against_portable(scd::normal_noise_avx2, scd::impulse_noise_avx2);
#else
    SHIFTNORM_SKIP_UNLESS(false, "built without the AVX2 kernels (not x86-64 GCC/Clang, or SHIFTNORM_NO_AVX2)");
#endif
}

TEST_CASE("normal noise bytes follow the formula on the stream's normals", "[corrupt][noise]") {
    const std::size_t n = 32 * 50 + 7;  // a final partial block
    const auto src = random_bytes(n, 3);
    const auto z = normals(11, (n + 31) / 32);
    const float a = 0.18f * 255;
    std::vector<std::uint8_t> add(n), mul(n);
    scd::normal_noise_row(scd::normal_noise_kind::additive, src.data(), add.data(), n, a, 11);
    scd::normal_noise_row(scd::normal_noise_kind::multiplicative, src.data(), mul.data(), n, 0.35f, 11);
    std::size_t off_add = 0, off_mul = 0;
    for (std::size_t i = 0; i < n; ++i) {
        // value 32b + j: word 16b + (j mod 16), cosine for j < 16, sine after
        const std::size_t b = i / 32, j = i % 32;
        const double zi = z[2 * (16 * b + j % 16) + (j < 16 ? 0 : 1)];
        const double x = src[i];
        const double ya = std::min(std::max(x + double(a) * zi, 0.0), 255.0);
        const double ym = std::min(std::max(x + x * 0.35 * zi, 0.0), 255.0);
        // float vs double rounding may move a value that sits on an integer by one grey level
        off_add += std::fabs(add[i] - std::floor(ya)) > 0;
        off_mul += std::fabs(mul[i] - std::floor(ym)) > 0;
        REQUIRE(std::fabs(add[i] - std::floor(ya)) <= 1);
        REQUIRE(std::fabs(mul[i] - std::floor(ym)) <= 1);
    }
    INFO("bytes off by one: additive " << off_add << ", multiplicative " << off_mul << " of " << n);
    CHECK(off_add <= 2);
    CHECK(off_mul <= 2);
}

TEST_CASE("impulse noise flips with the table's probability, half salt", "[corrupt][noise]") {
    const std::size_t n = 1 << 20;
    const auto src = random_bytes(n, 8);
    std::vector<std::uint8_t> out(n);
    const double amount = 0.09;
    scd::impulse_noise_row(src.data(), out.data(), n, scd::impulse_threshold(amount), 77);
    std::size_t changed_to_salt = 0, changed_to_pepper = 0, kept = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (out[i] == src[i]) ++kept;
        else if (out[i] == 255) ++changed_to_salt;
        else if (out[i] == 0) ++changed_to_pepper;
        else FAIL("value " << i << " became " << int(out[i]) << " (neither kept, 0 nor 255)");
    }
    // a flip to the value it already had is invisible: P(visible) = amount (1 - P(x = target))
    const double p_salt = amount / 2 * (1 - 1.0 / 256), p_pep = p_salt;
    const double se = std::sqrt(p_salt * (1 - p_salt) / n);
    CHECK(std::fabs(double(changed_to_salt) / n - p_salt) < 5 * se);
    CHECK(std::fabs(double(changed_to_pepper) / n - p_pep) < 5 * se);
    CHECK(scd::impulse_threshold(0.0) == 0u);
    CHECK(scd::impulse_threshold(1.0) == 0x80000000u);  // every half (h >> 1 < 2^31) flips
    std::vector<std::uint8_t> all(64);
    scd::impulse_noise_row(src.data(), all.data(), 64, scd::impulse_threshold(1.0), 1);
    for (std::uint8_t v : all) CHECK((v == 0 || v == 255));
}

TEST_CASE("shot noise alias tables hold the Poisson law of the output byte", "[corrupt][noise]") {
    for (double c : {3.0, 12.0, 60.0, 500.0}) {
        const auto t = scd::shot_table_for(c);
        REQUIRE(t == scd::shot_table_for(c));  // cached per rate
        for (int x : {0, 1, 37, 128, 200, 255}) {
            // the law the table samples: entry i is taken with (thr/2^32)/n, its alias with the rest
            std::vector<double> law(256, 0.0);
            const std::uint32_t n = t->count[x];
            REQUIRE(n >= 1);
            REQUIRE(n <= 256);
            for (std::uint32_t i = 0; i < n; ++i) {
                const auto& e = t->entries[t->offset[x] + i];
                const double acc = e.accept == e.alias ? 1.0 : e.thr / 4294967296.0;
                law[e.accept] += acc / n;
                law[e.alias] += (1 - acc) / n;
            }
            // the exact law in double: sum of Poisson(x/255 c) masses per output byte
            std::vector<double> exact(256, 0.0);
            const double lam = x / 255.0 * c;
            double k_mass = std::exp(-lam);  // P(K = 0)
            for (int k = 0; k < 4000; ++k) {
                exact[scd::shot_byte(k, c)] += k_mass;
                k_mass *= lam / (k + 1);
            }
            double worst = 0;
            for (int b = 0; b < 256; ++b) worst = std::max(worst, std::fabs(law[b] - exact[b]));
            INFO("c " << c << " x " << x << " worst |p - p_exact| " << worst);
            CHECK(worst < 1e-8);
        }
    }
    // sampled: the mean output byte at x = 128, c = 60 against the law's mean
    const std::size_t n = 1 << 18;
    std::vector<std::uint8_t> src(n, 128), out(n);
    const auto t = scd::shot_table_for(60.0);
    scd::shot_noise_row(*t, src.data(), out.data(), n, 3);
    double mean = 0, var = 0, lm = 0, l2 = 0;
    for (std::uint8_t v : out) mean += v;
    mean /= n;
    for (std::uint8_t v : out) var += (v - mean) * (v - mean);
    var /= n;
    const double lam = 128 / 255.0 * 60;
    double k_mass = std::exp(-lam);
    for (int k = 0; k < 400; ++k) {
        const double b = scd::shot_byte(k, 60.0);
        lm += k_mass * b;
        l2 += k_mass * b * b;
        k_mass *= lam / (k + 1);
    }
    const double lv = l2 - lm * lm;
    CHECK(std::fabs(mean - lm) < 5 * std::sqrt(lv / n));
    CHECK(std::fabs(var / lv - 1) < 5 * std::sqrt(2.0 / n));
}

TEST_CASE("counter stream bytes are pinned (any CPU, compiler or flags must give these)", "[corrupt][noise]") {
    // Pinned when the counter stream was introduced (2026-12-03): a change here changes every
    // noise cell of every result made with the default stream, so it must be deliberate.
    const auto src = random_bytes(64 * 48 * 3, 2024);
    const sc::const_image_view in{src.data(), 64, 48, 3};
    sc::corrupt_options opt;
    opt.table = sc::param_table::imagenet;
    std::vector<std::uint64_t> got;
    for (const char* name : {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"}) {
        const auto out = sc::corrupt(name, 4, in, 7, opt, 3);
        got.push_back(fnv1a(std::vector<std::uint8_t>(out.data(), out.data() + out.size())));
    }
    for (auto h : got) UNSCOPED_INFO(std::hex << h);
    CHECK(got == std::vector<std::uint64_t>{0xcc0e9fb6845ee2d3ull, 0x18ac25aae45982c7ull, 0xfaf47902eeef22ffull, 0x51b099ef9f0a1ce7ull});
}

TEST_CASE("noise_stream::v1 keeps the sequential stream; counter is the default and differs", "[corrupt][noise]") {
    const auto src = random_bytes(32 * 32 * 3, 5);
    const sc::const_image_view in{src.data(), 32, 32, 3};
    sc::corrupt_options v1;
    v1.noise = sc::noise_stream::v1;
    for (const char* name : {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"}) {
        INFO(name);
        const auto c = sc::parse_corruption(name);
        // v1 is exactly the sequential generator's draws
        sc::image ref(32, 32, 3);
        sc::generator g(sc::image_seed(9, c, 3, 0));
        switch (c) {
            case sc::corruption::gaussian_noise: sc::gaussian_noise(in, ref.view(), 3, g, sc::param_table::cifar, sc::noise_stream::v1); break;
            case sc::corruption::shot_noise: sc::shot_noise(in, ref.view(), 3, g, sc::param_table::cifar, sc::noise_stream::v1); break;
            case sc::corruption::impulse_noise: sc::impulse_noise(in, ref.view(), 3, g, sc::param_table::cifar, sc::noise_stream::v1); break;
            default: sc::speckle_noise(in, ref.view(), 3, g, sc::param_table::cifar, sc::noise_stream::v1); break;
        }
        const auto a = sc::corrupt(c, 3, in, 9, v1);
        CHECK(std::equal(a.data(), a.data() + a.size(), ref.data()));
        const auto d = sc::corrupt(c, 3, in, 9);
        CHECK_FALSE(std::equal(a.data(), a.data() + a.size(), d.data()));
        // in place (src == dst) gives the same bytes as out of place
        std::vector<std::uint8_t> inplace(src);
        sc::generator g2(sc::image_seed(9, c, 3, 0));
        sc::apply(c, 3, {inplace.data(), 32, 32, 3}, {inplace.data(), 32, 32, 3}, g2);
        CHECK(std::equal(d.data(), d.data() + d.size(), inplace.data()));
    }
}

TEST_CASE("noise corruptions on odd shapes: 1x1, one channel, a partial block", "[corrupt][noise]") {
    for (auto [h, w, ch] : {std::tuple{1, 1, 1}, std::tuple{1, 1, 3}, std::tuple{3, 5, 1}, std::tuple{7, 9, 3}}) {
        const auto src = random_bytes(std::size_t(h) * w * ch, 1);
        const sc::const_image_view in{src.data(), h, w, ch};
        for (const char* name : {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"}) {
            INFO(name << " " << h << "x" << w << "x" << ch);
            const auto a = sc::corrupt(name, 5, in, 1), b = sc::corrupt(name, 5, in, 1);
            CHECK(a.size() == src.size());
            CHECK(std::equal(a.data(), a.data() + a.size(), b.data()));
        }
    }
}
