// SPDX-License-Identifier: MIT
// `shiftnorm detect`: seed 002's spectral corruption detector: train it on corruptions of the
// training split (or load one), then score it on the test split, held-out corruptions included.
// Parses, calls eval::make_detection_set / spectral::train_detector / eval::score_detections
// (eval/dynamic_bn.hpp), prints and writes.
#pragma once

#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_corrupt.hpp"
#include "common.hpp"
#include "shiftnorm/eval/dynamic_bn.hpp"
#include "shiftnorm/eval/dynamic_bn_report.hpp"
#include "shiftnorm/spectral/detector.hpp"

namespace shiftnorm::cli {

namespace detect_detail {
inline std::vector<double> parse_doubles(const std::string& s, const char* opt, double lo, double hi) {
    std::vector<double> out;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, ',');) {
        char* end = nullptr;
        const double v = std::strtod(t.c_str(), &end);
        if (t.empty() || *end != '\0' || !(v >= lo && v <= hi))
            throw usage_error(shiftnorm::concat("--", opt, ": '", t, "' is not a number in [", lo, ", ", hi, "]"));
        out.push_back(v);
    }
    if (out.empty()) throw usage_error(shiftnorm::concat("--", opt, " names no value"));
    return out;
}

//! The options shared by `detect` and `dynamic` for corruptions, seeds and frost.
inline void add_corruption_options(arg_parser& p) {
    p.option("corruptions", "LIST", "common", "the detector's corruption classes: all | common | heldout | name,...")
        .option("severities", "LIST", "1-5", "severities")
        .option("seed", "S", "0", "corruption seed").int_range(0, 9223372036854775807LL)
        .option("sample-seed", "S", "1", "seed of the image draws").int_range(0, 9223372036854775807LL)
        .option("table", "NAME", "auto", "corruption parameter table: cifar | imagenet | mnist | auto")
        .option("frost-dir", "DIR", "", "frost texture images (the faithful mode); default: procedural frost")
        .option("frost-procedural", "KIND", "calibrated", corrupt_detail::frost_procedural_help()).one_of({"calibrated", "v1"})
        .option("noise-stream", "KIND", "counter", corrupt_detail::noise_stream_help()).one_of({"counter", "v1"});
}
}  // namespace detect_detail

