// SPDX-License-Identifier: MIT
// Layer tests: forward vs double-precision naive references, backward vs central differences.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <functional>
#include <random>
#include <vector>

#include "shiftnorm/engine.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/norm/identity_norm.hpp"
#include "shiftnorm/norm/robust_norm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;

namespace {

//! Naive double convolution (cross-correlation, zero padding, groups, dilation).
std::vector<double> naive_conv(const tensor<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                               const nn::conv2d_options& o, shape4 os) {
    const shape4 is = x.shape();
    const index_t Cg = is.c / o.groups, Og = o.out_channels / o.groups, k = o.kernel;
    std::vector<double> y(std::size_t(os.numel()), 0.0);
    for (index_t n = 0; n < is.n; ++n)
        for (index_t oc = 0; oc < os.c; ++oc) {
            const index_t g = oc / Og;
            for (index_t oh = 0; oh < os.h; ++oh)
                for (index_t ow = 0; ow < os.w; ++ow) {
                    double s = b.empty() ? 0.0 : b[std::size_t(oc)];
                    for (index_t c = 0; c < Cg; ++c)
                        for (index_t i = 0; i < k; ++i)
                            for (index_t j = 0; j < k; ++j) {
                                const index_t ih = oh * o.stride - o.padding + i * o.dilation;
                                const index_t iw = ow * o.stride - o.padding + j * o.dilation;
                                if (ih < 0 || ih >= is.h || iw < 0 || iw >= is.w) continue;
                                s += double(w[std::size_t(((oc * Cg + c) * k + i) * k + j)]) *
                                     double(x(n, g * Cg + c, ih, iw));
                            }
                    y[std::size_t(((n * os.c + oc) * os.h + oh) * os.w + ow)] = s;
                }
        }
    return y;
}

//! Checks module gradients (input and every parameter) against central differences of
//! L = sum(dst * r) for a fixed random r. Float forward: h and tolerance are chosen for float.
void check_gradients(nn::module& m, tensor<float> x, nn::mode md, double h = 1e-2, double tol = 2e-3,
                     unsigned seed = 7) {
    const auto& y0 = m.forward(x, md);
    tensor<float> r = test::random_tensor(y0.shape(), seed);
    auto loss = [&](const tensor<float>& in) {
        const auto& y = m.forward(in, md);
        double s = 0;
        for (index_t i = 0; i < y.numel(); ++i) s += double(y[i]) * double(r[i]);
        return s;
    };
    m.zero_grad();
    m.set_input_grad(true);
    m.forward(x, md);
    const tensor<float> dx = m.backward(r);
    auto ps = m.parameters();
    // Snapshot analytic parameter gradients before the numeric loop re-runs forward.
    std::vector<std::vector<float>> pg;
    for (auto& p : ps.params) pg.emplace_back(p.grad ? std::vector<float>(p.grad, p.grad + p.size) : std::vector<float>{});
    double scale = 1e-3, worst = 0;
    for (index_t i = 0; i < dx.numel(); ++i) scale = std::max(scale, std::abs(double(dx[i])));
    for (index_t i = 0; i < x.numel(); ++i) {
        const float old = x[i];
        x[i] = float(old + h);
        const double fp = loss(x);
        x[i] = float(old - h);
        const double fm = loss(x);
        x[i] = old;
        worst = std::max(worst, std::abs((fp - fm) / (2 * h) - double(dx[i])) / scale);
    }
    INFO("input gradient worst scaled error " << worst);
    CHECK(worst < tol);
    for (std::size_t k = 0; k < ps.params.size(); ++k) {
        auto& p = ps.params[k];
        if (!p.grad) continue;
        double pscale = 1e-3, pw = 0;
        for (float v : pg[k]) pscale = std::max(pscale, std::abs(double(v)));
        for (index_t i = 0; i < p.size; ++i) {
            const float old = p.value[i];
            p.value[i] = float(old + h);
            const double fp = loss(x);
            p.value[i] = float(old - h);
            const double fm = loss(x);
            p.value[i] = old;
            pw = std::max(pw, std::abs((fp - fm) / (2 * h) - double(pg[k][std::size_t(i)])) / pscale);
        }
        INFO("parameter " << p.name << " worst scaled error " << pw);
        CHECK(pw < tol);
    }
}

}  // namespace

