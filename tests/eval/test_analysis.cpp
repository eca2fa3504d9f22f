// SPDX-License-Identifier: MIT
// Tests of cosine similarity of feature maps and BN-statistic differences (seed 000 Fig. 2, 3).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "shiftnorm/eval/analysis.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using namespace shiftnorm::eval;

namespace {
tensor<float> make(shape4 s, std::vector<float> v) {
    tensor<float> t(s);
    REQUIRE(v.size() == t.size());
    std::copy(v.begin(), v.end(), t.begin());
    return t;
}
}  // namespace

TEST_CASE("cosine similarity: hand-computed values", "[eval][analysis]") {
    // sample 0: a = (1,2,2), b = (2,1,2): 8 / (3 * 3); sample 1: a = (1,0,0), b = (1,1,0): 1 / sqrt(2).
    const auto a = make({2, 3, 1, 1}, {1, 2, 2, 1, 0, 0});
    const auto b = make({2, 3, 1, 1}, {2, 1, 2, 1, 1, 0});
    const auto per = cosine_similarity_per_sample(a.view(), b.view());
    REQUIRE(per.size() == 2);
    CHECK(per[0] == Approx(8.0 / 9.0));
    CHECK(per[1] == Approx(1.0 / std::sqrt(2.0)));
    CHECK(cosine_similarity(a, b) == Approx((8.0 / 9.0 + 1.0 / std::sqrt(2.0)) / 2));
    CHECK(cosine_similarity(a, a) == Approx(1.0));
    auto neg = a;
    for (auto& v : neg) v = -v;
    CHECK(cosine_similarity(a, neg) == Approx(-1.0));
}

TEST_CASE("cosine similarity accumulates in double (large offsets)", "[eval][analysis]") {
    const shape4 s{4, 8, 5, 5};
    const auto a = test::random_tensor(s, 1, 1e3, 1.0), b = test::random_tensor(s, 2, 1e3, 1.0);
    const index_t per = s.c * s.h * s.w;
    double mean = 0;
    for (index_t n = 0; n < s.n; ++n) {
        double dot = 0, na = 0, nb = 0;
        for (index_t i = 0; i < per; ++i) {
            const double x = a[n * per + i], y = b[n * per + i];
            dot += x * y, na += x * x, nb += y * y;
        }
        mean += dot / std::sqrt(na * nb) / double(s.n);
    }
    CHECK(cosine_similarity(a, b) == Approx(mean).epsilon(1e-12));
}

TEST_CASE("cosine similarity rejects bad input", "[eval][analysis]") {
    const auto a = make({1, 2, 1, 1}, {1, 2});
    const auto b = make({2, 1, 1, 1}, {1, 2});
    CHECK_THROWS_AS(cosine_similarity(a, b), shape_error);
    CHECK_THROWS_WITH(cosine_similarity(a, b), Catch::Contains("'b'") && Catch::Contains("[1,2,1,1]"));
    const auto z = make({1, 2, 1, 1}, {0, 0});
    CHECK_THROWS_AS(cosine_similarity(a, z), numeric_error);
    const auto n = make({1, 2, 1, 1}, {NAN, 1});
    CHECK_THROWS_AS(cosine_similarity(a, n), numeric_error);
    const tensor<float> e(shape4{0, 2, 1, 1});
    CHECK_THROWS_AS(cosine_similarity(e, e), shape_error);
}

TEST_CASE("bn_stat_difference: per-channel absolute gaps", "[eval][analysis]") {
    channel_stats<float> a(3), b(3);
    a.mean = {0.f, 1.f, -2.f}, a.var = {1.f, 2.f, 3.f};
    b.mean = {0.5f, -1.f, -2.f}, b.var = {1.5f, 1.f, 5.f};
    const auto d = bn_stat_difference(a, b);
    CHECK(d.mean_abs == std::vector<double>{0.5, 2.0, 0.0});
    CHECK(d.var_abs == std::vector<double>{0.5, 1.0, 2.0});
    CHECK(d.mean_of_mean_abs == Approx(2.5 / 3));
    CHECK(d.mean_of_var_abs == Approx(3.5 / 3));

    stat_difference_average avg;
    CHECK_THROWS_AS(avg.mean(), state_error);
    avg.add(d);
    avg.add(bn_stat_difference(a, a));
    CHECK(avg.count() == 2);
    CHECK(avg.mean().var_abs == std::vector<double>{0.25, 0.5, 1.0});
    CHECK(avg.mean().mean_of_mean_abs == Approx(2.5 / 6));

    channel_stats<float> c(2);
    CHECK_THROWS_AS(bn_stat_difference(a, c), shape_error);
    CHECK_THROWS_AS(avg.add(bn_stat_difference(c, c)), shape_error);
    b.var[1] = NAN;
    CHECK_THROWS_AS(bn_stat_difference(a, b), numeric_error);
    channel_stats<float> broken(3);
    broken.var.pop_back();
    CHECK_THROWS_WITH(bn_stat_difference(broken, a), Catch::Contains("'a.var'"));
}

TEST_CASE("batch_channel_stats matches the naive reference", "[eval][analysis]") {
    const shape4 s{6, 3, 4, 5};
    const auto x = test::random_tensor(s, 7, 1e3, 2.0);
    std::vector<double> mean, var;
    test::naive_channel_moments(test::to_double(x), s, mean, var);  // biased variance
    const double n = double(s.per_channel());
    const auto ub = batch_channel_stats(x.view());
    const auto b = batch_channel_stats(x.view(), variance_kind::biased);
    for (std::size_t c = 0; c < 3; ++c) {
        CHECK(ub.mean[c] == Approx(mean[c]).epsilon(1e-12));
        CHECK(b.var[c] == Approx(var[c]).epsilon(1e-9));
        CHECK(ub.var[c] == Approx(var[c] * n / (n - 1)).epsilon(1e-9));
    }
    const tensor<float> one(shape4{1, 2, 1, 1}, 1.f);
    CHECK_THROWS_AS(batch_channel_stats(one.view()), shape_error);  // unbiased needs 2 values
}
