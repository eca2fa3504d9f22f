// SPDX-License-Identifier: MIT
// eval::evaluate: batch-size independent results, and its timing fields.
#include <catch2/catch.hpp>

#include "eval/eval_fixtures.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/shiftnorm.hpp"

using namespace shiftnorm;

TEST_CASE("evaluate: same accuracy for any batch size; a steady-state rate only after a first batch", "[eval]") {
    const auto ds = test::tinted(40);
    auto net = models::small_resnet<batch_norm<population>>(8, 4, 10, 3);
    nn::rng_type g(3);
    net.reset_parameters(g);
    const data::normalization norm{};
    const auto one = eval::evaluate(net, ds, norm, 64);  // one batch: no steady-state rate
    const auto many = eval::evaluate(net, ds, norm, 16);
    CHECK(one.images == 40);
    CHECK(many.images == 40);
    CHECK(one.accuracy == many.accuracy);
    CHECK(one.loss == Approx(many.loss).epsilon(1e-6));
    CHECK(one.seconds > 0);
    CHECK(one.steady_images_per_second == 0);
    CHECK(many.steady_images_per_second > 0);
    std::vector<index_t> done;
    eval::evaluate(net, ds, norm, 16, nn::mode::eval, [&](index_t d, index_t total) {
        CHECK(total == 40);
        done.push_back(d);
    });
    CHECK(done == std::vector<index_t>{16, 32, 40});
}