TEST_CASE("conv2d forward matches a double reference (stride, padding, dilation, groups, bias)", "[nn][conv2d]") {
    struct cfg {
        nn::conv2d_options o;
        shape4 s;
    };
    const cfg cases[] = {
        {{3, 8, 3, 1, 1, 1, 1, false}, {2, 3, 9, 7}},  {{4, 6, 3, 2, 1, 1, 1, true}, {2, 4, 8, 9}},
        {{4, 4, 1, 1, 0, 1, 1, true}, {3, 4, 5, 5}},   {{6, 9, 3, 1, 2, 2, 3, true}, {1, 6, 10, 8}},
        {{4, 8, 5, 2, 2, 1, 2, false}, {2, 4, 11, 11}}, {{8, 4, 1, 2, 0, 1, 1, false}, {2, 8, 7, 6}},
        {{2, 2, 7, 2, 3, 1, 1, false}, {1, 2, 13, 12}},
        // stride-1 "same" windows take the shifted-plane fast path of im2col/col2im
        {{3, 5, 5, 1, 2, 1, 1, true}, {2, 3, 6, 9}},   {{2, 3, 3, 1, 1, 1, 1, false}, {1, 2, 1, 5}},
        {{2, 3, 3, 1, 1, 1, 1, false}, {1, 2, 4, 1}},
    };
    for (const auto& c : cases) {
        nn::conv2d conv(c.o);
        nn::rng_type g(3);
        conv.reset_parameters(g);
        if (c.o.bias) nn::uniform_init(conv.bias, 0.5, g);
        const auto x = test::random_tensor(c.s, 11, 3.0, 2.0);
        const auto& y = conv.forward(x, nn::mode::train);
        const auto ref = naive_conv(x, conv.weight, conv.bias, c.o, y.shape());
        INFO(conv.describe() << " on " << c.s);
        CHECK(test::worst_error(y, ref, 1e-4, 1e-5) <= 1.0);
    }
}

TEST_CASE("conv2d rejects bad arguments and shapes with shape_error/value_error", "[nn][conv2d]") {
    CHECK_THROWS_AS(nn::conv2d(3, 8, 3, 1, 1, false, 2), shape_error);  // 3 channels, 2 groups
    CHECK_THROWS_AS(nn::conv2d(0, 8, 3), shape_error);
    CHECK_THROWS_AS(nn::conv2d(3, 8, 0), value_error);
    nn::conv2d conv(3, 8, 3, 1, 0);
    CHECK_THROWS_AS(conv.forward(tensor<float>({1, 4, 8, 8}, 0.f), nn::mode::eval), shape_error);
    CHECK_THROWS_AS(conv.forward(tensor<float>({1, 3, 2, 8}, 0.f), nn::mode::eval), shape_error);
    CHECK_THROWS_AS(conv.backward(tensor<float>({1, 8, 6, 6}, 0.f)), state_error);
}

TEST_CASE("conv2d gradients match central differences", "[nn][conv2d][grad]") {
    nn::rng_type g(5);
    SECTION("3x3 padded, bias") {
        nn::conv2d conv(2, 3, 3, 1, 1, true);
        conv.reset_parameters(g);
        check_gradients(conv, test::random_tensor({2, 2, 5, 4}, 1), nn::mode::train);
    }
    SECTION("strided, grouped, dilated") {
        nn::conv2d conv(nn::conv2d_options{4, 4, 3, 2, 2, 2, 2, false});
        conv.reset_parameters(g);
        check_gradients(conv, test::random_tensor({2, 4, 7, 6}, 2), nn::mode::train);
    }
    SECTION("5x5 same, stride 1 (fast im2col/col2im path), non-square") {
        nn::conv2d conv(2, 3, 5, 1, 2, true);
        conv.reset_parameters(g);
        check_gradients(conv, test::random_tensor({2, 2, 4, 6}, 4), nn::mode::train);
    }
    SECTION("1x1 direct path") {
        nn::conv2d conv(3, 2, 1, 1, 0, true);
        conv.reset_parameters(g);
        check_gradients(conv, test::random_tensor({2, 3, 3, 3}, 3), nn::mode::train);
    }
}

