// SPDX-License-Identifier: MIT
// `shiftnorm advbn`: seed 001's AdvBN fine-tuning of a pretrained network's head (or the plain control).
#pragma once

#include <iomanip>
#include <iostream>
#include <sstream>

#include "common.hpp"
#include "shiftnorm/advbn/fine_tune.hpp"
#include "shiftnorm/data/sampling.hpp"

namespace shiftnorm::cli {

inline int cmd_advbn(const std::vector<std::string>& args) {
    arg_parser p("advbn",
                 "Fine-tune the head of a pretrained network with AdvBN (seed 001): the network is split after "
                 "--split-at (front frozen, inference mode); PGD perturbs the per-channel mean/std of the split "
                 "features (d_mu, d_sigma shared by the batch, --steps steps of --tau * sign(grad), projected to "
                 "[1 - eps, 1 + eps]); the head trains on CE(clean) + CE(adversarial) with auxiliary BNs for the "
                 "adversarial branch. --control fine-tunes the same head with the same data and schedule and no "
                 "adversary. --out is written after every epoch (clean BNs under the usual names, auxiliary ones "
                 "under 'advbn_aux.'); 'shiftnorm eval/adapt --weights OUT' evaluate it like any network.");
    add_common_options(p, "norm-eps");
    p.option("weights", "PATH", "", "pretrained safetensors weights (required)")
        .option("split-at", "STAGE", "layer1", "top-level stage the front ends with (ResNets: layer1 = the paper's conv2_x; "
                                               "the error lists the stages of --model)")
        .option("epochs", "N", "20", "fine-tuning epochs (the paper: 20)").int_range(1, 100000)
        .option("batch", "B", "128", "mini-batch size").int_range(2, 65536)
        .option("lr", "LR", "1e-3", "learning rate (the paper: 1e-3)").num_range(1e-12, 100, "> 0")
        .option("milestones", "E1,E2", "", "epochs where the rate is multiplied by --gamma (default: half the epochs)").num_range(1, 100000)
        .option("gamma", "G", "0.1", "step schedule factor").num_range(0, 10)
        .option("momentum", "M", "0.9", "SGD momentum").num_range(0, 0.999999, "in [0, 1)")
        .option("wd", "WD", "1e-4", "weight decay (L2)").num_range(0, 1)
        .option("eps", "E", "1.1", "perturbation bound: d in [1 - E, 1 + E] (additive: +-E x max channel mean/std)").num_range(1e-9, 100, "> 0")
        .option("steps", "M", "6", "PGD steps (Table 4's rule: ceil(E / 0.2) + 1; 0 = that rule)").int_range(0, 1000)
        .option("tau", "T", "0.2", "PGD step size").num_range(1e-9, 100, "> 0")
        .option("variant", "NAME", "multiplicative", "multiplicative (eq. 3) | additive (Table 10)")
        .flag("no-relu-clamp", "do not clamp the perturbed features at 0 (use for a split after a layer without ReLU)")
        .option("attack-bn", "NAME", "auxiliary", "BNs of the head while the adversary searches: auxiliary | clean")
        .flag("control", "plain fine-tuning: same head, data and schedule, loss CE(clean) only, no adversary")
        .option("seed", "S", "0", "seed of shuffling and augmentation").int_range(0, 9223372036854775807LL)
        .option("pad", "P", "-1", "random-crop padding (-1: 4 for 32x32 data, 2 for 28x28)").int_range(-1, 64, "-1: automatic")
        .flag("no-augment", "disable crop and flip augmentation")
        .option("limit-train", "N", "0", "fine-tune on a seeded random subset of N training images (0: all)").int_range(0, 1000000000)
        .option("limit-test", "N", "0", "evaluate on a seeded random subset of N test images (0: all)").int_range(0, 1000000000)
        .option("out", "PATH", "", "checkpoint (.safetensors) rewritten after every epoch, optimizer state in PATH.optim (required)")
        .flag("resume", "resume from --out when it exists (refused when it was written with another split, variant, eps "
                        "or steps, or by the other mode)")
        .option("stop-after", "E", "0", "end the run after epoch E (0: run all; time-boxing with --resume)").int_range(0, 100000)
        .option("progress", "SEC", "10", "seconds between progress lines").num_range(0, 1000000);
    if (!p.parse(args, std::cout)) return 0;
    apply_threads(p);
    if (p.get("data").empty()) throw usage_error("advbn needs --data (see --help)");
    if (p.get("weights").empty()) throw usage_error("advbn needs --weights PATH (a pretrained network to fine-tune)");
    if (p.get("out").empty()) throw usage_error("advbn needs --out PATH for the fine-tuned network");
    if (!parse_norm(p.get("norm")).batch) throw usage_error("advbn fine-tunes BatchNorm networks (--norm batch), got --norm " + p.get("norm"));
    const std::string variant = p.get("variant"), attack_bn = p.get("attack-bn");
    if (variant != "multiplicative" && variant != "additive")
        throw usage_error("--variant must be multiplicative or additive, got '" + variant + "'");
    if (attack_bn != "auxiliary" && attack_bn != "clean")
        throw usage_error("--attack-bn must be auxiliary or clean, got '" + attack_bn + "'");
    if (p.get("weights") == p.get("out")) throw usage_error("--out must differ from --weights (the pretrained file is never overwritten)");

    const data_spec spec = parse_data(p.get("data"));
    const auto splits = load_train_test(spec, p.get_int("limit-train"), p.get_int("limit-test"),
                                                       std::uint64_t(p.get_int("seed")));
    const data::image_dataset& train_set = splits.first;
    const data::image_dataset& test_set = splits.second;
    std::ostream& log = log_stream(p);

    nn::sequential plain = build_model<default_norm>(p, train_set);
    const auto rep = load_network_weights(plain, p.get("weights"));
    advbn::split_network<default_norm> net(std::move(plain), p.get("split-at"));

    advbn::fine_tune_options o;
    o.flush_denormals = flush_denormals_requested();
    o.epochs = int(p.get_int("epochs"));
    o.batch_size = p.get_int("batch");
    o.lr = p.get_double("lr");
    o.gamma = p.get_double("gamma");
    if (!p.get("milestones").empty())
        for (float m : p.get_floats("milestones")) o.milestones.push_back(int(m));
    o.optimizer.momentum = p.get_double("momentum");
    o.optimizer.weight_decay = p.get_double("wd");
    o.control = p.has("control");
    o.attack.eps = p.get_double("eps");
    o.attack.steps = p.get_int("steps") > 0 ? int(p.get_int("steps")) : advbn::steps_for_eps(o.attack.eps);
    o.attack.tau = p.get_double("tau");
    o.attack.kind = variant == "additive" ? perturbation_kind::additive : perturbation_kind::multiplicative;
    o.attack.clamp_relu = !p.has("no-relu-clamp");
    o.attack.attack_route = attack_bn == "clean" ? bn_route::clean : bn_route::auxiliary;
    o.seed = std::uint64_t(p.get_int("seed"));
    o.norm = normalization_from(p, spec);
    if (!p.has("no-augment")) {
        const long long pad = p.get_int("pad");
        o.augment.pad = pad >= 0 ? pad : (train_set.height >= 32 ? 4 : 2);
        o.augment.flip = true;
    }
    o.checkpoint = p.get("out");
    o.resume = p.has("resume");
    o.stop_after_epoch = int(p.get_int("stop-after"));
    o.progress_seconds = p.get_double("progress");
    o.log = &log;
    o.metadata = {{"model", p.get("model")}, {"data", p.get("data")}, {"width", p.get("width")}, {"norm", "batch"},
                  {"pretrained", p.get("weights")}, {"advbn_tau", p.get("tau")},
                  {"advbn_relu_clamp", o.attack.clamp_relu ? "1" : "0"}, {"advbn_attack_bn", attack_bn}};

    const shape4 fs = net.feature_shape({1, train_set.channels, train_set.height, train_set.width});
    log << "data: " << train_set.size() << " train / " << test_set.size() << " test images\n"
        << "model: " << p.get("model") << " (" << rep.loaded << " tensors from " << p.get("weights") << "), split after "
        << net.split_at() << ": features " << fs.c << "x" << fs.h << "x" << fs.w << ", " << net.head_parameters(!o.control).trainable_count()
        << " trainable head parameters (" << net.head_norm_count() << " BNs with auxiliary copies), " << nn::num_threads()
        << " thread(s)\n";
    if (o.control)
        log << "mode: control (plain fine-tuning, no adversary)\n";
    else
        log << "mode: AdvBN " << variant << ", eps " << o.attack.eps << ", " << o.attack.steps << " steps of " << o.attack.tau
            << (o.attack.clamp_relu ? ", ReLU clamp" : "") << ", attack with the " << attack_bn << " BNs\n";
    const auto before = eval::evaluate(net.network(), test_set, o.norm, 500);
    log << "before fine-tuning: test accuracy " << std::fixed << std::setprecision(2) << 100 * before.accuracy << "%"
        << std::defaultfloat << "\n";
    const auto hist = advbn::fine_tune(net, train_set, &test_set, o);
    std::cout << std::fixed << std::setprecision(2) << "test accuracy before " << 100 * before.accuracy << "%";
    if (!hist.empty()) {
        const auto& h = hist.back();
        double secs = 0, att = 0;
        for (const auto& r : hist) secs += r.seconds, att += r.attack_seconds;
        std::cout << ", after epoch " << h.epoch << " " << 100 * h.test_accuracy << "% (" << (o.control ? "control" : "advbn")
                  << ", weights in " << o.checkpoint << ")\n"
                  << std::setprecision(1) << "fine-tuning time " << secs << " s";
        if (!o.control) std::cout << ", of which the adversary " << att << " s (" << 100 * att / secs << "%)";
        std::cout << "\n";
    } else {
        std::cout << "; nothing left to do (checkpoint " << o.checkpoint << " already complete)\n";
    }
    return 0;
}

}  // namespace shiftnorm::cli
