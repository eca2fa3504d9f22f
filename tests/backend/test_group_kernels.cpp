// SPDX-License-Identifier: MIT
// The CPU group-pass kernels (group_norm's data passes) against the naive double-precision
// backend (backend/reference/kernels.hpp), directly: statistics per (sample, group), forward
// with coefficients, backward sums and apply; refused and non-finite groups; bad group counts.
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

struct shape_groups {
    shape4 s;
    index_t G;
};
const shape_groups cases[] = {{{4, 6, 32, 32}, 1},  {{4, 6, 32, 32}, 3}, {{4, 6, 32, 32}, 6}, {{3, 8, 7, 7}, 2},
                              {{1, 5, 130, 130}, 5}, {{2, 4, 1, 1}, 2},   {{1, 3, 1, 2}, 1},   {{5, 10, 28, 28}, 10}};

//! group_norm's forward coefficients: a = gamma_c / sqrt(var + eps), b = beta_c.
struct gn_coef {
    index_t C, G;
    bool operator()(index_t, index_t g, const moments<double>& m, backend::channel_coef<float>* k) const {
        const index_t cg = C / G;
        const double istd = 1.0 / std::sqrt(m.variance(variance_kind::biased) + 1e-5);
        for (index_t j = 0; j < cg; ++j) {
            const index_t c = g * cg + j;
            k[j] = {float(m.mean), float((0.5 + 0.1 * double(c)) * istd), float(0.2 * double(c))};
        }
        return true;
    }
};

template <class Backend>
void forward_backward_case() {
    for (const auto& [s, G] : cases) {
        CAPTURE(s.n, s.c, s.h, s.w, G);
        const auto x = test::hostile(s, 21, true), dy = test::random_tensor(s, 22, 0.5, 1.0);
        std::vector<moments<double>> m, mr;
        tensor<float> y(s), yr(s);
        REQUIRE(Backend::group_forward(x.view(), y.view(), G, m, gn_coef{s.c, G}));
        REQUIRE(ref::group_forward(x.view(), yr.view(), G, mr, gn_coef{s.c, G}));
        REQUIRE(m.size() == std::size_t(s.n * G));
        for (std::size_t b = 0; b < m.size(); ++b) {
            CAPTURE(b);
            const double spread = std::sqrt(mr[b].m2 / mr[b].count) + 1e-3;
            CHECK(m[b].count == mr[b].count);
            // fp32 lane tiles of at most 64 shifted values: the mean to 2e-6 of the spread (plus
            // the fp32 shift's 1e-7 of |mean|), M2 to 1e-5 relative
            CHECK(std::abs(m[b].mean - mr[b].mean) <= 2e-6 * spread + 1e-7 * std::abs(mr[b].mean));
            CHECK(std::abs(m[b].m2 - mr[b].m2) <= 1e-5 * mr[b].m2 + 1e-12);
        }
        // |y| is at most ~10 here; two fp32 operations on fp32 coefficients: a few ulp of 10
        // (measured: at most 5.5e-7)
        CHECK(test::worst_error(y, yr, 1e-6, 1e-6) <= 1.0);

        // backward: the per-channel sums reach the coefficient function, then
        // dx = inv_std * (gamma_c dy - m_g - (x - mean) m_gx)
        const index_t cg = s.c / G;
        std::vector<float> mean(m.size()), gamma(std::size_t(s.c));
        for (std::size_t b = 0; b < m.size(); ++b) mean[b] = float(mr[b].mean);
        for (index_t c = 0; c < s.c; ++c) gamma[c] = 0.5f + 0.1f * float(c);
        std::vector<double> sdy(std::size_t(s.n * s.c)), sdyx(sdy.size()), sdy_r(sdy.size()), sdyx_r(sdy.size());
        auto bcoef = [&](std::vector<double>& a, std::vector<double>& ax) {
            return [&, cg](index_t n, index_t g, const double* sum_dy, const double* sum_dy_xc) {
                for (index_t j = 0; j < cg; ++j) {
                    a[std::size_t(n * s.c + g * cg + j)] = sum_dy[j];
                    ax[std::size_t(n * s.c + g * cg + j)] = sum_dy_xc[j];
                }
                const float mu = mean[std::size_t(n * G + g)];
                return backend::group_backward_coef<float>{mu, 0.8f, 0.03f * float(g + 1), -0.002f * float(n + 1)};
            };
        };
        tensor<float> dx(s), dxr(s);
        Backend::group_backward(x.view(), dy.view(), dx.view(), G, mean.data(), gamma.data(), bcoef(sdy, sdyx));
        ref::group_backward(x.view(), dy.view(), dxr.view(), G, mean.data(), gamma.data(), bcoef(sdy_r, sdyx_r));
        const double hw = double(s.spatial());
        for (std::size_t j = 0; j < sdy.size(); ++j) {
            CAPTURE(j);
            // fp32 lanes of at most 64 products per tile: 1e-5 of the sum of magnitudes
            // (|dy| <= ~4, |x - mean| <= ~1.3e4 in a mixed group)
            CHECK(std::abs(sdy[j] - sdy_r[j]) <= 1e-5 * 4.0 * hw);
            CHECK(std::abs(sdyx[j] - sdyx_r[j]) <= 1e-5 * 4.0 * hw * 1.3e4);
        }
        // |dx| reaches 0.8 * |x - mean| * m_gx ~ 20: a few ulp of the largest term (measured:
        // at most 2.1e-7 absolute)
        CHECK(test::worst_error(dx, dxr, 1e-6, 1e-6) <= 1.0);
    }
}

}  // namespace

