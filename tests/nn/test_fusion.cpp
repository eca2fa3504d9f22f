// SPDX-License-Identifier: MIT
// Inference fusion: a convolution's epilogue (folded batch norm, ReLU) and a residual's ReLU give
// the bits of the layers run one by one; what may fold and what may not.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "shiftnorm/backend/reference/kernels.hpp"
#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/infer.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/residual.hpp"
#include "shiftnorm/nn/sequential.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/stats/table.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;

namespace {
bool same_bits(const tensor<float>& a, const tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), std::size_t(a.numel()) * sizeof(float)) == 0;
}

using bn_layer = nn::norm_layer<batch_norm<population>>;

//! A batch norm with non-trivial population statistics and affine parameters.
bn_layer make_bn(index_t C, unsigned seed) {
    bn_layer bn(C);
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (index_t c = 0; c < C; ++c) {
        bn.impl.scale[c] = 1.0f + 0.5f * u(g);
        bn.impl.shift[c] = 0.3f * u(g);
        bn.impl.source.running.stats.mean[c] = u(g);
        bn.impl.source.running.stats.var[c] = 0.5f + std::abs(u(g));
    }
    return bn;
}

nn::conv2d make_conv(const nn::conv2d_options& o, unsigned seed) {
    nn::conv2d conv(o);
    nn::rng_type g(seed);
    conv.reset_parameters(g);
    if (o.bias)
        for (std::size_t i = 0; i < conv.bias.size(); ++i) conv.bias[i] = 0.01f * float(i % 7) - 0.03f;
    return conv;
}
}  // namespace

TEST_CASE("conv2d epilogue: folded batch norm and ReLU give the bits of the layers one by one", "[nn][fusion]") {
    struct shape_case {
        nn::conv2d_options o;
        shape4 x;
        const char* what;
    };
    const shape_case cases[] = {
        {{16, 16, 3, 1, 1}, {3, 16, 32, 32}, "3x3 16->16, 32x32 (Winograd planar where AVX-512)"},
        {{32, 32, 3, 1, 1}, {2, 32, 8, 8}, "3x3 32->32, 8x8 (Winograd pixel-major)"},
        {{16, 32, 3, 2, 1}, {2, 16, 15, 15}, "3x3 stride 2, odd plane (direct)"},
        {{8, 12, 1, 2, 0}, {2, 8, 9, 9}, "1x1 stride 2 projection"},
        {{6, 6, 3, 1, 1, 1, 3, true}, {2, 6, 7, 5}, "grouped, bias"},
        {{3, 16, 3, 1, 1}, {4, 3, 12, 12}, "first layer, 3 channels"},
    };
    for (const auto& sc : cases) {
        for (auto alg : {nn::conv_algorithm::automatic, nn::conv_algorithm::direct}) {
            INFO(sc.what << (alg == nn::conv_algorithm::direct ? ", direct" : ", automatic"));
            nn::conv2d_options o = sc.o;
            o.algorithm = alg;
            auto conv = make_conv(o, 11);
            auto bn = make_bn(o.out_channels, 12);
            nn::relu relu;
            auto x = test::random_tensor(sc.x, 13, 0.5, 2.0);
            x.data()[5] = std::numeric_limits<float>::quiet_NaN();  // NaN and Inf go through both paths alike
            x.data()[x.numel() - 3] = std::numeric_limits<float>::infinity();
            const tensor<float> conv_y = conv.forward(x, nn::mode::eval);
            const tensor<float> bn_y = bn.forward(conv_y, nn::mode::eval);
            const tensor<float> relu_y = relu.forward(bn_y, nn::mode::eval);
            std::vector<backend::channel_coef<float>> k;
            REQUIRE(bn.inference_affine(nn::mode::eval, k));
            REQUIRE(k.size() == std::size_t(o.out_channels));
            const nn::epilogue both{k.data(), k.size(), true}, norm_only{k.data(), k.size(), false},
                relu_only{nullptr, 0, true};
            CHECK(conv.takes_epilogue(both));
            CHECK(same_bits(conv.forward_epilogue(x, nn::mode::eval, both), relu_y));
            CHECK(same_bits(conv.forward_epilogue(x, nn::mode::eval, norm_only), bn_y));
            CHECK(same_bits(conv.forward_epilogue(x, nn::mode::eval, relu_only), relu.forward(conv_y, nn::mode::eval)));
            CHECK(same_bits(conv.forward_epilogue(x, nn::mode::eval, {}), conv_y));
            // and the epilogue really changed the values (the checks above can fail)
            CHECK_FALSE(same_bits(relu_y, conv_y));
            // a residual's add folded too: relu(bn(conv) + s), as the residual computes it
            const auto other = test::random_tensor(conv_y.shape(), 14);
            tensor<float> sum_relu(conv_y.shape());
            for (index_t i = 0; i < sum_relu.numel(); ++i)
                sum_relu.data()[i] = nn::relu_value(bn_y.data()[i] + other.data()[i]);
            nn::epilogue with_add{k.data(), k.size(), true};
            with_add.add = other.data(), with_add.add_shape = other.shape();
            CHECK(same_bits(conv.forward_epilogue(x, nn::mode::eval, with_add), sum_relu));
            with_add.add_shape.c += 1;
            CHECK_THROWS_AS(conv.forward_epilogue(x, nn::mode::eval, with_add), shape_error);
            // wrong coefficient count: not taken, and refused if forced
            const nn::epilogue wrong{k.data(), k.size() - 1, false};
            CHECK_FALSE(conv.takes_epilogue(wrong));
            CHECK_THROWS_AS(conv.forward_epilogue(x, nn::mode::eval, wrong), shape_error);
        }
    }
}

