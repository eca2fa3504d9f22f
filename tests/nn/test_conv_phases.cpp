// SPDX-License-Identifier: MIT
// The stride-2 input gradient on four phases (nn/conv_phases.hpp): against a double-precision
// reference, independent of the batch and the threads, across input sizes on one layer, hostile
// values, and the geometries that keep the column path.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "shiftnorm/nn/conv2d.hpp"
#include "support/conv_reference.hpp"

using namespace shiftnorm;
namespace d = shiftnorm::nn::detail;

namespace {
struct strided_case {
    index_t n, c, o, h, w, k, groups;
};

//! The input gradient's worst error against the double reference (conv_reference.hpp, stride 2).
double input_grad_error(const strided_case& s, const std::vector<float>& w, const tensor<float>& dy,
                        const tensor<float>& dx) {
    return test::conv_input_grad_error({s.n, s.c, s.o, s.h, s.w, s.k, s.groups, 2}, w, dy, dx);
}

nn::conv2d make(const strided_case& s) {
    nn::conv2d conv(nn::conv2d_options{s.c, s.o, s.k, 2, s.k / 2, 1, s.groups, false});
    conv.weight = test::randn(conv.weight.size(), unsigned(s.c * 3 + s.k));
    conv.set_input_grad(true);
    return conv;
}

tensor<float> random_tensor(shape4 sh, unsigned seed, float offset = 0.0f) {
    tensor<float> t(sh);
    const auto v = test::randn(std::size_t(t.numel()), seed, offset);
    std::copy(v.begin(), v.end(), t.data());
    return t;
}

bool phases_run() { return d::weight_grad_transposed(); }
}  // namespace

TEST_CASE("stride-2 input gradient on phases: matches a double reference", "[nn][conv2d][phases]") {
    // the ResNet downsampling shapes (Fashion-MNIST 28 -> 14 -> 7, CIFAR 32 -> 16 -> 8) and their
    // 1x1 projections, few channels, one-pixel outputs, a wide plane, groups
    const strided_case cases[] = {
        {2, 16, 32, 28, 28, 3, 1}, {2, 32, 64, 14, 14, 3, 1}, {2, 16, 32, 32, 32, 3, 1}, {2, 16, 32, 28, 28, 1, 1},
        {2, 32, 64, 14, 14, 1, 1}, {1, 3, 5, 6, 4, 3, 1},     {1, 4, 8, 2, 2, 3, 1},     {2, 2, 3, 4, 40, 3, 1},
        {2, 8, 16, 8, 8, 3, 2},    {1, 5, 7, 10, 6, 1, 1},
    };
    const int threads_before = nn::num_threads();
    nn::set_num_threads(1);
    for (const auto& s : cases) {
        INFO(s.n << "x" << s.c << "x" << s.h << "x" << s.w << " -> " << s.o << ", k " << s.k << ", groups " << s.groups);
        const nn::window2d g{s.k, s.k, 2, 2, s.k / 2, s.k / 2, 1, 1};
        CHECK(d::use_phase_dgrad(g, s.h, s.w, s.h / 2, s.w / 2) == phases_run());
        for (const float offset : {0.0f, 100.0f}) {
            INFO("offset " << offset);
            nn::conv2d conv = make(s);
            const tensor<float> x = random_tensor({s.n, s.c, s.h, s.w}, 5, offset);
            const auto& y = conv.forward(x, nn::mode::train);
            REQUIRE(y.shape() == shape4{s.n, s.o, s.h / 2, s.w / 2});
            const tensor<float> dy = random_tensor(y.shape(), 9, offset);
            const auto& dx = conv.backward(dy);
            REQUIRE(dx.shape() == x.shape());
            CHECK(input_grad_error(s, conv.weight, dy, dx) < 1e-5);
        }
    }
    if (!phases_run()) WARN("no AVX-512 kernel: the column path ran (checked against the same reference)");
    nn::set_num_threads(threads_before);
}

TEST_CASE("stride-2 input gradient on phases: an image's bits depend neither on its batch nor on the threads",
          "[nn][conv2d][phases][threads]") {
    const int threads_before = nn::num_threads();
    const strided_case s{7, 16, 32, 28, 28, 3, 1};
    nn::conv2d conv = make(s);
    const tensor<float> x = random_tensor({s.n, s.c, s.h, s.w}, 1);
    conv.forward(x, nn::mode::train);
    const tensor<float> dy = random_tensor({s.n, s.o, 14, 14}, 2);
    nn::set_num_threads(1);
    const tensor<float> one = conv.backward(dy);
    nn::set_num_threads(2);
    conv.forward(x, nn::mode::train);
    const tensor<float> two = conv.backward(dy);
    CHECK(std::memcmp(one.data(), two.data(), std::size_t(one.numel()) * sizeof(float)) == 0);
    // image 3 alone
    nn::conv2d single = make(s);
    tensor<float> x3({1, s.c, s.h, s.w}), dy3({1, s.o, 14, 14});
    std::copy(x.data() + 3 * x3.numel(), x.data() + 4 * x3.numel(), x3.data());
    std::copy(dy.data() + 3 * dy3.numel(), dy.data() + 4 * dy3.numel(), dy3.data());
    single.forward(x3, nn::mode::train);
    const auto& dx3 = single.backward(dy3);
    CHECK(std::memcmp(dx3.data(), one.data() + 3 * dx3.numel(), std::size_t(dx3.numel()) * sizeof(float)) == 0);
    nn::set_num_threads(threads_before);
}

