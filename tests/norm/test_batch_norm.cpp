// SPDX-License-Identifier: MIT
// batch_norm against the double-precision naive reference, central differences, hostile inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "shiftnorm/shiftnorm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using test::random_tensor;

namespace {
double loss_weights(std::size_t i) { return std::sin(0.37 * double(i) + 0.1); }  // fixed "upstream gradient"
}  // namespace

TEST_CASE("batch_norm forward_training matches the naive double reference", "[batch_norm]") {
    for (shape4 s : {shape4{4, 3, 5, 7}, shape4{1, 2, 6, 6}, shape4{8, 5, 1, 1}, shape4{3, 2, 40, 40}}) {
        batch_norm<population> bn(s.c);
        for (index_t c = 0; c < s.c; ++c) bn.scale[c] = 0.5f + float(c), bn.shift[c] = -0.25f * float(c);
        auto x = random_tensor(s, 7, 3.0, 2.0);
        tensor<float> y(s);
        bn.forward_training(x, y.view());
        std::vector<double> mean, var, g(bn.scale.begin(), bn.scale.end()), b(bn.shift.begin(), bn.shift.end());
        const auto xd = test::to_double(x);
        test::naive_channel_moments(xd, s, mean, var);
        const auto ref = test::naive_bn(xd, s, mean, var, g, b, 1e-5);
        CHECK(test::worst_error(y, ref, 1e-5, 1e-5) <= 1.0);
        // running buffers: momentum 0.1 from (0, 1), unbiased variance
        const double m = double(s.per_channel());
        for (index_t c = 0; c < s.c; ++c) {
            CHECK(bn.source.running.stats.mean[c] == Approx(0.1 * mean[c]).epsilon(1e-6));
            CHECK(bn.source.running.stats.var[c] == Approx(0.9 + 0.1 * var[c] * m / (m - 1)).epsilon(1e-6));
        }
    }
}

TEST_CASE("batch statistics keep 1e-6 relative variance error at |mean|/std = 1e3", "[batch_norm][numerics]") {
    for (double offset : {1e3, -1e3, 5e3}) {
        shape4 s{16, 4, 17, 19};
        auto x = random_tensor(s, 11, offset, std::abs(offset) / 1e3);
        std::vector<double> mean, var;
        test::naive_channel_moments(test::to_double(x), s, mean, var);
        for (index_t c = 0; c < s.c; ++c) {
            auto m = backend::cpu::channel_moments<false>(tensor_view<const float>(x.view()), c);
            CHECK(std::abs(m.variance(variance_kind::biased) - var[c]) / var[c] <= 1e-6);
            CHECK(std::abs(m.mean - mean[c]) <= 1e-9 * std::abs(mean[c]));
        }
    }
}

TEST_CASE("batch_norm backward matches central differences of the double reference", "[batch_norm][grad]") {
    for (shape4 s : {shape4{3, 2, 3, 4}, shape4{1, 3, 2, 2}, shape4{5, 2, 1, 1}, shape4{2, 2, 16, 16}}) {
        batch_norm<population> bn(s.c);
        for (index_t c = 0; c < s.c; ++c) bn.scale[c] = 1.5f - 0.5f * float(c), bn.shift[c] = 0.3f;
        auto x = random_tensor(s, 3, 0.5, 1.0);
        tensor<float> y(s), dy(s), dx(s);
        for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(loss_weights(std::size_t(i)));
        bn.forward_training(x, y.view());
        bn.backward(x, dy, dx.view());
        std::vector<double> gamma(bn.scale.begin(), bn.scale.end()), beta(bn.shift.begin(), bn.shift.end());
        auto loss = [&](const std::vector<double>& xv, const std::vector<double>& g, const std::vector<double>& b) {
            std::vector<double> mean, var;
            test::naive_channel_moments(xv, s, mean, var);
            const auto yv = test::naive_bn(xv, s, mean, var, g, b, 1e-5);
            double l = 0;
            for (std::size_t i = 0; i < yv.size(); ++i) l += yv[i] * loss_weights(i);
            return l;
        };
        const auto xd = test::to_double(x);
        const auto gx = test::numeric_gradient(xd, [&](const std::vector<double>& v) { return loss(v, gamma, beta); });
        CHECK(test::worst_error(dx, gx, 1e-4, 1e-3) <= 1.0);
        const auto gg = test::numeric_gradient(gamma, [&](const std::vector<double>& v) { return loss(xd, v, beta); });
        const auto gb = test::numeric_gradient(beta, [&](const std::vector<double>& v) { return loss(xd, gamma, v); });
        CHECK(test::worst_error(bn.diff_scale, gg, 1e-4, 1e-3) <= 1.0);
        CHECK(test::worst_error(bn.diff_shift, gb, 1e-4, 1e-3) <= 1.0);
    }
}