TEST_CASE("what folds: eval-mode batch norm with stored statistics on a CPU schedule, no observer", "[nn][fusion]") {
    STATIC_REQUIRE(batch_norm<population>::modes.fold);
    STATIC_REQUIRE(batch_norm<stats_table>::modes.fold);
    STATIC_REQUIRE(batch_norm<rectified>::modes.fold);
    STATIC_REQUIRE_FALSE(batch_norm<batch_stats>::modes.fold);  // its statistics come from the batch
    STATIC_REQUIRE_FALSE(batch_norm<population, affine, fp32, backend::reference::kernels>::modes.fold);  // double
    STATIC_REQUIRE_FALSE(group_norm<>::modes.fold);
    std::vector<backend::channel_coef<float>> k;
    auto bn = make_bn(4, 1);
    for (auto m : {nn::mode::train, nn::mode::rectify, nn::mode::batch}) CHECK_FALSE(bn.inference_affine(m, k));
    CHECK(bn.inference_affine(nn::mode::eval, k));
    bn.observer = [](const tensor<float>&, const tensor<float>&, nn::mode) {};
    CHECK_FALSE(bn.inference_affine(nn::mode::eval, k));  // the observer must see the layer's tensors
    auto raising = make_bn(4, 1);
    raising.impl.opt.nan = nan_policy::raise;  // its input check runs only in forward_inference
    CHECK_FALSE(raising.inference_affine(nn::mode::eval, k));
    nn::norm_layer<batch_norm<batch_stats>> bs(4);
    CHECK_FALSE(bs.inference_affine(nn::mode::eval, k));
    nn::relu relu;
    CHECK_FALSE(relu.inference_affine(nn::mode::eval, k));
    CHECK_FALSE(relu.takes_epilogue({nullptr, 0, true}));
    CHECK_THROWS_AS(relu.forward_epilogue(test::random_tensor({1, 4, 2, 2}, 1), nn::mode::eval, {}), state_error);
    // after the coefficients alone, backward_inference has nothing saved to differentiate
    auto plain = make_bn(4, 2);
    REQUIRE(plain.impl.inference_coefficients(k.data()));
    tensor<float> x = test::random_tensor({2, 4, 3, 3}, 3), dx(x.shape());
    CHECK_THROWS_AS(plain.impl.backward_inference(x.view(), x.view(), dx.view()), state_error);
}