TEST_CASE("stride-2 input gradient on phases: one layer across input sizes keeps its zero borders",
          "[nn][conv2d][phases]") {
    // 28 -> 14, then 8 -> 4, then 28 -> 14 again: the padded diff_dst buffer changes geometry; its
    // zero row and column must be rewritten each time (stale values there would leak into dx)
    nn::conv2d conv = make({2, 16, 32, 28, 28, 3, 1});
    for (const index_t h : {28, 8, 28, 16}) {
        INFO("plane " << h);
        const strided_case s{2, 16, 32, h, h, 3, 1};
        const tensor<float> x = random_tensor({2, 16, h, h}, unsigned(h));
        conv.forward(x, nn::mode::train);
        const tensor<float> dy = random_tensor({2, 32, h / 2, h / 2}, unsigned(h + 1), 50.0f);
        const auto& dx = conv.backward(dy);
        CHECK(input_grad_error(s, conv.weight, dy, dx) < 1e-5);
    }
}

TEST_CASE("stride-2 input gradient on phases: NaN and Inf reach exactly their taps; empty batch",
          "[nn][conv2d][phases]") {
    const strided_case s{2, 16, 32, 8, 8, 3, 1};
    nn::conv2d conv = make(s);
    const tensor<float> x = random_tensor({2, 16, 8, 8}, 3);
    conv.forward(x, nn::mode::train);
    tensor<float> dy = random_tensor({2, 32, 4, 4}, 4);
    dy(1, 5, 3, 3) = std::numeric_limits<float>::quiet_NaN();  // bottom-right: the padded row / column
    dy(0, 0, 0, 0) = std::numeric_limits<float>::infinity();
    dy(0, 7, 2, 1) = 1e30f;  // huge, but its products stay finite in float
    const auto& dx = conv.backward(dy);
    // the reference returns NaN if any dx value's finiteness differs from the definition's
    CHECK(input_grad_error(s, conv.weight, dy, dx) < 1e-5);
    int nonfinite = 0;
    for (index_t i = 0; i < dx.numel(); ++i) nonfinite += !std::isfinite(dx[i]);
    CHECK(nonfinite > 0);
    // empty batch
    tensor<float> x0({0, 16, 8, 8});
    conv.forward(x0, nn::mode::train);
    const auto& dx0 = conv.backward(tensor<float>({0, 32, 4, 4}));
    CHECK(dx0.shape() == x0.shape());
}

TEST_CASE("stride-2 input gradient: direct and winograd-2x2 keep the column path (their earlier bits)",
          "[nn][conv2d][phases]") {
    const strided_case s{2, 16, 32, 28, 28, 3, 1};
    nn::conv2d phases = make(s), direct = make(s), w2 = make(s);
    direct.set_algorithm(nn::conv_algorithm::direct);
    w2.set_algorithm(nn::conv_algorithm::winograd_2x2);
    const tensor<float> x = random_tensor({s.n, s.c, s.h, s.w}, 21);
    const tensor<float> dy = random_tensor({s.n, s.o, 14, 14}, 22);
    std::vector<tensor<float>> dx;
    for (nn::conv2d* c : {&phases, &direct, &w2}) {
        c->forward(x, nn::mode::train);
        dx.push_back(c->backward(dy));
        CHECK(input_grad_error(s, c->weight, dy, dx.back()) < 1e-5);
    }
    // the column path's sums (over channels per tap, then the taps) are the same for both flags
    CHECK(std::memcmp(dx[1].data(), dx[2].data(), std::size_t(dx[1].numel()) * sizeof(float)) == 0);
    if (phases_run())  // and another order than the phases' (over channel and tap in one sum)
        CHECK(std::memcmp(dx[0].data(), dx[1].data(), std::size_t(dx[0].numel()) * sizeof(float)) != 0);
}

TEST_CASE("stride-2 input gradient: odd planes, dilation and other paddings keep the column path",
          "[nn][conv2d][phases]") {
    CHECK_FALSE(d::use_phase_dgrad(nn::window2d{3, 3, 2, 2, 1, 1, 1, 1}, 7, 8, 4, 4));   // odd height
    CHECK_FALSE(d::use_phase_dgrad(nn::window2d{3, 3, 2, 2, 0, 0, 1, 1}, 8, 8, 3, 3));   // no padding
    CHECK_FALSE(d::use_phase_dgrad(nn::window2d{3, 3, 2, 2, 2, 2, 2, 2}, 8, 8, 4, 4));   // dilation 2
    CHECK_FALSE(d::use_phase_dgrad(nn::window2d{3, 3, 1, 1, 1, 1, 1, 1}, 8, 8, 8, 8));   // stride 1
    CHECK_FALSE(d::use_phase_dgrad(nn::window2d{5, 5, 2, 2, 2, 2, 1, 1}, 8, 8, 4, 4));   // 5x5
    for (const strided_case s : {strided_case{2, 4, 6, 7, 9, 3, 1}, strided_case{1, 3, 4, 5, 5, 1, 1}}) {
        INFO(s.h << "x" << s.w << ", k " << s.k);
        nn::conv2d conv = make(s);
        const tensor<float> x = random_tensor({s.n, s.c, s.h, s.w}, 11);
        const auto& y = conv.forward(x, nn::mode::train);
        const tensor<float> dy = random_tensor(y.shape(), 12);
        CHECK(input_grad_error(s, conv.weight, dy, conv.backward(dy)) < 1e-5);
    }
}
