// SPDX-License-Identifier: MIT
// nn::infer: a large eval batch run depth-first in chunks gives the bits of one forward call.
#include <catch2/catch.hpp>

#include <cstring>
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
    check_chunks<batch_norm<population>>("resnet20", 3, 4);
    check_chunks<batch_norm<population>>("small-resnet8", 1, 4);
    check_chunks<batch_norm<population>>("vgg11", 3, 4);
    check_chunks<batch_norm<population>>("densenet-bc-16-4", 3, 0);
    check_chunks<batch_norm<population>>("wrn-16-2", 3, 0);
    check_chunks<batch_norm<population>>("resnet18", 3, 8);
    check_chunks<group_norm<>>("resnet20", 3, 8);
    check_chunks<robust_norm<>>("resnet20", 3, 4);
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