namespace {
//! conv - bn - relu - conv - bn, in a residual with a ReLU after the add, and a projection
//! shortcut conv - bn: every fusion pattern of the CIFAR ResNets.
nn::sequential make_block(index_t in, index_t out, index_t stride) {
    nn::sequential body;
    body.add("conv1", make_conv({in, out, 3, stride, 1}, 21))
        .add("bn1", make_bn(out, 22))
        .add("", nn::relu())
        .add("conv2", make_conv({out, out, 3, 1, 1}, 23))
        .add("bn2", make_bn(out, 24));
    nn::sequential proj;
    proj.add(make_conv({in, out, 1, stride, 0}, 25)).add(make_bn(out, 26));
    nn::sequential block;
    block.add("", nn::residual(nn::boxed(std::move(body)), nn::boxed(std::move(proj)), "shortcut")).add("", nn::relu());
    nn::sequential net;
    net.add("conv1", make_conv({3, in, 3, 1, 1}, 27)).add("bn1", make_bn(in, 28)).add("", nn::relu());
    net.add("layer1", std::move(block));
    return net;
}
}  // namespace

TEST_CASE("sequential with inference fusion: the bits of the unfused walk; backward refused after it", "[nn][fusion]") {
    for (index_t width : {4, 16}) {
        INFO("width " << width);
        auto net = make_block(width, 2 * width, 2);
        auto x = test::random_tensor({5, 3, 16, 16}, 31, -1.0, 3.0);
        x.data()[17] = std::numeric_limits<float>::quiet_NaN();
        const tensor<float> plain = net.forward(x, nn::mode::eval);
        net.set_inference_fusion(true);
        const tensor<float> fused = net.forward(x, nn::mode::eval);
        CHECK(same_bits(fused, plain));
        CHECK_THROWS_AS(net.backward(test::random_tensor(fused.shape(), 32)), state_error);
        // other modes do not fuse: training forward + backward work with fusion switched on
        const tensor<float>& yt = net.forward(x, nn::mode::train);
        CHECK_NOTHROW(net.backward(test::random_tensor(yt.shape(), 33)));
        net.set_inference_fusion(false);
        CHECK(same_bits(net.forward(x, nn::mode::eval), plain));
        CHECK_NOTHROW(net.backward(test::random_tensor(plain.shape(), 34)));  // eval-mode gradient (attacks)
        // nn::infer fuses in eval mode and switches fusion off again
        tensor<float> y;
        nn::infer(net, x, nn::mode::eval, y, 2);
        CHECK(same_bits(y, plain));
        CHECK_THROWS_AS(net.backward(test::random_tensor(y.shape(), 35)), state_error);  // its last chunk fused
        net.forward(x, nn::mode::eval);
        CHECK_NOTHROW(net.backward(test::random_tensor(plain.shape(), 36)));
    }
}

