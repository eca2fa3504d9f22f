// SPDX-License-Identifier: MIT
// Optimizer, schedules, a few training steps, checkpoints and resume.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/train/checkpoint.hpp"
#include "shiftnorm/train/schedule.hpp"
#include "shiftnorm/train/sgd.hpp"
#include "shiftnorm/train/trainer.hpp"

using namespace shiftnorm;
using bn = batch_norm<population>;

namespace {
//! A linear layer whose gradient we set by hand: exercises sgd on a known sequence.
struct one_param {
    nn::linear fc{1, 1, false};
};

data::image_dataset toy_dataset(index_t n, unsigned seed) {
    // Two classes of 8x8 gray images: bright top half vs bright bottom half, plus noise.
    data::image_dataset ds;
    ds.channels = 1;
    ds.height = ds.width = 8;
    ds.classes = data::numbered_classes(2);
    std::mt19937 g(seed);
    std::uniform_int_distribution<int> noise(0, 60);
    for (index_t i = 0; i < n; ++i) {
        const int label = int(i % 2);
        ds.labels.push_back(label);
        for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 8; ++x)
                ds.pixels.push_back(std::uint8_t(((y < 4) == (label == 0) ? 180 : 40) + noise(g)));
    }
    return ds;
}
}  // namespace

TEST_CASE("sgd follows torch.optim.SGD: momentum, dampening, Nesterov, weight decay", "[train][sgd]") {
    for (bool nesterov : {false, true}) {
        one_param m;
        m.fc.weight[0] = 1.0f;
        train::sgd_options o;
        o.momentum = 0.9;
        o.weight_decay = 0.1;
        o.nesterov = nesterov;
        train::sgd opt(m.fc.parameters(), o);
        double w = 1.0, buf = 0;
        const double grads[] = {0.5, -0.25, 1.0, 0.0};
        for (int t = 0; t < 4; ++t) {
            m.fc.diff_weight[0] = float(grads[t]);
            opt.step(0.1);
            double d = grads[t] + 0.1 * w;
            buf = t == 0 ? d : 0.9 * buf + d;
            d = nesterov ? d + 0.9 * buf : buf;
            w -= 0.1 * d;
            CHECK(m.fc.weight[0] == Approx(w).epsilon(1e-6));
        }
    }
    one_param m;
    CHECK_THROWS_AS(train::sgd(m.fc.parameters(), {0.0, 0.0, 0.0, true}), value_error);
}

TEST_CASE("learning-rate schedules", "[train][schedule]") {
    train::lr_schedule s;
    s.lr = 0.2;
    s.total_steps = 1000;
    s.steps_per_epoch = 100;
    s.kind = train::schedule_kind::cosine;
    CHECK(s.at(0) == Approx(0.2));
    CHECK(s.at(500) == Approx(0.1));
    CHECK(s.at(999) < 1e-5);
    s.kind = train::schedule_kind::step;
    s.milestones = {5, 8};
    CHECK(s.at(499) == Approx(0.2));
    CHECK(s.at(500) == Approx(0.02));
    CHECK(s.at(850) == Approx(0.002));
    // torch.optim.lr_scheduler.OneCycleLR(max_lr=0.2, total_steps=1000) (cos, pct_start 0.3,
    // div 25, final_div 1e4): step 0 -> 0.008, step 299 -> 0.2 (peak), last -> 8e-7.
    s.kind = train::schedule_kind::one_cycle;
    CHECK(s.at(0) == Approx(0.008));
    CHECK(s.at(299) == Approx(0.2));
    CHECK(s.at(999) == Approx(0.2 / 25 / 1e4));
    CHECK(s.at(650) < s.at(400));
    CHECK_THROWS_AS(train::parse_schedule("linear"), value_error);
}

namespace {
//! A small ResNet (depth 8, width 4, 2 classes, 1 channel) with seeded weights.
nn::sequential toy_resnet() {
    auto net = models::small_resnet<bn>(8, 4, 2, 1);
    nn::rng_type g(1);
    net.reset_parameters(g);
    return net;
}
}  // namespace

TEST_CASE("a few SGD steps on a small ResNet reduce the loss on a separable toy problem", "[train][fit]") {
    auto net = toy_resnet();
    const auto ds = toy_dataset(64, 3);
    train::fit_options o;
    o.epochs = 3;
    o.batch_size = 16;
    o.schedule.kind = train::schedule_kind::constant;
    o.schedule.lr = 0.05;
    std::ostringstream log;
    o.log = &log;
    const auto hist = train::fit(net, ds, &ds, o);
    REQUIRE(hist.size() == 3);
    CHECK(hist.back().train_loss < hist.front().train_loss);
    CHECK(hist.back().test_accuracy > 0.9);
    CHECK(log.str().find("img/s") != std::string::npos);
    CHECK(log.str().find("ETA") != std::string::npos);
    // 4 steps per epoch: the steady-state rate (after the first step) is measured and printed
    for (const auto& r : hist) {
        CHECK(r.images_per_second > 0);
        CHECK(r.steady_images_per_second > 0);
    }
    CHECK(log.str().find("img/s after the first step") != std::string::npos);
}

