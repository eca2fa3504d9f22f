// SPDX-License-Identifier: MIT
// CIFAR ResNets (He et al. 2016, sec. 4.2: 6n+2 layers, 16/32/64 channels) and a small 28x28 variant.
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

//! How a residual block matches shapes when it changes width or resolution (He et al. 2016):
//! option A zero-pads an x[:, :, ::2, ::2] identity (no parameters), option B projects with a
//! 1x1 strided convolution + normalization (parameters `shortcut.0.*`, `shortcut.1.*`).
enum class shortcut_kind { zero_pad, projection };

//! Options of the CIFAR-style ResNet family.
struct cifar_resnet_options {
    int depth = 20;                 //!< 6n + 2 (20, 32, 44, 56, 110)
    index_t num_classes = 10;
    index_t in_channels = 3;
    index_t width = 16;             //!< channels of the first stage; stages use w, 2w, 4w
    shortcut_kind shortcut = shortcut_kind::zero_pad;
    nn::norm_config norm{};
};

//! The basic block `conv3x3-norm-relu-conv3x3-norm (+ shortcut) -relu` with akamaster's
//! PyTorch names: conv1, bn1, conv2, bn2, shortcut.
template <class Norm>
nn::sequential cifar_basic_block(index_t in, index_t out, index_t stride, shortcut_kind kind, const nn::norm_config& cfg) {
    nn::sequential body;
    body.add("conv1", nn::conv2d(in, out, 3, stride, 1))
        .add("bn1", nn::norm_layer<Norm>(out, cfg))
        .add("", nn::relu())
        .add("conv2", nn::conv2d(out, out, 3, 1, 1))
        .add("bn2", nn::norm_layer<Norm>(out, cfg));
    nn::module_ptr shortcut;
    if (stride != 1 || in != out) {
        if (kind == shortcut_kind::zero_pad) {
            shortcut = nn::boxed(nn::zero_pad_shortcut(out, stride));
        } else {
            nn::sequential proj;
            proj.add(nn::conv2d(in, out, 1, stride, 0)).add(nn::norm_layer<Norm>(out, cfg));
            shortcut = nn::boxed(std::move(proj));
        }
    }
    nn::sequential block;
    block.add("", nn::residual(nn::boxed(std::move(body)), std::move(shortcut), "shortcut")).add("", nn::relu());
    return block;
}

//! CIFAR ResNet-(6n+2), exactly the layout (and tensor names) of the akamaster checkpoints:
//! conv1 3x3 -> bn1 -> relu -> layer1 (n blocks, w) -> layer2 (n, 2w, /2) -> layer3 (n, 4w, /2)
//! -> global average pool -> linear. Parameters are zero until reset_parameters(g) or a load.
template <class Norm>
nn::sequential cifar_resnet(const cifar_resnet_options& o) {
    if (o.depth < 8 || (o.depth - 2) % 6 != 0)
        shiftnorm::detail::fail("cifar_resnet", "depth", "6n + 2 with n >= 1 (8, 20, 32, 44, 56, 110)", o.depth);
    if (o.width <= 0) shiftnorm::detail::fail("cifar_resnet", "width", "> 0", o.width);
    const int n = (o.depth - 2) / 6;
    nn::sequential net;
    net.add("conv1", nn::conv2d(o.in_channels, o.width, 3, 1, 1))
        .add("bn1", nn::norm_layer<Norm>(o.width, o.norm))
        .add("", nn::relu());
    index_t in = o.width;
    for (int stage = 0; stage < 3; ++stage) {
        const index_t out = o.width << stage;
        nn::sequential layer;
        for (int b = 0; b < n; ++b) {
            layer.add(cifar_basic_block<Norm>(in, out, (b == 0 && stage > 0) ? 2 : 1, o.shortcut, o.norm));
            in = out;
        }
        net.add("layer" + std::to_string(stage + 1), std::move(layer));
    }
    net.add("", nn::global_avg_pool()).add("linear", nn::linear(in, o.num_classes));
    return net;
}

template <class Norm>
nn::sequential cifar_resnet(int depth, index_t num_classes = 10, const nn::norm_config& cfg = {}) {
    cifar_resnet_options o;
    o.depth = depth;
    o.num_classes = num_classes;
    o.norm = cfg;
    return cifar_resnet<Norm>(o);
}

//! A small 3-stage ResNet for 28x28 single-channel images (MNIST, Fashion-MNIST): the CIFAR
//! layout with projection shortcuts; 28 -> 14 -> 7 spatial, global pool, linear.
template <class Norm>
nn::sequential small_resnet(int depth = 8, index_t width = 16, index_t num_classes = 10, index_t in_channels = 1,
                            const nn::norm_config& cfg = {}) {
    cifar_resnet_options o;
    o.depth = depth;
    o.width = width;
    o.num_classes = num_classes;
    o.in_channels = in_channels;
    o.shortcut = shortcut_kind::projection;
    o.norm = cfg;
    return cifar_resnet<Norm>(o);
}

}  // namespace shiftnorm::models
