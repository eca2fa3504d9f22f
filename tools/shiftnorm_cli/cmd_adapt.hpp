// SPDX-License-Identifier: MIT
// `shiftnorm adapt`: seed 000's BN-statistics rectification on every corruption x severity.
// Parses, calls eval::run_rectification_sweep (include/shiftnorm/eval/rectification.hpp), prints.
#pragma once

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_corrupt.hpp"
#include "common.hpp"
#include "shiftnorm/eval/baselines.hpp"
#include "shiftnorm/eval/rectification.hpp"
#include "shiftnorm/eval/rectification_report.hpp"
#include "shiftnorm/eval/report.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/train/checkpoint.hpp"

namespace shiftnorm::cli {

namespace adapt_detail {

using rect_norm = eval::rectifiable_bn;

inline std::vector<index_t> parse_k_list(const std::string& s) {
    std::vector<index_t> out;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, ',');) {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(t.c_str(), &end, 10);
        if (t.empty() || *end != '\0' || errno == ERANGE || v < 1 || v > 1000000000)
            throw usage_error("--samples: '" + t + "' is not a count in [1, 1000000000]");
        out.push_back(index_t(v));
    }
    if (out.empty()) throw usage_error("--samples names no count");
    return out;
}

//! <dir>/<name>.npy of a CIFAR-10-C style directory, checked against the split it must hold:
//! uint8 of shape exactly (5N, H, W, C) (N images of `ds` per severity, HWC), and
//! <dir>/labels.npy (5N,) equal to ds's labels for every severity, so a file in another image
//! order, layout (NCHW) or size is an error instead of silently misread pixels.
inline std::vector<std::uint8_t> read_c_file(const std::string& dir, const std::string& name, const data::image_dataset& ds) {
    namespace fs = std::filesystem;
    auto shape_string = [](const std::vector<std::int64_t>& v) {
        std::string t = "(";
        for (std::size_t i = 0; i < v.size(); ++i) t += (i ? ", " : "") + std::to_string(v[i]);
        return t + (v.size() == 1 ? ",)" : ")");
    };
    const std::string path = (fs::path(dir) / (name + ".npy")).string();
    const auto arr = data::read_npy(path);
    const std::vector<std::int64_t> want{5 * ds.size(), ds.height, ds.width, ds.channels};
    if (arr.shape != want)
        throw io_error(shiftnorm::concat("adapt --c-dir: ", path, " has shape ", shape_string(arr.shape),
                                                 ", expected ", shape_string(want),
                                                 " (5 severities x the split's images, HWC uint8: the CIFAR-10-C layout)"));
    const auto* px = arr.data<std::uint8_t>();  // value_error for a non-uint8 file
    const std::string lpath = (fs::path(dir) / "labels.npy").string();
    const auto lab = data::read_npy(lpath);
    if (lab.shape != std::vector<std::int64_t>{5 * ds.size()})
        throw io_error(shiftnorm::concat("adapt --c-dir: ", lpath, " has shape ", shape_string(lab.shape),
                                                 ", expected ", shape_string({5 * ds.size()})));
    const auto lv = lab.to_double();
    for (std::size_t i = 0; i < lv.size(); ++i)
        if (lv[i] != double(ds.labels[i % std::size_t(ds.size())]))
            throw io_error(shiftnorm::concat("adapt --c-dir: ", lpath, "[", i, "] = ", lv[i], " but image ",
                                                     i % std::size_t(ds.size()), " of the split has label ",
                                                     ds.labels[i % std::size_t(ds.size())],
                                                     ": the files are not in the split's order (CIFAR-10-C follows the "
                                                     "original test order: use the binary CIFAR-10 test batch)"));
    return std::vector<std::uint8_t>(px, px + arr.numel());
}

inline std::string default_baseline(const data_spec& d, const data::image_dataset& ds) {
    if (d.kind == "cifar10") return "alexnet-cifar10";
    if (d.kind == "cifar100") return "alexnet-cifar100";
    if (ds.height >= 128) return "alexnet-imagenet";
    return "none";
}

