// SPDX-License-Identifier: MIT
// Statistic sources: population (EMA / cumulative), batch, rectified (masks, prior, layers), table.
#include <catch2/catch.hpp>

#include "shiftnorm/shiftnorm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using test::random_tensor;

namespace {
std::vector<double> ch_mean(const tensor<float>& x) {
    std::vector<double> m, v;
    test::naive_channel_moments(test::to_double(x), x.shape(), m, v);
    return m;
}
std::vector<double> ch_var(const tensor<float>& x, bool unbiased) {
    std::vector<double> m, v;
    test::naive_channel_moments(test::to_double(x), x.shape(), m, v);
    const double n = double(x.shape().per_channel());
    if (unbiased)
        for (auto& e : v) e *= n / (n - 1);
    return v;
}
}  // namespace

TEST_CASE("population: EMA and cumulative running statistics", "[sources]") {
    shape4 s{4, 2, 3, 3};
    auto a = random_tensor(s, 1, 1.0, 2.0), b = random_tensor(s, 2, -1.0, 0.5);
    tensor<float> y(s);
    batch_norm<population> bn(2);
    bn.source.running.mode = running_stats<float>::update::cumulative;
    bn.forward_training(a, y.view());
    bn.forward_training(b, y.view());
    const auto ma = ch_mean(a), mb = ch_mean(b), va = ch_var(a, true), vb = ch_var(b, true);
    for (int c = 0; c < 2; ++c) {
        CHECK(bn.source.running.stats.mean[c] == Approx((ma[c] + mb[c]) / 2).epsilon(1e-6));
        CHECK(bn.source.running.stats.var[c] == Approx((va[c] + vb[c]) / 2).epsilon(1e-6));
    }
    CHECK(bn.source.running.num_batches_tracked == 2);
    // inference uses the running statistics, not the batch
    batch_norm<population, no_affine> p(2);
    p.source.running.stats.mean = {10.f, -10.f};
    p.source.running.stats.var = {4.f, 9.f};
    p.opt.eps = 0;
    tensor<float> x(shape4{1, 2, 1, 1});
    x[0] = 12.f, x[1] = -4.f;
    tensor<float> yp(x.shape());
    p.forward_inference(x, yp.view());
    CHECK(yp[0] == Approx(1.0));
    CHECK(yp[1] == Approx(2.0));
}

TEST_CASE("batch_stats: inference normalizes with the batch's own biased statistics", "[sources]") {
    shape4 s{3, 2, 4, 4};
    auto x = random_tensor(s, 3, 5.0, 2.0);
    tensor<float> y1(s), y2(s);
    batch_norm<batch_stats> a(2);
    batch_norm<population> b(2);
    a.forward_inference(x, y1.view());
    b.forward_training(x, y2.view());
    CHECK(test::worst_error(y1, y2, 1e-6, 0) <= 1.0);
}

