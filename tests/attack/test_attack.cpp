// SPDX-License-Identifier: MIT
// Attack suite: input gradients in every normalization mode, attack contracts (budget, box, seeds, statistics).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "shiftnorm/attack/attacks.hpp"
#include "shiftnorm/engine.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/norm/identity_norm.hpp"
#include "shiftnorm/norm/robust_norm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;

namespace {

const std::vector<float> kMean = {0.485f, 0.456f, 0.406f}, kStd = {0.229f, 0.224f, 0.225f};

//! conv 3->4, norm, relu, conv 4->6 stride 2, norm, relu, global average pool, linear 6->3
//! (the layout of tests/golden/make_attack_golden.py), random weights; norm scales, shifts and
//! stored statistics randomized so that population and batch statistics differ.
//! Without `relu` the only non-linear parts are the normalization layers and the loss, so
//! finite differences see no ReLU kinks (the ReLU's own gradient is tested in tests/nn).
template <class Norm>
nn::sequential tiny_net(unsigned seed, bool relu = true) {
    nn::sequential net;
    net.add("conv1", nn::conv2d(3, 4, 3, 1, 1)).add("bn1", nn::norm_layer<Norm>(4));
    if (relu) net.add("relu1", nn::relu());
    net.add("conv2", nn::conv2d(4, 6, 3, 2, 1)).add("bn2", nn::norm_layer<Norm>(6));
    if (relu) net.add("relu2", nn::relu());
    net.add("pool", nn::global_avg_pool())
        .add("linear", nn::linear(6, 3));
    nn::rng_type g(seed);
    net.reset_parameters(g);
    random_engine r(seed + 100);
    for (auto& p : net.parameters().params) {
        const bool norm = p.kind == nn::param_kind::norm_weight || p.kind == nn::param_kind::norm_bias ||
                          p.kind == nn::param_kind::buffer;
        if (!norm) continue;
        for (index_t i = 0; i < p.size; ++i) {
            const bool positive = p.kind == nn::param_kind::norm_weight || p.name.find("running_var") != std::string::npos ||
                                  p.name.find("running_range") != std::string::npos;
            p.value[i] = positive ? float(r.uniform(0.5, 1.5)) : float(r.uniform(-0.3, 0.3));
        }
    }
    return net;
}

tensor<float> random_pixels(shape4 s, std::uint64_t seed) {
    tensor<float> x(s);
    random_engine r(seed);
    for (auto& v : x) v = float(r.uniform(0.05, 0.95));
    return x;
}

std::vector<float> buffers(nn::module& net) {
    std::vector<float> out;
    for (const auto& p : net.parameters().params)
        if (p.kind == nn::param_kind::buffer) out.insert(out.end(), p.value, p.value + p.size);
    return out;
}

void set_robust_variant(nn::module& net, robust_inference v) {
    for (auto* l : nn::find_all<nn::norm_layer<robust_norm<>>>(net)) l->impl.opt.inference = v;
}

//! A batch-norm-like layer (training / inference calls) that has no batch-statistics inference.
struct no_batch_mode_norm {
    static constexpr norm_interface kind = norm_interface::batch_like;
    static constexpr norm_modes modes{};  // no forward_batch, no rectify, no backward_inference
    static constexpr bool grouped = false;
    explicit no_batch_mode_norm(index_t) {}
    void configure(const norm_config&) {}
    template <class V>
    void visit_state(V&&) {}
    void zero_grad() {}
    void forward_training(const tensor_view<const float>&, const tensor_view<float>&) {}
    void forward_inference(const tensor_view<const float>&, const tensor_view<float>&) {}
    void backward(const tensor_view<const float>&, const tensor_view<const float>&, const tensor_view<float>&) {}
};

struct grad_check {
    double worst = 0;          //!< max |numeric - analytic| / max |analytic| over compared elements
    index_t compared = 0, skipped = 0;
};

//! The input gradient of the mean cross-entropy (attack::model::loss_gradient) against central
//! differences, double-checked: per element, the one-sided quotients (f(x+s) - f(x)) / s and
//! (f(x) - f(x-s)) / s must agree (to 2e-3 of the largest gradient component) before their mean,
//! the central difference, is compared with the analytic gradient. Where they disagree a ReLU or
//! one of RobustNorm's max/min switches within s of x (the function has a kink there, and in
//! batch mode a kink anywhere in the batch reaches every pixel of that image): the element is
//! skipped and counted. A kink left in an accepted element moves the central difference by at
//! most about half the disagreement, which is subtracted from that element's error.
grad_check check_input_gradient(attack::model& m, tensor<float> x, const std::vector<std::int32_t>& y, double s) {
    tensor<float> g;
    m.loss_gradient(x, y, g);
    const tensor<float> analytic = g;
    nn::softmax_cross_entropy ce;
    auto f = [&](const tensor<float>& in) { return ce.forward(m.forward(in), y); };
    double scale = 0;
    for (float v : analytic) scale = std::max(scale, std::abs(double(v)));
    REQUIRE(scale > 0);
    grad_check r;
    const double f0 = f(x);
    for (index_t i = 0; i < x.numel(); ++i) {
        const float old = x[i];
        x[i] = float(old + s);
        const double fp = f(x);
        x[i] = float(old - s);
        const double fm = f(x);
        x[i] = old;
        const double fwd = (fp - f0) / s, bwd = (f0 - fm) / s;
        if (std::abs(fwd - bwd) > 2e-3 * scale) {
            ++r.skipped;
            continue;
        }
        ++r.compared;
        // what a kink inside [x-s, x+s] can explain (half the one-sided disagreement) is allowed
        r.worst = std::max(r.worst, (std::abs((fwd + bwd) / 2 - double(analytic[i])) - std::abs(fwd - bwd) / 2) / scale);
    }
    return r;
}

}  // namespace

