// SPDX-License-Identifier: MIT
// Tests of the results container and Acc / CE / mCE / relative mCE against hand-computed values.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "shiftnorm/eval/metrics.hpp"

using namespace shiftnorm;
using namespace shiftnorm::eval;

TEST_CASE("results stores cells and rejects bad input", "[eval][metrics]") {
    results r("before");
    CHECK(r.empty());
    r.set("fog", 3, 0.25);
    CHECK(*r.get("fog", 3) == 0.25);
    CHECK_FALSE(r.get("fog", 2));
    CHECK(r.severities_evaluated("fog") == 1);
    CHECK(r.corruptions() == std::vector<std::string>{"fog"});
    r.set_counts("snow", 1, 3, 4);
    CHECK(*r.get("snow", 1) == 0.75);
    CHECK(r.corruptions() == std::vector<std::string>{"snow", "fog"});  // ImageNet-C order

    CHECK_THROWS_AS(r.set("fog", 1, std::nan("")), numeric_error);
    CHECK_THROWS_WITH(r.set("fog", 1, std::nan("")), Catch::Contains("'accuracy'"));
    CHECK_THROWS_AS(r.set("fog", 1, 1.5), value_error);
    CHECK_THROWS_AS(r.set("fog", 0, 0.5), value_error);
    CHECK_THROWS_WITH(r.set("fogg", 1, 0.5), Catch::Contains("'corruption'") && Catch::Contains("'fogg'"));
    CHECK_THROWS_AS(r.set_clean(INFINITY), numeric_error);
    CHECK_THROWS_AS(r.set_counts("fog", 1, 5, 4), value_error);
    CHECK_THROWS_AS(r.set_counts("fog", 1, 0, 0), value_error);
}

// Baseline none: CE = plain mean error in %, relative CE = mean(E - E_clean) in %.
TEST_CASE("baseline none: mean-error mCE on a partial run", "[eval][metrics]") {
    results r;
    const double acc_g[5] = {0.9, 0.8, 0.7, 0.6, 0.5};  // errors .1 .2 .3 .4 .5, mean .3
    for (int s = 1; s <= 5; ++s) {
        r.set("gaussian_noise", s, acc_g[s - 1]);
        r.set("shot_noise", s, 0.8);  // error .2
    }
    r.set("speckle_noise", 1, 0.1);  // held out: never in the means
    r.set_clean(0.95);
    const summary s = summarize(r, baseline_table(baseline_kind::none));
    CHECK(s.cells == 10);
    CHECK(s.acc == Approx(75.0));         // (3.5 + 4.0) / 10
    CHECK(s.mce == Approx(25.0));         // (30 + 20) / 2
    CHECK(s.mce_count == 2);
    CHECK(s.relative_mce == Approx(20.0));  // (25 + 15) / 2
    CHECK(s.clean_accuracy == Approx(95.0));
    CHECK_FALSE(s.complete());
    CHECK(s.missing.size() == 13);
    REQUIRE(s.find("gaussian_noise"));
    CHECK(s.find("gaussian_noise")->ce == Approx(30.0));
    CHECK(s.find("gaussian_noise")->relative_ce == Approx(25.0));
    REQUIRE(s.find("speckle_noise"));
    CHECK(s.find("speckle_noise")->ce == Approx(90.0));
    CHECK_FALSE(s.find("speckle_noise")->common);
    CHECK(s.find("fog") == nullptr);
}