TEST_CASE("group kernels: forward and backward match the double reference", "[backend][kernels][group_norm]") {
    SECTION("plane-streaming") { forward_backward_case<cpu::plane_streaming>(); }
    SECTION("channel-major") { forward_backward_case<cpu::channel_major_schedule>(); }
}

TEST_CASE("group kernels: a refused group returns false, NaN stays in its (sample, group)", "[backend][kernels][group_norm]") {
    const shape4 s{3, 6, 5, 5};
    const index_t G = 3;
    auto x = test::random_tensor(s, 3, 1.0, 2.0);
    x.view().plane(1, 2)[7] = NAN;  // sample 1, group 1
    const tensor<float>& xc = x;
    auto refuse_nan = [](index_t, index_t, const moments<double>& m, backend::channel_coef<float>* k) {
        k[0] = k[1] = {float(m.mean), 1.f, 0.f};
        return std::isfinite(m.mean);
    };
    auto check = [&](auto backend_tag) {
        using B = decltype(backend_tag);
        std::vector<moments<double>> m;
        tensor<float> y(s);
        for (auto& v : y) v = 42.f;
        CHECK_FALSE(B::group_forward(xc.view(), y.view(), G, m, refuse_nan));
        for (index_t n = 0; n < s.n; ++n)
            for (index_t g = 0; g < G; ++g) {
                CAPTURE(n, g);
                const bool bad = n == 1 && g == 1;
                CHECK(std::isnan(m[std::size_t(n * G + g)].mean) == bad);
                CHECK(std::isnan(m[std::size_t(n * G + g)].m2) == bad);
                // the refused group's planes are not written; the others are
                CHECK((y.view().plane(n, 2 * g)[0] == 42.f) == bad);
            }
    };
    check(cpu::plane_streaming{});
    check(ref{});
}

TEST_CASE("group kernels: empty tensors and bad group counts", "[backend][kernels][group_norm]") {
    const tensor<float> x(shape4{0, 4, 3, 3});
    tensor<float> y(shape4{0, 4, 3, 3});
    std::vector<moments<double>> m{moments<double>{}};
    auto coef = [](index_t, index_t, const moments<double>&, backend::channel_coef<float>*) { return true; };
    CHECK(cpu::auto_schedule::group_forward(x.view(), y.view(), 2, m, coef));
    CHECK(m.empty());
    CHECK(ref::group_forward(x.view(), y.view(), 2, m, coef));
    CHECK(m.empty());

    const tensor<float> x1(shape4{2, 6, 3, 3});
    tensor<float> y1(x1.shape());
    CHECK_THROWS_AS(cpu::auto_schedule::group_forward(x1.view(), y1.view(), 4, m, coef), shape_error);
    CHECK_THROWS_AS(ref::group_forward(x1.view(), y1.view(), 0, m, coef), shape_error);
    CHECK_THROWS_WITH(cpu::auto_schedule::group_forward(x1.view(), y1.view(), 4, m, coef),
                      Catch::Contains("groups") && Catch::Contains("a divisor of C=6"));
}