TEST_CASE("batch_norm hostile inputs", "[batch_norm][hostile]") {
    SECTION("constant channel: output beta, gradient (dy - mean dy) / sqrt(eps), finite") {
        shape4 s{3, 1, 4, 4};
        tensor<float> x(s, 123.f), y(s), dy(s), dx(s);
        for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(i % 7) - 3.f;
        batch_norm<population> bn(1);
        bn.shift[0] = 0.25f;
        bn.forward_training(x, y.view());
        for (float v : y) CHECK(v == 0.25f);
        bn.backward(x, dy, dx.view());
        double mdy = 0;
        for (float v : dy) mdy += v;
        mdy /= double(dy.numel());
        for (index_t i = 0; i < dx.numel(); ++i) CHECK(dx[i] == Approx((dy[i] - mdy) / std::sqrt(1e-5)).epsilon(1e-5));
    }
    SECTION("N = 1 (spatial statistics) and H = W = 1 (batch statistics) work; one value per channel does not") {
        batch_norm<population> bn(2);
        auto x1 = random_tensor(shape4{1, 2, 3, 3}, 1, 0, 1);
        tensor<float> y1(x1.shape());
        CHECK_NOTHROW(bn.forward_training(x1, y1.view()));
        auto x2 = random_tensor(shape4{4, 2, 1, 1}, 1, 0, 1);
        tensor<float> y2(x2.shape());
        CHECK_NOTHROW(bn.forward_training(x2, y2.view()));
        tensor<float> x3(shape4{1, 2, 1, 1}, 1.f), y3(shape4{1, 2, 1, 1});
        CHECK_THROWS_AS(bn.forward_training(x3, y3.view()), shape_error);
        CHECK_NOTHROW(bn.forward_inference(x3, y3.view()));  // inference needs no batch statistics
    }
    SECTION("large offset: forward and backward at |mean|/std = 1e3 agree with the double reference") {
        shape4 s{8, 2, 6, 6};
        auto x = random_tensor(s, 5, 1e3, 1.0);
        batch_norm<population> bn(2);
        tensor<float> y(s);
        bn.forward_training(x, y.view());
        std::vector<double> mean, var, g(2, 1.0), b(2, 0.0);
        const auto xd = test::to_double(x);
        test::naive_channel_moments(xd, s, mean, var);
        // y's absolute error is bounded by the fp32 resolution of x (6e-5 at 1e3) over std 1
        CHECK(test::worst_error(y, test::naive_bn(xd, s, mean, var, g, b, 1e-5), 2e-4, 0) <= 1.0);
    }
    SECTION("NaN / Inf policy") {
        shape4 s{2, 2, 2, 2};
        auto x = random_tensor(s, 5, 0, 1);
        x(1, 0, 1, 1) = NAN;
        x(0, 1, 0, 0) = INFINITY;
        tensor<float> y(s);
        batch_norm<population> bn(2);
        bn.forward_training(x, y.view());  // propagate: the affected channels become NaN
        CHECK(std::isnan(y(0, 0, 0, 0)));
        CHECK(std::isnan(y(1, 1, 1, 1)));
        batch_norm<population> strict(2, {1e-5, nan_policy::raise});
        CHECK_THROWS_AS(strict.forward_training(x, y.view()), numeric_error);
        CHECK(strict.source.running.num_batches_tracked == 0);  // nothing stored from a bad batch
        CHECK(strict.source.running.stats.mean[0] == 0.f);
    }
    SECTION("empty tensors, wrong channels, mismatched shapes, backward before forward") {
        batch_norm<population> bn(3);
        tensor<float> e(shape4{0, 3, 4, 4}), ey(shape4{0, 3, 4, 4});
        CHECK_THROWS_AS(bn.forward_training(e, ey.view()), shape_error);
        CHECK_THROWS_AS(bn.forward_inference(e, ey.view()), shape_error);
        tensor<float> x(shape4{2, 4, 2, 2}, 1.f), y(shape4{2, 4, 2, 2});
        CHECK_THROWS_WITH(bn.forward_training(x, y.view()), Catch::Contains("src channels") && Catch::Contains("3"));
        tensor<float> x3(shape4{2, 3, 2, 2}, 1.f), y3(shape4{2, 3, 2, 1});
        CHECK_THROWS_AS(bn.forward_training(x3, y3.view()), shape_error);
        tensor<float> d(shape4{2, 3, 2, 2}, 0.f);
        CHECK_THROWS_AS(bn.backward(x3, d, d.view()), state_error);
        CHECK_THROWS_AS(batch_norm<population>(0), shape_error);
    }
}

TEST_CASE("batch_norm backward_inference: frozen statistics", "[batch_norm][grad]") {
    shape4 s{2, 2, 3, 3};
    batch_norm<population> bn(2);
    bn.source.running.stats.mean = {0.5f, -1.f};
    bn.source.running.stats.var = {4.f, 0.25f};
    bn.scale = {2.f, -1.f};
    auto x = random_tensor(s, 17, 0, 1);
    tensor<float> y(s), dy(s, 1.f), dx(s);
    bn.forward_inference(x, y.view());
    bn.backward_inference(x, dy, dx.view());
    CHECK(dx(0, 0, 0, 0) == Approx(2.0 / std::sqrt(4.0 + 1e-5)));
    CHECK(dx(1, 1, 2, 2) == Approx(-1.0 / std::sqrt(0.25 + 1e-5)));
    CHECK(bn.diff_shift[0] == Approx(18.0));
    CHECK_THROWS_AS(bn.backward(x, dy, dx.view()), state_error);  // last forward was inference
}

