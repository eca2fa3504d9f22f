// SPDX-License-Identifier: MIT
// The CPU channel-pass kernels, both schedules, against the naive double-precision backend
// (backend/reference/kernels.hpp), directly: statistics, forward with coefficients, backward.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <vector>

#include "shiftnorm/backend/cpu/schedule.hpp"
#include "shiftnorm/backend/reference/kernels.hpp"
#include "support/hostile.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
namespace cpu = shiftnorm::backend::cpu;
using ref = shiftnorm::backend::reference::kernels;

namespace {

const shape4 shapes[] = {{6, 5, 32, 32}, {4, 10, 28, 28}, {9, 5, 7, 7}, {2, 5, 130, 130}, {1, 5, 1, 1},
                         {3, 6, 1, 3},   {1, 5, 45, 45}};

//! The CPU moments agree with the two-pass double ones: mean to 2e-6 of the channel's spread
//! (plus 1e-7 of |mean|: the fp32 value of the shift), M2 to 1e-5 relative (fp32 lane sums of
//! at most 64 shifted values per tile), min / max exactly.
void check_moments(const moments<double>& a, const moments<double>& r, bool var, bool minmax) {
    CHECK(a.count == r.count);
    const double spread = std::sqrt(r.m2 / std::max(1.0, r.count)) + 1e-3;
    CHECK(std::abs(a.mean - r.mean) <= 2e-6 * spread + 1e-7 * std::abs(r.mean));
    if (var) CHECK(std::abs(a.m2 - r.m2) <= 1e-5 * r.m2 + 1e-12);
    if (minmax) {
        CHECK(a.min == r.min);
        CHECK(a.max == r.max);
    }
}

template <class Backend>
void statistics_case() {
    for (const shape4 s : shapes) {
        CAPTURE(s.n, s.c, s.h, s.w);
        const auto x = test::hostile(s, 7);
        std::vector<moments<double>> m, mr;
        std::vector<backend::extreme_hint> h, hr;
        Backend::template statistics<true, true>(x.view(), m, &h);
        ref::statistics<true, true>(x.view(), mr, &hr);
        REQUIRE(m.size() == std::size_t(s.c));
        for (index_t c = 0; c < s.c; ++c) {
            CAPTURE(c);
            check_moments(m[c], mr[c], true, true);
            // the hint leads to the first extreme: the reference's hint is its exact position
            CHECK(cpu::find_first_equal(x.view(), c, h[c].max_n, h[c].max_i, m[c].max) ==
                  (x.view().plane(hr[c].max_n, c) + hr[c].max_i) - x.data());
            CHECK(cpu::find_first_equal(x.view(), c, h[c].min_n, h[c].min_i, m[c].min) ==
                  (x.view().plane(hr[c].min_n, c) + hr[c].min_i) - x.data());
        }
        // forward's statistics (the schedule's own order) agree too, without squares as well
        std::vector<moments<double>> mf;
        tensor<float> y(s);
        auto coef = [](index_t, const moments<double>& mc, const backend::extreme_hint&, backend::channel_coef<float>& k) {
            k = {float(mc.mean), 0.5f, 1.f};
            return true;
        };
        REQUIRE(Backend::template forward<true, false>(x.view(), y.view(), true, mf, coef));
        for (index_t c = 0; c < s.c; ++c) check_moments(mf[c], mr[c], false, true);
    }
}

template <class Backend>
void forward_backward_case() {
    for (const shape4 s : shapes) {
        CAPTURE(s.n, s.c, s.h, s.w);
        const auto x = test::hostile(s, 11), dy = test::random_tensor(s, 12, 0.5, 1.0);
        // coefficients from the statistics, as batch_norm's training forward makes them
        auto coef = [](index_t c, const moments<double>& mc, const backend::extreme_hint&, backend::channel_coef<float>& k) {
            k = {float(mc.mean), float((1.0 + 0.1 * c) / std::sqrt(mc.variance(variance_kind::biased) + 1e-5)),
                 float(0.2 * c)};
            return true;
        };
        std::vector<moments<double>> m, mr;
        tensor<float> y(s), yr(s);
        REQUIRE(Backend::template forward<false, true>(x.view(), y.view(), true, m, coef));
        REQUIRE(ref::forward<false, true>(x.view(), yr.view(), true, mr, coef));
        // y = (x - mean) a + b with |x - mean| a of order 1..10 here: 2e-5 absolute covers the
        // fp32 rounding of the coefficients and of the two fp32 operations
        CHECK(test::worst_error(y, yr, 2e-5, 2e-5) <= 1.0);

        // backward: the sums reach the coefficient function, then dx = k dy + kx (x - mean) + off
        std::vector<float> mean(std::size_t(s.c));
        for (index_t c = 0; c < s.c; ++c) mean[c] = float(mr[c].mean);
        std::vector<double> sdy(std::size_t(s.c)), sdyx(std::size_t(s.c)), sdy_r(sdy), sdyx_r(sdyx);
        auto bcoef = [](std::vector<double>& a, std::vector<double>& b) {
            return [&a, &b](index_t c, double sum_dy, double sum_dy_xc) {
                a[c] = sum_dy, b[c] = sum_dy_xc;
                return backend::backward_coef<float>{0.9f, -0.01f * float(c + 1), 0.05f};
            };
        };
        tensor<float> dx(s), dxr(s);
        Backend::backward(x.view(), dy.view(), dx.view(), mean.data(), true, bcoef(sdy, sdyx));
        ref::backward(x.view(), dy.view(), dxr.view(), mean.data(), true, bcoef(sdy_r, sdyx_r));
        const double count = double(s.per_channel());
        for (index_t c = 0; c < s.c; ++c) {
            CAPTURE(c);
            // fp32 lanes of at most 64 products per tile: 1e-5 of the sum of magnitudes
            CHECK(std::abs(sdy[c] - sdy_r[c]) <= 1e-5 * 2.0 * count);
            CHECK(std::abs(sdyx[c] - sdyx_r[c]) <= 1e-5 * 2.0 * count * (1.0 + std::sqrt(mr[c].variance(variance_kind::biased))));
        }
        CHECK(test::worst_error(dx, dxr, 1e-4, 1e-5) <= 1.0);
        // without sums the coefficient function sees zeros
        Backend::backward(x.view(), dy.view(), dx.view(), mean.data(), false, bcoef(sdy, sdyx));
        for (index_t c = 0; c < s.c; ++c) CHECK((sdy[c] == 0.0 && sdyx[c] == 0.0));
    }
}

}  // namespace