TEST_CASE("a residual folds a ReLU, its add goes into the body; an observed batch norm runs as a layer under fusion", "[nn][fusion]") {
    nn::residual res(nn::boxed(make_conv({4, 4, 3, 1, 1}, 41)));
    std::vector<backend::channel_coef<float>> k(4);
    CHECK(res.takes_epilogue({nullptr, 0, true}));
    CHECK_FALSE(res.takes_epilogue({k.data(), k.size(), false}));
    const auto x = test::random_tensor({2, 4, 5, 5}, 42);
    CHECK_THROWS_AS(res.forward_epilogue(x, nn::mode::eval, {k.data(), k.size(), true}), state_error);
    const tensor<float> sum = res.forward(x, nn::mode::eval);
    nn::relu relu;
    CHECK(same_bits(res.forward_epilogue(x, nn::mode::eval, {nullptr, 0, true}), relu.forward(sum, nn::mode::eval)));

    // the add and ReLU go into the body's last convolution (identity shortcut), or, when the body
    // ends in a ReLU, run after it: the same bits as the residual's own add
    for (int ends_in_relu = 0; ends_in_relu < 2; ++ends_in_relu) {
        INFO("body ends in a ReLU: " << ends_in_relu);
        nn::sequential body;
        body.add("conv", make_conv({4, 4, 3, 1, 1}, 46)).add("bn", make_bn(4, 47));
        if (ends_in_relu) body.add("", nn::relu());
        nn::residual r(nn::boxed(std::move(body)));
        const tensor<float> plain_sum = r.forward(x, nn::mode::eval);
        const tensor<float> expect = relu.forward(plain_sum, nn::mode::eval);
        r.set_inference_fusion(true);
        CHECK(same_bits(r.forward_epilogue(x, nn::mode::eval, {nullptr, 0, true}), expect));
        CHECK_THROWS_AS(r.backward(test::random_tensor(expect.shape(), 48)), state_error);  // the body fused
        r.set_inference_fusion(false);
        CHECK(same_bits(r.forward_epilogue(x, nn::mode::eval, {nullptr, 0, true}), expect));
    }

    nn::sequential net;
    net.add("conv", make_conv({3, 8, 3, 1, 1}, 43)).add("bn", make_bn(8, 44)).add("", nn::relu());
    int seen = 0;
    auto& bn = dynamic_cast<bn_layer&>(net[1]);
    bn.observer = [&seen](const tensor<float>&, const tensor<float>&, nn::mode) { ++seen; };
    const auto xi = test::random_tensor({3, 3, 6, 6}, 45);
    const tensor<float> plain = net.forward(xi, nn::mode::eval);
    REQUIRE(seen == 1);
    tensor<float> y;
    nn::infer(net, xi, nn::mode::eval, y, 1);
    CHECK(seen == 4);  // three chunks of one image, the batch norm ran on each
    CHECK(same_bits(y, plain));
}

TEST_CASE("nn::infer keeps a convolution's Winograd weight transform only while it runs", "[nn][fusion][winograd]") {
    // 16 and 32 channels on 8x8 planes: F(4x4, 3x3) where the AVX-512 kernel runs, direct elsewhere
    nn::sequential net;
    net.add("conv1", make_conv(nn::conv2d_options{16, 32, 3, 1, 1}, 51)).add("bn1", make_bn(32, 52)).add("", nn::relu());
    net.add("conv2", make_conv(nn::conv2d_options{32, 32, 3, 1, 1}, 53));
    const auto x = test::random_tensor({9, 16, 8, 8}, 54);
    const tensor<float> plain = net.forward(x, nn::mode::eval);
    tensor<float> y;
    nn::infer(net, x, nn::mode::eval, y, 2);  // 5 chunks: the transform of the first is reused
    CHECK(same_bits(y, plain));
    // new weights between two calls: the next call transforms them again
    auto& conv2 = *nn::find_all<nn::conv2d>(net)[1];
    for (auto& w : conv2.weight) w *= -0.5f;
    const tensor<float> plain2 = net.forward(x, nn::mode::eval);
    CHECK_FALSE(same_bits(plain2, plain));
    nn::infer(net, x, nn::mode::eval, y, 2);
    CHECK(same_bits(y, plain2));
    // fusion switched on by hand promises nothing about the weights: a change is seen
    net.set_inference_fusion(true);
    const tensor<float> fused = net.forward(x, nn::mode::eval);
    for (auto& w : conv2.weight) w *= 2.0f;
    const tensor<float> fused2 = net.forward(x, nn::mode::eval);
    net.set_inference_fusion(false);
    CHECK(same_bits(fused, plain2));
    CHECK(same_bits(fused2, net.forward(x, nn::mode::eval)));
    CHECK_FALSE(same_bits(fused2, fused));
}