// ImageNet-C baseline: CE over the evaluated severities only, sum over sum (seed 000 eq. 4).
TEST_CASE("alexnet-imagenet: CE sums matched severities", "[eval][metrics]") {
    results r;
    r.set("gaussian_noise", 1, 0.6);  // E = .4, AlexNet .69528
    r.set("gaussian_noise", 5, 0.2);  // E = .8, AlexNet .99452
    r.set_clean(0.9);
    baseline_table b(baseline_kind::alexnet_imagenet);
    summary s = summarize(r, b);
    // 100 * 1.2 / 1.6898 = 71.01432122...
    CHECK(s.find("gaussian_noise")->ce == Approx(71.01432122144632));
    CHECK(s.mce == Approx(71.01432122144632));
    CHECK(std::isnan(s.relative_mce));  // no AlexNet clean error given
    CHECK(s.find("gaussian_noise")->note.find("baseline clean error") != std::string::npos);
    b.set_clean_error(0.4);  // a test value, not AlexNet's
    s = summarize(r, b);
    // 100 * ((.4-.1) + (.8-.1)) / ((.69528-.4) + (.99452-.4)) = 112.38480557...
    CHECK(s.relative_mce == Approx(112.38480557428636));
    CHECK(s.acc == Approx(40.0));
}

TEST_CASE("alexnet-cifar10: full and partial runs", "[eval][metrics]") {
    results r;
    // acc(c, s) = 0.95 - 0.05 s - 0.01 c, so the mean error of corruption c is 0.20 + 0.01 c.
    for (int c = 0; c < 15; ++c)
        for (int s = 1; s <= 5; ++s) r.set(corruption_names[std::size_t(c)], s, 0.95 - 0.05 * s - 0.01 * c);
    r.set_clean(0.96);
    baseline_table b(baseline_kind::alexnet_cifar10);
    summary s = summarize(r, b);
    CHECK(s.complete());
    CHECK(s.cells == 75);
    CHECK(s.acc == Approx(73.0));
    CHECK(s.find("gaussian_noise")->ce == Approx(77.39938080495355));      // 100 * .20 / .2584
    CHECK(s.find("jpeg_compression")->ce == Approx(138.684940447055));     // 100 * .34 / .24516
    CHECK(s.mce == Approx(88.59038658458037));
    CHECK(s.missing.empty());
    b.set_clean_error(0.2);  // a test value
    CHECK(summarize(r, b).relative_mce == Approx(262.3821414265829));

    // Drop one severity of fog: the CIFAR table has averages only, so fog leaves mCE.
    results p;
    for (int c = 0; c < 15; ++c)
        for (int s = 1; s <= 5; ++s)
            if (!(c == 9 && s == 5)) p.set(corruption_names[std::size_t(c)], s, 0.95 - 0.05 * s - 0.01 * c);
    s = summarize(p, baseline_table(baseline_kind::alexnet_cifar10));
    CHECK_FALSE(s.complete());
    CHECK(s.cells == 74);
    CHECK(s.acc == Approx(73.16216216216215));
    CHECK(s.mce_count == 14);
    CHECK(s.mce == Approx(89.43482001854282));
    CHECK(s.missing == std::vector<std::string>{"fog"});
    CHECK(std::isnan(s.find("fog")->ce));
    CHECK(s.find("fog")->note.find("5 severities") != std::string::npos);
}

TEST_CASE("mce_variant names the baseline", "[eval][metrics]") {
    CHECK(mce_variant(baseline_table(baseline_kind::none)).find("unnormalized") != std::string::npos);
    CHECK(mce_variant(baseline_table(baseline_kind::alexnet_cifar100)).find("alexnet-cifar100") != std::string::npos);
    CHECK(mce_variant(baseline_table(baseline_kind::alexnet_imagenet)).find("Hendrycks") != std::string::npos);
}

TEST_CASE("accuracy_by_severity averages common corruptions per severity", "[eval][metrics]") {
    results r;
    r.set("fog", 1, 0.5);
    r.set("snow", 1, 0.7);
    r.set("snow", 2, 0.4);
    r.set("spatter", 2, 0.0);  // held out: ignored
    const auto a = accuracy_by_severity(r);
    CHECK(a[0] == Approx(60.0));
    CHECK(a[1] == Approx(40.0));
    CHECK(std::isnan(a[2]));
}
