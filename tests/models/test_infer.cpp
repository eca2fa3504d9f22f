// SPDX-License-Identifier: MIT
// nn::infer: a large eval batch run depth-first in chunks gives the bits of one forward call.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "shiftnorm/models/zoo.hpp"
#include "shiftnorm/nn/infer.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/norm/robust_norm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;

namespace {
template <class Norm>
nn::sequential trained_net(const std::string& name, index_t in_c, index_t width, std::uint64_t seed) {
    models::model_spec s;
    s.name = name;
    s.in_channels = in_c;
    s.width = width;
    auto net = models::make_model<Norm>(s);
    nn::rng_type g(seed);
    net.reset_parameters(g);
    // two training passes give non-trivial running statistics
    for (int i = 0; i < 2; ++i) net.forward(test::random_tensor({8, in_c, 16, 16}, seed + i), nn::mode::train);
    return net;
}

template <class Norm>
struct norm_tag {
    using type = Norm;
};
//! The networks these tests cover: eight networks, three normalizations (name, input channels, width).
template <class F>
void for_each_network(F&& f) {
    f(norm_tag<batch_norm<population>>{}, "resnet20", 3, 4);
    f(norm_tag<batch_norm<population>>{}, "small-resnet8", 1, 4);
    f(norm_tag<batch_norm<population>>{}, "vgg11", 3, 4);
    f(norm_tag<batch_norm<population>>{}, "densenet-bc-16-4", 3, 0);
    f(norm_tag<batch_norm<population>>{}, "wrn-16-2", 3, 0);
    f(norm_tag<batch_norm<population>>{}, "resnet18", 3, 8);
    f(norm_tag<group_norm<>>{}, "resnet20", 3, 8);
    f(norm_tag<robust_norm<>>{}, "resnet20", 3, 4);
}

bool same_bits(const tensor<float>& a, const tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), std::size_t(a.numel()) * sizeof(float)) == 0;
}

template <class Norm>
void check_chunks(const std::string& name, index_t in_c, index_t width) {
    INFO(name);
    auto net = trained_net<Norm>(name, in_c, width, 7);
    const auto x = test::random_tensor({11, in_c, 16, 16}, 3);
    const tensor<float> whole = net.forward(x, nn::mode::eval);
    for (index_t chunk : {1, 3, 4, 10, 11, 64, 0}) {
        INFO("chunk " << chunk);
        tensor<float> y;
        nn::infer(net, x, nn::mode::eval, y, chunk);
        CHECK(same_bits(y, whole));
    }
}
}  // namespace

TEST_CASE("nn::infer in chunks gives the bits of one eval forward", "[models][infer]") {
    for_each_network([](auto norm, const char* name, index_t in_c, index_t width) {
        check_chunks<typename decltype(norm)::type>(name, in_c, width);
    });
}

TEST_CASE("nn::infer with inference fusion at the CIFAR widths (Winograd layers), NaN and Inf inputs", "[models][infer]") {
    // width 16: 16/32/64 channels on 32/16/8 planes, the convolutions on Winograd (AVX-512) with
    // the batch norms and ReLUs folded into them
    auto net = trained_net<batch_norm<population>>("resnet20", 3, 16, 9);
    auto x = test::random_tensor({5, 3, 32, 32}, 8, 0.5, 2.0);
    x.data()[100] = std::numeric_limits<float>::quiet_NaN();
    x.data()[3 * 1024 + 7] = std::numeric_limits<float>::infinity();
    const tensor<float> whole = net.forward(x, nn::mode::eval);
    for (index_t chunk : {2, 0}) {
        INFO("chunk " << chunk);
        tensor<float> y;
        nn::infer(net, x, nn::mode::eval, y, chunk);
        CHECK(same_bits(y, whole));
    }
    CHECK(std::isnan(whole.data()[0]));  // the NaN image stays NaN, the others finite
    CHECK(std::isfinite(whole.data()[4 * 10]));
}