TEST_CASE("plane-streaming statistics keep 1e-6 relative variance error at |mean|/std = 1e3", "[batch_norm][numerics]") {
    for (shape4 s : {shape4{64, 3, 7, 7}, shape4{40, 2, 14, 14}, shape4{300, 2, 1, 1}}) {
        auto x = random_tensor(s, 13, -1e3, 1.0);
        std::vector<double> mean, var;
        test::naive_channel_moments(test::to_double(x), s, mean, var);
        std::vector<moments<double>> m;
        std::vector<backend::cpu::extreme_hint> hints;
        backend::cpu::stream_channel_moments<true>(tensor_view<const float>(x.view()), m, &hints);
        for (index_t c = 0; c < s.c; ++c) {
            CHECK(std::abs(m[c].variance(variance_kind::biased) - var[c]) / var[c] <= 1e-6);
            CHECK(std::abs(m[c].mean - mean[c]) <= 1e-9 * std::abs(mean[c]));
            float mn = INFINITY, mx = -INFINITY;
            for (index_t n = 0; n < s.n; ++n)
                for (index_t i = 0; i < s.spatial(); ++i) mn = std::min(mn, x.view().plane(n, c)[i]), mx = std::max(mx, x.view().plane(n, c)[i]);
            CHECK(m[c].min == mn);
            CHECK(m[c].max == mx);
        }
    }
}

TEST_CASE("NaN in a training batch never enters the running statistics", "[batch_norm][nan]") {
    shape4 s{4, 3, 5, 5};
    batch_norm<population> bn(s.c);
    auto x = random_tensor(s, 3, 1.0, 2.0);
    tensor<float> y(s);
    bn.forward_training(x, y.view());
    const auto before = bn.source.running.stats;
    x.data()[s.spatial() * 1 + 3] = std::nanf("");  // image 0, channel 1
    bn.forward_training(x, y.view());
    CHECK(std::isnan(y.data()[s.spatial() * 1 + 3]));  // the output propagates it (nan_policy::propagate)
    CHECK(bn.source.running.stats.mean[1] == before.mean[1]);  // channel 1 kept its statistics
    CHECK(bn.source.running.stats.var[1] == before.var[1]);
    CHECK(bn.source.running.stats.mean[0] != before.mean[0]);  // the others were updated
    CHECK(bn.source.running.nonfinite_skipped == 1);
    for (index_t c = 0; c < s.c; ++c) CHECK(std::isfinite(bn.source.running.stats.var[c]));
}

TEST_CASE("nan_policy::raise applies to forward_inference too", "[batch_norm][nan]") {
    shape4 s{2, 2, 3, 3};
    batch_norm<population> bn(s.c, {1e-5, nan_policy::raise});
    auto x = random_tensor(s, 5, 0.0, 1.0);
    tensor<float> y(s);
    bn.forward_inference(x, y.view());  // finite: fine
    x.data()[s.numel() - 1] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_AS(bn.forward_inference(x, y.view()), numeric_error);
    batch_norm<population> quiet(s.c);  // propagate (the default): no throw, Inf/NaN in the output
    CHECK_NOTHROW(quiet.forward_inference(x, y.view()));
}

TEST_CASE("batch statistics stay accurate with large per-image offsets (image 0 not representative)",
          "[batch_norm][numerics]") {
    // image 0 near 0, every other image near 3e4: a shift taken from image 0 alone leaves
    // (x - shift)^2 ~ 1e9 in the fp32 lanes, far above the variance's information
    for (shape4 s : {shape4{512, 3, 4, 4}, shape4{64, 2, 17, 19}}) {
        auto x = random_tensor(s, 21, 0.0, 1.0);
        for (index_t n = 1; n < s.n; ++n)
            for (index_t c = 0; c < s.c; ++c)
                for (index_t i = 0; i < s.spatial(); ++i) x.data()[(n * s.c + c) * s.spatial() + i] += 3e4f + float(n % 7);
        std::vector<double> mean, var;
        test::naive_channel_moments(test::to_double(x), s, mean, var);
        std::vector<moments<double>> streamed;
        const auto& cx = x;
        backend::cpu::stream_channel_moments(cx.view(), streamed);
        for (index_t c = 0; c < s.c; ++c) {
            const auto m = backend::cpu::channel_moments<false>(cx.view(), c);
            INFO("shape " << s << " channel " << c << ": var " << m.variance(variance_kind::biased) << " streamed "
                          << streamed[c].variance(variance_kind::biased) << " reference " << var[c]);
            CHECK(m.mean == Approx(mean[c]).epsilon(1e-9));
            CHECK(m.variance(variance_kind::biased) == Approx(var[c]).epsilon(1e-6));
            CHECK(streamed[c].variance(variance_kind::biased) == Approx(var[c]).epsilon(1e-6));
        }
    }
}
