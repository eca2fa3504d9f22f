// SPDX-License-Identifier: MIT
// robust_norm against a double-precision reference: forward, RN/RNT/RNM, gradients, ties.
#include <catch2/catch.hpp>

#include <algorithm>

#include "shiftnorm/shiftnorm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using test::random_tensor;

namespace {
// Reference forward in double for given batch/tracked choice.
std::vector<double> ref_rn(const std::vector<double>& x, shape4 s, const std::vector<double>& gamma,
                           const std::vector<double>& beta, double p, double eps, const std::vector<double>* mean_in,
                           const std::vector<double>* range_in) {
    std::vector<double> mean, var;
    test::naive_channel_moments(x, s, mean, var);
    const index_t hw = s.spatial();
    std::vector<double> y(x.size());
    for (index_t c = 0; c < s.c; ++c) {
        double mn = INFINITY, mx = -INFINITY;
        for (index_t n = 0; n < s.n; ++n)
            for (index_t i = 0; i < hw; ++i) {
                const double v = x[std::size_t((n * s.c + c) * hw + i)];
                mn = std::min(mn, v), mx = std::max(mx, v);
            }
        const double mu = mean_in ? (*mean_in)[c] : mean[c];
        const double r = range_in ? (*range_in)[c] : mx - mn;
        const double d = std::pow(r, p) + eps;
        for (index_t n = 0; n < s.n; ++n)
            for (index_t i = 0; i < hw; ++i) {
                const std::size_t k = std::size_t((n * s.c + c) * hw + i);
                y[k] = gamma[c] * (x[k] - mu) / d + beta[c];
            }
    }
    return y;
}
double w(std::size_t i) { return std::cos(0.61 * double(i)) + 0.2; }
}  // namespace

TEST_CASE("robust_norm forward training / RN / RNT / RNM match the reference", "[robust_norm]") {
    auto s = GENERATE(shape4{4, 3, 5, 6}, shape4{2, 3, 24, 24});
    robust_norm<> rn(s.c);
    for (index_t c = 0; c < s.c; ++c) rn.scale[c] = 1.f + 0.5f * float(c), rn.shift[c] = 0.1f * float(c);
    auto x = random_tensor(s, 5, 2.0, 3.0);
    const auto xd = test::to_double(x);
    std::vector<double> g(rn.scale.begin(), rn.scale.end()), b(rn.shift.begin(), rn.shift.end());
    tensor<float> y(s);
    rn.forward_training(x, y.view());
    CHECK(test::worst_error(y, ref_rn(xd, s, g, b, 0.2, 1e-5, nullptr, nullptr), 1e-5, 1e-5) <= 1.0);
    // running buffers after one step from (0, 1), momentum 0.1
    std::vector<double> mean, var;
    test::naive_channel_moments(xd, s, mean, var);
    for (index_t c = 0; c < s.c; ++c) {
        CHECK(rn.running_mean[c] == Approx(0.1 * mean[c]).epsilon(1e-6));
        CHECK(rn.running_range[c] == Approx(0.9 + 0.1 * rn.saved(c).range).epsilon(1e-6));
    }
    std::vector<double> rm(rn.running_mean.begin(), rn.running_mean.end()),
        rr(rn.running_range.begin(), rn.running_range.end());
    rn.forward_inference(x, y.view(), robust_inference::rn);
    CHECK(test::worst_error(y, ref_rn(xd, s, g, b, 0.2, 1e-5, nullptr, nullptr), 1e-5, 1e-5) <= 1.0);
    rn.forward_inference(x, y.view(), robust_inference::rnt);
    CHECK(test::worst_error(y, ref_rn(xd, s, g, b, 0.2, 1e-5, &rm, &rr), 1e-5, 1e-5) <= 1.0);
    rn.forward_inference(x, y.view(), robust_inference::rnm);
    CHECK(test::worst_error(y, ref_rn(xd, s, g, b, 0.2, 1e-5, &rm, nullptr), 1e-5, 1e-5) <= 1.0);
}

