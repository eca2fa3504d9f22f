// SPDX-License-Identifier: MIT
// AdvBN (seed 001): the split network, aux-BN routing, PGD parity with PyTorch 1.13, fine-tuning, resuming.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "shiftnorm/advbn/fine_tune.hpp"
#include "shiftnorm/data/safetensors.hpp"
#include "support/golden.hpp"
#include "shiftnorm/engine.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/train/checkpoint.hpp"

using namespace shiftnorm;
using bn = batch_norm<population>;

namespace {

using test::read4;

nn::sequential stage(index_t in, index_t out, index_t stride) {
    nn::sequential s;
    s.add(nn::conv2d(in, out, 3, stride, 1)).add(nn::norm_layer<bn>(out)).add(nn::relu());
    return s;
}

//! The layout of make_advbn_golden.py's Net (3 classes); `classes` for the toy data sets.
nn::sequential tiny_net(index_t classes = 3) {
    nn::sequential net;
    net.add("conv1", nn::conv2d(3, 4, 3, 1, 1))
        .add("bn1", nn::norm_layer<bn>(4))
        .add("", nn::relu())
        .add("layer1", stage(4, 6, 1))
        .add("layer2", stage(6, 8, 2))
        .add("", nn::global_avg_pool())
        .add("linear", nn::linear(8, classes));
    return net;
}

data::safetensors_file golden() {
    return data::read_safetensors(std::string(SHIFTNORM_TEST_DATA_DIR) + "/advbn_golden.safetensors");
}

std::unique_ptr<advbn::split_network<bn>> golden_net(const data::safetensors_file& f) {
    auto net = std::make_unique<advbn::split_network<bn>>(tiny_net(), "layer1");
    train::load_state_dict(net->network(), f, true, {"input.", "pgd.", "step.", "grad."});
    net->copy_clean_to_auxiliary();
    return net;
}

std::vector<std::int32_t> labels_of(const data::safetensors_file& f) {
    std::vector<std::int32_t> y;
    for (auto v : f.at("input.y").to_int64()) y.push_back(std::int32_t(v));
    return y;
}

double max_abs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, double(std::abs(x)));
    return m;
}

//! max |a - b| <= tol * max(1, max |b|)
void require_close(const float* a, const std::vector<float>& b, double tol, const std::string& what) {
    const double scale = std::max(1.0, max_abs(b));
    double worst = 0;
    for (std::size_t i = 0; i < b.size(); ++i) worst = std::max(worst, std::abs(double(a[i]) - double(b[i])));
    INFO(what << ": max |diff| " << worst << ", scale " << scale);
    REQUIRE(worst <= tol * scale);
}

//! A tiny 2-class image set: class 0 dark, class 1 bright, with noise (learnable in a few steps).
data::image_dataset toy_images(index_t n, std::uint64_t seed) {
    data::image_dataset ds;
    ds.channels = 3, ds.height = 8, ds.width = 8;
    ds.classes = {"dark", "bright"};
    std::mt19937_64 g(seed);
    for (index_t i = 0; i < n; ++i) {
        const int y = int(i % 2);
        ds.labels.push_back(y);
        for (index_t k = 0; k < 3 * 64; ++k) ds.pixels.push_back(std::uint8_t((y ? 150 : 60) + g() % 80));
    }
    return ds;
}

//! tiny_net with 2 classes and seeded weights, for the two-class toy images.
nn::sequential toy_net() {
    nn::sequential net = tiny_net(2);
    nn::rng_type g(3);
    net.reset_parameters(g);
    return net;
}

