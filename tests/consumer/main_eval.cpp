// SPDX-License-Identifier: MIT
// Consumer of the engine, io, corrupt and eval components (used by the consumer tests): corrupts a
// PNG-encoded image, decodes it, evaluates a small network on it. It links only when each
// component brings its libraries (libpng/zlib for PNG, libjpeg for image_io, OpenMP for the engine).
#include <shiftnorm/corrupt.hpp>
#include <shiftnorm/data/image_io.hpp>
#include <shiftnorm/eval/evaluate.hpp>
#include <shiftnorm/engine.hpp>
#include <shiftnorm/shiftnorm.hpp>

#include <cstdio>
#include <random>

int main() {
    using namespace shiftnorm;
    data::image_dataset ds;
    ds.channels = 1;
    ds.height = ds.width = 28;
    ds.classes = {"a", "b"};
    std::vector<std::uint8_t> gray(28 * 28);
    for (std::size_t i = 0; i < gray.size(); ++i) gray[i] = std::uint8_t(i * 7 % 251);
    for (int i = 0; i < 4; ++i) {
        const corrupt::const_image_view src{gray.data(), 28, 28, 1};
        const auto img = corrupt::corrupt("gaussian_noise", 1 + i, src, 0, {corrupt::param_table::mnist});
        const auto png = data::encode_png(img.data(), 28, 28, 1);     // io: libpng + zlib
        const auto back = data::decode_png(png.data(), png.size());
        if (back.pixels != std::vector<std::uint8_t>(img.data(), img.data() + img.size())) {
            std::printf("consumer_eval: PNG round trip changed the image\n");
            return 1;
        }
        ds.pixels.insert(ds.pixels.end(), back.pixels.begin(), back.pixels.end());
        ds.labels.push_back(i % 2);
    }
    models::model_spec spec;
    spec.name = "small-resnet8";
    spec.num_classes = 2;
    spec.in_channels = 1;
    auto net = models::make_model<batch_norm<population>>(spec);
    std::mt19937_64 g(1);
    net.reset_parameters(g);
    const auto r = eval::evaluate(net, ds, data::normalization{}, 2);  // engine (+ OpenMP)
    std::printf("consumer_eval ok: %lld images, accuracy %.2f, loss %.3f\n", static_cast<long long>(r.images),
                r.accuracy, r.loss);
    return r.images == 4 && r.loss == r.loss ? 0 : 1;
}
