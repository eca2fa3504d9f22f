// SPDX-License-Identifier: MIT
// `shiftnorm train`: trains a reference network with SGD and writes a safetensors checkpoint.
#pragma once

#include <iostream>
#include <sstream>

#include "common.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/train/trainer.hpp"

namespace shiftnorm::cli {

inline int cmd_train(const std::vector<std::string>& args) {
    arg_parser p("train", "Train a network with SGD (momentum, Nesterov, weight decay), seeded shuffling and random "
                          "crop + flip augmentation; evaluates on the test split after every epoch and checkpoints "
                          "(atomically) to --out; --resume continues an interrupted run.");
    add_common_options(p);
    p.option("epochs", "N", "10", "training epochs").int_range(0, 100000)
        .option("batch", "B", "128", "mini-batch size").int_range(1, 65536)
        .option("lr", "LR", "0.1", "peak learning rate").num_range(0, 100)
        .option("schedule", "NAME", "onecycle", "learning-rate schedule: constant|step|cosine|onecycle")
        .option("milestones", "E1,E2", "", "epochs where the step schedule multiplies the rate by --gamma (default 50%,75%)").num_range(0, 100000)
        .option("gamma", "G", "0.1", "step schedule factor").num_range(0, 10)
        .option("momentum", "M", "0.9", "SGD momentum").num_range(0, 0.999999, "in [0, 1)")
        .flag("nesterov", "use Nesterov momentum")
        .option("wd", "WD", "5e-4", "weight decay (L2)").num_range(0, 1)
        .flag("no-decay-norm", "no weight decay on normalization parameters and biases")
        .option("seed", "S", "0", "seed of initialization, shuffling and augmentation").int_range(0, 9223372036854775807LL)
        .option("pad", "P", "-1", "random-crop padding in pixels (-1: 4 for 32x32 data, 2 for 28x28)").int_range(-1, 64, "-1: automatic")
        .flag("no-flip", "disable random horizontal flips")
        .flag("no-augment", "disable crop and flip augmentation")
        .option("limit-train", "N", "0", "train on a seeded random subset of N training images, all classes, kept in "
                                         "file order (0: all)").int_range(0, 1000000000)
        .option("limit-test", "N", "0", "evaluate on a seeded random subset of N test images (0: all)").int_range(0, 1000000000)
        .option("out", "PATH", "", "checkpoint path (.safetensors, PyTorch names), rewritten after every epoch; optimizer "
                                   "state in PATH.optim; the pair is saved crash-consistently (see train/checkpoint.hpp)")
        .flag("resume", "resume from --out (and --out.optim) when they exist, first finishing or rolling back a save "
                        "interrupted by a crash and removing its temporary files")
        .option("progress", "SEC", "10", "seconds between progress lines").num_range(0, 1000000);
    if (!p.parse(args, std::cout)) return 0;
    apply_threads(p);
    if (p.get("data").empty()) throw usage_error("train needs --data (see --help)");
    const data_spec spec = parse_data(p.get("data"));
    auto splits = load_train_test(spec, p.get_int("limit-train"), p.get_int("limit-test"),
                                                 std::uint64_t(p.get_int("seed")));
    data::image_dataset& train_set = splits.first;
    data::image_dataset& test_set = splits.second;
    std::ostream& log = log_stream(p);
    log << "data: " << train_set.size() << " train / " << test_set.size() << " test images, " << train_set.channels
              << "x" << train_set.height << "x" << train_set.width << ", " << train_set.num_classes() << " classes\n";

    return with_norm(p, [&](auto tag) {
        nn::sequential net = build_model<typename decltype(tag)::type>(p, train_set);
        nn::rng_type g(std::uint64_t(p.get_int("seed")));
        net.reset_parameters(g);
        log << "model: " << p.get("model") << ", " << net.parameters().trainable_count() << " parameters, " << p.get("norm") << " norm, "
                  << nn::num_threads() << " thread(s)\n";

        train::fit_options o;
        o.flush_denormals = flush_denormals_requested();
        o.epochs = int(p.get_int("epochs"));
        o.batch_size = p.get_int("batch");
        o.seed = std::uint64_t(p.get_int("seed"));
        o.norm = normalization_from(p, spec);
        o.optimizer.momentum = p.get_double("momentum");
        o.optimizer.nesterov = p.has("nesterov");
        o.optimizer.weight_decay = p.get_double("wd");
        o.optimizer.decay_norm_and_bias = !p.has("no-decay-norm");
        o.schedule.kind = train::parse_schedule(p.get("schedule"));
        o.schedule.lr = p.get_double("lr");
        o.schedule.gamma = p.get_double("gamma");
        if (!p.get("milestones").empty())
            for (float m : p.get_floats("milestones")) o.schedule.milestones.push_back(int(m));
        else
            o.schedule.milestones = {o.epochs / 2, o.epochs * 3 / 4};
        if (!p.has("no-augment")) {
            const long long pad = p.get_int("pad");
            o.augment.pad = pad >= 0 ? pad : (train_set.height >= 32 ? 4 : 2);
            o.augment.flip = !p.has("no-flip");
        }
        o.log = &log;
        o.checkpoint = p.get("out");
        o.resume = p.has("resume");
        if (o.resume && o.checkpoint.empty()) throw usage_error("--resume needs --out");
        o.progress_seconds = p.get_double("progress");
        o.metadata = {{"model", p.get("model")}, {"data", p.get("data")}, {"width", p.get("width")}, {"norm", p.get("norm")}};
        std::ostringstream ms, ss;
        for (std::size_t i = 0; i < o.norm.mean.size(); ++i) ms << (i ? "," : "") << o.norm.mean[i];
        for (std::size_t i = 0; i < o.norm.std.size(); ++i) ss << (i ? "," : "") << o.norm.std[i];
        o.metadata["input_mean"] = ms.str();
        o.metadata["input_std"] = ss.str();
        o.metadata["bn_eps"] = p.get("eps");
        o.metadata["bn_convention"] = p.get("bn-convention");
        const auto hist = train::fit(net, train_set, &test_set, o);
        if (!hist.empty())
            std::cout << "final test accuracy " << std::fixed << std::setprecision(2) << 100 * hist.back().test_accuracy << "%\n";
        return 0;
    });
}

}  // namespace shiftnorm::cli