//! shiftnorm detect --data SPEC [--detector FILE | --save FILE] [...]
inline int cmd_detect(const std::vector<std::string>& args) {
    namespace cd = corrupt_detail;
    namespace dd = detect_detail;
    arg_parser p("detect",
                 "seed 002's spectral corruption detector: log-normalized FFT magnitude -> 3-layer MLP naming the "
                 "corruption (clean + the corruptions given). Trains on corruptions of the TRAINING split (or loads "
                 "--detector), then scores it on the test split: accuracy, confusion matrix, per severity, and the "
                 "open-set behaviour on held-out corruptions");
    p.option("data", "SPEC", "", data_help())
        .option("detector", "FILE", "", "evaluate this detector instead of training one")
        .option("save", "FILE", "", "where the trained detector goes (default: OUT/detector.safetensors)");
    dd::add_corruption_options(p);
    p.option("heldout", "LIST", "heldout", "corruptions the detector never sees, for the open-set test ('none': skip)")
        .option("per-domain", "N", "1000", "training images per class (a corruption's spread over the severities)").int_range(2, 100000000)
        .option("test-per-domain", "N", "500", "test images per class").int_range(1, 100000000)
        .flag("per-severity", "one class per corruption x severity instead of per corruption")
        .option("hidden", "H1,H2", "256,128", "widths of the two hidden layers")
        .option("epochs", "E", "30", "training epochs").int_range(1, 100000)
        .option("batch", "B", "128", "training batch size").int_range(1, 65536)
        .option("lr", "LR", "0.05", "initial learning rate (cosine decay)").num_range(1e-8, 10)
        .flag("no-standardize", "feed the spectrum to the MLP as is (the paper) instead of standardizing each feature")
        .flag("gray", "spectrum of the luminance instead of one per channel")
        .flag("no-shift", "no fftshift")
        .flag("full", "full h x w spectrum instead of the half spectrum (R2C)")
        .option("scale", "log|raw", "log", "log(|F|/(eps n) + 1) (the paper) or the raw magnitude (its ablation)")
        .option("eps", "E", "0.001", "eps of the log normalization").num_range(1e-12, 1e6, "a positive number")
        .option("thresholds", "LIST", "0,0.5,0.7,0.9", "confidence thresholds of the open-set table")
        .option("out", "DIR", "results/detect", "directory for CSV and PNG outputs")
        .flag("quiet", "no progress on stderr")
        .option("threads", "T", "0", "OpenMP threads (0: all cores)").int_range(0, max_threads());
    if (!p.parse(args, std::cout)) return 0;
    if (p.get_int("threads") > 0) nn::set_num_threads(int(p.get_int("threads")));  // no --norm here (apply_threads checks it)
    if (p.get("data").empty()) throw usage_error("--data SPEC is required; " + std::string(data_help()));
    if (!p.get("detector").empty() && !p.get("save").empty()) throw usage_error("--save applies to a trained detector, not to --detector");
    const auto cs = cd::parse_corruptions(p.get("corruptions"));
    const auto sevs = cd::parse_severities(p.get("severities"));
    const auto held = p.get("heldout") == "none" ? std::vector<corrupt::corruption>{} : cd::parse_corruptions(p.get("heldout"));
    for (auto h : held)
        if (std::find(cs.begin(), cs.end(), h) != cs.end())
            throw usage_error(std::string("--heldout: ") + corrupt::name_of(h) + " is also one of the detector's classes");
    const auto thresholds = dd::parse_doubles(p.get("thresholds"), "thresholds", 0, 1);
    const auto hidden = dd::parse_doubles(p.get("hidden"), "hidden", 1, 1e6);
    if (hidden.size() != 2) throw usage_error("--hidden takes two widths, e.g. 256,128");
    if (p.get("scale") != "log" && p.get("scale") != "raw") throw usage_error("--scale must be log or raw");
    auto& log = log_stream(p);
    const auto dspec = parse_data(p.get("data"));
    const auto test = load_split(dspec, false);

    eval::detection_set_options o;
    o.corruptions = cs, o.severities = sevs;
    o.seed = std::uint64_t(p.get_int("seed")), o.sample_seed = std::uint64_t(p.get_int("sample-seed"));
    std::optional<corrupt::frost_textures> frost;
    o.corrupt = cd::corruption_options(p, test, frost);
    o.progress = [&log](const std::string& l) { log << l << "\n"; };
    const std::filesystem::path out(p.get("out"));
    std::filesystem::create_directories(out);

    std::optional<spectral::detector> det;
    if (!p.get("detector").empty()) {
        det.emplace(spectral::detector::load(p.get("detector")));
        det->check_images(test.channels, test.height, test.width, "detect --detector " + p.get("detector"));
    } else {
        spectral::detector_options dop;
        dop.hidden = {index_t(hidden[0]), index_t(hidden[1])};
        dop.standardize = !p.has("no-standardize");
        dop.spectrum.gray = p.has("gray"), dop.spectrum.shift = !p.has("no-shift"), dop.spectrum.half = !p.has("full");
        dop.spectrum.scale = p.get("scale") == "raw" ? spectral::scaling::raw : spectral::scaling::log_normalized;
        dop.spectrum.eps = p.get_double("eps");
        det.emplace(test.channels, test.height, test.width, eval::detector_classes(cs, sevs, p.has("per-severity")), dop);
        const auto train_split = load_split(dspec, true);
        o.per_domain = p.get_int("per-domain");
        log << "detect: features of " << o.per_domain << " training images per class, " << det->num_classes() << " classes, "
            << det->feature_size() << " features per image\n";
        const auto tr = eval::make_detection_set(*det, train_split, o);
        spectral::detector_train_options to;
        to.epochs = int(p.get_int("epochs")), to.batch = p.get_int("batch"), to.lr = p.get_double("lr");
        to.seed = o.sample_seed;
        to.progress = [&log](int e, double loss, double acc) {
            log << "  epoch " << e << ": loss " << loss << ", training accuracy " << 100 * acc << "%\n";
        };
        spectral::train_detector(*det, tr.features, tr.labels, to);
        const std::string save = p.get("save").empty() ? (out / "detector.safetensors").string() : p.get("save");
        const auto prov = provenance("detect", args, {{"data", p.get("data")}, {"data_digest", dataset_digest(train_split)},
                                                     {"noise_stream", corrupt_detail::noise_stream_name(p)}});
        det->save(save, std::map<std::string, std::string>(prov.begin(), prov.end()));
        log << "  wrote " << save << "\n";
    }
    // scores on the TEST split (other images than training, other seeds)
    o.per_domain = p.get_int("test-per-domain");
    o.sample_seed ^= 0x7e57;
    o.seed ^= 0x7e57;
    const auto te = eval::make_detection_set(*det, test, o);
    const auto probs = det->probabilities_from_features(te.features.data(), te.size());
    const auto scores = eval::score_detections(probs, te, det->classes());
    const std::string title = shiftnorm::concat("spectral detector on ", dspec.kind, " test images (", te.size(), ", ",
                                                det->options().spectrum.scale == spectral::scaling::raw ? "raw" : "log-normalized",
                                                " spectrum)");
    for (const auto& f : eval::write_detection_scores(std::cout, (out / "detect").string(), scores, title)) log << "  wrote " << f << "\n";
    if (!held.empty()) {
        auto ho = o;
        ho.corruptions = held, ho.clean = false;
        const auto hs = eval::make_detection_set(*det, test, ho);
        const auto hprobs = det->probabilities_from_features(hs.features.data(), hs.size());
        const auto rows = eval::open_set_sweep(probs, te, hprobs, det->num_classes(), thresholds);
        const auto file = eval::write_open_set(std::cout, (out / "detect_open_set.csv").string(), rows);
        log << "  wrote " << file << "\n";
    }
    return 0;
}

}  // namespace shiftnorm::cli
