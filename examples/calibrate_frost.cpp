// SPDX-License-Identifier: MIT
// Calibrates the procedural frost against the reference's texture photographs on what matters:
// the accuracy a pretrained network keeps, severity by severity (eval/frost_calibration.hpp).
//
//   calibrate_frost WEIGHTS CIFAR10_DIR FROST_DIR [train|test] [N] [C1,C2,...] [--model NAME]
//
// WEIGHTS: a CIFAR-10 network in safetensors (PyTorch names; e.g. resnet20-cifar10.safetensors).
// CIFAR10_DIR: the CIFAR-10 binary batches (data_batch_*.bin, test_batch.bin) or an image folder
// with train/ and test/. FROST_DIR: frost1.png ... frost6.jpg. The split defaults to train (so the
// test split stays free for checking), N to 1000 images (a seeded subset over all classes), the
// candidate contrasts to 0.8,1.0,1.1,1.15,1.2,1.4. Prints a table of accuracy per severity.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/data/cifar.hpp"
#include "shiftnorm/data/image_folder.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/eval/frost_calibration.hpp"
#include "shiftnorm/models/zoo.hpp"
#include "shiftnorm/shiftnorm.hpp"
#include "shiftnorm/train/checkpoint.hpp"

using namespace shiftnorm;

namespace {
data::image_dataset load_cifar10(const std::string& dir, bool train) {
    namespace fs = std::filesystem;
    if (fs::exists(fs::path(dir) / "test_batch.bin")) return data::load_cifar10_bin(dir, train);
    return data::load_image_folder((fs::path(dir) / (train ? "train" : "test")).string(), 3);
}
std::vector<double> parse_list(const std::string& s) {
    std::vector<double> v;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, ',');) {
        char* end = nullptr;
        const double x = std::strtod(t.c_str(), &end);
        if (t.empty() || *end != '\0') throw value_error("contrast list: '" + t + "' is not a number");
        v.push_back(x);
    }
    return v;
}
void print_row(const char* name, const eval::frost_mode_accuracy& m, bool gaps) {
    std::printf("%-22s", name);
    double mean = 0;
    for (double a : m.accuracy) std::printf(" %6.1f", 100 * a), mean += a;
    std::printf(" %7.2f", 100 * mean / double(m.accuracy.size()));
    if (gaps) std::printf(" %+8.2f %7.2f", 100 * m.mean_gap, 100 * m.rms_gap);
    std::printf("\n");
}
}  // namespace

int main(int argc, char** argv) try {
    std::vector<std::string> pos;
    std::string model = "resnet20";
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--model" && i + 1 < argc) model = argv[++i];
        else pos.push_back(a);
    }
    if (pos.size() < 3 || pos.size() > 6) {
        std::fprintf(stderr, "usage: %s WEIGHTS CIFAR10_DIR FROST_DIR [train|test] [N] [C1,C2,...] [--model NAME]\n", argv[0]);
        return 2;
    }
    const bool train = pos.size() < 4 || pos[3] == "train";
    if (pos.size() >= 4 && pos[3] != "train" && pos[3] != "test") throw value_error("split must be train or test, got '" + pos[3] + "'");
    const long n = pos.size() >= 5 ? std::strtol(pos[4].c_str(), nullptr, 10) : 1000;
    if (n <= 0) throw value_error("N must be a positive image count, got '" + (pos.size() >= 5 ? pos[4] : "") + "'");
    eval::frost_calibration_options opt;
    if (pos.size() >= 6) opt.contrasts = parse_list(pos[5]);

    const auto ds = data::random_subset(load_cifar10(pos[1], train), index_t(n), 0x5eed + (train ? 0 : 1));
    models::model_spec spec;
    spec.name = model;
    spec.num_classes = 10;
    spec.in_channels = 3;
    auto net = models::make_model<batch_norm<population>>(spec);
    train::load_weights(net, pos[0]);
    const auto textures = corrupt::frost_textures::load_directory(pos[2]);
    std::fprintf(stderr, "calibrate_frost: %s on %ld %s images, %zu candidate contrasts\n", model.c_str(), n,
                 train ? "training" : "test", opt.contrasts.size());
    const auto r = eval::calibrate_procedural_frost(net, ds, data::normalization::imagenet(), textures, opt,
                                                    [](std::size_t d, std::size_t t) { std::fprintf(stderr, "  mode %zu/%zu\n", d, t); });

    std::printf("Frost accuracy (%%) of %s, %ld CIFAR-10 %s images (clean %.1f), severities 1-5, corruption seed %llu\n",
                model.c_str(), n, train ? "training" : "test", 100 * r.clean, (unsigned long long)opt.seed);
    std::printf("%-22s %6s %6s %6s %6s %6s %7s %8s %7s\n", "frost", "s1", "s2", "s3", "s4", "s5", "mean", "gap", "rms");
    print_row("textures (reference)", r.textured, false);
    print_row("procedural v1", r.v1, true);
    for (std::size_t i = 0; i < r.candidates.size(); ++i) {
        char name[64];
        std::snprintf(name, sizeof name, "contrast %.2f%s", r.contrasts[i], i == r.best ? " (best)" : "");
        print_row(name, r.candidates[i], true);
    }
    return 0;
} catch (const shiftnorm::error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
}