TEST_CASE("input gradients match central differences in every normalization mode", "[attack][grad]") {
    const auto x = random_pixels({4, 3, 8, 8}, 11);
    const std::vector<std::int32_t> y = {0, 1, 2, 1};
    auto run = [&](nn::module& net, nn::mode md, attack::input_space space, const char* name) {
        attack::model m(net, md, space, kMean, kStd);
        tensor<float> xin = x;
        if (space == attack::input_space::normalized)
            for (index_t i = 0; i < xin.numel(); ++i) {
                const index_t c = (i / 64) % 3;
                xin[i] = (xin[i] - kMean[std::size_t(c)]) / kStd[std::size_t(c)];
            }
        const auto before = buffers(net);
        const auto r = check_input_gradient(m, xin, y, 2.5e-3);
        INFO(name << ": worst scaled error " << r.worst << ", compared " << r.compared << ", skipped " << r.skipped);
        CHECK(r.worst < 1e-3);
        CHECK(r.skipped * 20 < r.compared);  // kinks (RobustNorm extremes switching) are the exception
        CHECK(buffers(net) == before);       // gradient computation leaves the stored statistics alone
    };
    SECTION("BatchNorm, population statistics (P)") {
        auto net = tiny_net<batch_norm<population>>(1, false);
        run(net, nn::mode::eval, attack::input_space::pixel, "P pixel");
        run(net, nn::mode::eval, attack::input_space::normalized, "P normalized");
    }
    SECTION("BatchNorm, statistics of the attacked batch (B): gradient through the statistics") {
        auto net = tiny_net<batch_norm<population>>(1, false);
        run(net, nn::mode::batch, attack::input_space::pixel, "B pixel");
    }
    SECTION("RobustNorm RN, RNT, RNM") {
        auto net = tiny_net<robust_norm<>>(2, false);
        set_robust_variant(net, robust_inference::rn);
        run(net, nn::mode::eval, attack::input_space::pixel, "RN");
        set_robust_variant(net, robust_inference::rnt);
        run(net, nn::mode::eval, attack::input_space::pixel, "RNT");
        set_robust_variant(net, robust_inference::rnm);
        run(net, nn::mode::eval, attack::input_space::pixel, "RNM");
        set_robust_variant(net, robust_inference::rnt);
        run(net, nn::mode::batch, attack::input_space::pixel, "robust batch mode (= RN)");
    }
    SECTION("no normalization and GroupNorm") {
        auto none = tiny_net<identity_norm>(3, false);
        run(none, nn::mode::eval, attack::input_space::pixel, "none");
        auto gn = tiny_net<group_norm<>>(4, false);
        run(gn, nn::mode::eval, attack::input_space::pixel, "group");
    }
}