TEST_CASE("linear forward and gradients", "[nn][linear]") {
    nn::linear fc(12, 5);
    nn::rng_type g(1);
    fc.reset_parameters(g);
    const auto x = test::random_tensor({3, 3, 2, 2}, 4);
    const auto& y = fc.forward(x, nn::mode::eval);
    REQUIRE(y.shape() == shape4{3, 5, 1, 1});
    for (index_t n = 0; n < 3; ++n)
        for (index_t o = 0; o < 5; ++o) {
            double s = fc.bias[std::size_t(o)];
            for (index_t k = 0; k < 12; ++k) s += double(fc.weight[std::size_t(o * 12 + k)]) * double(x[n * 12 + k]);
            CHECK(y[n * 5 + o] == Approx(s).margin(1e-5));
        }
    check_gradients(fc, x, nn::mode::train);
    CHECK_THROWS_AS(fc.forward(tensor<float>({3, 11, 1, 1}, 0.f), nn::mode::eval), shape_error);
}

TEST_CASE("relu, pooling and global average pooling: values and gradients", "[nn][pool]") {
    // Distinct values away from kinks and ties so finite differences are valid.
    tensor<float> x({2, 3, 6, 5});
    std::vector<float> vals;
    for (index_t i = 0; i < x.numel(); ++i) vals.push_back(float(i - x.numel() / 2) * 0.37f + 0.05f);
    std::shuffle(vals.begin(), vals.end(), std::mt19937(3));
    std::copy(vals.begin(), vals.end(), x.begin());

    nn::relu r;
    const auto& y = r.forward(x, nn::mode::train);
    for (index_t i = 0; i < x.numel(); ++i) CHECK(y[i] == std::max(x[i], 0.0f));
    check_gradients(r, x, nn::mode::train);

    nn::max_pool2d mp(3, 2, 1);
    const auto& ym = mp.forward(x, nn::mode::train);
    REQUIRE(ym.shape() == shape4{2, 3, 3, 3});
    CHECK(ym(1, 2, 1, 1) == std::max({x(1, 2, 1, 1), x(1, 2, 1, 2), x(1, 2, 1, 3), x(1, 2, 2, 1), x(1, 2, 2, 2),
                                      x(1, 2, 2, 3), x(1, 2, 3, 1), x(1, 2, 3, 2), x(1, 2, 3, 3)}));
    check_gradients(mp, x, nn::mode::train);

    nn::avg_pool2d ap(2, 2);
    const auto& ya = ap.forward(x, nn::mode::train);
    REQUIRE(ya.shape() == shape4{2, 3, 3, 2});
    CHECK(ya(0, 1, 2, 1) == Approx((x(0, 1, 4, 2) + x(0, 1, 4, 3) + x(0, 1, 5, 2) + x(0, 1, 5, 3)) / 4));
    check_gradients(ap, x, nn::mode::train);
    nn::avg_pool2d app(3, 2, 1);  // count_include_pad: corners divide by 9
    const auto& yp = app.forward(x, nn::mode::train);
    CHECK(yp(0, 0, 0, 0) == Approx((x(0, 0, 0, 0) + x(0, 0, 0, 1) + x(0, 0, 1, 0) + x(0, 0, 1, 1)) / 9));
    check_gradients(app, x, nn::mode::train);

    nn::global_avg_pool gp;
    const auto& yg = gp.forward(x, nn::mode::train);
    double s = 0;
    for (index_t h = 0; h < 6; ++h)
        for (index_t w = 0; w < 5; ++w) s += x(1, 2, h, w);
    CHECK(yg(1, 2, 0, 0) == Approx(s / 30));
    check_gradients(gp, x, nn::mode::train);
}

TEST_CASE("dropout: identity in eval, unbiased mask in train, gradient uses the mask", "[nn][dropout]") {
    nn::dropout d(0.25, 42);
    tensor<float> x({4, 8, 16, 16}, 1.0f);
    const auto& ye = d.forward(x, nn::mode::eval);
    for (index_t i = 0; i < x.numel(); ++i) REQUIRE(ye[i] == 1.0f);
    const auto& yt = d.forward(x, nn::mode::train);
    double mean = 0;
    index_t zeros = 0;
    for (index_t i = 0; i < x.numel(); ++i) {
        mean += yt[i];
        zeros += yt[i] == 0.0f;
        REQUIRE((yt[i] == 0.0f || yt[i] == Approx(1.0 / 0.75)));
    }
    CHECK(double(zeros) / double(x.numel()) == Approx(0.25).margin(0.02));
    CHECK(mean / double(x.numel()) == Approx(1.0).margin(0.03));
    tensor<float> dy(x.shape(), 2.0f);
    const auto yt_copy = tensor<float>(yt);
    const auto& dx = d.backward(dy);
    for (index_t i = 0; i < x.numel(); ++i) REQUIRE(dx[i] == 2.0f * yt_copy[i]);
    CHECK_THROWS_AS(nn::dropout(1.0), value_error);
}

