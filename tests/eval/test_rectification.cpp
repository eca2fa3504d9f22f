// SPDX-License-Identifier: MIT
// Seed 000's protocol as a library call (no argv): what run_rectification_sweep measures equals
// the procedure done by hand, draws are reproducible, variants share samples, bad input throws.
#include <catch2/catch.hpp>

#include <random>

#include "eval/eval_fixtures.hpp"
#include "shiftnorm/corrupt/selection.hpp"
#include "shiftnorm/eval/rectification.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"

using namespace shiftnorm;

namespace {
data::image_dataset tinted(int n = 60) { return test::tinted(n); }
nn::sequential net_with_random_stats() {
    auto net = models::small_resnet<eval::rectifiable_bn>(8, 4, 10, 3);
    nn::rng_type g(11);
    net.reset_parameters(g);
    std::mt19937 s(3);
    for (auto* l : nn::find_all<nn::norm_layer<eval::rectifiable_bn>>(net))
        for (index_t c = 0; c < l->channels(); ++c)
            l->impl.source.running.stats.mean[c] = float(s() % 100) / 100.0f - 0.5f,
            l->impl.source.running.stats.var[c] = 0.5f + float(s() % 100) / 50.0f;
    return net;
}
eval::rectification_sweep_options small_options() {
    eval::rectification_sweep_options o;
    o.variants = eval::parse_rectify_variants("both,var,mean/front");
    o.ks = {4, 16};
    o.draws = 2;
    o.corruptions = corrupt::parse_corruption_list("gaussian_noise,contrast");
    o.severities = {2, 5};
    o.batch = 16;
    o.norm = data::normalization::imagenet();
    return o;
}
}  // namespace

TEST_CASE("rectification sweep: each cell equals the procedure done by hand", "[eval][rectification]") {
    const auto ds = tinted();
    auto net = net_with_random_stats();
    const auto o = small_options();
    const auto r = eval::run_rectification_sweep(net, ds, o);
    REQUIRE(r.after.size() == 3);
    CHECK(r.clean == eval::evaluate(net, ds, o.norm, 7).accuracy);  // the source statistics are back

    // cell (contrast, 5) is cell index 3; variant 1 (var only), K = 16, draw 1, by hand:
    const auto nhwc = data::to_nhwc(ds);
    std::vector<std::uint8_t> buf(nhwc.size());
    const corrupt::const_batch_view src{nhwc.data(), std::size_t(ds.size()), 16, 16, 3};
    corrupt::batch_view dst{buf.data(), src.count, 16, 16, 3};
    corrupt::corrupt_batch(corrupt::corruption::contrast, 5, src, dst, o.seed, o.corrupt, 0, 0);
    const auto cds = data::from_nhwc(buf, ds);
    CHECK(*r.before.get("contrast", 5) == eval::evaluate(net, cds, o.norm, 16).accuracy);
    const auto idx = data::draw_indices(cds.size(), 16, o.sample_seed ^ (std::uint64_t(3) << 20) ^ 16u ^ (std::uint64_t(1) << 40));
    eval::configure_rectification(net, o.variants[1]);
    eval::rectify_from(net, cds, idx, o.norm);
    const double by_hand = eval::evaluate(net, cds, o.norm, 16).accuracy;
    CHECK(*r.per_draw[1].at(16)[1].get("contrast", 5) == by_hand);
    const double mean2 = (*r.per_draw[1].at(16)[0].get("contrast", 5) + by_hand) / 2;
    CHECK(*r.after[1].at(16).get("contrast", 5) == Approx(mean2).epsilon(1e-15));
    eval::reset_rectification(net);

    // the protocol is deterministic, and variants do differ (the knobs are real)
    const auto again = eval::run_rectification_sweep(net, ds, o);
    for (std::size_t v = 0; v < 3; ++v)
        for (auto k : o.ks)
            for (int s : o.severities) CHECK(again.after[v].at(k).get("gaussian_noise", s) == r.after[v].at(k).get("gaussian_noise", s));
    bool differ = false;
    for (int s : o.severities) differ |= r.after[0].at(16).get("gaussian_noise", s) != r.after[2].at(16).get("gaussian_noise", s);
    CHECK(differ);
}

