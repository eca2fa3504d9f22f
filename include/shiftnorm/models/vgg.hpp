// SPDX-License-Identifier: MIT
// VGG-11/13/16/19 with batch normalization (Simonyan & Zisserman 2015, table 1), CIFAR head.
#pragma once

#include <vector>

#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/linear.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/pooling.hpp"
#include "shiftnorm/nn/sequential.hpp"

namespace shiftnorm::models {

//! Channel plan of VGG-`depth` (configurations A, B, D, E); 0 marks a 2x2 max pool.
inline std::vector<int> vgg_plan(int depth) {
    switch (depth) {
        case 11: return {64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
        case 13: return {64, 64, 0, 128, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0};
        case 16: return {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0};
        case 19: return {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0};
        default: shiftnorm::detail::fail("vgg_plan", "depth", "11, 13, 16 or 19", depth);
    }
}

//! VGG-BN as torchvision's `features` (conv3x3 with bias, norm, relu; max pool 2/2, indexed
//! names features.0, features.1, ...) followed by the common CIFAR head: global average pool
//! and one linear `classifier` (512 x width/64 -> classes). width scales every stage (64 =
//! the paper). On 32x32 inputs the five pools leave 1x1 maps.
template <class Norm>
nn::sequential vgg_bn(int depth, index_t num_classes = 10, index_t in_channels = 3, const nn::norm_config& cfg = {},
                      index_t width = 64) {
    if (width <= 0) shiftnorm::detail::fail("vgg_bn", "width", "> 0", width);
    nn::sequential features;
    index_t in = in_channels;
    for (int c : vgg_plan(depth)) {
        if (c == 0) {
            features.add(nn::max_pool2d(2, 2));
            continue;
        }
        const index_t out = std::max<index_t>(1, index_t(c) * width / 64);
        features.add(nn::conv2d(in, out, 3, 1, 1, true)).add(nn::norm_layer<Norm>(out, cfg)).add(nn::relu());
        in = out;
    }
    nn::sequential net;
    net.add("features", std::move(features)).add("", nn::global_avg_pool()).add("classifier", nn::linear(in, num_classes));
    return net;
}

}  // namespace shiftnorm::models