TEST_CASE("an epoch of one step has no steady-state rate", "[train][fit]") {
    auto net = toy_resnet();
    train::fit_options o;
    o.epochs = 1;
    o.batch_size = 16;
    std::ostringstream log;
    o.log = &log;
    const auto hist = train::fit(net, toy_dataset(16, 3), nullptr, o);
    REQUIRE(hist.size() == 1);
    CHECK(hist[0].images_per_second > 0);
    CHECK(hist[0].steady_images_per_second == 0);
    CHECK(log.str().find("after the first step") == std::string::npos);
}

TEST_CASE("checkpoints round-trip with PyTorch names and an interrupted run resumes identically", "[train][checkpoint]") {
    nn::set_num_threads(1);  // bitwise comparison below
    const auto ds = toy_dataset(48, 5);
    auto make = [] {
        auto n = models::small_resnet<bn>(8, 4, 2, 1);
        nn::rng_type g(7);
        n.reset_parameters(g);
        return n;
    };
    train::fit_options o;
    o.epochs = 3;
    o.batch_size = 16;
    o.seed = 3;
    o.augment.pad = 1;
    o.augment.flip = true;
    std::ostringstream log;
    o.log = &log;

    auto straight = make();
    train::fit(straight, ds, nullptr, o);

    const std::string ck = "test_train_resume.safetensors";
    std::remove(ck.c_str());
    auto o1 = o;
    o1.checkpoint = ck;
    o1.stop_after_epoch = 1;  // the "crash": the process ends after epoch 1's checkpoint
    auto first = make();
    CHECK(train::fit(first, ds, nullptr, o1).size() == 1);
    auto o2 = o1;
    o2.stop_after_epoch = 0;
    o2.resume = true;
    auto resumed = make();  // fresh process: weights come from the checkpoint
    const auto hist = train::fit(resumed, ds, nullptr, o2);
    REQUIRE(hist.size() == 2);
    CHECK(hist.front().epoch == 2);
    CHECK(log.str().find("resumed from") != std::string::npos);

    const auto a = straight.parameters(), b = resumed.parameters();
    REQUIRE(a.params.size() == b.params.size());
    for (std::size_t k = 0; k < a.params.size(); ++k) {
        INFO(a.params[k].name);
        for (index_t i = 0; i < a.params[k].size; ++i) REQUIRE(a.params[k].value[i] == b.params[k].value[i]);
    }
    CHECK(*a.counters[0].value == *b.counters[0].value);

    // The checkpoint carries PyTorch names and loads strictly into a fresh network.
    const auto f = data::read_safetensors(ck);
    CHECK(f.contains("layer1.0.conv1.weight"));
    CHECK(f.contains("layer2.0.shortcut.1.running_var"));
    CHECK(f.at("bn1.num_batches_tracked").dtype == "I64");
    CHECK(f.metadata.at("epochs_done") == "3");
    auto fresh = models::small_resnet<bn>(8, 4, 2, 1);
    CHECK(train::load_state_dict(fresh, f, true).loaded == a.params.size());
    // Wrong architecture: a clear error, not a crash.
    auto other = models::small_resnet<bn>(8, 8, 2, 1);
    CHECK_THROWS_AS(train::load_state_dict(other, f, true), shape_error);
    auto deeper = models::small_resnet<bn>(14, 4, 2, 1);
    CHECK_THROWS_AS(train::load_state_dict(deeper, f, true), io_error);
    // Inconsistent optimizer state (epoch mismatch) is detected on resume.
    data::safetensors_file fo = data::read_safetensors(ck + ".optim");
    fo.metadata["epochs_done"] = "1";
    data::write_safetensors(ck + ".optim", fo);
    auto again = make();
    CHECK_THROWS_AS(train::fit(again, ds, nullptr, o2), io_error);
    std::remove(ck.c_str());
    std::remove((ck + ".optim").c_str());
}

TEST_CASE("load_state_dict refuses NaN/Inf weights, naming the tensor", "[train][checkpoint][nan]") {
    auto net = models::small_resnet<batch_norm<population>>(8, 4, 2, 1);
    auto f = train::state_dict(net);
    auto& t = f.tensors.at("conv1.weight");
    float bad = std::nanf("");
    std::memcpy(t.bytes.data() + 4 * 5, &bad, 4);
    try {
        train::load_state_dict(net, f);
        FAIL("NaN weights were accepted");
    } catch (const value_error& e) {
        CHECK(std::string(e.what()).find("conv1.weight") != std::string::npos);
    }
    auto good = train::state_dict(net);
    CHECK_NOTHROW(train::load_state_dict(net, good));
}