TEST_CASE("channel kernels: statistics of hostile channels match the double reference", "[backend][kernels]") {
    SECTION("plane-streaming") { statistics_case<cpu::plane_streaming>(); }
    SECTION("channel-major") { statistics_case<cpu::channel_major_schedule>(); }
    SECTION("auto") { statistics_case<cpu::auto_schedule>(); }
}

TEST_CASE("channel kernels: forward and backward match the double reference", "[backend][kernels]") {
    SECTION("plane-streaming") { forward_backward_case<cpu::plane_streaming>(); }
    SECTION("channel-major") { forward_backward_case<cpu::channel_major_schedule>(); }
}

TEST_CASE("channel kernels: a refused channel makes forward return false, NaN stays in its channel", "[backend][kernels]") {
    const shape4 s{3, 4, 5, 5};
    auto x = test::random_tensor(s, 3, 1.0, 2.0);
    x.view().plane(1, 2)[7] = NAN;
    const tensor<float>& xc = x;
    auto refuse_nan = [](index_t, const moments<double>& mc, const backend::extreme_hint&, backend::channel_coef<float>& k) {
        k = {float(mc.mean), 1.f, 0.f};
        return std::isfinite(mc.mean);
    };
    auto check = [&](auto backend_tag) {
        using B = decltype(backend_tag);
        std::vector<moments<double>> m;
        tensor<float> y(s);
        CHECK_FALSE(B::template forward<true, true>(xc.view(), y.view(), true, m, refuse_nan));
        for (index_t c = 0; c < s.c; ++c) {
            CAPTURE(c);
            CHECK(std::isnan(m[c].mean) == (c == 2));
            CHECK(std::isnan(m[c].m2) == (c == 2));
            CHECK(std::isnan(m[c].max) == (c == 2));
        }
    };
    check(cpu::plane_streaming{});
    check(cpu::channel_major_schedule{});
    check(ref{});
}

TEST_CASE("channel kernels: empty tensors give empty moments and write nothing", "[backend][kernels]") {
    const shape4 s{0, 3, 4, 4};
    const tensor<float> x(s);
    tensor<float> y(s);
    std::vector<moments<double>> m, mr;
    auto coef = [](index_t, const moments<double>&, const backend::extreme_hint&, backend::channel_coef<float>& k) {
        k = {0.f, 1.f, 0.f};
        return true;
    };
    CHECK(cpu::plane_streaming::forward<true, true>(x.view(), y.view(), true, m, coef));
    CHECK(cpu::channel_major_schedule::forward<true, true>(x.view(), y.view(), true, mr, coef));
    REQUIRE(m.size() == 3);
    for (const auto& mc : m) CHECK(mc.count == 0);
    for (const auto& mc : mr) CHECK(mc.count == 0);
    ref::statistics<true, true>(x.view(), mr, nullptr);
    for (const auto& mc : mr) CHECK(mc.count == 0);
}
