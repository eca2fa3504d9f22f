// SPDX-License-Identifier: MIT
// Shared fixtures of the eval tests: class-tinted noise images and a small BN network with
// random (non-trivial) population statistics.
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>

#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"

namespace shiftnorm::test {

//! n class-tinted 16x16 RGB noise images (10 classes; image i has class i % 10).
inline data::image_dataset tinted(int n, std::uint32_t seed = 5) {
    data::image_dataset d;
    d.channels = 3, d.height = 16, d.width = 16, d.classes = data::numbered_classes(10);
    std::mt19937 g(seed);
    for (int i = 0; i < n; ++i) {
        d.labels.push_back(i % 10);
        for (int c = 0; c < 3; ++c)
            for (int q = 0; q < 256; ++q) d.pixels.push_back(std::uint8_t(std::min(255, 40 + 15 * (i % 10) + 30 * c + int(g() % 60))));
    }
    return d;
}

//! small_resnet(depth, width 4, 10 classes, 3 channels) with seeded weights and running means in
//! [-0.5, 0.5), running variances in [0.5, 2.5).
template <class Norm>
nn::sequential net_of(int depth = 8) {
    auto net = models::small_resnet<Norm>(depth, 4, 10, 3);
    nn::rng_type g(11);
    net.reset_parameters(g);
    std::mt19937 s(3);
    for (auto& p : net.parameters().params)
        if (p.name.find("running_var") != std::string::npos)
            for (index_t i = 0; i < p.size; ++i) p.value[i] = 0.5f + float(s() % 100) / 50.0f;
        else if (p.name.find("running_mean") != std::string::npos)
            for (index_t i = 0; i < p.size; ++i) p.value[i] = float(s() % 100) / 100.0f - 0.5f;
    return net;
}

}  // namespace shiftnorm::test