TEST_CASE("nn::infer runs batch-statistics modes over the whole batch", "[models][infer]") {
    auto net = trained_net<batch_norm<population>>("resnet20", 3, 4, 5);
    const auto x = test::random_tensor({9, 3, 16, 16}, 4);
    const tensor<float> whole = net.forward(x, nn::mode::batch);
    tensor<float> y;
    nn::infer(net, x, nn::mode::batch, y, 2);  // a chunk would change the batch statistics
    CHECK(same_bits(y, whole));
    // and chunks of a batch-statistics pass really differ: the test above can fail
    tensor<float> first_two(shape4{2, 3, 16, 16});
    std::memcpy(first_two.data(), x.data(), std::size_t(first_two.numel()) * sizeof(float));
    const tensor<float>& part = net.forward(first_two, nn::mode::batch);
    CHECK(std::memcmp(part.data(), whole.data(), std::size_t(part.numel()) * sizeof(float)) != 0);
    CHECK_FALSE(nn::per_image_mode(nn::mode::batch));
    CHECK_FALSE(nn::per_image_mode(nn::mode::train));
    CHECK_FALSE(nn::per_image_mode(nn::mode::rectify));
    CHECK(nn::per_image_mode(nn::mode::eval));
}

TEST_CASE("nn::infer chunk size and arguments", "[models][infer]") {
    CHECK(nn::infer_chunk({500, 3, 32, 32}, 1) == 42);
    CHECK(nn::infer_chunk({500, 3, 32, 32}, 16) == 64);
    CHECK(nn::infer_chunk({256, 3, 224, 224}, 2) == 8);
    CHECK(nn::infer_chunk({5, 3, 32, 32}, 1) == 5);
    CHECK(nn::infer_chunk({0, 3, 32, 32}, 1) == 1);
    auto net = trained_net<batch_norm<population>>("resnet20", 3, 4, 6);
    tensor<float> y;
    CHECK_THROWS_AS(nn::infer(net, test::random_tensor({2, 3, 16, 16}, 1), nn::mode::eval, y, -1), value_error);
}

namespace {
//! A network that has run a larger batch (its layers keep their larger buffers) gives the bits
//! of a fresh copy on a smaller batch, in eval and in training mode (outputs, input gradients,
//! parameter gradients): no layer reads stale values from a reused buffer.
template <class Norm>
void check_reuse(const std::string& name, index_t in_c, index_t width) {
    INFO(name);
    auto used = trained_net<Norm>(name, in_c, width, 5);
    auto fresh = trained_net<Norm>(name, in_c, width, 5);
    const auto big = test::random_tensor({9, in_c, 16, 16}, 11, 0.5, 2.0);
    const auto small = test::random_tensor({3, in_c, 16, 16}, 12);
    // eval: big, small, big again
    const float* out_big = used.forward(big, nn::mode::eval).data();
    const tensor<float> y_small = used.forward(small, nn::mode::eval);
    CHECK(used.forward(small, nn::mode::eval).data() == out_big);  // the output buffer was kept
    CHECK(same_bits(y_small, fresh.forward(small, nn::mode::eval)));
    CHECK(same_bits(used.forward(big, nn::mode::eval), fresh.forward(big, nn::mode::eval)));
    // training: a big batch forward + backward first on `used` only, then the small one on both
    used.set_input_grad(true);
    fresh.set_input_grad(true);
    used.zero_grad();
    const tensor<float>& yb = used.forward(big, nn::mode::train);
    used.backward(test::random_tensor(yb.shape(), 13));
    used.zero_grad();
    fresh.zero_grad();
    const tensor<float> ya = used.forward(small, nn::mode::train);
    const tensor<float> yf = fresh.forward(small, nn::mode::train);
    CHECK(same_bits(ya, yf));
    const auto dy = test::random_tensor(ya.shape(), 14);
    const tensor<float> dxa = used.backward(dy);
    const tensor<float> dxf = fresh.backward(dy);
    CHECK(same_bits(dxa, dxf));
    const auto pa = used.parameters().trainable(), pf = fresh.parameters().trainable();
    REQUIRE(pa.size() == pf.size());
    for (std::size_t i = 0; i < pa.size(); ++i) {
        INFO(pa[i].name);
        CHECK(std::memcmp(pa[i].grad, pf[i].grad, std::size_t(pa[i].size) * sizeof(float)) == 0);
    }
}
}  // namespace

TEST_CASE("layers reuse their buffers when a smaller batch follows: same bits as a fresh network", "[models][infer]") {
    for_each_network([](auto norm, const char* name, index_t in_c, index_t width) {
        check_reuse<typename decltype(norm)::type>(name, in_c, width);
    });
}
