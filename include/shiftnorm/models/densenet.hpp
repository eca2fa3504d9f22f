// SPDX-License-Identifier: MIT
// DenseNet-BC for CIFAR (Huang et al. 2017, sec. 3: bottleneck layers, compression 0.5).
#pragma once

#include <string>

#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/concat.hpp"
#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/linear.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/pooling.hpp"
#include "shiftnorm/nn/sequential.hpp"

namespace shiftnorm::models {

//! DenseNet-BC-`depth`-`growth` (e.g. 100-12): conv0 3x3 (2k channels), three dense blocks of
//! n = (depth-4)/6 bottleneck layers [norm1, relu, conv1 1x1 (4k), norm2, relu, conv2 3x3
//! (k)] each concatenated to its input, transitions [norm, relu, conv 1x1 (compress 1/2),
//! avg pool 2] between blocks, norm5, relu, global pool, classifier. Tensor names follow
//! torchvision's DenseNet (`features.denseblock1.denselayer1.norm1.weight`, `classifier`).
template <class Norm>
nn::sequential densenet_bc(int depth, index_t growth, index_t num_classes = 10, index_t in_channels = 3,
                           const nn::norm_config& cfg = {}) {
    if (depth < 10 || (depth - 4) % 6 != 0)
        shiftnorm::detail::fail("densenet_bc", "depth", "6n + 4 with n >= 1 (e.g. 40, 100, 190)", depth);
    if (growth <= 0) shiftnorm::detail::fail("densenet_bc", "growth", "> 0", growth);
    const int n = (depth - 4) / 6;
    nn::sequential features;
    index_t c = 2 * growth;
    features.add("conv0", nn::conv2d(in_channels, c, 3, 1, 1));
    for (int b = 0; b < 3; ++b) {
        nn::sequential block;
        for (int l = 0; l < n; ++l) {
            nn::sequential body;
            body.add("norm1", nn::norm_layer<Norm>(c, cfg))
                .add("relu1", nn::relu())
                .add("conv1", nn::conv2d(c, 4 * growth, 1, 1, 0))
                .add("norm2", nn::norm_layer<Norm>(4 * growth, cfg))
                .add("relu2", nn::relu())
                .add("conv2", nn::conv2d(4 * growth, growth, 3, 1, 1));
            block.add("denselayer" + std::to_string(l + 1), nn::dense_concat(std::move(body)));
            c += growth;
        }
        features.add("denseblock" + std::to_string(b + 1), std::move(block));
        if (b < 2) {
            const index_t out = c / 2;
            nn::sequential trans;
            trans.add("norm", nn::norm_layer<Norm>(c, cfg))
                .add("relu", nn::relu())
                .add("conv", nn::conv2d(c, out, 1, 1, 0))
                .add("pool", nn::avg_pool2d(2, 2));
            features.add("transition" + std::to_string(b + 1), std::move(trans));
            c = out;
        }
    }
    features.add("norm5", nn::norm_layer<Norm>(c, cfg)).add("", nn::relu());
    nn::sequential net;
    net.add("features", std::move(features)).add("", nn::global_avg_pool()).add("classifier", nn::linear(c, num_classes));
    return net;
}

}  // namespace shiftnorm::models
