// SPDX-License-Identifier: MIT
// Seed 001's feature divergence (eq. 5) against closed forms and a naive double-precision fit.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "shiftnorm/eval/feature_divergence.hpp"
#include "shiftnorm/engine.hpp"
#include "shiftnorm/norm/batch_norm.hpp"

using namespace shiftnorm;

namespace {
data::image_dataset noise_images(index_t n, int offset, std::uint64_t seed) {
    data::image_dataset ds;
    ds.channels = 3, ds.height = 6, ds.width = 6;
    ds.classes = {"a", "b"};
    std::mt19937_64 g(seed);
    for (index_t i = 0; i < n; ++i) {
        ds.labels.push_back(int(i % 2));
        for (index_t k = 0; k < 3 * 36; ++k) ds.pixels.push_back(std::uint8_t(offset + int(g() % 100)));
    }
    return ds;
}

nn::sequential two_stage_net() {
    nn::sequential s1, s2, net;
    s1.add(nn::conv2d(3, 4, 3, 1, 1)).add(nn::relu());
    s2.add(nn::conv2d(4, 5, 3, 2, 1)).add(nn::norm_layer<batch_norm<population>>(5)).add(nn::relu());
    net.add("stem", nn::conv2d(3, 3, 1, 1, 0)).add("layer1", std::move(s1)).add("layer2", std::move(s2))
        .add("", nn::global_avg_pool()).add("fc", nn::linear(5, 2));
    nn::rng_type g(5);
    net.reset_parameters(g);
    return net;
}
}  // namespace

TEST_CASE("gaussian_kl and symmetric_kl: closed forms, zero on identical fits, symmetric", "[eval][divergence]") {
    CHECK(eval::gaussian_kl(0, 1, 0, 1) == 0.0);
    // KL(N(0,1) || N(1,4)) = log 2 + (1 + 1) / 8 - 1/2
    CHECK(eval::gaussian_kl(0, 1, 1, 4) == Approx(std::log(2.0) + 0.25 - 0.5).epsilon(1e-12));
    eval::block_gaussians a, b;
    a.blocks = b.blocks = {"x"};
    a.mean = {{0.0, 2.0}};
    a.var = {{1.0, 1.0}};
    b.mean = {{1.0, 2.0}};
    b.var = {{4.0, 1.0}};
    const double want = (eval::gaussian_kl(0, 1, 1, 4) + eval::gaussian_kl(1, 4, 0, 1)) / 2.0;  // channel 2 adds 0
    CHECK(eval::symmetric_kl(a, b)[0] == Approx(want).epsilon(1e-12));
    CHECK(eval::symmetric_kl(b, a)[0] == Approx(want).epsilon(1e-12));
    CHECK(eval::symmetric_kl(a, a)[0] == 0.0);
    // a dead channel (variance 0) is floored, not infinite
    b.var = {{0.0, 1.0}};
    CHECK(std::isfinite(eval::symmetric_kl(a, b)[0]));
    b.blocks = {"y"};
    CHECK_THROWS_AS(eval::symmetric_kl(a, b), shape_error);
}

TEST_CASE("fit_block_gaussians equals a naive double-precision fit of every block output", "[eval][divergence]") {
    nn::sequential net = two_stage_net();
    const auto ds = noise_images(7, 20, 3);
    eval::divergence_options o;
    o.batch_size = 3;  // three batches, the last of one image
    o.norm = {{0.4f}, {0.2f}};
    const auto g = eval::fit_block_gaussians(net, ds, o);
    REQUIRE(g.blocks == std::vector<std::string>{"layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer2.2"});
    // naive: run the whole data set as one batch and tap each block by hand
    std::vector<index_t> all(7);
    for (index_t i = 0; i < 7; ++i) all[std::size_t(i)] = i;
    tensor<float> x = eval::batch_of(ds, all, o.norm);
    auto& l1 = dynamic_cast<nn::sequential&>(net[1]);
    auto& l2 = dynamic_cast<nn::sequential&>(net[2]);
    std::vector<tensor<float>> outs;
    const tensor<float>* h = &net[0].forward(x, nn::mode::eval);
    for (std::size_t j = 0; j < l1.size(); ++j) outs.push_back(*(h = &l1[j].forward(*h, nn::mode::eval)));
    for (std::size_t j = 0; j < l2.size(); ++j) outs.push_back(*(h = &l2[j].forward(*h, nn::mode::eval)));
    for (std::size_t b = 0; b < outs.size(); ++b) {
        const shape4 s = outs[b].shape();
        for (index_t c = 0; c < s.c; ++c) {
            double m = 0, v = 0;
            const double cnt = double(s.n * s.h * s.w);
            for (index_t n = 0; n < s.n; ++n)
                for (index_t i = 0; i < s.h * s.w; ++i) m += outs[b].data()[(n * s.c + c) * s.h * s.w + i];
            m /= cnt;
            for (index_t n = 0; n < s.n; ++n)
                for (index_t i = 0; i < s.h * s.w; ++i) {
                    const double d = outs[b].data()[(n * s.c + c) * s.h * s.w + i] - m;
                    v += d * d;
                }
            v /= cnt;
            INFO(g.blocks[b] << " channel " << c);
            CHECK(g.mean[b][std::size_t(c)] == Approx(m).margin(1e-6));
            CHECK(g.var[b][std::size_t(c)] == Approx(v).margin(1e-6));
        }
    }
    // from the second top-level child on only layer2's blocks count; a shifted data set diverges
    o.first_child = 2;
    const auto a = eval::fit_block_gaussians(net, ds, o);
    CHECK(a.blocks == std::vector<std::string>{"layer2.0", "layer2.1", "layer2.2"});
    const auto shifted = eval::fit_block_gaussians(net, noise_images(7, 120, 4), o);
    for (double d : eval::symmetric_kl(a, shifted)) CHECK(d > 0.01);
    o.first_child = 3;
    CHECK_THROWS_AS(eval::fit_block_gaussians(net, ds, o), value_error);
}