TEST_CASE("B-mode gradients differ from P-mode gradients and from frozen batch statistics", "[attack][grad]") {
    auto net = tiny_net<batch_norm<population>>(1);
    const auto x = random_pixels({4, 3, 8, 8}, 12);
    const std::vector<std::int32_t> y = {0, 1, 2, 0};
    tensor<float> gp, gb, gf;
    attack::model p(net, nn::mode::eval, attack::input_space::pixel, kMean, kStd);
    attack::model b(net, nn::mode::batch, attack::input_space::pixel, kMean, kStd);
    p.loss_gradient(x, y, gp);
    b.loss_gradient(x, y, gb);
    // the batch_stats source normalizes with the same batch statistics but treats them as
    // constants in backward_inference: same forward as B, different gradient
    auto frozen = tiny_net<batch_norm<batch_stats>>(1);
    attack::model f(frozen, nn::mode::eval, attack::input_space::pixel, kMean, kStd);
    f.loss_gradient(x, y, gf);
    CHECK(nn::argmax_rows(f.forward(x)) == nn::argmax_rows(b.forward(x)));
    double scale = 0, dpb = 0, dfb = 0;
    for (index_t i = 0; i < x.numel(); ++i) {
        scale = std::max(scale, std::abs(double(gb[i])));
        dpb = std::max(dpb, std::abs(double(gp[i]) - double(gb[i])));
        dfb = std::max(dfb, std::abs(double(gf[i]) - double(gb[i])));
    }
    INFO("max |g_P - g_B| = " << dpb << ", max |g_frozen - g_B| = " << dfb << ", max |g_B| = " << scale);
    CHECK(dpb > 0.1 * scale);
    CHECK(dfb > 0.01 * scale);
}

TEST_CASE("norm_layer mode::batch: training-mode output, running buffers untouched", "[attack][nn]") {
    nn::norm_layer<batch_norm<population>> bn(3), ref(3);
    const auto x = test::random_tensor({4, 3, 5, 5}, 3, 1.0, 2.0);
    const auto before = bn.impl.source.running.stats.mean;
    const auto var_before = bn.impl.source.running.stats.var;
    const tensor<float> yb = bn.forward(x, nn::mode::batch);
    CHECK(bn.impl.source.running.stats.mean == before);
    CHECK(bn.impl.source.running.stats.var == var_before);
    CHECK(bn.impl.source.running.num_batches_tracked == 0);
    const tensor<float> yt = ref.forward(x, nn::mode::train);
    CHECK(ref.impl.source.running.num_batches_tracked == 1);
    for (index_t i = 0; i < x.numel(); ++i) CHECK(yb[i] == yt[i]);
    // a batch-norm-like layer type without forward_batch refuses mode::batch by name
    nn::norm_layer<no_batch_mode_norm> nb(3);
    CHECK_THROWS_WITH(nb.forward(x, nn::mode::batch), Catch::Contains("mode::batch"));
    CHECK_FALSE(nn::norm_traits<no_batch_mode_norm>::supports_batch_mode);
    CHECK(nn::norm_traits<batch_norm<population>>::supports_batch_mode);
}

TEST_CASE("attacks respect the budget and the box, and move the loss up", "[attack]") {
    auto net = tiny_net<batch_norm<population>>(5);
    const auto x = random_pixels({6, 3, 8, 8}, 21);
    const std::vector<std::int32_t> y = {0, 1, 2, 0, 1, 2};
    for (nn::mode md : {nn::mode::eval, nn::mode::batch}) {
        attack::model m(net, md, attack::input_space::pixel, kMean, kStd);
        nn::softmax_cross_entropy ce;
        const double clean = ce.forward(m.forward(x), y);
        for (auto k : {attack::attack_kind::fgsm, attack::attack_kind::bim, attack::attack_kind::mim, attack::attack_kind::pgd}) {
            attack::attack_options o;
            o.kind = k, o.eps = 8.0 / 255, o.steps = 10, o.seed = 4;
            const auto xa = attack::run(m, x, y, o, {0.0f, 1.0f});
            double linf = 0;
            bool in_box = true;
            for (index_t i = 0; i < x.numel(); ++i) {
                linf = std::max(linf, std::abs(double(xa[i]) - double(x[i])));
                in_box &= xa[i] >= 0.0f && xa[i] <= 1.0f;
            }
            const double adv = ce.forward(m.forward(xa), y);
            INFO(attack::to_string(k) << " in " << nn::to_string(md) << ": linf " << linf << ", loss " << clean << " -> " << adv);
            CHECK(linf <= o.eps + 1e-6);
            CHECK(linf >= 0.5 * o.eps);  // it moved
            CHECK(in_box);
            CHECK(adv > clean);
        }
    }
}

