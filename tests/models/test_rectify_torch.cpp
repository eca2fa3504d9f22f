// SPDX-License-Identifier: MIT
// Seed 000's rectification procedure against PyTorch 1.13 doing the same on a small network
// (tests/golden/make_rectify_golden.py): reset running stats, momentum=None, ONE train-mode
// forward pass on k target images (each BN layer sees activations already normalized with the
// batch statistics of the layers before it), then eval mode with the replaced statistics.
#include <catch2/catch.hpp>

#include "shiftnorm/models/zoo.hpp"
#include "shiftnorm/engine.hpp"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/shiftnorm.hpp"
#include "shiftnorm/train/checkpoint.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;

namespace {
using rect_bn = batch_norm<rectified>;

nn::sequential small_net() {
    nn::sequential net;
    net.add("conv1", nn::conv2d(1, 4, 3, 1, 1))
        .add("bn1", nn::norm_layer<rect_bn>(4))
        .add("relu1", nn::relu())
        .add("conv2", nn::conv2d(4, 8, 3, 2, 1))
        .add("bn2", nn::norm_layer<rect_bn>(8))
        .add("relu2", nn::relu())
        .add("pool", nn::global_avg_pool())
        .add("linear", nn::linear(8, 3));
    return net;
}

tensor<float> as_tensor(const data::st_tensor& t) {
    const auto v = t.to_float();
    shape4 s{t.shape.at(0), t.shape.size() > 1 ? t.shape[1] : 1, t.shape.size() > 2 ? t.shape[2] : 1,
             t.shape.size() > 3 ? t.shape[3] : 1};
    tensor<float> out(s);
    std::copy(v.begin(), v.end(), out.begin());
    return out;
}
}  // namespace

TEST_CASE("rectification matches the reference procedure run in PyTorch 1.13", "[rectify][torch]") {
    const auto f = data::read_safetensors(std::string(SHIFTNORM_TEST_DATA_DIR) + "/rectify_torch.safetensors");
    auto net = small_net();
    train::load_state_dict(net, f, true, {"input.", "expected."});
    const auto target = as_tensor(f.at("input.target"));
    const auto evalx = as_tensor(f.at("input.eval"));

    // source statistics: eval-mode logits agree before rectification
    const auto src_logits = net.forward(evalx, nn::mode::eval);
    CHECK(test::worst_error(src_logits, f.at("expected.logits_source").to_float(), 1e-5, 1e-4) <= 1.0);

    net.forward(target, nn::mode::rectify);
    const auto bns = nn::find_all<nn::norm_layer<rect_bn>>(net);
    REQUIRE(bns.size() == 2);
    for (std::size_t i = 0; i < 2; ++i) {
        const std::string name = "expected.bn" + std::to_string(i + 1);
        INFO(name);
        REQUIRE(bns[i]->impl.source.has_adapted);
        CHECK(test::worst_error(bns[i]->impl.source.adapted.mean, f.at(name + ".running_mean").to_float(), 1e-6, 1e-5) <= 1.0);
        CHECK(test::worst_error(bns[i]->impl.source.adapted.var, f.at(name + ".running_var").to_float(), 1e-6, 1e-5) <= 1.0);
    }
    const auto logits = net.forward(evalx, nn::mode::eval);
    CHECK(test::worst_error(logits, f.at("expected.logits_rectified").to_float(), 1e-5, 1e-4) <= 1.0);
    // and the rectified logits really differ from the source ones (the test can fail)
    CHECK(test::worst_error(logits, f.at("expected.logits_source").to_float(), 1e-3, 0) > 1.0);
}

namespace {
//! Runs one ablation case of make_rectify_golden.py: `what` kept, `enabled` layers rectified.
void check_ablation(const std::string& name, adapt_what what, bool bn1_on, bool bn2_on, rectify_pass pass) {
    const auto f = data::read_safetensors(std::string(SHIFTNORM_TEST_DATA_DIR) + "/rectify_torch.safetensors");
    auto net = small_net();
    train::load_state_dict(net, f, true, {"input.", "expected."});
    const auto bns = nn::find_all<nn::norm_layer<rect_bn>>(net);
    REQUIRE(bns.size() == 2);
    const bool on[2] = {bn1_on, bn2_on};
    for (std::size_t i = 0; i < 2; ++i) {
        bns[i]->impl.source.options.what = what;
        bns[i]->impl.source.options.enabled = on[i];
        bns[i]->impl.source.options.pass = pass;
    }
    net.forward(as_tensor(f.at("input.target")), nn::mode::rectify);
    for (std::size_t i = 0; i < 2; ++i) {
        const std::string key = "expected." + name + ".bn" + std::to_string(i + 1);
        INFO(key);
        const auto& st = bns[i]->impl.source.inference_stats(nullptr);
        CHECK(test::worst_error(st.mean, f.at(key + ".running_mean").to_float(), 1e-6, 1e-5) <= 1.0);
        CHECK(test::worst_error(st.var, f.at(key + ".running_var").to_float(), 1e-6, 1e-5) <= 1.0);
    }
    const auto logits = net.forward(as_tensor(f.at("input.eval")), nn::mode::eval);
    CHECK(test::worst_error(logits, f.at("expected." + name + ".logits").to_float(), 1e-5, 1e-4) <= 1.0);
}
}  // namespace

TEST_CASE("Table 6/7 ablations match PyTorch: one train-mode pass, then keep the chosen statistic",
          "[rectify][torch]") {
    SECTION("mean only") { check_ablation("mean_only", adapt_what::mean_only, true, true, rectify_pass::batch); }
    SECTION("variance only") { check_ablation("var_only", adapt_what::var_only, true, true, rectify_pass::batch); }
    SECTION("first layer left out") { check_ablation("bn1_disabled", adapt_what::both, false, true, rectify_pass::batch); }
    SECTION("second layer left out") { check_ablation("bn2_disabled", adapt_what::both, true, false, rectify_pass::batch); }
}

TEST_CASE("the 'adapted' pass differs from PyTorch's procedure for mean only (the option is real)", "[rectify][torch]") {
    const auto f = data::read_safetensors(std::string(SHIFTNORM_TEST_DATA_DIR) + "/rectify_torch.safetensors");
    auto net = small_net();
    train::load_state_dict(net, f, true, {"input.", "expected."});
    const auto bns = nn::find_all<nn::norm_layer<rect_bn>>(net);
    for (auto* b : bns) b->impl.source.options.what = adapt_what::mean_only, b->impl.source.options.pass = rectify_pass::adapted;
    net.forward(as_tensor(f.at("input.target")), nn::mode::rectify);
    // the first layer sees the same input either way; the second sees differently normalized activations
    CHECK(test::worst_error(bns[0]->impl.source.adapted.mean, f.at("expected.mean_only.bn1.running_mean").to_float(), 1e-6, 1e-5) <= 1.0);
    CHECK(test::worst_error(bns[1]->impl.source.adapted.mean, f.at("expected.mean_only.bn2.running_mean").to_float(), 1e-4, 0) > 1.0);
}
