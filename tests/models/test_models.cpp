// SPDX-License-Identifier: MIT
// Reference networks: parameter counts vs published/PyTorch figures, shapes, names, the pretrained checkpoints.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "support/skip.hpp"
#include "shiftnorm/data/safetensors.hpp"
#include "shiftnorm/models/zoo.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/norm/robust_norm.hpp"
#include "shiftnorm/train/checkpoint.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using bn = batch_norm<population>;

namespace {
nn::sequential build(const std::string& name, index_t classes = 10) {
    models::model_spec s;
    s.name = name;
    s.num_classes = classes;
    return models::make_model<bn>(s);
}
}  // namespace

TEST_CASE("parameter counts match the published architectures", "[models]") {
    // torchvision model docs: resnet18 11,689,512 and resnet50 25,557,032 (ImageNet, 1000 classes).
    CHECK(build("resnet18", 1000).parameters().trainable_count() == 11689512);
    CHECK(build("resnet50", 1000).parameters().trainable_count() == 25557032);
    // Wide ResNet paper / reference code: WRN-28-10 on CIFAR-10 has 36,479,194 parameters.
    CHECK(build("wrn-28-10").parameters().trainable_count() == 36479194);
    // DenseNet-BC (k=12, L=100) on CIFAR-10: 769,162 parameters (reference implementations).
    CHECK(build("densenet-bc-100-12").parameters().trainable_count() == 769162);
}

TEST_CASE("CIFAR ResNets have exactly the tensors of the shared pretrained checkpoints", "[models][shared]") {
    for (int depth : {20, 32, 44, 56}) {
        const std::string path = std::string(SHIFTNORM_SHARED_DIR) + "/data/pretrained/resnet" + std::to_string(depth) +
                                 "-cifar10.safetensors";
        SHIFTNORM_SKIP_UNLESS(std::ifstream(path).good(), path << " not present");
        auto net = build("resnet" + std::to_string(depth));
        const auto f = data::read_safetensors(path);
        const auto rep = train::load_state_dict(net, f, true);  // strict: same names and shapes
        CHECK(rep.missing.empty());
        CHECK(rep.unexpected.empty());
        index_t in_file = 0;
        for (const auto& kv : f.tensors)
            if (kv.first.find("running_") == std::string::npos) in_file += kv.second.numel();
        CHECK(net.parameters().trainable_count() == in_file);
    }
}

TEST_CASE("every zoo network runs forward and backward on a tiny batch", "[models]") {
    struct item {
        const char* name;
        shape4 in;
        index_t width;
    };
    const item items[] = {{"resnet20", {2, 3, 32, 32}, 4},        {"small-resnet8", {2, 1, 28, 28}, 4},
                          {"resnet18", {2, 3, 64, 64}, 8},        {"resnet50", {2, 3, 64, 64}, 4},
                          {"vgg11", {2, 3, 32, 32}, 4},           {"vgg19", {2, 3, 32, 32}, 4},
                          {"densenet-bc-16-4", {2, 3, 32, 32}, 0}, {"wrn-16-2", {2, 3, 32, 32}, 0}};
    for (const auto& it : items) {
        INFO(it.name);
        models::model_spec s;
        s.name = it.name;
        s.in_channels = it.in.c;
        s.width = it.width;
        auto net = models::make_model<bn>(s);
        nn::rng_type g(1);
        net.reset_parameters(g);
        const auto x = test::random_tensor(it.in, 3);
        REQUIRE(net.output_shape(it.in) == shape4{2, 10, 1, 1});
        const auto& y = net.forward(x, nn::mode::train);
        REQUIRE(y.shape() == shape4{2, 10, 1, 1});
        for (float v : y) REQUIRE(std::isfinite(v));
        net.set_input_grad(true);
        const auto& dx = net.backward(tensor<float>(y.shape(), 0.1f));
        CHECK(dx.shape() == it.in);
    }
    CHECK_THROWS_AS(build("resnet21"), value_error);
    CHECK_THROWS_AS(build("vgg12"), value_error);
    CHECK_THROWS_AS(build("nonsense"), value_error);
}

TEST_CASE("torchvision tensor names", "[models]") {
    const auto ps = build("resnet50", 1000).parameters();
    CHECK(ps.params.front().name == "conv1.weight");
    bool has_downsample = false, has_conv3 = false;
    for (const auto& p : ps.params) {
        has_downsample |= p.name == "layer2.0.downsample.1.running_var";
        has_conv3 |= p.name == "layer4.2.conv3.weight";
    }
    CHECK(has_downsample);
    CHECK(has_conv3);
    CHECK(ps.params.back().name == "fc.bias");
    // torchvision's resnet50 state_dict: 267 float tensors + 53 num_batches_tracked = 320 keys.
    CHECK(ps.params.size() + ps.counters.size() == 320);
}

TEST_CASE("networks are generic over the normalization layer (GroupNorm)", "[models]") {
    models::model_spec s;
    s.name = "resnet20";
    s.width = 8;
    s.norm.groups = 4;
    auto net = models::make_model<group_norm<>>(s);
    nn::rng_type g(2);
    net.reset_parameters(g);
    const auto x = test::random_tensor({2, 3, 16, 16}, 1);
    const auto& y = net.forward(x, nn::mode::eval);
    CHECK(y.shape() == shape4{2, 10, 1, 1});
    const auto ps = net.parameters();
    CHECK(ps.counters.empty());  // no running statistics
    CHECK(ps.params[1].name == "bn1.weight");
}

TEST_CASE("networks are generic over the normalization layer (RobustNorm)", "[models]") {
    models::model_spec s;
    s.name = "resnet20";
    s.width = 4;
    auto net = models::make_model<robust_norm<>>(s);
    nn::rng_type g(3);
    net.reset_parameters(g);
    const auto x = test::random_tensor({2, 3, 16, 16}, 2);
    const auto& y = net.forward(x, nn::mode::train);
    REQUIRE(y.shape() == shape4{2, 10, 1, 1});
    net.set_input_grad(true);
    CHECK(net.backward(tensor<float>(y.shape(), 0.1f)).shape() == x.shape());
    bool has_range = false;
    for (const auto& p : net.parameters().params) has_range |= p.name == "bn1.running_range";
    CHECK(has_range);
    CHECK(net.forward(x, nn::mode::eval).shape() == shape4{2, 10, 1, 1});
}
