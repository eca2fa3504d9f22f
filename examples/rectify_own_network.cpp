// SPDX-License-Identifier: MIT
// Example: rectify the BN statistics of your own network with 32 unlabeled target images.
//
//   rectify_own_network WEIGHTS.safetensors [fog] [3]
// WEIGHTS: a small-resnet8 trained on Fashion-MNIST (e.g. by scripts/main_job.sh, in results/).
#include <cstdio>
#include <string>

#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/data/idx.hpp"
#include "shiftnorm/models/zoo.hpp"
#include "shiftnorm/engine.hpp"
#include "shiftnorm/shiftnorm.hpp"
#include "shiftnorm/train/trainer.hpp"

using namespace shiftnorm;

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s WEIGHTS.safetensors [corruption] [severity]\n", argv[0]);
        return 2;
    }
    const std::string corruption = argc > 2 ? argv[2] : "fog";
    const int severity = argc > 3 ? std::atoi(argv[3]) : 3;

    // 1. Your network, with BN layers whose statistics can be rectified, and its weights.
    using bn = batch_norm<rectified>;
    models::model_spec spec;
    spec.name = "small-resnet8";
    spec.num_classes = 10;
    spec.in_channels = 1;
    auto net = models::make_model<bn>(spec);
    train::load_weights(net, argv[1]);

    // 2. A shifted target domain: the Fashion-MNIST test set under a corruption (in memory).
    auto test = data::load_mnist_dir("/usr/share/datasets/fashion-mnist", false, data::fashion_mnist_classes());
    auto target = test;
    for (index_t i = 0; i < test.size(); ++i) {  // the dataset is 1x28x28: HWC == CHW for gray
        const corrupt::const_image_view src{test.image(i), 28, 28, 1};
        const auto img = corrupt::corrupt(corruption, severity, src, /*seed*/ 0, {corrupt::param_table::mnist});
        std::copy_n(img.data(), test.image_size(), target.pixels.data() + i * test.image_size());
    }
    const auto norm = data::normalization::fashion_mnist();  // the input normalization of training

    // 3. Before: the source (training) statistics.
    const double before = train::evaluate(net, target, norm).accuracy;

    // 4. Rectify: ONE forward pass in rectify mode over 32 unlabeled target images. Every BN
    //    layer replaces its mean / variance with those of the batch, layer after layer.
    std::vector<index_t> idx;
    for (index_t i = 0; i < 32; ++i) idx.push_back(i * 311 % target.size());
    tensor<float> x;
    std::vector<std::int32_t> unused_labels;
    data::make_batch(target, idx, 0, 32, norm, {}, nullptr, x, unused_labels);
    net.forward(x, nn::mode::rectify);

    // 5. After: inference uses the rectified statistics (reset() on a layer's source undoes it).
    const double after = train::evaluate(net, target, norm).accuracy;
    std::printf("%s severity %d: accuracy %.2f%% with source BN statistics, %.2f%% after rectification "
                "from 32 unlabeled images\n", corruption.c_str(), severity, 100 * before, 100 * after);
    return 0;
} catch (const shiftnorm::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
}