TEST_CASE("robust_norm backward matches central differences (training, RNM, RNT)", "[robust_norm][grad]") {
    // 3x3 planes take the plane-streaming schedule, 24x24 planes the channel-major one
    auto s = GENERATE(shape4{3, 2, 3, 3}, shape4{1, 2, 24, 24});
    auto x = random_tensor(s, 9, 0.0, 1.0);  // continuous values: unique min/max, no ties
    const auto xd = test::to_double(x);
    tensor<float> dy(s), y(s), dx(s);
    for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(w(std::size_t(i)));
    for (auto mode : {0, 1, 2}) {
        robust_norm<> rn(s.c, {0.5, 1e-5, 0.1});
        rn.scale = {1.3f, 0.7f};
        rn.shift = {0.2f, -0.1f};
        rn.running_mean = {0.3f, -0.2f};
        rn.running_range = {2.5f, 3.0f};
        std::vector<double> g{1.3, 0.7}, b{0.2, -0.1}, rm{0.3, -0.2}, rr{2.5, 3.0};
        const std::vector<double>* mi = mode == 0 ? nullptr : &rm;
        const std::vector<double>* ri = mode == 2 ? &rr : nullptr;
        if (mode == 0) rn.forward_training(x, y.view());
        else rn.forward_inference(x, y.view(), mode == 1 ? robust_inference::rnm : robust_inference::rnt);
        rn.backward(x, dy, dx.view());
        auto loss = [&](const std::vector<double>& xv, const std::vector<double>& gv, const std::vector<double>& bv) {
            const auto yv = ref_rn(xv, s, gv, bv, 0.5, 1e-5, mi, ri);
            double l = 0;
            for (std::size_t i = 0; i < yv.size(); ++i) l += yv[i] * w(i);
            return l;
        };
        const auto gx = test::numeric_gradient(xd, [&](const std::vector<double>& v) { return loss(v, g, b); }, 1e-6);
        INFO("mode " << mode);
        CHECK(test::worst_error(dx, gx, 1e-4, 1e-3) <= 1.0);
        const auto gg = test::numeric_gradient(g, [&](const std::vector<double>& v) { return loss(xd, v, b); });
        const auto gb = test::numeric_gradient(b, [&](const std::vector<double>& v) { return loss(xd, g, v); });
        CHECK(test::worst_error(rn.diff_scale, gg, 1e-4, 1e-3) <= 1.0);
        CHECK(test::worst_error(rn.diff_shift, gb, 1e-4, 1e-3) <= 1.0);
    }
}

TEST_CASE("robust_norm tie rule: range gradient goes to the first max and first min", "[robust_norm][ties]") {
    shape4 s{2, 1, 2, 2};
    tensor<float> x(s);
    const float vals[] = {1, 5, 0, 5, 0, 3, 5, 2};  // max 5 at 1,3,6; min 0 at 2,4
    std::copy(vals, vals + 8, x.begin());
    robust_norm<no_affine> rn(1, {1.0, 0.0, 0.1});
    tensor<float> y(s), dx(s), dy(s, 0.f);
    rn.forward_training(x, y.view());
    CHECK(rn.saved(0).argmax == -1);  // located lazily
    rn.locate_extremes(x);
    CHECK(rn.saved(0).argmax == 1);
    CHECK(rn.saved(0).argmin == 2);
    // with dy = e_0 and p = 1: dL/dr = -(x0 - mu)/r^2
    dy[0] = 1.f;
    rn.backward(x, dy, dx.view());
    const double mu = 21.0 / 8, r = 5.0, g = -(1.0 - mu) / (r * r);
    CHECK(dx[1] == Approx(-1.0 / 8 / r + g));
    CHECK(dx[3] == Approx(-1.0 / 8 / r));
    CHECK(dx[2] == Approx(-1.0 / 8 / r - g));
    CHECK(dx[4] == Approx(-1.0 / 8 / r));
}

TEST_CASE("robust_norm hostile inputs", "[robust_norm][hostile]") {
    SECTION("constant channel: output beta, no range gradient, finite") {
        shape4 s{2, 1, 3, 3};
        tensor<float> x(s, 7.f), y(s), dy(s, 1.f), dx(s);
        robust_norm<> rn(1);
        rn.shift[0] = 0.5f;
        rn.forward_training(x, y.view());
        for (float v : y) CHECK(v == 0.5f);
        rn.backward(x, dy, dx.view());
        for (float v : dx) CHECK(std::isfinite(v));
    }
    SECTION("large offset 1e3: range exact, normalized output matches reference") {
        shape4 s{4, 2, 8, 8};
        auto x = random_tensor(s, 21, 1e3, 1.0);
        robust_norm<> rn(2);
        tensor<float> y(s);
        rn.forward_training(x, y.view());
        std::vector<double> g{1, 1}, b{0, 0};
        CHECK(test::worst_error(y, ref_rn(test::to_double(x), s, g, b, 0.2, 1e-5, nullptr, nullptr), 1e-4, 1e-4) <= 1.0);
    }
    SECTION("NaN: propagate gives NaN outputs, raise throws") {
        shape4 s{1, 1, 2, 2};
        tensor<float> x(s, 1.f), y(s);
        x[2] = NAN;
        robust_norm<> rn(1);
        rn.forward_training(x, y.view());
        CHECK(std::isnan(y[0]));
        robust_norm<> strict(1, {0.2, 1e-5, 0.1, robust_inference::rnt, nan_policy::raise});
        CHECK_THROWS_AS(strict.forward_training(x, y.view()), numeric_error);
    }
    SECTION("empty tensor and bad arguments") {
        tensor<float> x(shape4{0, 1, 2, 2}), y(shape4{0, 1, 2, 2});
        robust_norm<> rn(1);
        CHECK_THROWS_AS(rn.forward_training(x, y.view()), shape_error);
        CHECK_THROWS_AS(robust_norm<>(1, {-1.0}), value_error);
        tensor<float> a(shape4{1, 1, 2, 2}, 0.f), d(shape4{1, 1, 2, 2}, 0.f);
        CHECK_THROWS_AS(rn.backward(a, d, d.view()), state_error);
    }
}
