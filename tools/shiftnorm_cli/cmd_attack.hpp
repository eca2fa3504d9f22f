// SPDX-License-Identifier: MIT
// `shiftnorm attack`: seed 003's adversarial evaluation (Table 1 layout). Parses, calls
// eval::run_attack_eval (eval/attack_eval.hpp), prints the table and writes CSV / JSON / PNG.
#pragma once

#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "common.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/eval/attack_eval.hpp"
#include "shiftnorm/eval/attack_report.hpp"
#include "shiftnorm/eval/attack_stat_shift_report.hpp"
#include "shiftnorm/train/checkpoint.hpp"

namespace shiftnorm::cli {

namespace attack_detail {

using cli::split_list;

//! One budget: a number or a fraction "A/B" (8/255); finite, >= 0 and <= hi.
inline double parse_budget(const std::string& option, const std::string& t, double hi) {
    const auto slash = t.find('/');
    auto num = [&](const std::string& s) {
        char* end = nullptr;
        const double x = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0' || !std::isfinite(x))
            throw usage_error("--" + option + " expects numbers or fractions like 8/255, got '" + t + "'");
        return x;
    };
    const double x = slash == std::string::npos ? num(t) : num(t.substr(0, slash)) / num(t.substr(slash + 1));
    if (!std::isfinite(x) || x < 0 || x > hi)
        throw usage_error("--" + option + " values must be in [0, " + shiftnorm::concat(hi) + "], got '" + t + "'");
    return x;
}

}  // namespace attack_detail

//! shiftnorm attack --model M --weights W --data SPEC [--norm-mode LIST] [--attacks LIST] [--eps LIST] ...
inline int cmd_attack(const std::vector<std::string>& args) {
    namespace ad = attack_detail;
    arg_parser p("attack",
                 "seed 003's adversarial evaluation: clean and adversarial accuracy of a network under FGSM, BIM, MIM, "
                 "PGD (L-inf) and CW-L2, for each normalization mode (BN: population statistics P or the statistics of "
                 "the batch being classified B; RobustNorm: RN, RNT, RNM), inference batch size and budget. Stored "
                 "statistics are never changed. Conventions: docs/attacks.md.");
    p.option("model", "NAME", "resnet20", "network (as for train/eval)")
        .option("width", "W", "0", "base width override (0: architecture default)").int_range(0, 1024)
        .option("weights", "FILE", "", "safetensors weights (PyTorch names; required)")
        .option("data", "SPEC", "", data_help())
        .option("split", "NAME", "test", "split: test|train")
        .option("mean", "M[,M,M]", "", "input mean per channel (default: per dataset)").num_range(-1e6, 1e6)
        .option("std", "S[,S,S]", "", "input std per channel (default: per dataset)").num_range(1e-12, 1e6, "a positive scale")
        .option("norm", "KIND", "", "the network's normalization layers: batch | robust[:P] | group[:G] | instance | layer | none "
                                    "(default: the weights' metadata 'norm', else batch)")
        .option("norm-eps", "E", "1e-5", "normalization epsilon of the network").num_range(0, 1)
        .option("bn-convention", "NAME", "", "BatchNorm denominator: pytorch (sqrt(var + eps)) | reference (sqrt(var) + eps, "
                                             "unbiased batch variance) (default: the weights' metadata, else pytorch)")
        .option("norm-mode", "LIST", "", "how the normalization layers run: population,batch (BN; default both) | rn,rnt,rnm "
                                         "(RobustNorm; default all three) | population (other layers)")
        .option("attacks", "LIST", "fgsm,bim,mim,cw,pgd", "attacks: fgsm, bim, mim, pgd, cw (CW-L2 has no eps: run once)")
        .option("eps", "LIST", "8/255", "L-inf budgets, numbers or fractions (8/255); pixel space: in [0, 1]")
        .option("space", "NAME", "pixel", "pixel: x in [0,1], clipped to [0,1], the model normalizes inside | normalized: "
                                           "eps in normalized units, clipped to [min, max] of the normalized batch (the reference's convention)")
        .option("step", "A", "-1", "step size of BIM/MIM/PGD (-1: eps/10)").num_range(-1, 100)
        .option("steps", "N", "20", "iterations of BIM/MIM/PGD").int_range(1, 100000)
        .option("decay", "MU", "1.0", "MIM momentum decay").num_range(0, 100)
        .option("cw-c", "C", "0.1", "CW-L2 initial constant c (the reference: 0.1)").num_range(1e-12, 1e12)
        .option("cw-binary-steps", "N", "3", "CW-L2 binary-search steps over c").int_range(1, 1000)
        .option("cw-steps", "N", "20", "CW-L2 Adam iterations per binary-search step").int_range(1, 1000000)
        .option("cw-lr", "LR", "0.01", "CW-L2 Adam learning rate").num_range(1e-12, 100)
        .option("cw-kappa", "K", "0", "CW-L2 confidence margin").num_range(0, 1e6)
        .option("batch", "LIST", "128", "inference (and attack) batch sizes, e.g. 1,2,4,...,128 (Fig. 4)")
        .option("limit", "N", "1000", "images evaluated (0: the whole split)").int_range(0, 1000000000)
        .option("subset", "KIND", "random", "random: a seeded random draw of --limit images, in draw order (batches mix "
                                             "classes) | first: the first --limit images in file order (RobustBench's "
                                             "convention; CIFAR image folders are sorted by class)")
        .option("sample-seed", "S", "0", "seed of --subset random").int_range(0, 9223372036854775807LL)
        .option("seed", "S", "0", "seed of PGD's random start").int_range(0, 9223372036854775807LL)
        .option("out", "DIR", "results/attack", "directory for attack.csv, attack.json and attack*.png")
        .flag("stat-shift", "instead of the accuracy table: seed 003's Fig. 2, the per-channel difference between the batch "
                            "statistics of attacked batches and the population statistics at every BN input, against clean "
                            "batches (BN networks; one L-inf attack, one eps, one batch size; writes stat_shift*.{csv,png})")
        .flag("replot", "redraw the charts and sweep plots of an earlier run from <--out>/attack.csv (nothing else is read)")
        .flag("quiet", "no progress lines on stderr")
        .option("threads", "T", "0", "OpenMP threads (0: OMP_NUM_THREADS or all cores)").int_range(0, max_threads());
    if (!p.parse(args, std::cout)) return 0;
    if (p.has("replot")) {
        const auto path = (std::filesystem::path(p.get("out")) / "attack.csv").string();
        const auto bytes = data::read_regular_file(path, "attack results file");
        const auto r = eval::parse_attack_csv(std::string(bytes.begin(), bytes.end()), path);
        const auto sp = p.get("space") == "normalized" ? attack::input_space::normalized : attack::input_space::pixel;
        const std::string prefix = (std::filesystem::path(p.get("out")) / "attack").string();
        for (const auto& f : eval::write_attack_charts(prefix, r, sp)) log_stream(p) << "  wrote " << f << "\n";
        for (const auto& f : eval::write_attack_sweep_plots(prefix, r, sp)) log_stream(p) << "  wrote " << f << "\n";
        return 0;
    }

    // ---- every usage check before any data or weights are read ----
    if (p.get("weights").empty()) throw usage_error("--weights FILE is required");
    if (p.get("data").empty()) throw usage_error("--data SPEC is required; " + std::string(data_help()));
    if (p.get("split") != "test" && p.get("split") != "train") throw usage_error("--split must be test or train");
    const std::string space_name = p.get("space");
    if (space_name != "pixel" && space_name != "normalized") throw usage_error("--space must be pixel or normalized, got '" + space_name + "'");
    const auto space = space_name == "pixel" ? attack::input_space::pixel : attack::input_space::normalized;
    std::vector<attack::attack_kind> kinds;
    for (const auto& a : ad::split_list("attacks", p.get("attacks"))) {
        try {
            kinds.push_back(attack::parse_attack(a));
        } catch (const value_error& e) {
            throw usage_error(std::string("--attacks: ") + e.what());
        }
    }
    std::vector<double> eps;
    for (const auto& e : ad::split_list("eps", p.get("eps")))
        eps.push_back(ad::parse_budget("eps", e, space == attack::input_space::pixel ? 1.0 : 1e3));
    std::vector<index_t> batches;
    for (const auto& b : ad::split_list("batch", p.get("batch"))) {
        char* end = nullptr;
        const long long v = std::strtoll(b.c_str(), &end, 10);
        if (*end != '\0' || v < 1 || v > 65536) throw usage_error("--batch sizes must be integers in [1, 65536], got '" + b + "'");
        batches.push_back(index_t(v));
    }
    const std::string subset = p.get("subset");
    if (subset != "random" && subset != "first") throw usage_error("--subset must be random or first, got '" + subset + "'");
    // the network's normalization: --norm (checked against the modes before any file is read),
    // else what the weights' metadata says they were trained with, else batch
    auto check_modes = [&](const norm_choice& nc, const std::string& norm_text, std::vector<std::string>& modes) {
        modes = p.get("norm-mode").empty() ? (nc.batch ? std::vector<std::string>{"population", "batch"}
                                              : nc.robust ? std::vector<std::string>{"rn", "rnt", "rnm"}
                                                          : std::vector<std::string>{"population"})
                                           : ad::split_list("norm-mode", p.get("norm-mode"));
        for (const auto& m : modes) {
            const bool known = m == "population" || m == "batch" || m == "rn" || m == "rnt" || m == "rnm";
            if (!known) throw usage_error("--norm-mode: unknown mode '" + m + "' (population, batch, rn, rnt, rnm)");
            const bool ok = nc.batch ? (m == "population" || m == "batch") : nc.robust ? (m == "rn" || m == "rnt" || m == "rnm") : m == "population";
            if (!ok)
                throw usage_error("--norm-mode " + m + ": the network's normalization (--norm " + norm_text + ") has no such mode; it has " +
                                  (nc.batch ? "population, batch" : nc.robust ? "rn, rnt, rnm" : "population"));
        }
    };
    std::vector<std::string> modes;
    if (!p.get("norm").empty()) check_modes(parse_norm(p.get("norm")), p.get("norm"), modes);
    const auto weights = data::read_safetensors(p.get("weights"));  // io_error naming the file
    const std::string meta_norm = weights.metadata.count("norm") ? weights.metadata.at("norm") : "";
    const std::string norm_text = !p.get("norm").empty() ? p.get("norm") : !meta_norm.empty() ? meta_norm : "batch";
    const norm_choice nc = parse_norm(norm_text);
    if (!meta_norm.empty() && !p.get("norm").empty()) {
        const norm_choice mc = parse_norm(meta_norm);
        if (mc.batch != nc.batch || mc.robust != nc.robust || mc.none != nc.none)
            throw usage_error("--norm " + p.get("norm") + " but the weights '" + p.get("weights") + "' were trained with --norm " + meta_norm);
    }
    check_modes(nc, norm_text, modes);
    const bool stat_shift = p.has("stat-shift");
    if (stat_shift) {
        if (!nc.batch) throw usage_error("--stat-shift needs a BatchNorm network (--norm batch), got --norm " + norm_text);
        if (kinds.size() != 1 || kinds[0] == attack::attack_kind::cw)
            throw usage_error("--stat-shift takes one L-inf attack (--attacks fgsm|bim|mim|pgd), got '" + p.get("attacks") + "'");
        if (eps.size() != 1 || batches.size() != 1)
            throw usage_error("--stat-shift takes one --eps and one --batch (>= 2)");
        if (batches[0] < 2) throw usage_error("--stat-shift needs --batch >= 2 (unbiased batch variance)");
    }
    const std::string meta_conv = weights.metadata.count("bn_convention") ? weights.metadata.at("bn_convention") : "pytorch";
    const bool reference_bn = parse_bn_convention(p.get("bn-convention").empty() ? meta_conv : p.get("bn-convention"), nc);
    attack::attack_options base;
    base.step = p.get_double("step");
    base.steps = int(p.get_int("steps"));
    base.decay = p.get_double("decay");
    base.seed = std::uint64_t(p.get_int("seed"));
    base.cw_c = p.get_double("cw-c");
    base.cw_binary_steps = int(p.get_int("cw-binary-steps"));
    base.cw_steps = int(p.get_int("cw-steps"));
    base.cw_lr = p.get_double("cw-lr");
    base.cw_kappa = p.get_double("cw-kappa");
    const long long t = p.get_int("threads");
    if (t > 0) nn::set_num_threads(int(t));

    // ---- data, network ----
    std::ostream& log = log_stream(p);
    const auto dspec = parse_data(p.get("data"));
    auto ds = load_split(dspec, p.get("split") == "train");
    const index_t limit = p.get_int("limit") > 0 ? std::min<index_t>(p.get_int("limit"), ds.size()) : ds.size();
    if (subset == "first") ds.truncate(limit);
    else ds = data::select(ds, data::draw_indices(ds.size(), limit, std::uint64_t(p.get_int("sample-seed")) + 0x5eed));
    eval::attack_eval_options o;
    o.attacks = kinds, o.eps = eps, o.batch_sizes = batches, o.base = base, o.space = space;
    o.norm = default_normalization(dspec);
    if (!p.get("mean").empty()) o.norm.mean = p.get_floats("mean");
    if (!p.get("std").empty()) o.norm.std = p.get_floats("std");
    o.norm.check(ds.channels, "--mean/--std");
    auto last = std::chrono::steady_clock::now() - std::chrono::hours(1);
    o.progress = [&](const std::string& line) {
        const auto now = std::chrono::steady_clock::now();
        if (std::chrono::duration<double>(now - last).count() < 10) return;
        last = now;
        log << "  " << line << "\n";
        log.flush();
    };

    auto run = [&](auto tag) {
        using Norm = typename decltype(tag)::type;
        models::model_spec s;
        s.name = p.get("model"), s.num_classes = ds.num_classes(), s.in_channels = ds.channels, s.width = p.get_int("width");
        s.norm.eps = p.get_double("norm-eps");
        s.norm.groups = nc.groups, s.norm.exact_groups = nc.explicit_groups, s.norm.reference_bn = reference_bn;
        nn::sequential net;
        try {
            net = models::make_model<Norm>(s);
        } catch (const value_error& e) {
            throw usage_error(std::string("--model ") + s.name + " --norm " + norm_text + ": " + e.what());
        }
        if constexpr (std::is_same_v<Norm, robust_norm<>>)
            for (auto* l : nn::find_all<nn::norm_layer<robust_norm<>>>(net)) l->impl.opt.p = nc.p;
        train::load_state_dict(net, weights, true);
        if constexpr (std::is_same_v<Norm, batch_norm<population>>) {
            if (stat_shift) {
                eval::attack_stat_shift_options so;
                so.attack = base, so.attack.kind = kinds[0], so.attack.eps = eps[0];
                so.space = space, so.batch_size = batches[0], so.norm = o.norm;
                so.progress = [&](index_t d, index_t t) { o.progress(shiftnorm::detail::concat("batch ", d, "/", t)); };
                log << "attack --stat-shift: " << p.get("model") << ", " << attack::to_string(kinds[0]) << " eps " << p.get("eps")
                    << " (" << attack::to_string(space) << " space), " << ds.size() / batches[0] << " batches of " << batches[0]
                    << ", " << nn::num_threads() << " thread(s)\n";
                const auto r = eval::measure_attack_stat_shift<batch_norm<population>>(net, ds, so);
                eval::print_attack_stat_shift(std::cout, r);
                std::filesystem::create_directories(p.get("out"));
                const std::string title = p.get("model") + " " + eval::detail::upper(attack::to_string(kinds[0])) + " eps " + p.get("eps");
                for (const auto& f : eval::write_attack_stat_shift_report((std::filesystem::path(p.get("out")) / "stat_shift").string(), r, title))
                    log << "  wrote " << f << "\n";
                return 0;
            }
        }
        std::vector<eval::attack_subject> subjects;
        for (const auto& m : modes) {
            eval::attack_subject sub;
            sub.net = &net;
            if (m == "population") sub.name = nc.batch ? "P" : norm_text, sub.mode = nn::mode::eval;
            else if (m == "batch") sub.name = "B", sub.mode = nn::mode::batch;
            else {
                const robust_inference v = m == "rn" ? robust_inference::rn : m == "rnt" ? robust_inference::rnt : robust_inference::rnm;
                sub.name = m == "rn" ? "RN" : m == "rnt" ? "RNT" : "RNM";
                sub.prepare = [&net, v] {
                    if constexpr (std::is_same_v<Norm, robust_norm<>>)
                        for (auto* l : nn::find_all<nn::norm_layer<robust_norm<>>>(net)) l->impl.opt.inference = v;
                };
            }
            subjects.push_back(sub);
        }
        log << "attack: " << p.get("model") << " (--norm " << norm_text << ") on " << ds.size() << " " << dspec.kind << " "
            << p.get("split") << " images (" << (subset == "first" ? "the first " : "a seeded random draw of ") << ds.size()
            << "), " << attack::to_string(space) << " space, " << nn::num_threads() << " thread(s)\n";
        const auto t0 = std::chrono::steady_clock::now();
        auto r = eval::run_attack_eval(subjects, ds, o);
        r.dataset_digest = dataset_digest(ds);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        eval::print_attack_table(std::cout, r, space);
        std::cout << "\n(" << std::fixed << std::setprecision(1) << secs << " s; per attack: see attack.csv 'seconds')\n";
        std::filesystem::create_directories(p.get("out"));
        const auto prov = provenance("attack", args, {{"dataset_digest", r.dataset_digest}, {"norm", norm_text},
                                                      {"bn_convention", reference_bn ? "reference" : "pytorch"}});
        for (const auto& f : eval::write_attack_report((std::filesystem::path(p.get("out")) / "attack").string(), r, o, prov))
            log << "  wrote " << f << "\n";
        return 0;
    };
    if (nc.batch) return run(norm_tag<batch_norm<population>>{});
    if (nc.robust) return run(norm_tag<robust_norm<>>{});
    if (nc.none) return run(norm_tag<identity_norm>{});
    return run(norm_tag<group_norm<>>{});
}

}  // namespace shiftnorm::cli
