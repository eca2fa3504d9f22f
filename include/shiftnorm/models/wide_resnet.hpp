// SPDX-License-Identifier: MIT
// Wide residual networks WRN-d-k (Zagoruyko & Komodakis 2016, table 1), pre-activation blocks.
#pragma once

#include <string>

#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/dropout.hpp"
#include "shiftnorm/nn/linear.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/pooling.hpp"
#include "shiftnorm/nn/residual.hpp"
#include "shiftnorm/nn/sequential.hpp"

namespace shiftnorm::models {

//! Pre-activation wide block. Equal widths: x + conv2(relu(bn2(conv1(relu(bn1(x)))))). Width
//! or stride change: a = relu(bn1(x)); conv2(relu(bn2(conv1(a)))) + convShortcut(a) (the
//! reference implementation's `equalInOut` logic and tensor names).
template <class Norm>
nn::sequential wide_block(index_t in, index_t out, index_t stride, double drop, const nn::norm_config& cfg) {
    const bool equal = in == out && stride == 1;
    nn::sequential body;
    if (equal) body.add("bn1", nn::norm_layer<Norm>(in, cfg)).add("", nn::relu());
    body.add("conv1", nn::conv2d(in, out, 3, stride, 1)).add("bn2", nn::norm_layer<Norm>(out, cfg)).add("", nn::relu());
    if (drop > 0) body.add("", nn::dropout(drop));
    body.add("conv2", nn::conv2d(out, out, 3, 1, 1));
    nn::sequential block;
    if (equal) {
        block.add("", nn::residual(nn::boxed(std::move(body))));
    } else {
        block.add("bn1", nn::norm_layer<Norm>(in, cfg))
            .add("", nn::relu())
            .add("", nn::residual(nn::boxed(std::move(body)), nn::boxed(nn::conv2d(in, out, 1, stride, 0)), "convShortcut"));
    }
    return block;
}

//! WRN-depth-k: conv1 3x3 (16), block1..3 (`blockI.layer.J`, n = (depth-4)/6 blocks of widths
//! 16k, 32k, 64k, strides 1, 2, 2), bn1, relu, global pool, fc.
template <class Norm>
nn::sequential wide_resnet(int depth, int k, index_t num_classes = 10, index_t in_channels = 3,
                           const nn::norm_config& cfg = {}, double drop = 0.0) {
    if (depth < 10 || (depth - 4) % 6 != 0) shiftnorm::detail::fail("wide_resnet", "depth", "6n + 4 (e.g. 16, 28, 40)", depth);
    if (k <= 0) shiftnorm::detail::fail("wide_resnet", "k", "> 0", k);
    const int n = (depth - 4) / 6;
    nn::sequential net;
    net.add("conv1", nn::conv2d(in_channels, 16, 3, 1, 1));
    index_t in = 16;
    for (int g = 0; g < 3; ++g) {
        const index_t out = index_t(16 * k) << g;
        nn::sequential layer;
        for (int b = 0; b < n; ++b) {
            layer.add(wide_block<Norm>(in, out, (b == 0 && g > 0) ? 2 : 1, drop, cfg));
            in = out;
        }
        nn::sequential grp;
        grp.add("layer", std::move(layer));
        net.add("block" + std::to_string(g + 1), std::move(grp));
    }
    net.add("bn1", nn::norm_layer<Norm>(in, cfg)).add("", nn::relu()).add("", nn::global_avg_pool()).add("fc", nn::linear(in, num_classes));
    return net;
}

}  // namespace shiftnorm::models
