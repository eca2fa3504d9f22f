// SPDX-License-Identifier: MIT
// The attack protocol (eval/attack_eval.hpp) and its report, on a tiny synthetic dataset.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>
#include <vector>

#include "shiftnorm/core/random.hpp"
#include "shiftnorm/eval/attack_eval.hpp"
#include "shiftnorm/eval/attack_report.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/engine.hpp"
#include "shiftnorm/norm/batch_norm.hpp"

using namespace shiftnorm;

namespace {

data::image_dataset tiny_dataset(index_t n, std::uint64_t seed) {
    data::image_dataset ds;
    ds.channels = 3, ds.height = 8, ds.width = 8;
    ds.classes = {"a", "b", "c"};
    random_engine r(seed);
    for (index_t i = 0; i < n; ++i) {
        const auto label = std::int32_t(r.randint(0, 3));
        ds.labels.push_back(label);
        for (index_t k = 0; k < ds.image_size(); ++k)  // class-dependent brightness: learnable-looking data
            ds.pixels.push_back(std::uint8_t(std::clamp<std::int64_t>(r.randint(0, 160) + 40 * label, 0, 255)));
    }
    ds.validate("tiny_dataset");
    return ds;
}

nn::sequential tiny_bn_net() {
    nn::sequential net;
    net.add("conv1", nn::conv2d(3, 4, 3, 1, 1))
        .add("bn1", nn::norm_layer<batch_norm<population>>(4))
        .add("relu1", nn::relu())
        .add("pool", nn::global_avg_pool())
        .add("linear", nn::linear(4, 3));
    nn::rng_type g(3);
    net.reset_parameters(g);
    return net;
}

}  // namespace

TEST_CASE("run_attack_eval: one row per subject x batch x (clean, attack x eps, CW once); clean = evaluate()", "[attack][eval]") {
    const auto ds = tiny_dataset(10, 1);
    auto net = tiny_bn_net();
    eval::attack_eval_options o;
    o.attacks = {attack::attack_kind::fgsm, attack::attack_kind::pgd, attack::attack_kind::cw};
    o.eps = {2.0 / 255, 8.0 / 255};
    o.batch_sizes = {4, 10};
    o.base.steps = 3, o.base.cw_steps = 3, o.base.cw_binary_steps = 1;
    o.norm = data::normalization::imagenet();
    const std::vector<eval::attack_subject> subjects = {{"P", &net, nn::mode::eval, {}}, {"B", &net, nn::mode::batch, {}}};
    const auto before = net.parameters();
    const auto r = eval::run_attack_eval(subjects, ds, o);
    REQUIRE(r.rows.size() == 2 * 2 * (1 + 2 * 2 + 1));
    const auto ref = eval::evaluate(net, ds, o.norm, 4, nn::mode::eval);
    for (const auto& row : r.rows) {
        CHECK(row.images == 10);
        if (row.attack == "clean" && row.subject == "P") CHECK(row.accuracy == Approx(ref.accuracy));
        if (row.attack == "fgsm" || row.attack == "pgd") {
            CHECK(row.max_linf <= row.eps + 1e-6);
            CHECK_FALSE(std::isnan(row.eps));
        }
        if (row.attack == "cw" || row.attack == "clean") CHECK(std::isnan(row.eps));
    }
    // B mode at batch 10 classifies with the statistics of all ten images: evaluate() agrees
    const auto refb = eval::evaluate(net, ds, o.norm, 10, nn::mode::batch);
    for (const auto& row : r.rows)
        if (row.attack == "clean" && row.subject == "B" && row.batch == 10) CHECK(row.accuracy == Approx(refb.accuracy));

    std::ostringstream table;
    eval::print_attack_table(table, r, o.space);
    CHECK(table.str().find("eps = 8/255") != std::string::npos);
    CHECK(table.str().find("PGD") != std::string::npos);
    const std::string csv = eval::to_attack_csv(r);
    CHECK(std::count(csv.begin(), csv.end(), '\n') == std::ptrdiff_t(r.rows.size() + 1));
    const auto dir = std::filesystem::temp_directory_path() / "shiftnorm_test_attack_eval";
    std::filesystem::create_directories(dir);
    const auto files = eval::write_attack_report((dir / "attack").string(), r, o, {{"test", "1"}});
    // csv, json, one bar chart per eps, accuracy vs batch size per eps (2 batch sizes), vs eps
    // per L-inf attack (fgsm, pgd)
    CHECK(files.size() == 8);
    for (const auto& f : files) CHECK(std::filesystem::file_size(f) > 0);
    CHECK(std::count_if(files.begin(), files.end(), [](const std::string& f) { return f.find("_vs_batch_eps") != std::string::npos; }) == 2);
    CHECK(std::count_if(files.begin(), files.end(), [](const std::string& f) { return f.find("_vs_eps_") != std::string::npos; }) == 2);
    // the CSV reads back to the same rows (what `attack --replot` redraws from)
    const auto back = eval::parse_attack_csv(csv);
    REQUIRE(back.rows.size() == r.rows.size());
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
        CHECK(back.rows[i].subject == r.rows[i].subject);
        CHECK(back.rows[i].batch == r.rows[i].batch);
        CHECK(back.rows[i].attack == r.rows[i].attack);
        CHECK(std::isnan(back.rows[i].eps) == std::isnan(r.rows[i].eps));
        if (!std::isnan(r.rows[i].eps)) CHECK(back.rows[i].eps == Approx(r.rows[i].eps).epsilon(1e-7));
        CHECK(back.rows[i].correct == r.rows[i].correct);
        CHECK(back.rows[i].accuracy == Approx(r.rows[i].accuracy).epsilon(1e-7));
    }
    CHECK_THROWS_AS(eval::parse_attack_csv("a,b\n1,2\n"), io_error);
    CHECK_THROWS_AS(eval::parse_attack_csv(csv.substr(0, csv.find('\n') + 1) + "P,4,clean\n"), io_error);
    CHECK_THROWS_AS(eval::parse_attack_csv(csv.substr(0, csv.find('\n') + 1) + "P,x,clean,,1,1,1,0,0,0,0\n"), io_error);
    std::filesystem::remove_all(dir);
}

TEST_CASE("run_attack_eval rejects bad options before any work", "[attack][eval][errors]") {
    const auto ds = tiny_dataset(4, 2);
    auto net = tiny_bn_net();
    eval::attack_eval_options o;
    const std::vector<eval::attack_subject> subjects = {{"P", &net, nn::mode::eval, {}}};
    o.eps = {0.1, -0.1};
    CHECK_THROWS_WITH(eval::run_attack_eval(subjects, ds, o), Catch::Contains("eps"));
    o.eps = {0.1};
    o.batch_sizes = {0};
    CHECK_THROWS_WITH(eval::run_attack_eval(subjects, ds, o), Catch::Contains("batch size"));
    o.batch_sizes = {2};
    o.base.steps = 0;
    CHECK_THROWS_WITH(eval::run_attack_eval(subjects, ds, o), Catch::Contains("steps"));
    o.base.steps = 2;
    CHECK_THROWS_AS(eval::run_attack_eval({{"P", nullptr, nn::mode::eval, {}}}, ds, o), value_error);
}
