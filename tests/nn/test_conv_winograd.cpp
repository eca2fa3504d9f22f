// SPDX-License-Identifier: MIT
// Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions (nn/conv_winograd.hpp): forward, input and
// weight gradients against a double-precision reference, per-image results independent of the
// batch and the threads, hostile inputs, and the algorithm option.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/sequential.hpp"
#include "support/conv_reference.hpp"

using namespace shiftnorm;
namespace d = shiftnorm::nn::detail;

namespace {
struct conv_case {
    index_t n, c, o, h, w, groups;
};

// the CIFAR / Fashion-MNIST ResNet shapes, odd planes (half tiles at the bottom and right), a
// plane of one pixel, a 1-row plane, groups of 16, more outputs than inputs
const conv_case cases[] = {
    {3, 16, 16, 32, 32, 1}, {2, 32, 32, 16, 16, 1}, {2, 64, 64, 8, 8, 1}, {2, 16, 16, 28, 28, 1},
    {2, 64, 64, 7, 7, 1},   {2, 16, 32, 9, 13, 1},  {2, 32, 16, 1, 1, 1}, {1, 16, 16, 1, 6, 1},
    {2, 32, 64, 5, 4, 2},   {2, 16, 16, 7, 25, 1},  {1, 16, 32, 5, 23, 1}, {1, 32, 16, 31, 32, 1},
    // more pixel-major planes: 14 (Fashion-MNIST's second stage), 10, 3 and 20 wide, odd heights
    {2, 32, 32, 14, 14, 1}, {1, 16, 16, 11, 10, 1}, {1, 16, 16, 6, 3, 1},   {1, 16, 16, 11, 20, 1},
    // planar F(4x4) planes: a single tile row (half a vector), 29 and 22 wide with odd tile rows;
    // 16 and 15 wide pixel-major
    {1, 16, 16, 1, 24, 1},  {2, 16, 16, 13, 29, 1}, {1, 16, 16, 4, 16, 1}, {1, 32, 16, 11, 15, 1},
    {1, 16, 16, 9, 22, 1},
};

using shiftnorm::test::randn;

void fill(tensor<float>& t, const std::vector<float>& v) { std::copy(v.begin(), v.end(), t.data()); }

bool bits_equal(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

nn::conv2d make(const conv_case& cc, nn::conv_algorithm a) {
    return nn::conv2d(nn::conv2d_options{cc.c, cc.o, 3, 1, 1, 1, cc.groups, false, a});
}

shiftnorm::test::conv_dims dims(const conv_case& cc) { return {cc.n, cc.c, cc.o, cc.h, cc.w, 3, cc.groups}; }

bool winograd_runs() {
    return d::winograd_eligible(nn::window2d{3, 3, 1, 1, 1, 1, 1, 1}, 16, 16, 8, 8, 8, 8);
}
}  // namespace

TEST_CASE("winograd convolution: forward, input and weight gradients match a double reference",
          "[nn][conv2d][winograd]") {
    if (!winograd_runs()) {
        WARN("no AVX-512 kernel on this CPU / in this build: Winograd does not run, nothing to compare");
        return;
    }
    const int threads_before = nn::num_threads();
    nn::set_num_threads(1);  // one thread: the weight-gradient partials are summed image by image
    // winograd: F(4x4, 3x3) on every plane (pixel-major or planar); winograd_2x2: F(2x2, 3x3)
    // everywhere. Both within the direct path's bound.
    for (const auto alg : {nn::conv_algorithm::winograd, nn::conv_algorithm::winograd_2x2})
    for (const auto& cc : cases) {
        INFO(cc.n << "x" << cc.c << "x" << cc.h << "x" << cc.w << " -> " << cc.o << ", groups " << cc.groups
                  << (alg == nn::conv_algorithm::winograd ? ", tile " : ", F(2x2) only, tile ")
                  << (alg == nn::conv_algorithm::winograd ? 4 : 2));
        for (const float offset : {0.0f, 100.0f}) {  // a large common offset of the input
            INFO("input offset " << offset);
            nn::conv2d wino = make(cc, alg), direct = make(cc, nn::conv_algorithm::direct);
            wino.weight = randn(wino.weight.size(), unsigned(cc.c * 7 + cc.h));
            direct.weight = wino.weight;
            tensor<float> x({cc.n, cc.c, cc.h, cc.w});
            fill(x, randn(std::size_t(x.numel()), unsigned(cc.w * 3 + 1), offset));
            const auto& y = wino.forward(x, nn::mode::train);
            CHECK(shiftnorm::test::conv_forward_error(dims(cc), wino.weight, x, y) < 1e-5);  // the direct path's bound (test_conv_shifted)
            tensor<float> dy(y.shape());
            fill(dy, randn(std::size_t(dy.numel()), unsigned(cc.o + 5), offset));
            const auto& dx = wino.backward(dy);
            REQUIRE(dx.shape() == x.shape());
            CHECK(shiftnorm::test::conv_input_grad_error(dims(cc), wino.weight, dy, dx) < 1e-5);
            // the weight gradient (summed in the Winograd domain over the batch, mapped back once)
            CHECK(shiftnorm::test::conv_weight_grad_error(dims(cc), x, dy, wino.diff_weight) < 1e-5);
            // and it accumulates: a second backward adds the same again
            const std::vector<float> once = wino.diff_weight;
            wino.backward(dy);
            double worst_twice = 0;
            for (std::size_t i = 0; i < once.size(); ++i)
                worst_twice = std::max(worst_twice, std::fabs(double(wino.diff_weight[i]) - 2.0 * double(once[i])));
            double largest = 0;
            for (float v : once) largest = std::max(largest, double(std::fabs(v)));
            CHECK(worst_twice <= 1e-6 * (1.0 + largest));
            // direct keeps its own path (the bits of test_conv_shifted); both near the reference
            direct.forward(x, nn::mode::train);
            direct.backward(dy);
            CHECK(shiftnorm::test::conv_weight_grad_error(dims(cc), x, dy, direct.diff_weight) < 1e-5);
        }
    }
    nn::set_num_threads(threads_before);
}

TEST_CASE("winograd convolution: an image's bits depend neither on its batch nor on the threads",
          "[nn][conv2d][winograd][threads]") {
    if (!winograd_runs()) {
        WARN("no AVX-512 kernel: Winograd does not run");
        return;
    }
    const int threads_before = nn::num_threads();
    // 14x14: F(4x4) with 2 images per GEMM; 8x8: 8 images per GEMM, a batch of 11 (a short last
    // step), and a batch of 70 (9 steps, more than one round per thread)
    for (const conv_case cc : {conv_case{5, 32, 16, 14, 14, 1}, conv_case{11, 64, 64, 8, 8, 1}, conv_case{70, 16, 16, 8, 8, 1}}) {
    INFO(cc.n << "x" << cc.c << "x" << cc.h << "x" << cc.w);
    nn::conv2d conv = make(cc, nn::conv_algorithm::winograd);
    conv.weight = randn(conv.weight.size(), 3);
    tensor<float> x({cc.n, cc.c, cc.h, cc.w}), dy({cc.n, cc.o, cc.h, cc.w});
    fill(x, randn(std::size_t(x.numel()), 4));
    fill(dy, randn(std::size_t(dy.numel()), 5));
    auto run = [&](const tensor<float>& xs, const tensor<float>& dys, int threads) {
        nn::set_num_threads(threads);
        const auto& y = conv.forward(xs, nn::mode::train);
        std::vector<float> out(y.data(), y.data() + y.numel());
        const auto& dx = conv.backward(dys);
        out.insert(out.end(), dx.data(), dx.data() + dx.numel());
        return out;
    };
    const auto one = run(x, dy, 1), two = run(x, dy, 2);
    CHECK(one == two);
    // image 3 alone (a layer that saw a batch of 5 first: buffers reused, not reset)
    tensor<float> x3({1, cc.c, cc.h, cc.w}), dy3({1, cc.o, cc.h, cc.w});
    std::copy(x.data() + 3 * x3.numel(), x.data() + 4 * x3.numel(), x3.data());
    std::copy(dy.data() + 3 * dy3.numel(), dy.data() + 4 * dy3.numel(), dy3.data());
    const auto alone = run(x3, dy3, 1);
    const index_t ny = cc.o * cc.h * cc.w, nx = cc.c * cc.h * cc.w;
    CHECK(std::equal(alone.begin(), alone.begin() + ny, one.begin() + 3 * ny));
    CHECK(std::equal(alone.begin() + ny, alone.end(), one.begin() + cc.n * ny + 3 * nx));
    }
    nn::set_num_threads(threads_before);
}

TEST_CASE("winograd convolution: NaN and Inf stay visible, huge values, empty batch", "[nn][conv2d][winograd]") {
    if (!winograd_runs()) {
        WARN("no AVX-512 kernel: Winograd does not run");
        return;
    }
    const conv_case cc{2, 16, 16, 6, 6, 1};
    nn::conv2d conv = make(cc, nn::conv_algorithm::winograd);
    conv.weight = randn(conv.weight.size(), 31);
    tensor<float> x({cc.n, cc.c, cc.h, cc.w});
    fill(x, randn(std::size_t(x.numel()), 32));
    x(0, 3, 2, 2) = std::numeric_limits<float>::quiet_NaN();
    x(1, 5, 5, 5) = std::numeric_limits<float>::infinity();
    const auto& y = conv.forward(x, nn::mode::train);
    // every output whose window covers the NaN / Inf is non-finite (the transforms mix a tile's
    // 4x4 inputs, so a whole 2x2 output tile of the tiles around them may be: a superset of the
    // direct path's, never fewer); the other image keeps its finite outputs away from them
    for (index_t o = 0; o < cc.o; ++o) {
        for (index_t h = 1; h <= 3; ++h)
            for (index_t w = 1; w <= 3; ++w) CHECK(!std::isfinite(y(0, o, h, w)));
        for (index_t h = 4; h <= 5; ++h)
            for (index_t w = 4; w <= 5; ++w) CHECK(!std::isfinite(y(1, o, h, w)));
        CHECK(std::isfinite(y(0, o, 5, 5)));
        CHECK(std::isfinite(y(1, o, 0, 0)));
    }
    // huge but finite values: no overflow where the direct sum does not overflow
    tensor<float> big({1, cc.c, cc.h, cc.w});
    fill(big, randn(std::size_t(big.numel()), 33, 0.0f));
    for (index_t i = 0; i < big.numel(); ++i) big.data()[i] *= 1e30f;
    const auto& yb = conv.forward(big, nn::mode::eval);
    for (index_t i = 0; i < yb.numel(); ++i) REQUIRE(std::isfinite(yb.data()[i]));
    // an empty batch
    tensor<float> e({0, cc.c, cc.h, cc.w});
    CHECK(conv.forward(e, nn::mode::train).shape() == shape4{0, cc.o, cc.h, cc.w});
    CHECK(conv.backward(tensor<float>({0, cc.o, cc.h, cc.w})).numel() == 0);
}

TEST_CASE("conv_algorithm: automatic picks Winograd where it runs, direct elsewhere; errors name the problem",
          "[nn][conv2d][winograd]") {
    auto forward_bits = [](nn::conv2d& conv, const tensor<float>& x) {
        const auto& y = conv.forward(x, nn::mode::eval);
        return std::vector<float>(y.data(), y.data() + y.numel());
    };
    // eligible: automatic gives Winograd's bits
    {
        const conv_case cc{2, 16, 32, 8, 8, 1};
        nn::conv2d a = make(cc, nn::conv_algorithm::automatic), w = make(cc, nn::conv_algorithm::winograd);
        a.weight = w.weight = randn(w.weight.size(), 41);
        tensor<float> x({cc.n, cc.c, cc.h, cc.w});
        fill(x, randn(std::size_t(x.numel()), 42));
        if (winograd_runs()) CHECK(forward_bits(a, x) == forward_bits(w, x));
        nn::conv2d dir = make(cc, nn::conv_algorithm::direct);
        dir.weight = w.weight;
        a.set_algorithm(nn::conv_algorithm::direct);
        CHECK(forward_bits(a, x) == forward_bits(dir, x));
    }
    // not eligible (3 input channels; stride 2; 5x5): automatic is direct, winograd a value_error
    {
        const conv_case cc{1, 3, 16, 8, 8, 1};
        nn::conv2d a = make(cc, nn::conv_algorithm::automatic), dir = make(cc, nn::conv_algorithm::direct),
                   w = make(cc, nn::conv_algorithm::winograd);
        a.weight = dir.weight = w.weight = randn(w.weight.size(), 43);
        tensor<float> x({cc.n, cc.c, cc.h, cc.w});
        fill(x, randn(std::size_t(x.numel()), 44));
        CHECK(forward_bits(a, x) == forward_bits(dir, x));
        CHECK_THROWS_AS(w.forward(x, nn::mode::eval), value_error);
        CHECK_THROWS_WITH(w.forward(x, nn::mode::eval), Catch::Contains("winograd") && Catch::Contains("multiples of 16"));
        nn::conv2d s2(nn::conv2d_options{16, 16, 3, 2, 1, 1, 1, false, nn::conv_algorithm::winograd});
        tensor<float> x16({1, 16, 8, 8});
        CHECK_THROWS_AS(s2.forward(x16, nn::mode::eval), value_error);
        nn::conv2d k5(nn::conv2d_options{16, 16, 5, 1, 2, 1, 1, false, nn::conv_algorithm::winograd});
        CHECK_THROWS_AS(k5.forward(x16, nn::mode::eval), value_error);
    }
    CHECK(nn::parse_conv_algorithm("auto") == nn::conv_algorithm::automatic);
    CHECK(nn::parse_conv_algorithm("direct") == nn::conv_algorithm::direct);
    CHECK(nn::parse_conv_algorithm("winograd") == nn::conv_algorithm::winograd);
    CHECK(nn::parse_conv_algorithm("winograd-2x2") == nn::conv_algorithm::winograd_2x2);
    CHECK_THROWS_WITH(nn::parse_conv_algorithm("fft"),
                      Catch::Contains("'fft'") && Catch::Contains("auto, direct, winograd or winograd-2x2"));
    nn::sequential net;
    net.add("a", nn::conv2d(16, 16, 3, 1, 1)).add("b", nn::conv2d(16, 16, 1));
    CHECK(nn::set_conv_algorithm(net, nn::conv_algorithm::direct) == 2);
    CHECK(nn::find_all<nn::conv2d>(net)[1]->options().algorithm == nn::conv_algorithm::direct);
}

TEST_CASE("winograd geometry: planar where tile rows fill vectors, pixel-major otherwise", "[nn][conv2d][winograd]") {
    for (index_t w : {1, 8, 12, 13, 16, 17, 20, 21, 22, 23, 24, 28, 32, 33}) {
        INFO("width " << w);
        const bool planar = w >= 23 && w <= 32;
        CHECK(d::make_winograd(16, 16, 8, w).planar == planar);
        // F(4x4, 3x3): planar with two tile rows of 6-8 tiles per vector
        const auto g4 = d::make_winograd(16, 16, 8, w, 4);
        CHECK(g4.planar == (w >= 21 && w <= 32));
        CHECK(g4.tw == (w + 3) / 4);
        CHECK(g4.Wp == 4 * g4.tw + 2);
        CHECK(g4.points() == 36);
        if (g4.planar) CHECK(16 / g4.tw == 2);
        // images stacked to at least 64 GEMM columns (planar) or 32 rows (pixel-major)
        const index_t least = g4.planar ? 64 : 32;
        CHECK(g4.nb * g4.T >= least);
        CHECK((g4.nb - 1) * g4.T < least);
        // the weight gradient's geometry: pixel-major on every plane
        const auto gw = d::make_winograd(16, 16, 8, w, 4, false);
        CHECK_FALSE(gw.planar);
        CHECK(gw.nb * gw.T >= 32);
        CHECK((gw.nb - 1) * gw.T < 32);
        CHECK_FALSE(d::make_winograd(16, 16, 8, w, 2, false).planar);
    }
    CHECK(d::make_winograd(16, 16, 8, 8).nb == 1);
    CHECK_THROWS_AS(d::make_winograd(16, 16, 8, 8, 3), std::invalid_argument);
}