TEST_CASE("clipping: pixel box [0, 1] binds at the edges; normalized space clips to the batch range", "[attack]") {
    auto net = tiny_net<batch_norm<population>>(6);
    tensor<float> x = random_pixels({2, 3, 8, 8}, 22);
    for (index_t i = 0; i < x.numel(); i += 2) x[i] = (i / 2) % 2 ? 1.0f : 0.0f;  // half the pixels on the box edges
    const std::vector<std::int32_t> y = {1, 2};
    attack::model m(net, nn::mode::eval, attack::input_space::pixel, kMean, kStd);
    attack::attack_options o;
    o.kind = attack::attack_kind::fgsm, o.eps = 0.1;
    const auto xa = attack::run(m, x, y, o, {0.0f, 1.0f});
    index_t clipped = 0;
    for (index_t i = 0; i < x.numel(); ++i) {
        REQUIRE(xa[i] >= 0.0f);
        REQUIRE(xa[i] <= 1.0f);
        if ((x[i] == 0.0f || x[i] == 1.0f) && xa[i] == x[i]) ++clipped;
    }
    CHECK(clipped > 0);  // edge pixels pushed outwards stay on the edge

    attack::model mn(net, nn::mode::eval, attack::input_space::normalized);
    tensor<float> xn = random_pixels({2, 3, 8, 8}, 23);
    for (auto& v : xn) v = v * 4 - 2;
    const auto box = attack::batch_range(xn);
    o.kind = attack::attack_kind::pgd, o.eps = 0.5, o.steps = 5;
    const auto xna = attack::run(mn, xn, y, o, box);
    bool at_edge = false;
    for (index_t i = 0; i < xn.numel(); ++i) {
        REQUIRE(xna[i] >= box.lo);
        REQUIRE(xna[i] <= box.hi);
        REQUIRE(std::abs(xna[i] - xn[i]) <= 0.5f + 1e-6f);
        at_edge |= xna[i] == box.lo || xna[i] == box.hi;
    }
    CHECK(at_edge);
}

TEST_CASE("attacks are deterministic for a seed; PGD's start depends on it", "[attack]") {
    auto net = tiny_net<batch_norm<population>>(7);
    const auto x = random_pixels({3, 3, 8, 8}, 24);
    const std::vector<std::int32_t> y = {2, 0, 1};
    attack::model m(net, nn::mode::batch, attack::input_space::pixel, kMean, kStd);
    for (auto k : {attack::attack_kind::fgsm, attack::attack_kind::bim, attack::attack_kind::mim, attack::attack_kind::pgd,
                   attack::attack_kind::cw}) {
        attack::attack_options o;
        o.kind = k, o.steps = 4, o.cw_steps = 5, o.cw_binary_steps = 2, o.seed = 99;
        const auto a = attack::run(m, x, y, o, {0.0f, 1.0f});
        const auto b = attack::run(m, x, y, o, {0.0f, 1.0f});
        INFO(attack::to_string(k));
        CHECK(std::equal(a.begin(), a.end(), b.begin()));
        if (k == attack::attack_kind::pgd) {
            o.seed = 100;
            const auto c = attack::run(m, x, y, o, {0.0f, 1.0f});
            CHECK_FALSE(std::equal(a.begin(), a.end(), c.begin()));
        }
    }
}

