// SPDX-License-Identifier: MIT
// `shiftnorm corrupt`: writes a CIFAR-10-C / ImageNet-C style corrupted copy of a dataset split.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "args.hpp"
#include "common.hpp"
#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/corrupt/selection.hpp"
#include "shiftnorm/data/layout.hpp"
#include "shiftnorm/data/npy.hpp"

namespace shiftnorm::cli {

namespace corrupt_detail {

// Thin CLI wrappers: the library's parsers (corrupt/selection.hpp), with their value_error
// turned into a usage error (exit code 2).
inline std::vector<corrupt::corruption> parse_corruptions(const std::string& s) {
    try {
        return corrupt::parse_corruption_list(s);
    } catch (const value_error& e) {
        throw usage_error(std::string("--corruptions '") + s + "': " + e.what());
    }
}
inline std::vector<int> parse_severities(const std::string& s) {
    try {
        return corrupt::parse_severity_list(s);
    } catch (const value_error& e) {
        throw usage_error(std::string("--") + e.what());
    }
}

//! --frost-procedural: the procedural frost's parameters (used without --frost-dir).
inline corrupt::procedural_frost_params parse_frost_procedural(const std::string& v) {
    if (v == "calibrated") return corrupt::procedural_frost_params::calibrated();
    if (v == "v1") return corrupt::procedural_frost_params::v1();
    throw usage_error("--frost-procedural must be calibrated or v1, got '" + v + "'");
}
inline const char* frost_procedural_help() {
    return "procedural frost without --frost-dir: calibrated (default; matches the reference's accuracy, "
           "docs/corruptions.md) | v1 (the harsher texture of results before 2026-12-02)";
}
//! --noise-stream: the noise corruptions' random stream.
inline corrupt::noise_stream parse_noise_stream(const std::string& v) {
    if (v == "counter") return corrupt::noise_stream::counter;
    if (v == "v1") return corrupt::noise_stream::v1;
    throw usage_error("--noise-stream must be counter or v1, got '" + v + "'");
}
inline const char* noise_stream_help() {
    return "random stream of the noise corruptions: counter (default since 0.2; vectorized) | v1 (0.1: the bytes of results "
           "made before 2026-12-03)";
}
//! Which noise stream a run uses, for its log and provenance.
inline std::string noise_stream_name(const arg_parser& p) {
    return p.declares("noise-stream") ? p.get("noise-stream") : "counter";
}
//! Which frost a run uses, for its log and provenance.
inline std::string frost_description(const arg_parser& p) {
    if (p.declares("frost-dir") && !p.get("frost-dir").empty()) return "textures from " + p.get("frost-dir");
    const std::string v = p.declares("frost-procedural") ? p.get("frost-procedural") : "calibrated";
    return "procedural " + v + " (not the reference's photographs)";
}

//! The corruption options of --table (auto: by image size) and --frost-dir: `frost` holds the
//! textures the returned options point to (keep it alive while they are used).
inline corrupt::corrupt_options corruption_options(const arg_parser& p, const data::image_dataset& ds,
                                                   std::optional<corrupt::frost_textures>& frost) {
    corrupt::corrupt_options o;
    o.table = p.get("table") == "auto" ? corrupt::default_table(ds.height, ds.channels) : corrupt::parse_table(p.get("table"));
    if (p.declares("frost-procedural")) o.frost_procedural = parse_frost_procedural(p.get("frost-procedural"));
    if (p.declares("noise-stream")) o.noise = parse_noise_stream(p.get("noise-stream"));
    if (!p.get("frost-dir").empty()) {
        frost = corrupt::frost_textures::load_directory(p.get("frost-dir"));
        o.frost = &*frost;
    }
    return o;
}
}  // namespace corrupt_detail

//! shiftnorm corrupt --data SPEC --out DIR [--corruptions ...] [--severities ...] [--seed S] ...
inline int cmd_corrupt(const std::vector<std::string>& args) {
    namespace cd = corrupt_detail;
    namespace fs = std::filesystem;
    arg_parser p("corrupt",
                 "writes corrupted copies of a dataset split: CIFAR-10-C layout (<corruption>.npy uint8 (5N,H,W,C), "
                 "severity-major, + labels.npy) or ImageNet-C layout (<corruption>/<severity>/<class>/<i>.JPEG)");
    p.option("data", "SPEC", "fashion-mnist", data_help())
        .option("out", "DIR", "", "output directory (created)")
        .option("split", "test|train", "test", "which split to corrupt")
        .option("corruptions", "LIST", "common", "all | common (15) | heldout (4) | name,name,...")
        .option("severities", "LIST", "1-5", "severities, e.g. 1-5, 3 or 1,3,5 (the cifar layout needs 1-5)")
        .option("seed", "S", "0", "seed: the same seed gives bit-identical files on any thread count").int_range(0, 9223372036854775807LL)
        .option("table", "NAME", "auto", "parameter table: cifar | imagenet | mnist (28x28 gray) | auto (by image size)")
        .option("layout", "NAME", "cifar", "output layout: cifar (npy) | imagenet (JPEG folders)")
        .option("limit", "N", "0", "corrupt only the first N images (0: all)").int_range(0, 1000000000)
        .option("frost-dir", "DIR", "", "directory of frost texture images (default: procedural frost)")
        .option("frost-procedural", "KIND", "calibrated", cd::frost_procedural_help()).one_of({"calibrated", "v1"})
        .option("noise-stream", "KIND", "counter", cd::noise_stream_help()).one_of({"counter", "v1"})
        .option("filters", "KIND", "fast", "gaussian / defocus / motion blur (and snow) arithmetic: fast (float32, float64 "
                "where it cannot decide) | reference (float64 throughout); the same bytes").one_of({"fast", "reference"})
        .option("threads", "N", "0", "worker threads (0: all cores)").int_range(0, max_threads(), "0: all cores; at most the cores of this machine");
    if (!p.parse(args, std::cout)) return 0;
    if (p.get("out").empty()) throw usage_error("--out DIR is required");
    const auto which = cd::parse_corruptions(p.get("corruptions"));
    const auto sevs = cd::parse_severities(p.get("severities"));
    const std::string layout = p.get("layout");
    if (layout != "cifar" && layout != "imagenet") throw usage_error("--layout must be cifar or imagenet, got '" + layout + "'");
    if (layout == "cifar" && sevs.size() != 5)
        throw usage_error("--layout cifar writes all 5 severities per file (CIFAR-10-C layout); use --severities 1-5 "
                          "or --layout imagenet");
    const long long seed_ll = p.get_int("seed");
    if (seed_ll < 0) throw usage_error("--seed must be >= 0");
    const auto seed = std::uint64_t(seed_ll);
    const int threads = int(p.get_int("threads"));
    const std::string split = p.get("split");
    if (split != "test" && split != "train") throw usage_error("--split must be test or train, got '" + split + "'");

    auto ds = load_split(parse_data(p.get("data")), split == "train");
    if (p.get_int("limit") > 0) ds.truncate(p.get_int("limit"));
    if (ds.size() == 0) throw io_error("corrupt: the dataset split '" + split + "' is empty");
    corrupt::corrupt_options opt;
    opt.table = p.get("table") == "auto" ? corrupt::default_table(ds.height, ds.channels) : corrupt::parse_table(p.get("table"));
    opt.frost_procedural = cd::parse_frost_procedural(p.get("frost-procedural"));
    opt.noise = cd::parse_noise_stream(p.get("noise-stream"));
    opt.filters = p.get("filters") == "reference" ? corrupt::filter_arithmetic::reference : corrupt::filter_arithmetic::fast;
    corrupt::frost_textures frost;
    if (!p.get("frost-dir").empty()) {
        frost = corrupt::frost_textures::load_directory(p.get("frost-dir"));
        opt.frost = &frost;
    }
    const auto nhwc = data::to_nhwc(ds);
    const corrupt::const_batch_view images{nhwc.data(), std::size_t(ds.size()), int(ds.height), int(ds.width),
                                           int(ds.channels)};
    const fs::path out(p.get("out"));
    fs::create_directories(out);
    std::cerr << "corrupt: " << ds.size() << " images " << ds.height << "x" << ds.width << "x" << ds.channels
              << ", table " << corrupt::table_name(opt.table) << ", seed " << seed << ", " << which.size()
              << " corruption(s) x " << sevs.size() << " severities, frost: "
              << cd::frost_description(p) << ", noise stream " << cd::noise_stream_name(p)
              << " -> " << out.string() << "\n";

    const std::size_t chunk = 1000, N = images.count, isz = images.image_size();
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t done = 0;
    const bool tty = isatty(2) != 0;
    double last_print = -1.0;
    const std::size_t total = N * which.size() * sevs.size();
    std::vector<std::uint8_t> buf(layout == "cifar" ? 5 * N * isz : chunk * isz);
    for (auto c : which) {
        for (int s : sevs) {
            for (std::size_t i0 = 0; i0 < N; i0 += chunk) {
                const std::size_t n = std::min(chunk, N - i0);
                const corrupt::const_batch_view src{images.data + i0 * isz, n, images.height, images.width, images.channels};
                std::uint8_t* dst_ptr = layout == "cifar" ? buf.data() + ((s - 1) * N + i0) * isz : buf.data();
                corrupt::batch_view dst{dst_ptr, n, images.height, images.width, images.channels};
                corrupt::corrupt_batch(c, s, src, dst, seed, opt, threads, i0);
                if (layout == "imagenet")
                    for (std::size_t i = 0; i < n; ++i) {
                        const auto& cls = ds.classes[std::size_t(ds.labels[i0 + i])];
                        const fs::path d = out / corrupt::name_of(c) / std::to_string(s) / cls;
                        fs::create_directories(d);
                        char file[32];
                        std::snprintf(file, sizeof file, "%08zu.JPEG", i0 + i);
                        data::write_jpeg((d / file).string(), dst[i].data, images.height, images.width, images.channels, 85);
                    }
                done += n;
                const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                const double rate = double(done) / std::max(secs, 1e-9);
                // a live line on a terminal (at most 4 updates/s), one line per corruption otherwise
                const bool last_of_corruption = s == sevs.back() && i0 + n == N;
                if ((tty && secs - last_print >= 0.25) || (!tty && last_of_corruption)) {
                    std::fprintf(stderr, "%s  %-18s s%d  %zu/%zu images  %.0f img/s  ETA %.0f s   %s", tty ? "\r" : "",
                                 corrupt::name_of(c), s, done, total, rate, double(total - done) / std::max(rate, 1e-9),
                                 tty ? "" : "\n");
                    last_print = secs;
                }
            }
        }
        if (layout == "cifar") {
            const std::vector<std::int64_t> shape = {5 * std::int64_t(N), images.height, images.width, images.channels};
            data::write_npy((out / (std::string(corrupt::name_of(c)) + ".npy")).string(), shape, buf.data());
        }
    }
    if (layout == "cifar") {
        std::vector<std::uint8_t> labels;
        for (int s = 0; s < 5; ++s)
            for (auto l : ds.labels) labels.push_back(std::uint8_t(l));
        data::write_npy((out / "labels.npy").string(), {std::int64_t(labels.size())}, labels.data());
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "%scorrupt: wrote %zu corrupted images in %.1f s (%.0f img/s)\n", tty ? "\n" : "", total, secs,
                 double(total) / secs);
    return 0;
}

}  // namespace shiftnorm::cli
