// SPDX-License-Identifier: MIT
// `shiftnorm eval`: accuracy of a network with given weights on a dataset split.
#pragma once

#include <chrono>
#include <iomanip>
#include <iostream>

#include "common.hpp"
#include "shiftnorm/train/checkpoint.hpp"
#include "shiftnorm/train/trainer.hpp"

namespace shiftnorm::cli {

inline int cmd_eval(const std::vector<std::string>& args) {
    arg_parser p("eval", "Evaluate a network with safetensors weights (PyTorch tensor names) on a dataset split; "
                         "prints accuracy, mean loss and throughput.");
    add_common_options(p);
    p.option("weights", "PATH", "", "safetensors weights (required)")
        .option("split", "NAME", "test", "split: test|train")
        .option("batch", "B", "200", "batch size").int_range(1, 65536)
        .option("limit", "N", "0", "evaluate only the first N images in file order (RobustBench's convention; 0: all)").int_range(0, 1000000000)
        .flag("batch-stats", "normalize with each batch's statistics instead of the running ones")
        .option("bn-branch", "NAME", "clean", "for an AdvBN checkpoint (shiftnorm advbn --out): clean | auxiliary BNs");
    if (!p.parse(args, std::cout)) return 0;
    apply_threads(p);
    if (p.get("data").empty()) throw usage_error("eval needs --data (see --help)");
    if (p.get("weights").empty()) throw usage_error("eval needs --weights PATH");
    if (p.get("split") != "test" && p.get("split") != "train") throw usage_error("--split must be test or train");
    const data_spec spec = parse_data(p.get("data"));
    const auto t0 = std::chrono::steady_clock::now();
    data::image_dataset ds = load_split(spec, p.get("split") == "train");
    if (p.get_int("limit") > 0) ds.truncate(p.get_int("limit"));
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return with_norm(p, [&](auto tag) {
        nn::sequential net = build_model<typename decltype(tag)::type>(p, ds);
        if (p.get("bn-branch") != "clean" && p.get("bn-branch") != "auxiliary")
            throw usage_error("--bn-branch must be clean or auxiliary, got '" + p.get("bn-branch") + "'");
        const auto rep = load_network_weights(net, p.get("weights"), p.get("bn-branch") == "auxiliary");
        std::ostream& log = log_stream(p);
        log << "model " << p.get("model") << ": loaded " << rep.loaded << " tensors from " << p.get("weights") << "\n"
                  << "data: " << ds.size() << " images " << ds.channels << "x" << ds.height << "x" << ds.width << " ("
                  << std::fixed << std::setprecision(1) << load_s << " s to load), " << nn::num_threads() << " thread(s)\n";
        const auto norm = normalization_from(p, spec);
        auto last = std::chrono::steady_clock::now();
        const auto start = last;
        const auto r = train::evaluate(net, ds, norm, p.get_int("batch"), p.has("batch-stats") ? nn::mode::batch : nn::mode::eval,
                                       [&](index_t done, index_t total) {
                                           const auto now = std::chrono::steady_clock::now();
                                           if (std::chrono::duration<double>(now - last).count() < 5 && done < total) return;
                                           last = now;
                                           const double el = std::chrono::duration<double>(now - start).count();
                                           const double ips = double(done) / el;
                                           log << "  [" << done << "/" << total << "] " << std::setprecision(1) << ips
                                               << " img/s  ETA " << train::format_duration(double(total - done) / ips) << "\n";
                                           log.flush();
                                       });
        std::cout << std::fixed << std::setprecision(2) << "accuracy " << 100 * r.accuracy << "% (" << index_t(r.accuracy * double(r.images) + 0.5)
                  << "/" << r.images << "), mean loss " << std::setprecision(4) << r.loss << ", " << std::setprecision(1)
                  << double(r.images) / r.seconds << " img/s";
        if (r.steady_images_per_second > 0) std::cout << " (" << r.steady_images_per_second << " img/s after the first batch)";
        std::cout << "\n";
        log << "peak memory " << peak_memory_mib() << " MiB\n";
        return 0;
    });
}

}  // namespace shiftnorm::cli
