// SPDX-License-Identifier: MIT
// Seed 003's Fig. 2 protocol: differences are batch statistics of each BN input minus the
// layer's population statistics; with eps = 0 the adversarial rows equal the clean ones; the
// stored statistics are untouched; the consistency measure is a Pearson correlation.
#include <catch2/catch.hpp>

#include <random>

#include "eval/eval_fixtures.hpp"
#include "shiftnorm/eval/attack_stat_shift.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/shiftnorm.hpp"

using namespace shiftnorm;
using bn = batch_norm<population>;

namespace {
nn::sequential net_with_stats() { return test::net_of<bn>(); }
std::vector<float> running_buffers(nn::module& net) {
    std::vector<float> v;
    for (auto& p : net.parameters().params)
        if (p.name.find("running") != std::string::npos) v.insert(v.end(), p.value, p.value + p.size);
    return v;
}
}  // namespace

TEST_CASE("attack stat shift: batch statistics minus population statistics, per batch and channel", "[eval][attack][stat_shift]") {
    const auto ds = test::tinted(48);
    auto net = net_with_stats();
    const auto before = running_buffers(net);
    eval::attack_stat_shift_options o;
    o.batch_size = 16;
    o.attack.kind = attack::attack_kind::pgd;
    o.attack.eps = 8.0 / 255.0;
    o.attack.steps = 3;
    o.norm = {{0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
    const auto r = eval::measure_attack_stat_shift<bn>(net, ds, o);
    const auto layers = nn::find_all<nn::norm_layer<bn>>(net);
    REQUIRE(r.layers.size() == layers.size());
    CHECK(r.batches == 3);
    CHECK(r.images == 48);
    CHECK(running_buffers(net) == before);  // attacks never touch the stored statistics
    for (std::size_t l = 0; l < layers.size(); ++l) {
        CHECK(r.layers[l].channels == layers[l]->channels());
        REQUIRE(r.layers[l].dmean_adv.size() == 3);
        CHECK(r.layers[l].dmean_adv[0].size() == std::size_t(layers[l]->channels()));
    }

    SECTION("the clean rows of the first batch, recomputed independently") {
        std::vector<tensor<float>> in(layers.size());
        for (std::size_t l = 0; l < layers.size(); ++l)
            layers[l]->observer = [&in, l](const tensor<float>& src, const tensor<float>&, nn::mode) { in[l] = src; };
        std::vector<index_t> first(16);
        for (index_t i = 0; i < 16; ++i) first[std::size_t(i)] = i;
        net.forward(eval::batch_of(ds, first, o.norm), nn::mode::eval);
        for (auto* l : layers) l->observer = nullptr;
        for (std::size_t l = 0; l < layers.size(); ++l) {
            const auto st = eval::batch_channel_stats(in[l], variance_kind::unbiased);
            const auto& pop = layers[l]->impl.source.running.stats;
            for (std::size_t c = 0; c < st.mean.size(); ++c) {
                CHECK(r.layers[l].dmean_clean[0][c] == Approx(st.mean[c] - pop.mean[c]).margin(1e-5));
                CHECK(r.layers[l].dvar_clean[0][c] == Approx(st.var[c] - pop.var[c]).margin(1e-4));
            }
        }
    }
    SECTION("an attack with eps = 0 leaves the adversarial rows equal to the clean rows") {
        auto z = o;
        z.attack.eps = 0;
        const auto r0 = eval::measure_attack_stat_shift<bn>(net, ds, z);
        for (const auto& L : r0.layers) {
            CHECK(L.dmean_adv == L.dmean_clean);
            CHECK(L.dvar_adv == L.dvar_clean);
        }
        CHECK(r0.adversarial_accuracy == r0.clean_accuracy);
        CHECK(r0.clean_accuracy == r.clean_accuracy);
    }
    SECTION("a real attack moves the statistics and lowers accuracy") {
        double clean = 0, adv = 0;
        for (const auto& L : r.layers) clean += L.mean_abs_dmean_clean, adv += L.mean_abs_dmean_adv;
        CHECK(adv != clean);
        CHECK(r.adversarial_accuracy <= r.clean_accuracy);
    }
}

TEST_CASE("attack stat shift: consistency is the mean pairwise Pearson correlation", "[eval][attack][stat_shift]") {
    CHECK(eval::detail::mean_pairwise_correlation({{1, 2, 3}, {2, 4, 6}}) == Approx(1.0));
    CHECK(eval::detail::mean_pairwise_correlation({{1, 2, 3}, {3, 2, 1}}) == Approx(-1.0));
    CHECK(eval::detail::mean_pairwise_correlation({{1, 2, 3}, {2, 4, 6}, {3, 2, 1}}) == Approx((1.0 - 1.0 - 1.0) / 3.0));
    CHECK(std::isnan(eval::detail::mean_pairwise_correlation({{1, 2, 3}})));
    CHECK(std::isnan(eval::detail::mean_pairwise_correlation({{1, 1, 1}, {1, 2, 3}})));  // constant row skipped
}

TEST_CASE("attack stat shift refuses what it cannot measure", "[eval][attack][stat_shift][errors]") {
    const auto ds = test::tinted(20);
    auto net = net_with_stats();
    eval::attack_stat_shift_options o;
    o.batch_size = 1;
    CHECK_THROWS_AS(eval::measure_attack_stat_shift<bn>(net, ds, o), value_error);
    o.batch_size = 32;
    CHECK_THROWS_AS(eval::measure_attack_stat_shift<bn>(net, ds, o), shape_error);
    o.batch_size = 10;
    o.attack.kind = attack::attack_kind::cw;
    CHECK_THROWS_AS(eval::measure_attack_stat_shift<bn>(net, ds, o), value_error);
    o.attack.kind = attack::attack_kind::pgd;
    o.attack.eps = -1;
    CHECK_THROWS_AS(eval::measure_attack_stat_shift<bn>(net, ds, o), value_error);
    auto gn = models::small_resnet<group_norm<>>(8, 4, 10, 3);
    o.attack.eps = 0.01;
    CHECK_THROWS_AS(eval::measure_attack_stat_shift<bn>(gn, ds, o), value_error);
}