namespace {
//! conv-bn-relu-conv-bn (+ identity shortcut) - relu, then conv-bn-relu, then two downsampling
//! blocks (projection and option-A shortcuts): with `spacers`, an nn::identity before every ReLU
//! and at the start of every residual body, so that no layer runs the ReLU after it and no
//! convolution the residual's add (the unfused walk).
nn::sequential train_net(bool spacers) {
    auto relu_after = [spacers](nn::sequential& s) {
        if (spacers) s.add("", nn::identity());
        s.add("", nn::relu());
    };
    // spacers also start every residual body: its first convolution then takes no add (the
    // residual's add runs as a pass of its own, the unfused backward)
    auto body_start = [spacers](nn::sequential& s) {
        if (spacers) s.add("", nn::identity());
    };
    nn::sequential body;
    body_start(body);
    body.add("conv1", make_conv(nn::conv2d_options{16, 16, 3, 1, 1}, 61)).add("bn1", make_bn(16, 62));
    relu_after(body);
    body.add("conv2", make_conv(nn::conv2d_options{16, 16, 3, 1, 1}, 63)).add("bn2", make_bn(16, 64));
    nn::sequential net;
    net.add("block", nn::residual(std::move(body)));
    relu_after(net);
    net.add("conv3", make_conv(nn::conv2d_options{16, 16, 3, 2, 1}, 65)).add("bn3", make_bn(16, 66));
    relu_after(net);
    // a downsampling block with a projection shortcut (conv 1x1 stride 2 + batch norm)
    nn::sequential body2, proj;
    body_start(body2);
    body2.add("conv1", make_conv(nn::conv2d_options{16, 32, 3, 2, 1}, 67)).add("bn1", make_bn(32, 68));
    relu_after(body2);
    body2.add("conv2", make_conv(nn::conv2d_options{32, 32, 3, 1, 1}, 69)).add("bn2", make_bn(32, 70));
    proj.add("0", make_conv(nn::conv2d_options{16, 32, 1, 2, 0}, 75)).add("1", make_bn(32, 76));
    net.add("block2", nn::residual(std::move(body2), std::move(proj), "shortcut"));
    relu_after(net);
    // a downsampling block with an option-A shortcut (subsampled, zero-padded channels)
    nn::sequential body3;
    body_start(body3);
    body3.add("conv1", make_conv(nn::conv2d_options{32, 48, 3, 2, 1}, 77)).add("bn1", make_bn(48, 78));
    relu_after(body3);
    body3.add("conv2", make_conv(nn::conv2d_options{48, 48, 3, 1, 1}, 79)).add("bn2", make_bn(48, 80));
    net.add("block3", nn::residual(std::move(body3), nn::zero_pad_shortcut(48, 2), "shortcut"));
    relu_after(net);
    return net;
}
}  // namespace

