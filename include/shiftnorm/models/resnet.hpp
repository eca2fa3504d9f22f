// SPDX-License-Identifier: MIT
// torchvision ResNet-18/34/50 (He et al. 2016, table 1) with torchvision's tensor names.
#pragma once

#include <string>

#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/linear.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/pooling.hpp"
#include "shiftnorm/nn/residual.hpp"
#include "shiftnorm/nn/sequential.hpp"

namespace shiftnorm::models {

namespace detail {
template <class Norm>
nn::module_ptr tv_downsample(index_t in, index_t out, index_t stride, const nn::norm_config& cfg) {
    if (stride == 1 && in == out) return nullptr;
    nn::sequential d;
    d.add(nn::conv2d(in, out, 1, stride, 0)).add(nn::norm_layer<Norm>(out, cfg));
    return nn::boxed(std::move(d));
}
}  // namespace detail

//! torchvision BasicBlock: conv1 3x3/s, bn1, relu, conv2 3x3, bn2, + downsample(x), relu.
template <class Norm>
nn::sequential tv_basic_block(index_t in, index_t planes, index_t stride, const nn::norm_config& cfg) {
    nn::sequential body;
    body.add("conv1", nn::conv2d(in, planes, 3, stride, 1))
        .add("bn1", nn::norm_layer<Norm>(planes, cfg))
        .add("", nn::relu())
        .add("conv2", nn::conv2d(planes, planes, 3, 1, 1))
        .add("bn2", nn::norm_layer<Norm>(planes, cfg));
    nn::sequential block;
    block.add("", nn::residual(nn::boxed(std::move(body)), detail::tv_downsample<Norm>(in, planes, stride, cfg), "downsample"))
        .add("", nn::relu());
    return block;
}

//! torchvision Bottleneck (ResNet v1.5, stride on the 3x3): conv1 1x1, bn1, relu, conv2 3x3/s,
//! bn2, relu, conv3 1x1 (4 x planes), bn3, + downsample(x), relu.
template <class Norm>
nn::sequential tv_bottleneck(index_t in, index_t planes, index_t stride, const nn::norm_config& cfg) {
    const index_t out = planes * 4;
    nn::sequential body;
    body.add("conv1", nn::conv2d(in, planes, 1, 1, 0))
        .add("bn1", nn::norm_layer<Norm>(planes, cfg))
        .add("", nn::relu())
        .add("conv2", nn::conv2d(planes, planes, 3, stride, 1))
        .add("bn2", nn::norm_layer<Norm>(planes, cfg))
        .add("", nn::relu())
        .add("conv3", nn::conv2d(planes, out, 1, 1, 0))
        .add("bn3", nn::norm_layer<Norm>(out, cfg));
    nn::sequential block;
    block.add("", nn::residual(nn::boxed(std::move(body)), detail::tv_downsample<Norm>(in, out, stride, cfg), "downsample"))
        .add("", nn::relu());
    return block;
}

//! torchvision resnet18/34/50: conv1 7x7/2, bn1, relu, maxpool 3/2, layer1..4 (64, 128, 256,
//! 512 planes x width/64), global average pool, fc. Tensor names match torchvision's
//! state_dict, so its checkpoints load directly (converted to safetensors).
template <class Norm>
nn::sequential torchvision_resnet(int depth, index_t num_classes = 1000, index_t in_channels = 3,
                                  const nn::norm_config& cfg = {}, index_t width = 64) {
    int blocks[4];
    bool bottleneck = false;
    if (depth == 18) blocks[0] = 2, blocks[1] = 2, blocks[2] = 2, blocks[3] = 2;
    else if (depth == 34 || depth == 50) blocks[0] = 3, blocks[1] = 4, blocks[2] = 6, blocks[3] = 3, bottleneck = depth == 50;
    else shiftnorm::detail::fail("torchvision_resnet", "depth", "18, 34 or 50", depth);
    nn::sequential net;
    net.add("conv1", nn::conv2d(in_channels, width, 7, 2, 3))
        .add("bn1", nn::norm_layer<Norm>(width, cfg))
        .add("relu", nn::relu())
        .add("maxpool", nn::max_pool2d(3, 2, 1));
    index_t in = width;
    for (int stage = 0; stage < 4; ++stage) {
        const index_t planes = width << stage;
        nn::sequential layer;
        for (int b = 0; b < blocks[stage]; ++b) {
            const index_t stride = (b == 0 && stage > 0) ? 2 : 1;
            if (bottleneck) {
                layer.add(tv_bottleneck<Norm>(in, planes, stride, cfg));
                in = planes * 4;
            } else {
                layer.add(tv_basic_block<Norm>(in, planes, stride, cfg));
                in = planes;
            }
        }
        net.add("layer" + std::to_string(stage + 1), std::move(layer));
    }
    net.add("avgpool", nn::global_avg_pool()).add("fc", nn::linear(in, num_classes));
    return net;
}

}  // namespace shiftnorm::models