TEST_CASE("residual with option-A and projection shortcuts: values and gradients", "[nn][residual]") {
    nn::rng_type g(9);
    SECTION("zero-pad shortcut subsamples and pads channels symmetrically") {
        nn::zero_pad_shortcut sc(8, 2);
        const auto x = test::random_tensor({2, 4, 6, 6}, 5);
        const auto& y = sc.forward(x, nn::mode::train);
        REQUIRE(y.shape() == shape4{2, 8, 3, 3});
        CHECK(y(1, 0, 1, 1) == 0.0f);
        CHECK(y(1, 7, 2, 2) == 0.0f);
        CHECK(y(1, 2 + 3, 2, 1) == x(1, 3, 4, 2));
        check_gradients(sc, x, nn::mode::train);
    }
    SECTION("basic block with option A") {
        nn::sequential body;
        // No ReLU inside: a finite difference that crosses its kink would be meaningless here
        // (relu's gradient is checked on its own above).
        body.add("conv1", nn::conv2d(2, 4, 3, 2, 1)).add("conv2", nn::conv2d(4, 4, 3, 1, 1));
        nn::residual res(std::move(body), nn::zero_pad_shortcut(4, 2));
        res.reset_parameters(g);
        check_gradients(res, test::random_tensor({2, 2, 6, 5}, 6), nn::mode::train);
        const auto names = res.parameters().params;
        REQUIRE(names.size() == 2);
        CHECK(names[0].name == "conv1.weight");
    }
    SECTION("projection shortcut, named like torchvision's downsample") {
        nn::sequential proj;
        proj.add(nn::conv2d(3, 4, 1, 2, 0)).add(nn::norm_layer<batch_norm<population>>(4));
        nn::residual res(nn::conv2d(3, 4, 3, 2, 1), std::move(proj), "downsample");
        res.reset_parameters(g);
        const auto ps = res.parameters();
        CHECK(ps.params[1].name == "downsample.0.weight");
        CHECK(ps.params[2].name == "downsample.1.weight");
        CHECK(ps.params[4].name == "downsample.1.running_mean");
        CHECK(ps.counters[0].name == "downsample.1.num_batches_tracked");
        check_gradients(res, test::random_tensor({3, 3, 5, 6}, 7), nn::mode::eval);
    }
}

TEST_CASE("dense_concat concatenates src and body(src) along channels", "[nn][concat]") {
    nn::rng_type g(2);
    nn::sequential body;
    body.add("conv", nn::conv2d(3, 2, 3, 1, 1));
    nn::dense_concat dc(std::move(body));
    dc.reset_parameters(g);
    const auto x = test::random_tensor({2, 3, 4, 5}, 8);
    const auto& y = dc.forward(x, nn::mode::train);
    REQUIRE(y.shape() == shape4{2, 5, 4, 5});
    CHECK(y(1, 2, 3, 4) == x(1, 2, 3, 4));
    check_gradients(dc, x, nn::mode::train);
}

TEST_CASE("batch norm adapter: training gradient and eval gradient through the network module", "[nn][norm]") {
    nn::norm_layer<batch_norm<population>> bn(3);
    nn::rng_type g(1);
    bn.reset_parameters(g);
    bn.impl.scale = {0.5f, 1.5f, -1.0f};
    bn.impl.shift = {0.1f, -0.2f, 0.3f};
    const auto x = test::random_tensor({4, 3, 3, 3}, 12, 1.0, 2.0);
    check_gradients(bn, x, nn::mode::train, 1e-2, 5e-3);
    check_gradients(bn, x, nn::mode::eval);
    const auto ps = bn.parameters();
    REQUIRE(ps.params.size() == 4);
    CHECK(ps.params[0].name == "weight");
    CHECK(ps.params[3].name == "running_var");
}