TEST_CASE("rectification sweep: Table 7 thirds enable the right BN layers", "[eval][rectification]") {
    auto net = net_with_random_stats();
    const auto layers = nn::find_all<nn::norm_layer<eval::rectifiable_bn>>(net);
    const std::size_t L = layers.size();
    REQUIRE(L >= 3);
    for (const char* third : {"front", "middle", "end"}) {
        eval::configure_rectification(net, eval::make_rectify_variant("both", third, "test"));
        std::size_t on = 0, first = L, last = 0;
        for (std::size_t i = 0; i < L; ++i)
            if (layers[i]->impl.source.options.enabled) ++on, first = std::min(first, i), last = i;
        INFO(third);
        CHECK(on >= 1);
        CHECK(last - first + 1 == on);  // contiguous
        if (std::string(third) == "front") CHECK(first == 0);
        if (std::string(third) == "end") CHECK(last == L - 1);
    }
}

TEST_CASE("rectification sweep: bad input throws naming it", "[eval][rectification]") {
    CHECK_THROWS_AS(eval::parse_rectify_variants("both,both"), value_error);
    CHECK_THROWS_AS(eval::parse_rectify_variants("all"), value_error);
    CHECK_THROWS_AS(eval::make_rectify_variant("both", "top", "x"), value_error);
    CHECK_THROWS_AS(corrupt::parse_severity_list("0-3"), value_error);
    CHECK_THROWS_AS(corrupt::parse_corruption_list("fogg"), value_error);
    const auto ds = tinted(20);
    auto net = net_with_random_stats();
    auto o = small_options();
    o.ks = {21};  // more samples than images
    CHECK_THROWS_AS(eval::run_rectification_sweep(net, ds, o), value_error);
    o.ks = {4};
    o.draws = 0;
    CHECK_THROWS_AS(eval::run_rectification_sweep(net, ds, o), value_error);
    o.draws = 1;
    o.load_corrupted = [](corrupt::corruption) { return std::vector<std::uint8_t>(10); };  // truncated file
    CHECK_THROWS_AS(eval::run_rectification_sweep(net, ds, o), io_error);
}

#include "shiftnorm/eval/feature_shift.hpp"

TEST_CASE("feature-shift analysis: Fig. 2 differences and Fig. 3 accuracies equal the computation by hand",
          "[eval][feature_shift]") {
    const auto ds = tinted(40);
    auto net = net_with_random_stats();
    eval::stat_shift_options o;
    o.corruption = corrupt::corruption::brightness;
    o.measurements = 1;
    o.batch_size = 8;
    o.norm = data::normalization::imagenet();
    const auto r = eval::measure_bn_stat_shift(net, ds, o);
    const auto L = nn::find_all<nn::norm_layer<eval::rectifiable_bn>>(net).size();
    REQUIRE(r.diff.size() == L);
    // the single measurement by hand: same draw, same taps
    random_engine g(o.sample_seed ^ 0xf162);
    const auto both = data::draw_indices(ds.size(), 16, g.next());
    const std::vector<index_t> a(both.begin(), both.begin() + 8);
    const auto cds = corrupt::corrupted_copy(ds, o.corruption, o.severity, o.seed, o.corrupt);
    eval::feature_tap tap(net, true);
    net.forward(eval::batch_of(ds, a, o.norm), nn::mode::eval);
    const auto clean0 = eval::batch_channel_stats(tap.features[0], variance_kind::unbiased);
    net.forward(eval::batch_of(cds, a, o.norm), nn::mode::eval);
    const auto corr0 = eval::batch_channel_stats(tap.features[0], variance_kind::unbiased);
    const auto same = eval::bn_stat_difference(clean0, corr0);
    CHECK(r.diff[0][2].mean_of_mean_abs == Approx(same.mean_of_mean_abs).epsilon(1e-12));
    CHECK(r.diff[0][2].mean_of_var_abs == Approx(same.mean_of_var_abs).epsilon(1e-12));
    CHECK(r.diff[0][2].mean_of_mean_abs > 0);  // brightness moves the first layer's input means

    auto rect = net_with_random_stats();
    eval::feature_cosine_options c;
    c.corruption = corrupt::corruption::contrast;
    c.severities = {5};
    c.k = 8;
    c.batch = 16;
    c.norm = o.norm;
    const auto rows = eval::measure_feature_cosine(net, rect, ds, c);
    REQUIRE(rows.size() == 1);
    const auto cds5 = corrupt::corrupted_copy(ds, c.corruption, 5, c.seed, c.corrupt);
    CHECK(rows[0].acc_before == Approx(eval::evaluate(net, cds5, c.norm, 16).accuracy).epsilon(1e-12));
    CHECK(rows[0].acc_after == Approx(eval::evaluate(rect, cds5, c.norm, 16).accuracy).epsilon(1e-12));
    for (std::size_t l = 0; l < L; ++l) {
        CHECK(rows[0].before[l] <= 1.0 + 1e-9);
        CHECK(rows[0].before[l] != rows[0].after[l]);  // rectification changed the features
    }
}