std::string slurp(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST_CASE("AdvBN PGD on d_mu / d_sigma equals PyTorch 1.13 step by step", "[advbn][golden]") {
    const auto f = golden();
    INFO("fixture advbn_golden.safetensors (torch " << f.metadata.at("torch") << ")");
    auto golden_ptr = golden_net(f);
    auto& net = *golden_ptr;
    const tensor<float> x = read4(f, "input.x");
    const auto y = labels_of(f);
    const int steps = std::stoi(f.metadata.at("steps"));
    advbn::attack_options o;
    o.tau = std::stod(f.metadata.at("tau"));
    o.eps = std::stod(f.metadata.at("eps"));
    const tensor<float> feat = net.front(x);
    adversarial_stats adv;
    tensor<float> f_adv;
    for (int s = 1; s <= steps; ++s) {
        o.steps = s;  // rerun from the identity with s steps: the state after step s
        const auto tr = advbn::perturb(net, adv, feat, y, o, f_adv);
        REQUIRE(tr.loss.size() == std::size_t(s + 1));
        require_close(adv.d_mu.data(), f.at("pgd.d_mu." + std::to_string(s)).to_float(), 1e-6, "d_mu after step " + std::to_string(s));
        require_close(adv.d_sigma.data(), f.at("pgd.d_sigma." + std::to_string(s)).to_float(), 1e-6,
                      "d_sigma after step " + std::to_string(s));
        if (s == steps) {
            const auto ref_loss = f.at("pgd.loss").to_float();
            std::vector<float> got(tr.loss.begin(), tr.loss.end());
            require_close(got.data(), ref_loss, 1e-5, "loss per step");
            require_close(f_adv.data(), f.at("pgd.f_adv").to_float(), 1e-5, "final perturbed features");
        }
    }
    CHECK(net.current_route() == bn_route::clean);  // routed back after the attack
}

TEST_CASE("One AdvBN training step (clean + auxiliary BN) equals PyTorch 1.13: losses, gradients, buffers", "[advbn][golden]") {
    const auto f = golden();
    auto golden_ptr = golden_net(f);
    auto& net = *golden_ptr;
    const tensor<float> x = read4(f, "input.x");
    const auto y = labels_of(f);
    advbn::attack_options o;
    o.tau = std::stod(f.metadata.at("tau"));
    o.eps = std::stod(f.metadata.at("eps"));
    o.steps = std::stoi(f.metadata.at("steps"));
    adversarial_stats adv;
    tensor<float> f_adv;
    nn::softmax_cross_entropy ce;
    const tensor<float> feat = net.front(x);
    const auto r = advbn::accumulate_step(net, adv, feat, y, false, o, f_adv, ce);
    CHECK(r.loss_clean == Approx(f.at("step.loss_clean").to_float()[0]).epsilon(1e-5));
    CHECK(r.loss_adv == Approx(f.at("step.loss_adv").to_float()[0]).epsilon(1e-5));
    const auto ps = net.parameters();
    int compared = 0;
    for (const auto& p : ps.params) {
        const std::string key = "grad." + p.name;
        if (!f.tensors.count(key)) continue;
        REQUIRE(p.grad != nullptr);
        require_close(p.grad, f.at(key).to_float(), 1e-5, key);
        ++compared;
    }
    CHECK(compared == 7);  // layer2.0.weight, layer2.1.{weight,bias}, linear.{weight,bias}, aux {weight,bias}
    for (const auto& p : ps.params) {
        if (p.name == "layer2.1.running_mean") require_close(p.value, f.at("step.running_mean").to_float(), 1e-5, p.name);
        if (p.name == "layer2.1.running_var") require_close(p.value, f.at("step.running_var").to_float(), 1e-5, p.name);
        if (p.name == "advbn_aux.layer2.1.running_mean")
            require_close(p.value, f.at("step.aux_running_mean").to_float(), 1e-5, p.name);
        if (p.name == "advbn_aux.layer2.1.running_var")
            require_close(p.value, f.at("step.aux_running_var").to_float(), 1e-5, p.name);
    }
}

TEST_CASE("split_network: stages, parameter names, head parameters, routing", "[advbn]") {
    advbn::split_network<bn> net(toy_net(), "layer1");
    CHECK(net.head_begin() == 4);
    REQUIRE(net.head_norm_names() == std::vector<std::string>{"layer2.1"});
    const auto names = [](const nn::param_set& ps) {
        std::vector<std::string> v;
        for (const auto& p : ps.params) v.push_back(p.name);
        return v;
    };
    const auto all = names(net.parameters());
    CHECK(std::count(all.begin(), all.end(), "advbn_aux.layer2.1.weight") == 1);
    CHECK(std::count(all.begin(), all.end(), "advbn_aux.layer2.1.running_var") == 1);
    CHECK(std::count(all.begin(), all.end(), "conv1.weight") == 1);
    const auto head = names(net.head_parameters());
    CHECK(std::count(head.begin(), head.end(), "conv1.weight") == 0);  // the front is frozen
    CHECK(std::count(head.begin(), head.end(), "layer1.0.weight") == 0);
    CHECK(std::count(head.begin(), head.end(), "layer2.0.weight") == 1);
    CHECK(std::count(head.begin(), head.end(), "advbn_aux.layer2.1.bias") == 1);

    // routing swaps the BN state: a changed auxiliary BN changes only the auxiliary route
    auto* clean = nn::find_all<nn::norm_layer<bn>>(net.network()[4]).at(0);
    const float w0 = clean->impl.scale[0];
    {
        advbn::routed<bn> r(net, bn_route::auxiliary);
        clean->impl.scale[0] = 7.0f;  // the position now holds the auxiliary copy
        CHECK_THROWS_AS(net.parameters(), state_error);  // collecting while routed is refused
    }
    CHECK(clean->impl.scale[0] == w0);
    net.route(bn_route::auxiliary);
    CHECK(clean->impl.scale[0] == 7.0f);
    net.route(bn_route::clean);
    // the route guard restores the clean BNs when the scope is left by an exception
    try {
        advbn::routed<bn> r(net, bn_route::auxiliary);
        throw std::runtime_error("boom");
    } catch (const std::runtime_error&) {
    }
    CHECK(net.current_route() == bn_route::clean);
    net.copy_clean_to_auxiliary();
    net.route(bn_route::auxiliary);
    CHECK(clean->impl.scale[0] == w0);
    net.route(bn_route::clean);
}

TEST_CASE("split_network refuses stages it cannot split at", "[advbn][errors]") {
    try {
        advbn::split_network<bn> net(toy_net(), "layer9");
        FAIL("no error");
    } catch (const value_error& e) {
        const std::string m = e.what();
        CHECK(m.find("layer9") != std::string::npos);
        CHECK(m.find("layer1, layer2") != std::string::npos);  // lists what exists
    }
    CHECK_THROWS_AS(advbn::split_network<bn>(toy_net(), "linear"), value_error);  // no head left
    CHECK_THROWS_AS(advbn::split_network<bn>(toy_net(), ""), value_error);
    CHECK_THROWS_AS(advbn::split_network<bn>(toy_net(), "layer2"), value_error);  // head without BN
}

TEST_CASE("AdvBN attack: projection to [1 - eps, 1 + eps], ReLU clamp, bad options", "[advbn]") {
    const auto f = golden();
    auto golden_ptr = golden_net(f);
    auto& net = *golden_ptr;
    const tensor<float> x = read4(f, "input.x");
    const auto y = labels_of(f);
    const tensor<float> feat = net.front(x);
    adversarial_stats adv;
    tensor<float> f_adv;
    advbn::attack_options o;
    o.eps = 0.3;
    o.tau = 0.2;
    o.steps = 6;
    advbn::perturb(net, adv, feat, y, o, f_adv);
    int at_bound = 0;
    for (index_t c = 0; c < adv.channels(); ++c) {
        CHECK(adv.d_mu[c] >= 0.7f - 1e-6f);
        CHECK(adv.d_mu[c] <= 1.3f + 1e-6f);
        CHECK(adv.d_sigma[c] >= 0.7f - 1e-6f);
        CHECK(adv.d_sigma[c] <= 1.3f + 1e-6f);
        at_bound += std::abs(std::abs(adv.d_sigma[c] - 1.0f) - 0.3f) < 1e-6f;
    }
    CHECK(at_bound > 0);  // steps of 0.2 past the bound were projected back to it
    CHECK(*std::min_element(f_adv.begin(), f_adv.end()) >= 0.0f);  // clamped like the ReLU that made f
    o.clamp_relu = false;
    o.eps = 1.1;
    advbn::perturb(net, adv, feat, y, o, f_adv);
    CHECK(*std::min_element(f_adv.begin(), f_adv.end()) < 0.0f);  // d_sigma > 1 pushes below 0 without it

    advbn::attack_options bad = o;
    bad.eps = 0;
    CHECK_THROWS_AS(advbn::perturb(net, adv, feat, y, bad, f_adv), value_error);
    bad.eps = -1;
    CHECK_THROWS_AS(advbn::perturb(net, adv, feat, y, bad, f_adv), value_error);
    bad = o;
    bad.tau = std::nan("");
    CHECK_THROWS_AS(advbn::perturb(net, adv, feat, y, bad, f_adv), value_error);
    CHECK(advbn::steps_for_eps(0.5) == 4);
    CHECK(advbn::steps_for_eps(1.0) == 6);
    CHECK(advbn::steps_for_eps(1.5) == 9);
}

TEST_CASE("AdvBN additive variant: zero start, projection to +-eps * max channel mean / std", "[advbn]") {
    const auto f = golden();
    auto golden_ptr = golden_net(f);
    auto& net = *golden_ptr;
    const tensor<float> feat = net.front(read4(f, "input.x"));
    adversarial_stats adv;
    tensor<float> f_adv;
    advbn::attack_options o;
    o.kind = perturbation_kind::additive;
    o.eps = 0.5;
    o.steps = 40;
    advbn::perturb(net, adv, feat, labels_of(f), o, f_adv);
    double mmax = 0, smax = 0;
    for (std::size_t c = 0; c < adv.batch_mean().size(); ++c) {
        mmax = std::max(mmax, std::abs(adv.batch_mean()[c]));
        smax = std::max(smax, adv.batch_std()[c]);
    }
    for (index_t c = 0; c < adv.channels(); ++c) {
        CHECK(std::abs(adv.d_mu[c]) <= 0.5 * mmax + 1e-6);
        CHECK(std::abs(adv.d_sigma[c]) <= 0.5 * smax + 1e-6);
    }
}

TEST_CASE("fine_tune: AdvBN trains the head only, resumes to the same weights, refuses another split", "[advbn][train]") {
    namespace fs = std::filesystem;
    const auto train_set = toy_images(48, 1), test_set = toy_images(16, 2);
    const fs::path dir = fs::temp_directory_path() / ("shiftnorm_advbn_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ostringstream log;
    advbn::fine_tune_options o;
    o.epochs = 2;
    o.batch_size = 16;
    o.lr = 0.05;
    o.attack.steps = 2;
    o.norm = {{0.5f}, {0.25f}};
    o.log = &log;
    o.progress_seconds = 1e9;

    advbn::split_network<bn> straight(toy_net(), "layer1");
    const auto front_before = straight.network()[0].parameters().params.at(0);
    std::vector<float> w0(front_before.value, front_before.value + front_before.size);
    const auto hist = advbn::fine_tune(straight, train_set, &test_set, o);
    REQUIRE(hist.size() == 2);
    CHECK(hist[0].loss_adv > 0);
    CHECK(hist[0].attack_seconds > 0);
    CHECK(std::equal(w0.begin(), w0.end(), front_before.value));  // the front never moves

    o.checkpoint = (dir / "run.safetensors").string();
    o.stop_after_epoch = 1;
    {
        advbn::split_network<bn> first(toy_net(), "layer1");
        advbn::fine_tune(first, train_set, &test_set, o);
    }
    o.stop_after_epoch = 0;
    o.resume = true;
    advbn::split_network<bn> resumed(toy_net(), "layer1");
    advbn::fine_tune(resumed, train_set, &test_set, o);
    CHECK(log.str().find("resumed from") != std::string::npos);
    const auto a = straight.parameters(), b = resumed.parameters();
    REQUIRE(a.params.size() == b.params.size());
    for (std::size_t i = 0; i < a.params.size(); ++i) {
        INFO(a.params[i].name);
        for (index_t k = 0; k < a.params[i].size; ++k) CHECK(a.params[i].value[k] == Approx(b.params[i].value[k]).margin(1e-5));
    }
    // the checkpoint holds the clean BNs under their names and the auxiliary ones under the prefix
    const auto ck = data::read_safetensors(o.checkpoint);
    CHECK(ck.tensors.count("layer2.1.weight") == 1);
    CHECK(ck.tensors.count("advbn_aux.layer2.1.weight") == 1);
    CHECK(ck.metadata.at("advbn_split_at") == "layer1");
    CHECK(ck.metadata.at("epochs_done") == "2");
    // a plain network loads it when the auxiliary prefix is skipped
    nn::sequential plain = toy_net();
    CHECK_NOTHROW(train::load_state_dict(plain, ck, true, {advbn::aux_prefix()}));

    // resuming with another split or as the control: a clear error, nothing overwritten
    const std::string before = slurp(o.checkpoint), before_optim = slurp(o.checkpoint + ".optim");
    o.epochs = 3;
    advbn::split_network<bn> other(toy_net(), "bn1");
    try {
        advbn::fine_tune(other, train_set, &test_set, o);
        FAIL("no error");
    } catch (const value_error& e) {
        CHECK(std::string(e.what()).find("advbn_split_at") != std::string::npos);
    }
    o.control = true;
    advbn::split_network<bn> ctl(toy_net(), "layer1");
    CHECK_THROWS_AS(advbn::fine_tune(ctl, train_set, &test_set, o), value_error);
    CHECK(slurp(o.checkpoint) == before);
    CHECK(slurp(o.checkpoint + ".optim") == before_optim);
    fs::remove_all(dir);
}

TEST_CASE("fine_tune control: no adversary, clean loss only, same data and schedule", "[advbn][train]") {
    const auto train_set = toy_images(32, 1);
    std::ostringstream log;
    advbn::fine_tune_options o;
    o.epochs = 1;
    o.batch_size = 16;
    o.control = true;
    o.norm = {{0.5f}, {0.25f}};
    o.log = &log;
    advbn::split_network<bn> net(toy_net(), "layer1");
    const auto aux_before = net.parameters();
    std::vector<float> aux_w;
    for (const auto& p : aux_before.params)
        if (p.name == "advbn_aux.layer2.1.weight") aux_w.assign(p.value, p.value + p.size);
    const auto h = advbn::fine_tune(net, train_set, nullptr, o);
    CHECK(h.at(0).loss_adv == 0);
    CHECK(h.at(0).attack_seconds == 0);
    for (const auto& p : net.parameters().params)
        if (p.name == "advbn_aux.layer2.1.weight") CHECK(std::equal(aux_w.begin(), aux_w.end(), p.value));  // unused
}