//! The variants of --variants, or the single one of --adapt/--layers; value_error -> usage_error.
inline std::vector<eval::rectify_variant> parse_variants(const arg_parser& p) {
    try {
        if (p.get("variants").empty()) return {eval::make_rectify_variant(p.get("adapt"), p.get("layers"), "--adapt/--layers")};
        if (p.get("adapt") != "both" || p.get("layers") != "all")
            throw usage_error("--variants replaces --adapt and --layers; give the settings in --variants only");
        return eval::parse_rectify_variants(p.get("variants"));
    } catch (const value_error& e) {
        throw usage_error(std::string("--variants: ") + e.what());
    }
}

//! The sweep's rectification options from --prior, --variance, --pass.
inline void apply_rectify_options(const arg_parser& p, std::vector<eval::rectify_variant>& vs) {
    const double prior = p.get_double("prior");
    const std::string var = p.get("variance");
    if (var != "unbiased" && var != "biased") throw usage_error("--variance must be unbiased or biased");
    const std::string pass = p.get("pass") == "auto" ? (prior > 0 ? "adapted" : "batch") : p.get("pass");
    if (pass != "batch" && pass != "adapted") throw usage_error("--pass must be batch, adapted or auto");
    for (auto& v : vs) {
        v.opt.prior = prior;
        v.opt.variance = var == "biased" ? variance_kind::biased : variance_kind::unbiased;
        v.opt.pass = pass == "batch" ? rectify_pass::batch : rectify_pass::adapted;
    }
}

}  // namespace adapt_detail