TEST_CASE("training fusion: batch norm + ReLU and residual + ReLU give the bits of the layers one by one",
          "[nn][fusion][train]") {
    // every convolution algorithm: the batch norms' fused passes follow each one's outputs
    const nn::conv_algorithm algorithms[] = {nn::conv_algorithm::automatic, nn::conv_algorithm::direct,
                                             nn::conv_algorithm::winograd_2x2};
    for (const auto algorithm : algorithms)
    for (const float offset : {0.0f, 50.0f}) {
        INFO("input offset " << offset << ", convolution algorithm " << int(algorithm));
        nn::sequential fused = train_net(false), plain = train_net(true);
        nn::set_conv_algorithm(fused, algorithm);
        nn::set_conv_algorithm(plain, algorithm);
        for (auto* bn : nn::find_all<bn_layer>(fused)) CHECK(bn->takes_train_relu());  // CPU schedule, no observer
        for (auto* bn : nn::find_all<bn_layer>(fused)) CHECK(bn->takes_train_add_relu());
        auto x = test::random_tensor({4, 16, 12, 12}, 71, -1.0, 3.0);
        for (index_t i = 0; i < x.numel(); ++i) x.data()[i] += offset;
        for (int step = 0; step < 2; ++step) {  // twice: buffers reused, running statistics updated
            const tensor<float>& yf = fused.forward(x, nn::mode::train);
            const tensor<float>& yp = plain.forward(x, nn::mode::train);
            REQUIRE(same_bits(yf, yp));
            // the residuals' adds and ReLUs ran in their bodies' last batch norms (not when spaced)
            for (auto* r : nn::find_all<nn::residual>(fused)) CHECK(r->add_fused());
            for (auto* r : nn::find_all<nn::residual>(plain)) CHECK_FALSE(r->add_fused());
            const auto dy = test::random_tensor(yf.shape(), 72 + unsigned(step));
            const tensor<float>& df = fused.backward(dy);
            const tensor<float>& dp = plain.backward(dy);
            CHECK(same_bits(df, dp));
            // backward added the shortcuts' gradients in the bodies' first convolutions (not when spaced)
            for (auto* r : nn::find_all<nn::residual>(fused)) CHECK(r->add_folded());
            for (auto* r : nn::find_all<nn::residual>(plain)) CHECK_FALSE(r->add_folded());
        }
        // every parameter, gradient and running buffer
        const auto pf = fused.parameters(), pp = plain.parameters();
        REQUIRE(pf.params.size() == pp.params.size());
        for (std::size_t i = 0; i < pf.params.size(); ++i) {
            INFO(pf.params[i].name);
            const auto& a = pf.params[i];
            const auto& b = pp.params[i];
            REQUIRE(a.size == b.size);
            CHECK(std::memcmp(a.value, b.value, std::size_t(a.size) * sizeof(float)) == 0);
            if (a.grad) CHECK(std::memcmp(a.grad, b.grad, std::size_t(a.size) * sizeof(float)) == 0);
        }
    }
    // an observed batch norm runs as a layer: its observer sees the layer's own output
    nn::sequential net = train_net(false);
    auto& bn3 = *nn::find_all<bn_layer>(net).back();
    bool negative_seen = false;
    bn3.observer = [&](const tensor<float>&, const tensor<float>& dst, nn::mode) {
        for (index_t i = 0; i < dst.numel(); ++i) negative_seen = negative_seen || dst.data()[i] < 0.0f;
    };
    CHECK_FALSE(bn3.takes_train_relu());
    net.forward(test::random_tensor({4, 16, 12, 12}, 73), nn::mode::train);
    CHECK(negative_seen);
    // other layers do not take a ReLU
    nn::relu r;
    CHECK_FALSE(r.takes_train_relu());
    CHECK_THROWS_AS(r.forward_train_relu(test::random_tensor({1, 1, 2, 2}, 74)), state_error);
}