TEST_CASE("norm_layer: the observer sees each forward's input and output; group counts", "[nn][norm]") {
    nn::norm_layer<batch_norm<population>> bn(3);
    nn::rng_type g(1);
    bn.reset_parameters(g);
    const auto x = test::random_tensor({2, 3, 4, 4}, 5, 3.0, 2.0);
    int calls = 0;
    std::vector<float> seen_in, seen_out;
    nn::mode seen_mode = nn::mode::train;
    bn.observer = [&](const tensor<float>& src, const tensor<float>& dst, nn::mode m) {
        ++calls;
        seen_in.assign(src.data(), src.data() + src.numel());
        seen_out.assign(dst.data(), dst.data() + dst.numel());
        seen_mode = m;
    };
    const auto& y = bn.forward(x, nn::mode::eval);
    CHECK(calls == 1);
    CHECK(seen_mode == nn::mode::eval);
    CHECK(seen_in == std::vector<float>(x.data(), x.data() + x.numel()));
    CHECK(seen_out == std::vector<float>(y.data(), y.data() + y.numel()));
    bn.observer = nullptr;
    bn.forward(x, nn::mode::eval);
    CHECK(calls == 1);

    // groups < 0: one group per channel (instance norm); otherwise gcd(groups, C)
    nn::norm_config cfg;
    cfg.groups = -1;
    CHECK(nn::norm_layer<group_norm<>>(12, cfg).impl.groups() == 12);
    cfg.groups = 8;
    CHECK(nn::norm_layer<group_norm<>>(12, cfg).impl.groups() == 4);
    cfg.groups = 1;
    CHECK(nn::norm_layer<group_norm<>>(12, cfg).impl.groups() == 1);
}

TEST_CASE("softmax cross-entropy: loss vs double reference, gradient vs central differences", "[nn][loss]") {
    auto z = test::random_tensor({4, 7, 1, 1}, 3, 0.0, 3.0);
    z[5] += 200.0f;  // large logits must not overflow
    const std::vector<std::int32_t> y{1, 0, 6, 3};
    nn::softmax_cross_entropy ce;
    const double L = ce.forward(z, y);
    double ref = 0;
    for (index_t n = 0; n < 4; ++n) {
        double mx = -1e300, s = 0;
        for (index_t k = 0; k < 7; ++k) mx = std::max(mx, double(z[n * 7 + k]));
        for (index_t k = 0; k < 7; ++k) s += std::exp(double(z[n * 7 + k]) - mx);
        ref += mx + std::log(s) - double(z[n * 7 + y[std::size_t(n)]]);
    }
    CHECK(L == Approx(ref / 4).epsilon(1e-12));
    const tensor<float> d = ce.backward();
    for (index_t i = 0; i < z.numel(); ++i) {
        auto zp = z, zm = z;
        zp[i] += 1e-2f;
        zm[i] -= 1e-2f;
        nn::softmax_cross_entropy c2;
        const double num = (c2.forward(zp, y) - c2.forward(zm, y)) / 2e-2;
        CHECK(d[i] == Approx(num).margin(2e-4));
    }
    CHECK(nn::count_correct(z, y) == index_t((nn::argmax_rows(z)[0] == 1) + (nn::argmax_rows(z)[1] == 0) +
                                             (nn::argmax_rows(z)[2] == 6) + (nn::argmax_rows(z)[3] == 3)));
    CHECK_THROWS_AS(ce.forward(z, {1, 0, 7, 3}), value_error);
    CHECK_THROWS_AS(ce.forward(z, {1, 0}), shape_error);
}

TEST_CASE("sequential: names, shapes and errors", "[nn][sequential]") {
    nn::sequential net;
    net.add("conv1", nn::conv2d(1, 4, 3, 1, 1)).add("", nn::relu()).add("pool", nn::max_pool2d(2, 2));
    nn::sequential head;
    head.add(nn::linear(4 * 3 * 3, 5));
    net.add("head", std::move(head));
    CHECK(net.output_shape({2, 1, 6, 6}) == shape4{2, 5, 1, 1});
    const auto ps = net.parameters();
    REQUIRE(ps.params.size() == 3);
    CHECK(ps.params[1].name == "head.0.weight");
    CHECK_THROWS_AS(net.output_shape({2, 3, 6, 6}), shape_error);
    CHECK(net.describe().find("conv2d(1->4") != std::string::npos);
}

TEST_CASE("relu propagates NaN like torch.relu (a NaN must not become a silent 0)", "[nn][relu][nan]") {
    tensor<float> x(shape4{1, 1, 1, 4});
    x.data()[0] = -1.0f, x.data()[1] = 2.0f, x.data()[2] = std::nanf(""), x.data()[3] = -0.0f;
    nn::relu r;
    const auto& y = r.forward(x, nn::mode::eval);
    CHECK(y.data()[0] == 0.0f);
    CHECK(y.data()[1] == 2.0f);
    CHECK(std::isnan(y.data()[2]));
    CHECK(y.data()[3] == 0.0f);
}