//! shiftnorm adapt --model M --weights W --data SPEC [...]: prints seed 000's table.
inline int cmd_adapt(const std::vector<std::string>& args) {
    namespace ad = adapt_detail;
    namespace cd = corrupt_detail;
    arg_parser p("adapt",
                 "evaluates a network on every corruption x severity without and with BN-statistics rectification "
                 "from K unlabeled target samples (Benz et al., seed 000) and prints Acc, Acc*, mCE, mCE*, per-corruption CE");
    add_common_options(p);
    p.option("weights", "FILE", "", "safetensors weights (PyTorch names)")
        .option("split", "test|train", "test", "split to evaluate (and to draw the K samples from)")
        .option("samples", "K[,K...]", "32", "representation samples K; a list sweeps K (Fig. 4), the first is the main table")
        .option("draws", "R", "1", "independent K-sample draws per cell; accuracies are averaged, the K table shows their spread").int_range(1, 1000)
        .option("adapt", "both|mean|var", "both", "statistics replaced (Table 6)")
        .option("layers", "all|front|middle|end", "all", "BN layers adapted (Table 7: a third of them)")
        .option("variants", "V[,V...]", "", "several settings side by side on the same images and samples, V = "
                                             "both|mean|var[/all|front|middle|end], e.g. both,var,mean,both/front,both/middle,both/end")
        .option("prior", "N", "0", "prior strength N: N/(N+n) source + n/(N+n) target (0 = replace, the paper)").num_range(0, 1e12)
        .option("variance", "unbiased|biased", "unbiased", "variance stored from the K samples (the reference: unbiased)")
        .option("pass", "batch|adapted|auto", "auto", "what each layer normalizes with during the rectification pass: the batch "
                                                    "statistics (PyTorch train mode, the paper) or the statistics kept (mean/var-only, "
                                                    "prior mixture: Schneider et al.); auto = adapted with --prior > 0, else batch")
        .option("baseline", "NAME", "auto", "mCE normalizer: alexnet-imagenet | alexnet-cifar10 | alexnet-cifar100 | none | auto")
        .option("corruptions", "LIST", "common", "all | common | heldout | name,name,...")
        .option("severities", "LIST", "1-5", "severities, e.g. 1-5 or 3")
        .option("seed", "S", "0", "corruption seed (corrupted test sets are generated in memory)").int_range(0, 9223372036854775807LL)
        .option("sample-seed", "S", "1", "seed of the K-sample draws").int_range(0, 9223372036854775807LL)
        .option("table", "NAME", "auto", "corruption parameter table: cifar | imagenet | mnist | auto")
        .option("frost-dir", "DIR", "", "frost texture images (the reference's frost1.png..frost6.jpg: the faithful mode); "
                                        "default: procedural frost")
        .option("frost-procedural", "KIND", "calibrated", corrupt_detail::frost_procedural_help()).one_of({"calibrated", "v1"})
        .option("noise-stream", "KIND", "counter", corrupt_detail::noise_stream_help()).one_of({"counter", "v1"})
        .option("c-dir", "DIR", "", "read <corruption>.npy (CIFAR-10-C layout) from DIR instead of generating")
        .option("limit", "N", "0", "evaluate a seeded random subset of N images of the split (0: all)").int_range(0, 1000000000)
        .option("batch", "B", "500", "evaluation batch size").int_range(1, 65536)
        .option("out", "DIR", "results/adapt", "directory for CSV, JSON and PNG outputs")
        .option("name", "TEXT", "", "row label (default: the model name)")
        .flag("replot", "redraw accuracy_per_corruption.png and accuracy_per_severity.png of an earlier run from "
                        "<--out>/adapt_cells.csv (nothing else is read; give the run's --samples: its first K names the curves)");
    if (!p.parse(args, std::cout)) return 0;
    if (p.has("replot")) {
        const auto path = (std::filesystem::path(p.get("out")) / "adapt_cells.csv").string();
        const auto bytes = data::read_regular_file(path, "adapt cells file");
        const auto rows = eval::parse_cells_csv(std::string(bytes.begin(), bytes.end()), path);
        for (const auto& f : eval::replot_sweep(p.get("out"), rows, ad::parse_k_list(p.get("samples")).front()))
            log_stream(p) << "  wrote " << f << "\n";
        return 0;
    }
    apply_threads(p);
    // every option is checked before the (slow) data loading
    if (p.get("weights").empty()) throw usage_error("--weights FILE is required");
    if (p.get("data").empty()) throw usage_error("--data SPEC is required; " + std::string(data_help()));
    const bool has_bn = parse_norm(p.get("norm")).batch;
    if (parse_norm(p.get("norm")).robust || parse_norm(p.get("norm")).none)
        throw usage_error("adapt takes --norm batch, group[:G], instance or layer, got '" + p.get("norm") + "'");
    eval::rectification_sweep_options o;
    o.ks = ad::parse_k_list(p.get("samples"));
    o.draws = int(p.get_int("draws"));
    o.variants = ad::parse_variants(p);
    ad::apply_rectify_options(p, o.variants);
    if (!has_bn) {  // GroupNorm / InstanceNorm / LayerNorm networks: Acc and mCE only (Tables 9, 10)
        for (const char* opt : {"variants", "adapt", "layers", "samples", "draws", "prior", "pass"})
            if (p.given(opt))
                std::cerr << "adapt: note: --norm " << p.get("norm") << " has no BN statistics; --" << opt << " is ignored\n";
        o.variants.clear();
    }
    o.corruptions = cd::parse_corruptions(p.get("corruptions"));
    o.severities = cd::parse_severities(p.get("severities"));
    const auto dspec = parse_data(p.get("data"));
    auto ds = load_split(dspec, p.get("split") == "train");
    const bool limited = p.get_int("limit") > 0 && p.get_int("limit") < ds.size();
    if (limited && !p.get("c-dir").empty())
        throw usage_error("--limit cannot be combined with --c-dir (the files hold the whole split in order)");
    o.sample_seed = std::uint64_t(p.get_int("sample-seed"));
    if (limited) ds = data::random_subset(ds, p.get_int("limit"), o.sample_seed + 0x5eed);
    if (has_bn)
        for (auto k : o.ks)
            if (k > ds.size())
                throw usage_error(shiftnorm::concat("--samples ", k, " exceeds the ", ds.size(), " images the K samples are drawn from"));
    o.norm = normalization_from(p, dspec);
    const std::string bname = p.get("baseline") == "auto" ? ad::default_baseline(dspec, ds) : p.get("baseline");
    eval::baseline_table base(eval::parse_baseline(bname));
    o.seed = std::uint64_t(p.get_int("seed"));
    std::optional<corrupt::frost_textures> frost;
    o.corrupt = cd::corruption_options(p, ds, frost);
    o.batch = p.get_int("batch");
    if (!p.get("c-dir").empty()) o.load_corrupted = [&](corrupt::corruption c) { return ad::read_c_file(p.get("c-dir"), corrupt::name_of(c), ds); };
    o.progress = [&p](const std::string& line) { log_stream(p) << line << "\n"; };

    nn::sequential net = has_bn ? build_model<ad::rect_norm>(p, ds) : build_model<group_norm<>>(p, ds);
    load_network_weights(net, p.get("weights"));
    const auto n_bn = nn::find_all<nn::norm_layer<ad::rect_norm>>(net).size();
    if (has_bn && n_bn == 0) throw value_error("adapt: model '" + p.get("model") + "' has no batch-norm layer to rectify");
    const eval::sweep_labels labels{p.get("name").empty() ? p.get("model") : p.get("name"), p.get("norm") + " norm"};
    std::string settings;
    for (const auto& v : o.variants) settings += (settings.empty() ? "" : ",") + v.spec();
    if (limited) std::cerr << "adapt: --limit: a seeded random subset of " << ds.size() << " images (all classes)\n";
    std::cerr << "adapt: " << labels.row << " (" << n_bn << " BN layers) on " << ds.size() << " " << dspec.kind
              << " images; corruptions " << o.corruptions.size() << " x severities " << o.severities.size() << "; "
              << (has_bn ? shiftnorm::concat("K = ", p.get("samples"), " (", o.draws, " draw(s)), variants ", settings, ", prior ",
                                                     p.get("prior"), ", ", p.get("variance"), " variance, ", o.variants.front().opt.pass == rectify_pass::batch ? "batch" : "adapted",
                                                     " statistics in the pass")
                         : p.get("norm") + " norm: no BN statistics, evaluated without rectification")
              << "; frost: " << corrupt_detail::frost_description(p) << "; noise stream "
              << corrupt_detail::noise_stream_name(p) << "; mCE: " << eval::mce_variant(base) << "\n";

    const auto r = eval::run_rectification_sweep(net, ds, o);
    std::cerr << "  clean accuracy " << 100 * r.clean << "%\n";
    for (std::size_t v = 0; v < o.variants.size(); ++v)
        std::cerr << "  clean accuracy after rectification on K=" << o.ks.front() << " clean samples" << o.variants[v].label() << ": "
                  << 100 * r.after[v].at(o.ks.front()).clean().value_or(0.0) << "%\n";

    const std::filesystem::path out(p.get("out"));
    std::filesystem::create_directories(out);
    std::string title = shiftnorm::concat(dspec.kind, "-C (", corrupt::table_name(o.corrupt.table), " table, seed ", o.seed,
                                                  "), ", ds.size(), " ", p.get("split"), " images; ");
    if (has_bn)
        title += shiftnorm::concat("rectification K=", o.ks.front(), o.draws > 1 ? shiftnorm::concat(" (mean of ", o.draws, " draws)") : "",
                                           o.variants.size() == 1 ? ", adapt " + o.variants[0].what + ", layers " + o.variants[0].layers : "");
    else
        title += p.get("norm") + " norm, no rectification";
    auto rep = eval::make_sweep_report(r, o, base, title, labels);
    rep.provenance = provenance("adapt", args, {{"seed", std::to_string(o.seed)}, {"sample_seed", std::to_string(o.sample_seed)},
                                                {"weights", p.get("weights")},
                                                {"weights_digest", train::weights_digest(data::read_safetensors(p.get("weights")))},
                                                {"data", p.get("data")}, {"data_digest", dataset_digest(ds)},
                                                {"frost", corrupt_detail::frost_description(p)},
                                                {"noise_stream", corrupt_detail::noise_stream_name(p)}});
    eval::print_table(std::cout, rep);
    for (const auto& f : eval::write_report_files((out / "adapt").string(), rep)) std::cerr << "  wrote " << f << "\n";
    if (has_bn && (o.ks.size() > 1 || o.draws > 1)) eval::write_k_table(std::cout, (out / "adapt_k_sweep.csv").string(), r, o, base);
    eval::write_sweep_plots(out.string(), r, o, base, labels);
    std::cerr << "adapt: done in " << r.seconds << " s; plots and tables in " << out.string() << "\n";
    return 0;
}

}  // namespace shiftnorm::cli