TEST_CASE("attacks never change the stored statistics (BN P/B, RobustNorm variants)", "[attack]") {
    const auto x = random_pixels({4, 3, 8, 8}, 25);
    const std::vector<std::int32_t> y = {0, 1, 2, 1};
    auto all = [&](nn::module& net, nn::mode md) {
        const auto before = buffers(net);
        REQUIRE(!before.empty());
        attack::model m(net, md, attack::input_space::pixel, kMean, kStd);
        for (auto k : {attack::attack_kind::fgsm, attack::attack_kind::bim, attack::attack_kind::mim, attack::attack_kind::pgd,
                       attack::attack_kind::cw}) {
            attack::attack_options o;
            o.kind = k, o.steps = 3, o.cw_steps = 3, o.cw_binary_steps = 2;
            attack::run(m, x, y, o, {0.0f, 1.0f});
            INFO(attack::to_string(k) << " in " << nn::to_string(md));
            CHECK(buffers(net) == before);
        }
    };
    auto bn = tiny_net<batch_norm<population>>(8);
    all(bn, nn::mode::eval);
    all(bn, nn::mode::batch);
    auto rn = tiny_net<robust_norm<>>(9);
    for (auto v : {robust_inference::rn, robust_inference::rnt, robust_inference::rnm}) {
        set_robust_variant(rn, v);
        all(rn, nn::mode::eval);
    }
    all(rn, nn::mode::batch);
}

TEST_CASE("CW-L2 returns misclassified images or the clean ones, inside the box", "[attack][cw]") {
    auto net = tiny_net<batch_norm<population>>(10);
    const auto x = random_pixels({4, 3, 8, 8}, 26);
    attack::model m(net, nn::mode::eval, attack::input_space::pixel, kMean, kStd);
    const auto y = m.predict(x);  // attack the network's own predictions: all clean-correct
    attack::attack_options o;
    o.kind = attack::attack_kind::cw, o.cw_c = 10, o.cw_steps = 50, o.cw_binary_steps = 3, o.cw_lr = 0.05;
    const auto xa = attack::run(m, x, y, o, {0.0f, 1.0f});
    const auto pred = m.predict(xa);
    const index_t per = x.numel() / 4;
    index_t changed = 0;
    for (index_t n = 0; n < 4; ++n) {
        const bool same = std::equal(xa.begin() + n * per, xa.begin() + (n + 1) * per, x.begin() + n * per);
        INFO("image " << n);
        if (!same) {
            ++changed;
            CHECK(pred[std::size_t(n)] != y[std::size_t(n)]);
        }
    }
    CHECK(changed > 0);
    for (float v : xa) REQUIRE((v >= 0.0f && v <= 1.0f));
}

TEST_CASE("bad attack arguments throw, naming what is wrong", "[attack][errors]") {
    auto net = tiny_net<batch_norm<population>>(11);
    const auto x = random_pixels({2, 3, 8, 8}, 27);
    const std::vector<std::int32_t> y = {0, 1};
    attack::model m(net, nn::mode::eval, attack::input_space::pixel, kMean, kStd);
    attack::attack_options o;
    o.eps = -0.1;
    CHECK_THROWS_WITH(attack::run(m, x, y, o, {0.0f, 1.0f}), Catch::Contains("eps"));
    o.eps = 0.1, o.steps = 0;
    CHECK_THROWS_WITH(attack::run(m, x, y, o, {0.0f, 1.0f}), Catch::Contains("steps"));
    o.steps = 2, o.decay = -1;
    CHECK_THROWS_AS(attack::run(m, x, y, o, {0.0f, 1.0f}), value_error);
    o.decay = 1, o.cw_c = 0;
    CHECK_THROWS_WITH(attack::run(m, x, y, o, {0.0f, 1.0f}), Catch::Contains("cw_c"));
    o.cw_c = 0.1;
    CHECK_THROWS_WITH(attack::parse_attack("deepfool"), Catch::Contains("deepfool"));
    CHECK(attack::parse_attack("mim") == attack::attack_kind::mim);
    CHECK_THROWS_AS(attack::run(m, x, {0}, o, {0.0f, 1.0f}), shape_error);
    CHECK_THROWS_WITH(attack::run(m, x, y, o, {0.2f, 1.0f}), Catch::Contains("outside the clip box"));
    CHECK_THROWS_WITH(attack::model(net, nn::mode::train, attack::input_space::pixel), Catch::Contains("stored statistics"));
    CHECK_THROWS_AS(attack::model(net, nn::mode::eval, attack::input_space::pixel, {0.5f, 0.5f}, {0.2f, 0.2f, 0.2f}), value_error);
    CHECK_THROWS_WITH(attack::model(net, nn::mode::eval, attack::input_space::pixel, {0.5f}, {0.0f}), Catch::Contains("std"));
}