TEST_CASE("norm_config rejects eps and momentum the layer constructor would reject", "[nn][norm_layer]") {
    using L = nn::norm_layer<batch_norm<population>>;
    for (double eps : {-1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
        nn::norm_config cfg;
        cfg.eps = eps;
        CHECK_THROWS_AS(L(4, cfg), value_error);
    }
    nn::norm_config cfg;
    cfg.momentum = 5;
    CHECK_THROWS_AS(L(4, cfg), value_error);
    nn::norm_config groups;
    groups.groups = 3;
    groups.exact_groups = true;
    CHECK_THROWS_AS(nn::norm_layer<group_norm<>>(16, groups), value_error);
    groups.exact_groups = false;  // documented fallback: gcd(3, 16) = 1 group
    CHECK(nn::norm_layer<group_norm<>>(16, groups).impl.groups() == 1);
}

namespace {
//! Names and kinds of a module's parameters, in registration order.
std::vector<std::string> state_names(nn::module& m) {
    std::vector<std::string> out;
    const nn::param_set ps = m.parameters();
    for (const auto& p : ps.params) out.push_back(p.name + (p.grad ? "" : " (buffer)"));
    for (const auto& c : ps.counters) out.push_back(c.name + " (counter)");
    return out;
}
struct lacks_visit_state {
    static constexpr norm_interface kind = norm_interface::per_sample;
    static constexpr norm_modes modes{};
    static constexpr bool grouped = false;
    void configure(const norm_config&) {}
    void zero_grad() {}
};
}  // namespace

TEST_CASE("norm-layer concept: each layer declares its state; the engine reads only that", "[nn][norm_layer]") {
    STATIC_REQUIRE(is_norm_layer_v<batch_norm<population>>);
    STATIC_REQUIRE(is_norm_layer_v<batch_norm<batch_stats>>);
    STATIC_REQUIRE(is_norm_layer_v<robust_norm<>>);
    STATIC_REQUIRE(is_norm_layer_v<group_norm<>>);
    STATIC_REQUIRE(is_norm_layer_v<identity_norm>);
    STATIC_REQUIRE_FALSE(is_norm_layer_v<lacks_visit_state>);
    STATIC_REQUIRE_FALSE(is_norm_layer_v<int>);

    nn::norm_layer<batch_norm<population>> bn(3);
    CHECK(state_names(bn) == std::vector<std::string>{"weight", "bias", "running_mean (buffer)", "running_var (buffer)",
                                                      "num_batches_tracked (counter)"});
    nn::norm_layer<robust_norm<>> rn(3);
    CHECK(state_names(rn) == std::vector<std::string>{"weight", "bias", "running_mean (buffer)", "running_range (buffer)"});
    nn::norm_layer<group_norm<>> gn(4);
    CHECK(state_names(gn) == std::vector<std::string>{"weight", "bias"});
    nn::norm_layer<identity_norm> id(4);
    CHECK(state_names(id).empty());

    // kinds: the optimizer's no-decay option keys on norm_weight / norm_bias
    const nn::param_set ps = rn.parameters();
    REQUIRE(ps.params.size() == 4);
    CHECK(ps.params[0].kind == nn::param_kind::norm_weight);
    CHECK(ps.params[1].kind == nn::param_kind::norm_bias);
    CHECK(ps.params[3].kind == nn::param_kind::buffer);
    CHECK(ps.params[3].value == rn.impl.running_range.data());

    // reset_parameters goes through the declared state: weights 1, biases 0, buffers untouched
    rn.impl.scale = {2, 3, 4};
    rn.impl.shift = {5, 6, 7};
    rn.impl.running_range = {9, 9, 9};
    nn::rng_type g(1);
    rn.reset_parameters(g);
    CHECK(rn.impl.scale == std::vector<float>{1, 1, 1});
    CHECK(rn.impl.shift == std::vector<float>{0, 0, 0});
    CHECK(rn.impl.running_range == std::vector<float>{9, 9, 9});

    // configure: each layer takes the knobs it has and rejects the BN-only one
    nn::norm_config cfg;
    cfg.eps = 1e-3;
    cfg.momentum = 0.25;
    nn::norm_layer<robust_norm<>> rn2(3, cfg);
    CHECK(rn2.impl.opt.eps == 1e-3);
    CHECK(rn2.impl.opt.momentum == 0.25);
    nn::norm_layer<batch_norm<population>> bn2(3, cfg);
    CHECK(bn2.impl.source.running.momentum == 0.25);
    cfg.reference_bn = true;
    nn::norm_layer<batch_norm<population>> bn3(3, cfg);
    CHECK(bn3.impl.opt.batch_variance == variance_kind::unbiased);
    CHECK_THROWS_AS(nn::norm_layer<robust_norm<>>(3, cfg), value_error);
    CHECK_THROWS_AS(nn::norm_layer<group_norm<>>(4, cfg), value_error);
    CHECK_THROWS_AS(nn::norm_layer<identity_norm>(4, cfg), value_error);
}

TEST_CASE("set_param_grad(false): the same input gradient, no parameter gradient, through containers", "[nn][grad]") {
    nn::sequential body;
    body.add(nn::conv2d(3, 4, 3, 1, 1, true)).add(nn::relu()).add(nn::conv2d(4, 4, 1, 1, 0));
    nn::sequential net;
    net.add("block", nn::residual(std::move(body), nn::conv2d(3, 4, 1, 1, 0)))
        .add("", nn::global_avg_pool())
        .add("fc", nn::linear(4, 3, true));
    nn::rng_type g(9);
    net.reset_parameters(g);
    net.set_input_grad(true);
    tensor<float> x(shape4{2, 3, 5, 5});
    for (index_t i = 0; i < x.numel(); ++i) x[i] = float(std::sin(0.37 * double(i)));
    tensor<float> dy(shape4{2, 3, 1, 1});
    for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(i) - 2.5f;
    net.zero_grad();
    net.forward(x, nn::mode::train);
    const tensor<float> dx_full = net.backward(dy);
    const auto ps = net.parameters();
    double gsum = 0;
    for (const auto& p : ps.params)
        if (p.grad)
            for (index_t k = 0; k < p.size; ++k) gsum += std::abs(p.grad[k]);
    REQUIRE(gsum > 0);
    net.zero_grad();
    net.set_param_grad(false);
    net.forward(x, nn::mode::train);
    const tensor<float>& dx = net.backward(dy);
    for (index_t i = 0; i < dx.numel(); ++i) REQUIRE(dx[i] == dx_full[i]);
    for (const auto& p : ps.params)
        if (p.grad)
            for (index_t k = 0; k < p.size; ++k) REQUIRE(p.grad[k] == 0.0f);
    net.set_param_grad(true);
    CHECK(net[0].param_grad());
}

TEST_CASE("global_avg_pool: each plane summed in order (bits of a plain loop), any thread count", "[nn][pooling]") {
    const int threads_before = nn::num_threads();
    // 26 planes (groups of 8 plus a tail of 2), and 128 x 64 planes of 7x7 (over the parallel
    // threshold), with a large offset: the order of the sum decides the bits
    const shape4 shapes[] = {{2, 13, 7, 7}, {128, 64, 7, 7}, {1, 1, 1, 1}};
    for (const shape4& sh : shapes) {
        const tensor<float> x = test::random_tensor(sh, 17, 1000.0);
        const index_t hw = sh.h * sh.w;
        std::vector<float> want(std::size_t(sh.n * sh.c));
        for (index_t p = 0; p < sh.n * sh.c; ++p) {
            double s = 0;
            for (index_t i = 0; i < hw; ++i) s += x.data()[p * hw + i];
            want[std::size_t(p)] = float(s / double(hw));
        }
        for (int t : {1, 2}) {
            nn::set_num_threads(t);
            nn::global_avg_pool gp;
            const auto& y = gp.forward(x, nn::mode::train);
            INFO(sh << " threads " << t);
            REQUIRE(y.shape() == shape4{sh.n, sh.c, 1, 1});
            CHECK(std::equal(want.begin(), want.end(), y.data()));
            tensor<float> dy(y.shape());
            for (index_t p = 0; p < dy.numel(); ++p) dy.data()[p] = float(p % 7) - 3.0f;
            const auto& dx = gp.backward(dy);
            bool ok = true;
            for (index_t p = 0; p < dy.numel(); ++p)
                for (index_t i = 0; i < hw; ++i) ok = ok && dx.data()[p * hw + i] == dy.data()[p] / float(hw);
            CHECK(ok);
        }
    }
    nn::set_num_threads(threads_before);
}
