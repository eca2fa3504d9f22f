// SPDX-License-Identifier: MIT
// `shiftnorm analyze`: seed 000's feature-shift analysis (Figs. 2 and 3). Parses, calls
// eval::measure_bn_stat_shift / eval::measure_feature_cosine (eval/feature_shift.hpp), prints.
#pragma once

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_corrupt.hpp"
#include "common.hpp"
#include "shiftnorm/eval/feature_shift.hpp"
#include "shiftnorm/eval/feature_shift_report.hpp"
#include "shiftnorm/train/checkpoint.hpp"

namespace shiftnorm::cli {

//! shiftnorm analyze --model M --weights W --data SPEC [--what stats|cosine|both]
inline int cmd_analyze(const std::vector<std::string>& args) {
    namespace cd = corrupt_detail;
    arg_parser p("analyze",
                 "seed 000's feature-shift analysis of a BN network: Fig. 2, the absolute differences of BN statistics "
                 "between batches of clean / corrupted images (same or different content); Fig. 3, the cosine similarity "
                 "of clean and corrupted feature maps per severity, before and after rectification");
    add_common_options(p);
    p.option("weights", "FILE", "", "safetensors weights (PyTorch names)")
        .option("what", "stats|cosine|both", "both", "Fig. 2 (stats), Fig. 3 (cosine) or both")
        .option("corruption", "NAME", "gaussian_noise", "corruption (the paper: Gaussian noise)")
        .option("severity", "S", "3", "Fig. 2: severity of the corrupted batches").int_range(1, 5)
        .option("severities", "LIST", "1-5", "Fig. 3: severities")
        .option("measurements", "M", "100", "Fig. 2: pairs of batches averaged (the paper: 100)").int_range(1, 1000000)
        .option("batch-size", "B", "32", "Fig. 2: images per batch").int_range(1, 100000)
        .option("samples", "K", "32", "Fig. 3: representation samples of the rectification").int_range(1, 1000000)
        .option("layer", "I", "0", "Fig. 3: BN layer (1-based) of the plotted curve; 0: the last one").int_range(0, 100000)
        .option("limit", "N", "1000", "images of the test split used (a seeded random subset; 0: all)").int_range(0, 1000000000)
        .option("seed", "S", "0", "corruption seed").int_range(0, 9223372036854775807LL)
        .option("sample-seed", "S", "1", "seed of the subset, batch and K-sample draws").int_range(0, 9223372036854775807LL)
        .option("table", "NAME", "auto", "corruption parameter table: cifar | imagenet | mnist | auto")
        .option("out", "DIR", "results/analyze", "directory for CSV and PNG outputs");
    if (!p.parse(args, std::cout)) return 0;
    apply_threads(p);
    if (p.get("weights").empty()) throw usage_error("--weights FILE is required");
    if (p.get("data").empty()) throw usage_error("--data SPEC is required; " + std::string(data_help()));
    if (!parse_norm(p.get("norm")).batch) throw usage_error("analyze studies BN statistics: --norm must be batch");
    const std::string what = p.get("what");
    if (what != "stats" && what != "cosine" && what != "both") throw usage_error("--what must be stats, cosine or both");
    const auto cs = cd::parse_corruptions(p.get("corruption"));
    if (cs.size() != 1) throw usage_error("--corruption names one corruption, got '" + p.get("corruption") + "'");

    const auto sev_stats = cd::parse_severities(p.get("severity"));
    if (sev_stats.size() != 1) throw usage_error("--severity names one severity, got '" + p.get("severity") + "'");
    const auto sevs = cd::parse_severities(p.get("severities"));
    const long long B = p.get_int("batch-size"), K = p.get_int("samples");
    if (B < 2) throw usage_error("--batch-size must be >= 2 (an unbiased variance needs two values)");
    const auto dspec = parse_data(p.get("data"));
    auto ds = load_split(dspec, false);
    if (p.get_int("limit") > 0 && p.get_int("limit") < ds.size())
        ds = data::random_subset(ds, p.get_int("limit"), std::uint64_t(p.get_int("sample-seed")) + 0x5eed);
    if (what != "stats" && K > ds.size())
        throw usage_error(shiftnorm::concat("--samples ", K, " exceeds the ", ds.size(), " images of the split"));
    if ((what != "cosine") && 2 * B > ds.size())
        throw usage_error(shiftnorm::concat("--batch-size ", B, ": two disjoint batches need ", 2 * B, " images, the split has ", ds.size()));
    const auto norm = normalization_from(p, dspec);
    corrupt::corrupt_options copt;
    copt.table = p.get("table") == "auto" ? corrupt::default_table(ds.height, ds.channels) : corrupt::parse_table(p.get("table"));
    nn::sequential net = build_model<eval::rectifiable_bn>(p, ds);
    load_network_weights(net, p.get("weights"));
    const auto layers = nn::find_all<eval::feature_tap::layer_type>(net);
    if (layers.empty()) throw value_error("analyze: model '" + p.get("model") + "' has no batch-norm layer");
    const long long plot_layer = p.get_int("layer") == 0 ? (long long)layers.size() : p.get_int("layer");
    if (plot_layer > (long long)layers.size())
        throw usage_error(shiftnorm::concat("--layer ", plot_layer, ": the model has BN layers 1..", layers.size()));
    const std::filesystem::path out(p.get("out"));
    std::filesystem::create_directories(out);
    std::cerr << "analyze: " << p.get("model") << " (" << layers.size() << " BN layers) on " << ds.size() << " " << dspec.kind
              << " test images, " << corrupt::name_of(cs.front()) << "\n";
    auto wrote = [](const std::vector<std::string>& files) {
        for (const auto& f : files) std::cerr << "  wrote " << f << "\n";
    };
    if (what != "cosine") {  // Fig. 2
        eval::stat_shift_options o;
        o.corruption = cs.front(), o.severity = sev_stats.front(), o.measurements = p.get_int("measurements"), o.batch_size = B;
        o.seed = std::uint64_t(p.get_int("seed")), o.sample_seed = std::uint64_t(p.get_int("sample-seed"));
        o.corrupt = copt, o.norm = norm;
        wrote(eval::write_stat_shift(std::cout, out.string(), eval::measure_bn_stat_shift(net, ds, o), o));
    }
    if (what != "stats") {  // Fig. 3: the source network and a second copy rectified per severity
        nn::sequential rect = build_model<eval::rectifiable_bn>(p, ds);
        load_network_weights(rect, p.get("weights"));
        eval::feature_cosine_options o;
        o.corruption = cs.front(), o.severities = sevs, o.k = K;
        o.seed = std::uint64_t(p.get_int("seed")), o.sample_seed = std::uint64_t(p.get_int("sample-seed"));
        o.corrupt = copt, o.norm = norm;
        std::vector<index_t> channels;
        for (const auto* l : layers) channels.push_back(l->channels());
        const auto rows = eval::measure_feature_cosine(net, rect, ds, o);
        wrote(eval::write_feature_cosine(std::cout, out.string(), rows, channels, o, ds.size(), std::size_t(plot_layer)));
    }
    return 0;
}

}  // namespace shiftnorm::cli
