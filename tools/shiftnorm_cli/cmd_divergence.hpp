// SPDX-License-Identifier: MIT
// `shiftnorm divergence`: seed 001's feature-divergence analysis (eq. 5, Fig. 4) of one or more networks.
#pragma once

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cmd_corrupt.hpp"
#include "common.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/eval/feature_divergence_report.hpp"

namespace shiftnorm::cli {

inline int cmd_divergence(const std::vector<std::string>& args) {
    namespace cd = corrupt_detail;
    arg_parser p("divergence",
                 "Seed 001's feature divergence (eq. 5): per-channel Gaussian fits of every block's output on the clean "
                 "test images and on each corrupted copy, symmetric KL averaged over channels, per block; for each "
                 "--weights file (e.g. the pretrained network and its AdvBN fine-tune). Prints the per-block table "
                 "(mean over corruptions), writes OUT.csv (every corruption x block) and OUT.png.");
    add_common_options(p);
    p.option("weights", "A[,B,...]", "", "safetensors weights, one or more (AdvBN checkpoints: clean BNs)")
        .option("labels", "A[,B,...]", "", "names of the networks in the outputs (default: file names)")
        .option("from-stage", "STAGE", "", "measure the blocks of this top-level stage and the later ones (e.g. layer2: "
                                           "the head fine-tuned after a split at layer1; default: all stages)")
        .option("corruptions", "LIST", "common", "all | common | heldout | name,...")
        .option("severity", "S", "3", "corruption severity").int_range(1, 5)
        .option("seed", "S", "0", "corruption seed").int_range(0, 9223372036854775807LL)
        .option("table", "NAME", "auto", "corruption parameter table: cifar | imagenet | mnist | auto")
        .option("frost-dir", "DIR", "", "frost texture images (default: procedural frost)")
        .option("frost-procedural", "KIND", "calibrated", corrupt_detail::frost_procedural_help()).one_of({"calibrated", "v1"})
        .option("noise-stream", "KIND", "counter", corrupt_detail::noise_stream_help()).one_of({"counter", "v1"})
        .option("limit", "N", "1000", "a seeded random subset of N test images (0: all)").int_range(0, 1000000000)
        .option("batch", "B", "250", "batch size").int_range(1, 65536)
        .option("out", "PREFIX", "results/divergence", "output prefix: PREFIX.csv, PREFIX.png");
    if (!p.parse(args, std::cout)) return 0;
    apply_threads(p);
    if (p.get("data").empty()) throw usage_error("divergence needs --data (see --help)");
    if (p.get("weights").empty()) throw usage_error("divergence needs --weights A[,B,...]");
    const auto files = split_list("weights", p.get("weights"));
    auto labels = p.get("labels").empty() ? std::vector<std::string>{} : split_list("labels", p.get("labels"));
    if (!labels.empty() && labels.size() != files.size())
        throw usage_error("--labels names " + std::to_string(labels.size()) + " networks, --weights " + std::to_string(files.size()));
    if (labels.empty())
        for (const auto& f : files) labels.push_back(std::filesystem::path(f).stem().string());
    const data_spec spec = parse_data(p.get("data"));
    data::image_dataset ds = load_split(spec, false);
    if (p.get_int("limit") > 0) ds = data::random_subset(ds, p.get_int("limit"), std::uint64_t(p.get_int("seed")) + 0x5eed);
    std::optional<corrupt::frost_textures> frost;
    eval::divergence_protocol o;
    o.corruptions = cd::parse_corruptions(p.get("corruptions"));
    o.severity = int(p.get_int("severity"));
    o.seed = std::uint64_t(p.get_int("seed"));
    o.corrupt = cd::corruption_options(p, ds, frost);
    o.fit.batch_size = p.get_int("batch");
    o.fit.norm = normalization_from(p, spec);
    std::ostream& log = log_stream(p);
    eval::divergence_runs runs;
    for (std::size_t k = 0; k < files.size(); ++k) {
        nn::sequential net = build_model<default_norm>(p, ds);
        load_network_weights(net, files[k]);
        if (!p.get("from-stage").empty()) {
            o.fit.first_child = net.index_of(p.get("from-stage"));
            if (o.fit.first_child >= net.size())
                throw usage_error("--from-stage: --model " + p.get("model") + " has no stage '" + p.get("from-stage") +
                                  "'; stages: " + advbn::stage_names(net));
        }
        log << labels[k] << " (" << files[k] << "): " << ds.size() << " images, " << o.corruptions.size()
            << " corruptions at severity " << o.severity << "\n";
        runs.emplace_back(labels[k], eval::measure_divergence(net, ds, o, [&](const std::string& c) {
                              log << "  " << c << "\n";
                              log.flush();
                          }));
    }
    eval::print_divergence_table(std::cout, runs);
    const std::string prefix = p.get("out");
    const auto dir = std::filesystem::path(prefix).parent_path();
    if (!dir.empty()) std::filesystem::create_directories(dir);
    for (const auto& f : eval::write_divergence_report(prefix, runs)) std::cout << "wrote " << f << "\n";
    return 0;
}

}  // namespace shiftnorm::cli