TEST_CASE("rectified: replace with the batch mean and unbiased variance; masks; prior", "[sources][rectify]") {
    shape4 s{8, 3, 5, 5};
    auto x = random_tensor(s, 4, 2.0, 3.0);
    tensor<float> y(s);
    const auto m = ch_mean(x), vu = ch_var(x, true), vb = ch_var(x, false);
    batch_norm<rectified> bn(3);
    bn.source.running.stats.mean = {0.5f, 0.5f, 0.5f};
    bn.source.running.stats.var = {2.f, 2.f, 2.f};

    SECTION("both (the paper's procedure)") {
        bn.forward_rectify(x, y.view());
        for (int c = 0; c < 3; ++c) {
            CHECK(bn.source.adapted.mean[c] == Approx(m[c]).epsilon(1e-6));
            CHECK(bn.source.adapted.var[c] == Approx(vu[c]).epsilon(1e-6));
        }
        // the rectification pass normalizes like training mode (batch mean, BIASED variance)
        std::vector<double> g(3, 1.0), b(3, 0.0);
        CHECK(test::worst_error(y, test::naive_bn(test::to_double(x), s, m, vb, g, b, 1e-5), 1e-5, 1e-5) <= 1.0);
        // later inference uses the stored (unbiased) statistics; reset() returns to the source ones
        tensor<float> y2(s);
        bn.forward_inference(x, y2.view());
        CHECK(test::worst_error(y2, test::naive_bn(test::to_double(x), s, m, vu, g, b, 1e-5), 1e-5, 1e-5) <= 1.0);
        bn.source.reset();
        bn.forward_inference(x, y2.view());
        std::vector<double> sm(3, 0.5), sv(3, 2.0);
        CHECK(test::worst_error(y2, test::naive_bn(test::to_double(x), s, sm, sv, g, b, 1e-5), 1e-5, 1e-5) <= 1.0);
    }
    SECTION("mean only / variance only / biased") {
        bn.source.options.what = adapt_what::mean_only;
        bn.forward_rectify(x, y.view());
        CHECK(bn.source.adapted.mean[1] == Approx(m[1]).epsilon(1e-6));
        CHECK(bn.source.adapted.var[1] == 2.f);
        bn.source.options.what = adapt_what::var_only;
        bn.source.options.variance = variance_kind::biased;
        bn.forward_rectify(x, y.view());
        CHECK(bn.source.adapted.mean[1] == 0.5f);
        CHECK(bn.source.adapted.var[1] == Approx(vb[1]).epsilon(1e-6));
    }
    SECTION("prior mixing N/(N+n)") {
        bn.source.options.prior = 24;  // n = 8 images: weight of the target 8/32
        bn.forward_rectify(x, y.view());
        CHECK(bn.source.adapted.mean[2] == Approx(0.75 * 0.5 + 0.25 * m[2]).epsilon(1e-6));
        CHECK(bn.source.adapted.var[2] == Approx(0.75 * 2.0 + 0.25 * vu[2]).epsilon(1e-6));
    }
    SECTION("disabled layer keeps the source statistics") {
        bn.source.options.enabled = false;
        bn.forward_rectify(x, y.view());
        CHECK_FALSE(bn.source.has_adapted);
    }
    SECTION("batch of one value per channel cannot give an unbiased variance") {
        tensor<float> one(shape4{1, 3, 1, 1}, 1.f), o(shape4{1, 3, 1, 1});
        CHECK_THROWS_AS(bn.forward_rectify(one, o.view()), value_error);
        bn.source.options.prior = -1;
        CHECK_THROWS_AS(bn.forward_rectify(x, y.view()), value_error);
    }
}

TEST_CASE("stats_table: entries per domain, fallback to source statistics", "[sources][table]") {
    shape4 s{6, 2, 4, 4};
    auto a = random_tensor(s, 7, 3.0, 1.0), b = random_tensor(s, 8, -3.0, 2.0);
    tensor<float> y(s), ya(s), yb(s);
    batch_norm<stats_table> bn(2);
    CHECK_THROWS_AS(bn.forward_rectify(a, y.view()), state_error);  // no domain selected
    bn.source.select(3);
    bn.forward_rectify(a, ya.view());
    bn.source.select(5);
    bn.forward_rectify(b, yb.view());
    CHECK(bn.source.contains(3));
    CHECK(bn.source.entries.at(5).mean[0] == Approx(ch_mean(b)[0]).epsilon(1e-6));
    bn.source.select(3);
    bn.forward_inference(a, y.view());
    std::vector<double> g(2, 1.0), z(2, 0.0);
    CHECK(test::worst_error(y, test::naive_bn(test::to_double(a), s, ch_mean(a), ch_var(a, true), g, z, 1e-5), 1e-5, 1e-5) <= 1.0);
    CHECK(test::worst_error(ya, test::naive_bn(test::to_double(a), s, ch_mean(a), ch_var(a, false), g, z, 1e-5), 1e-5, 1e-5) <= 1.0);
    bn.source.select(9);  // unknown domain: source statistics (mean 0, var 1)
    bn.forward_inference(a, y.view());
    CHECK(y[0] == Approx(a[0] / std::sqrt(1.0 + 1e-5)).epsilon(1e-6));
}

TEST_CASE("dual_batch_norm routes explicitly", "[dual]") {
    shape4 s{4, 2, 3, 3};
    auto x = random_tensor(s, 12, 1.0, 1.0);
    tensor<float> y(s);
    dual_batch_norm<population> d(2);
    d.forward_training(bn_route::auxiliary, x, y.view());
    CHECK(d.auxiliary.source.running.num_batches_tracked == 1);
    CHECK(d.clean.source.running.num_batches_tracked == 0);
    d.copy_clean_to_auxiliary();
    CHECK(d.auxiliary.source.running.num_batches_tracked == 0);
    CHECK_THROWS_AS(d.backward(bn_route::clean, x, y, y.view()), state_error);
}