namespace {
template <class Backend>
void add_relu_case(const char* name) {
    INFO(name);
    using bn_t = batch_norm<population, affine, fp32, Backend>;
    bn_t fused(8), plain(8);
    std::mt19937 g(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (index_t c = 0; c < 8; ++c) fused.scale[c] = plain.scale[c] = 1.0f + 0.5f * u(g), fused.shift[c] = plain.shift[c] = 0.3f * u(g);
    const auto x = test::random_tensor({3, 8, 5, 7}, 81, -2.0, 4.0);
    auto add = test::random_tensor({3, 8, 5, 7}, 82, -1.0, 1.0);
    add.data()[7] = std::numeric_limits<float>::quiet_NaN();  // NaN stays visible through the ReLU
    tensor<float> yf(x.shape()), yp(x.shape());
    fused.forward_training_add_relu(x.view(), add.view(), yf.view());
    plain.forward_training(x.view(), yp.view());
    for (index_t i = 0; i < yp.numel(); ++i) yp.data()[i] = nn::relu_value(yp.data()[i] + add.data()[i]);
    CHECK(same_bits(yf, yp));
    CHECK(std::isnan(yf.data()[7]));
    // the running statistics moved the same way; the gradient is batch norm's own
    CHECK(std::memcmp(fused.source.running.stats.mean.data(), plain.source.running.stats.mean.data(), 8 * sizeof(float)) == 0);
    CHECK_THROWS_AS(fused.forward_training_add_relu(x.view(), test::random_tensor({3, 8, 5, 6}, 83).view(), yf.view()),
                    shape_error);
}
}  // namespace

TEST_CASE("batch norm + a residual's add + ReLU in one pass: the bits of the three, both schedules", "[nn][fusion][train]") {
    add_relu_case<backend::cpu::plane_streaming>("plane-streaming");
    add_relu_case<backend::cpu::channel_major_schedule>("channel-major");
}

namespace {
//! batch_norm::forward_training_relu + backward_relu (the ReLU's mask recomputed from src with the
//! forward's coefficients) against forward_training, an nn::relu's forward and backward, and
//! backward: the same bits, with values that normalize to exactly 0 (x == mean, shift 0), values
//! spread thinly around the ReLU's threshold, NaN and Inf in the input.
template <class Backend>
void relu_mask_case(const char* name) {
    INFO(name);
    using bn_t = batch_norm<population, affine, fp32, Backend>;
    const index_t C = 4;
    bn_t fused(C), plain(C);
    for (index_t c = 0; c < C; ++c)
        fused.scale[c] = plain.scale[c] = 0.75f + 0.25f * float(c), fused.shift[c] = plain.shift[c] = c == 1 ? 0.0f : 0.05f;
    auto x = test::random_tensor({16, C, 8, 8}, 91, -1.0, 1.0);
    const shape4 s = x.shape();
    for (index_t n = 0; n < s.n; ++n)
        for (index_t i = 0; i < s.spatial(); ++i) {
            float* p = x.data() + (n * C) * s.spatial() + i;
            p[s.spatial()] = i % 4 == 1 ? 1.0f : i % 4 == 2 ? 3.0f : 2.0f;  // channel 1: mean 2 exactly, shift 0
            p[2 * s.spatial()] = 1.0f + float(n * s.spatial() + i - 512) * 0x1p-22f;  // channel 2: thin around 1
        }
    x.data()[3 * s.spatial() + 5] = std::numeric_limits<float>::quiet_NaN();  // channel 3: NaN and Inf
    x.data()[3 * s.spatial() + 9] = std::numeric_limits<float>::infinity();
    const auto dy = test::random_tensor(s, 92);
    tensor<float> yf(s), yp(s), dxf(s), dxp(s), g(s);
    fused.zero_grad(), plain.zero_grad();
    fused.forward_training_relu(x.view(), yf.view());
    plain.forward_training(x.view(), yp.view());
    nn::relu relu;
    const tensor<float>& yr = relu.forward(yp, nn::mode::train);
    REQUIRE(same_bits(yf, yr));
    fused.backward_relu(x.view(), dy.view(), dxf.view());
    plain.backward(x.view(), relu.backward(dy).view(), dxp.view());
    CHECK(same_bits(dxf, dxp));
    CHECK(std::memcmp(fused.diff_scale.data(), plain.diff_scale.data(), std::size_t(C) * sizeof(float)) == 0);
    CHECK(std::memcmp(fused.diff_shift.data(), plain.diff_shift.data(), std::size_t(C) * sizeof(float)) == 0);
    // the exact zeros were masked (relu's +0 output), and both passes saw the mask
    index_t zeros = 0;
    for (index_t n = 0; n < s.n; ++n)
        for (index_t i = 0; i < s.spatial(); ++i)
            zeros += yf.data()[(n * C + 1) * s.spatial() + i] == 0.0f && (i % 4 == 0 || i % 4 == 3);
    CHECK(zeros == s.n * s.spatial() / 2);
    // backward_relu needs forward_training_relu's coefficients
    fused.forward_training(x.view(), yf.view());
    CHECK_THROWS_AS(fused.backward_relu(x.view(), dy.view(), dxf.view()), state_error);
}
}  // namespace

TEST_CASE("batch norm + ReLU backward: the mask recomputed from src gives the bits of the two layers, both schedules",
          "[nn][fusion][train]") {
    relu_mask_case<backend::cpu::plane_streaming>("plane-streaming");
    relu_mask_case<backend::cpu::channel_major_schedule>("channel-major");
}
