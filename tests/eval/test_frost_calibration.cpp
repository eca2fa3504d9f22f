// SPDX-License-Identifier: MIT
// The frost calibration protocol: every row is the accuracy evaluate() gives on the frost copy
// it names, gaps are against the textured row, the best candidate is the smallest RMS gap.
#include <catch2/catch.hpp>

#include <random>

#include "eval/eval_fixtures.hpp"
#include "shiftnorm/eval/frost_calibration.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/shiftnorm.hpp"

using namespace shiftnorm;

namespace {
//! Two flat "photographs" (dark and bright) standing in for the reference's textures.
corrupt::frost_textures flat_textures() {
    corrupt::frost_textures t;
    for (std::uint8_t v : {60, 220}) {
        corrupt::image img(200, 200, 3);
        for (std::size_t i = 0; i < img.size(); ++i) img.data()[i] = v;
        t.add(std::move(img));
    }
    return t;
}
}  // namespace

TEST_CASE("calibrate_procedural_frost: rows are evaluate() on the named frost copies, best = smallest rms gap",
          "[eval][frost]") {
    const auto ds = test::tinted(40);
    auto net = models::small_resnet<batch_norm<population>>(8, 4, 10, 3);
    nn::rng_type g(11);
    net.reset_parameters(g);
    const auto textures = flat_textures();
    const data::normalization norm{};
    eval::frost_calibration_options o;
    o.contrasts = {0.5, 1.5, 3.0};
    o.severities = {1, 4};
    o.seed = 9;
    o.batch_size = 16;
    std::size_t calls = 0;
    const auto r = eval::calibrate_procedural_frost(net, ds, norm, textures, o, [&](std::size_t d, std::size_t t) {
        CHECK(t == 5);
        CHECK(d == ++calls);
    });
    CHECK(calls == 5);
    REQUIRE(r.candidates.size() == 3);
    CHECK(r.clean == eval::evaluate(net, ds, norm, 16).accuracy);

    auto accuracy_under = [&](const corrupt::corrupt_options& copt, int s) {
        return eval::evaluate(net, corrupt::corrupted_copy(ds, corrupt::corruption::frost, s, o.seed, copt), norm, 16).accuracy;
    };
    corrupt::corrupt_options copt;
    copt.frost = &textures;
    for (std::size_t i = 0; i < o.severities.size(); ++i) CHECK(r.textured.accuracy[i] == accuracy_under(copt, o.severities[i]));
    copt.frost = nullptr;
    copt.frost_procedural = corrupt::procedural_frost_params::v1();
    for (std::size_t i = 0; i < o.severities.size(); ++i) CHECK(r.v1.accuracy[i] == accuracy_under(copt, o.severities[i]));
    double best = 1e9;
    std::size_t best_i = 99;
    for (std::size_t k = 0; k < o.contrasts.size(); ++k) {
        copt.frost_procedural = corrupt::procedural_frost_params::calibrated();
        copt.frost_procedural.contrast = o.contrasts[k];
        double sum = 0, sq = 0;
        for (std::size_t i = 0; i < o.severities.size(); ++i) {
            const double a = accuracy_under(copt, o.severities[i]);
            CHECK(r.candidates[k].accuracy[i] == a);
            sum += a - r.textured.accuracy[i], sq += (a - r.textured.accuracy[i]) * (a - r.textured.accuracy[i]);
        }
        CHECK(r.candidates[k].mean_gap == Approx(sum / 2).margin(1e-12));
        CHECK(r.candidates[k].rms_gap == Approx(std::sqrt(sq / 2)).margin(1e-12));
        if (r.candidates[k].rms_gap < best) best = r.candidates[k].rms_gap, best_i = k;
    }
    CHECK(r.best == best_i);
}

TEST_CASE("calibrate_procedural_frost refuses what it cannot calibrate", "[eval][frost][errors]") {
    const auto ds = test::tinted(10);
    auto net = models::small_resnet<batch_norm<population>>(8, 4, 10, 3);
    const auto textures = flat_textures();
    eval::frost_calibration_options o;
    CHECK_THROWS_AS(eval::calibrate_procedural_frost(net, ds, {}, corrupt::frost_textures{}, o), value_error);
    o.contrasts.clear();
    CHECK_THROWS_AS(eval::calibrate_procedural_frost(net, ds, {}, textures, o), value_error);
    o = {};
    o.severities = {0};
    CHECK_THROWS_AS(eval::calibrate_procedural_frost(net, ds, {}, textures, o), value_error);
    o = {};
    CHECK_THROWS_AS(eval::calibrate_procedural_frost(net, data::image_dataset{}, {}, textures, o), shape_error);
}
