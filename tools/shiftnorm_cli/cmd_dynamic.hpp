// SPDX-License-Identifier: MIT
// `shiftnorm dynamic`: seed 002's dynamic BN: a statistics table per corruption (from the
// training split), selected by the spectral detector, on a stream of changing corruptions,
// beside the source, test-batch, test-EMA and oracle-table methods; optionally the 15 x 15
// sensitivity matrix. Parses, calls eval::build_stats_table / run_stream_benchmark /
// run_sensitivity (eval/dynamic_bn.hpp), prints and writes.
#pragma once

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_adapt.hpp"
#include "cmd_corrupt.hpp"
#include "cmd_detect.hpp"
#include "common.hpp"
#include "shiftnorm/eval/dynamic_bn.hpp"
#include "shiftnorm/eval/dynamic_bn_report.hpp"
#include "shiftnorm/train/checkpoint.hpp"

namespace shiftnorm::cli {

//! shiftnorm dynamic --model M --weights W --data SPEC --detector FILE [...]
inline int cmd_dynamic(const std::vector<std::string>& args) {
    namespace cd = corrupt_detail;
    namespace dd = detect_detail;
    arg_parser p("dynamic",
                 "seed 002's dynamic BN on a stream whose corruption changes every B batches: source statistics, "
                 "statistics of each test batch, a test EMA, the table entry of the true corruption (oracle), and the "
                 "entry the spectral detector selects (dynamic). The table is filled from K corrupted TRAINING images "
                 "per corruption (or loaded with --stats)");
    add_common_options(p);
    p.option("weights", "FILE", "", "safetensors weights (PyTorch names)")
        .option("detector", "FILE", "", "a detector written by `shiftnorm detect`");
    dd::add_corruption_options(p);
    p.option("stats", "FILE", "", "load the statistics table from FILE instead of building it")
        .option("save-stats", "FILE", "", "where a built table goes (default: OUT/stats_table.safetensors)")
        .option("samples", "K", "64", "training images per table key").int_range(2, 100000000)
        .flag("per-severity", "table keys per corruption x severity (the detector's classes must match)")
        .option("limit", "N", "1000", "evaluate a seeded random subset of N test images (0: all)").int_range(0, 1000000000)
        .option("c-dir", "DIR", "", "read <corruption>.npy (CIFAR-10-C layout) from DIR instead of generating")
        .option("batch", "B", "16", "images per incoming test batch").int_range(1, 65536)
        .option("switch", "LIST", "1,4,16,cell", "batches before the corruption changes ('cell': a whole cell at once)")
        .option("ema-momentum", "M", "0.1", "weight of each batch in the test EMA").num_range(0, 1)
        .option("threshold", "P", "0", "detector confidence below which the source statistics are used").num_range(0, 1)
        .option("decision", "mean|vote", "mean", "batch decision: argmax of the mean probability, or majority vote")
        .flag("per-image", "split each batch by the per-image decisions")
        .flag("sensitivity", "also the matrix 'statistics of corruption i evaluated on corruption j' (the paper's 2nd experiment)")
        .option("sensitivity-severity", "S", "3", "severity of the sensitivity matrix").int_range(1, 5)
        .option("out", "DIR", "results/dynamic", "directory for CSV, JSON and PNG outputs");
    if (!p.parse(args, std::cout)) return 0;
    apply_threads(p);
    if (p.get("weights").empty()) throw usage_error("--weights FILE is required");
    if (p.get("data").empty()) throw usage_error("--data SPEC is required; " + std::string(data_help()));
    if (p.get("detector").empty()) throw usage_error("--detector FILE is required (train one with `shiftnorm detect`)");
    if (!parse_norm(p.get("norm")).batch) throw usage_error("dynamic BN switches BN statistics: --norm must be batch");
    if (!p.get("stats").empty() && !p.get("save-stats").empty()) throw usage_error("--save-stats applies to a built table, not to --stats");
    if (p.get("decision") != "mean" && p.get("decision") != "vote") throw usage_error("--decision must be mean or vote");
    eval::stream_options so;
    so.switch_every.clear();
    std::stringstream sw(p.get("switch"));
    for (std::string t; std::getline(sw, t, ',');) {
        if (t == "cell") so.switch_every.push_back(0);
        else so.switch_every.push_back(index_t(dd::parse_doubles(t, "switch", 1, 1e9).front()));
    }
    const auto cs = cd::parse_corruptions(p.get("corruptions"));
    const auto sevs = cd::parse_severities(p.get("severities"));
    auto& log = log_stream(p);
    const auto dspec = parse_data(p.get("data"));
    auto test = load_split(dspec, false);
    const bool limited = p.get_int("limit") > 0 && p.get_int("limit") < test.size();
    if (limited && !p.get("c-dir").empty()) throw usage_error("--limit cannot be combined with --c-dir (the files hold the whole split in order)");
    const auto sample_seed = std::uint64_t(p.get_int("sample-seed"));
    if (limited) test = data::random_subset(test, p.get_int("limit"), sample_seed + 0x5eed);
    auto det = spectral::detector::load(p.get("detector"));
    det.check_images(test.channels, test.height, test.width, "dynamic --detector " + p.get("detector"));
    const auto norm = normalization_from(p, dspec);
    std::optional<corrupt::frost_textures> frost;
    const corrupt::corrupt_options copt = cd::corruption_options(p, test, frost);
    auto progress = [&log](const std::string& l) { log << l << "\n"; };

    // the three networks of the comparison, from the same weights
    nn::sequential table_net = build_model<eval::table_bn>(p, test);
    nn::sequential batch_net = build_model<batch_norm<batch_stats>>(p, test);
    nn::sequential ema_net = build_model<batch_norm<test_ema>>(p, test);
    for (auto* n : {&table_net, &batch_net, &ema_net}) load_network_weights(*n, p.get("weights"));
    if (eval::table_layers(table_net).empty()) throw value_error("dynamic: model '" + p.get("model") + "' has no batch-norm layer");
    const std::filesystem::path out(p.get("out"));
    std::filesystem::create_directories(out);
    std::vector<std::string> keys;
    if (!p.get("stats").empty()) {
        keys = eval::load_table(table_net, p.get("stats"));
        log << "dynamic: table of " << keys.size() << " keys from " << p.get("stats") << "\n";
    } else {
        eval::table_build_options to;
        to.corruptions = cs, to.severities = sevs, to.per_severity = p.has("per-severity"), to.k = p.get_int("samples");
        to.seed = std::uint64_t(p.get_int("seed")) ^ 0x7ab1e, to.sample_seed = sample_seed, to.corrupt = copt, to.norm = norm;
        to.progress = progress;
        const auto train_split = load_split(dspec, true);
        keys = eval::build_stats_table(table_net, train_split, to);
        const std::string save = p.get("save-stats").empty() ? (out / "stats_table.safetensors").string() : p.get("save-stats");
        const auto prov = provenance("dynamic", args, {{"weights", p.get("weights")}, {"data_digest", dataset_digest(train_split)},
                                                      {"samples", p.get("samples")}, {"noise_stream", corrupt_detail::noise_stream_name(p)}});
        eval::save_table(table_net, keys, save, std::map<std::string, std::string>(prov.begin(), prov.end()));
        log << "  wrote " << save << "\n";
    }
    std::size_t matched = 0;
    for (const auto& c : det.classes()) matched += std::find(keys.begin(), keys.end(), c) != keys.end();
    if (matched == 0) throw value_error("dynamic: no class of the detector names a key of the table (per-severity keys need a per-severity detector)");

    eval::test_cells_options co;
    co.corruptions = cs, co.severities = sevs, co.seed = std::uint64_t(p.get_int("seed")), co.corrupt = copt, co.progress = progress;
    if (!p.get("c-dir").empty()) co.load_corrupted = [&](corrupt::corruption c) { return adapt_detail::read_c_file(p.get("c-dir"), corrupt::name_of(c), test); };
    log << "dynamic: " << p.get("model") << " on " << test.size() << " " << dspec.kind << " test images x " << cs.size() << " corruptions x "
        << sevs.size() << " severities; detector " << p.get("detector") << " (" << det.num_classes() << " classes)\n";
    const auto cells = eval::make_test_cells(test, co);
    if (so.switch_every.empty()) throw usage_error("--switch names no interval");
    if (p.has("sensitivity")) {
        std::vector<eval::test_cell> at;
        for (const auto& c : cells)
            if (c.severity == p.get_int("sensitivity-severity")) at.push_back(c);
        if (at.empty()) throw usage_error("--sensitivity-severity must be one of --severities");
        const auto sr = eval::run_sensitivity(table_net, keys, at, norm, 500, progress);
        for (const auto& f : eval::write_sensitivity(std::cout, (out / "sensitivity").string(), sr,
                                                     shiftnorm::concat("accuracy (%) with the table entry of each corruption, severity ",
                                                                       p.get_int("sensitivity-severity"), ", ", p.get("model"))))
            log << "  wrote " << f << "\n";
    }
    so.batch = p.get_int("batch"), so.ema_momentum = p.get_double("ema-momentum"), so.threshold = p.get_double("threshold");
    so.rule = p.get("decision") == "vote" ? spectral::decision_rule::vote : spectral::decision_rule::mean_probability;
    so.per_image = p.has("per-image"), so.seed = sample_seed ^ 0x57e4, so.norm = norm, so.progress = progress;
    const auto r = eval::run_stream_benchmark({table_net, batch_net, ema_net}, det, keys, test, cells, so);
    const std::string title = shiftnorm::concat(p.get("model"), " on ", dspec.kind, "-C stream (", test.size(), " images x ", cells.size(),
                                                " cells, batch ", so.batch, "): accuracy (%) when the corruption changes every B batches");
    for (const auto& f : eval::write_stream(std::cout, (out / "stream").string(), r, title,
                                            provenance("dynamic", args, {{"weights", p.get("weights")}, {"detector", p.get("detector")},
                                                                         {"data_digest", dataset_digest(test)},
                                                                         {"noise_stream", corrupt_detail::noise_stream_name(p)}})))
        log << "  wrote " << f << "\n";
    log << "dynamic: done in " << r.seconds << " s\n";
    return 0;
}

}  // namespace shiftnorm::cli
