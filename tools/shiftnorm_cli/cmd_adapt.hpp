// SPDX-License-Identifier: MIT
// `shiftnorm adapt`: seed 000's BN-statistics rectification on every corruption x severity.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_corrupt.hpp"
#include "common.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/eval/baselines.hpp"
#include "shiftnorm/eval/metrics.hpp"
#include "shiftnorm/eval/plot.hpp"
#include "shiftnorm/eval/report.hpp"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/stats/rectified.hpp"
#include "shiftnorm/train/trainer.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"

namespace shiftnorm::cli {

namespace adapt_detail {

using rect_norm = batch_norm<rectified>;

//! The paper's ablation knobs, applied to every BN layer of a network.
struct plan {
    rectify_options opt;
    std::string what = "both";   //!< both | mean | var (Table 6)
    std::string layers = "all";  //!< all | front | middle | end (thirds of the BN layers, Table 7)

    std::string spec() const { return what + "/" + layers; }
    //! Row suffix: "" for the paper's standard setting, else e.g. " [var only]", " [front third]".
    std::string label() const {
        std::string l;
        if (what != "both") l = what == "mean" ? "mean only" : "var only";
        if (layers != "all") l += (l.empty() ? "" : ", ") + layers + " third";
        return l.empty() ? "" : " [" + l + "]";
    }
};

//! One variant "WHAT[/LAYERS]", e.g. "var", "both/front".
inline plan parse_plan(const std::string& what, const std::string& layers, const std::string& context) {
    plan p;
    p.what = what;
    p.layers = layers;
    p.opt.what = what == "both" ? adapt_what::both : what == "mean" ? adapt_what::mean_only
               : what == "var" ? adapt_what::var_only
               : throw usage_error(context + ": the statistics adapted must be both, mean or var, got '" + what + "'");
    if (layers != "all" && layers != "front" && layers != "middle" && layers != "end")
        throw usage_error(context + ": the layers must be all, front, middle or end, got '" + layers + "'");
    return p;
}

//! --variants both,var,mean,both/front,...: the ablation settings evaluated side by side on the
//! same corrupted images and the same K samples (Tables 6 and 7 in one run).
inline std::vector<plan> parse_variants(const std::string& s) {
    std::vector<plan> out;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, ',');) {
        const auto slash = t.find('/');
        const std::string what = t.substr(0, slash), layers = slash == std::string::npos ? "all" : t.substr(slash + 1);
        out.push_back(parse_plan(what, layers, "--variants '" + t + "'"));
        for (std::size_t i = 0; i + 1 < out.size(); ++i)
            if (out[i].spec() == out.back().spec()) throw usage_error("--variants names '" + out.back().spec() + "' twice");
    }
    if (out.empty()) throw usage_error("--variants names no variant");
    return out;
}

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

//! Sets every BN layer's rectification options; the Table 7 selection enables one third.
inline void configure(nn::module& net, const plan& p) {
    auto layers = nn::find_all<nn::norm_layer<rect_norm>>(net);
    const std::size_t L = layers.size();
    for (std::size_t i = 0; i < L; ++i) {
        auto& src = layers[i]->impl.source;
        src.options = p.opt;
        const std::size_t third = std::min<std::size_t>(2, i * 3 / std::max<std::size_t>(L, 1));
        if (p.layers != "all")
            src.options.enabled = (p.layers == "front" && third == 0) || (p.layers == "middle" && third == 1) ||
                                  (p.layers == "end" && third == 2);
        src.reset();
    }
}

inline void reset(nn::module& net) {
    for (auto* l : nn::find_all<nn::norm_layer<rect_norm>>(net)) l->impl.source.reset();
}

//! NHWC uint8 images back into a dataset (NCHW) with the labels of `like`.
inline data::image_dataset from_nhwc(const std::vector<std::uint8_t>& nhwc, const data::image_dataset& like) {
    data::image_dataset d = like;
    const index_t C = like.channels, HW = like.height * like.width;
    for (index_t i = 0; i < like.size(); ++i) {
        const std::uint8_t* src = nhwc.data() + i * like.image_size();
        std::uint8_t* dst = d.pixels.data() + i * like.image_size();
        for (index_t c = 0; c < C; ++c)
            for (index_t q = 0; q < HW; ++q) dst[c * HW + q] = src[q * C + c];
    }
    return d;
}

//! K distinct image indices drawn from [0, n) with a seeded, portable generator (the paper draws
//! the representation samples from the evaluated split itself).
inline std::vector<index_t> draw(index_t n, index_t k, std::uint64_t seed) { return data::draw_indices(n, k, seed); }

//! Images `idx` of `ds` as one normalized batch, and their labels.
inline tensor<float> batch_of(const data::image_dataset& ds, const std::vector<index_t>& idx, const data::normalization& norm,
                              std::vector<std::int32_t>* labels = nullptr) {
    tensor<float> x;
    std::vector<std::int32_t> y;
    data::make_batch(ds, idx, 0, index_t(idx.size()), norm, {}, nullptr, x, y);
    if (labels) *labels = std::move(y);
    return x;
}

//! Rectifies every BN layer of `net` from images `idx` of `ds`: ONE forward pass in rectify
//! mode, each layer normalizing with its adapted statistics (seed 000).
inline void rectify(nn::module& net, const data::image_dataset& ds, const std::vector<index_t>& idx,
                    const data::normalization& norm) {
    net.forward(batch_of(ds, idx, norm), nn::mode::rectify);
}

//! A seeded random subset of n images, kept in dataset order (all classes).
inline data::image_dataset subsample(const data::image_dataset& ds, index_t n, std::uint64_t seed) {
    return data::random_subset(ds, n, seed);
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
        throw io_error(shiftnorm::detail::concat("adapt --c-dir: ", path, " has shape ", shape_string(arr.shape),
                                                 ", expected ", shape_string(want),
                                                 " (5 severities x the split's images, HWC uint8: the CIFAR-10-C layout)"));
    const auto* px = arr.data<std::uint8_t>();  // value_error for a non-uint8 file
    const std::string lpath = (fs::path(dir) / "labels.npy").string();
    const auto lab = data::read_npy(lpath);
    if (lab.shape != std::vector<std::int64_t>{5 * ds.size()})
        throw io_error(shiftnorm::detail::concat("adapt --c-dir: ", lpath, " has shape ", shape_string(lab.shape),
                                                 ", expected ", shape_string({5 * ds.size()})));
    const auto lv = lab.to_double();
    for (std::size_t i = 0; i < lv.size(); ++i)
        if (lv[i] != double(ds.labels[i % std::size_t(ds.size())]))
            throw io_error(shiftnorm::detail::concat("adapt --c-dir: ", lpath, "[", i, "] = ", lv[i], " but image ",
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

}  // namespace adapt_detail

//! shiftnorm adapt --model M --weights W --data SPEC [...]: prints seed 000's table.
inline int cmd_adapt(const std::vector<std::string>& args) {
    namespace ad = adapt_detail;
    namespace cd = corrupt_detail;
    namespace fs = std::filesystem;
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
        .option("c-dir", "DIR", "", "read <corruption>.npy (CIFAR-10-C layout) from DIR instead of generating")
        .option("limit", "N", "0", "evaluate a seeded random subset of N images of the split (0: all)").int_range(0, 1000000000)
        .option("batch", "B", "500", "evaluation batch size").int_range(1, 65536)
        .option("out", "DIR", "results/adapt", "directory for CSV, JSON and PNG outputs")
        .option("name", "TEXT", "", "row label (default: the model name)");
    if (!p.parse(args, std::cout)) return 0;
    apply_threads(p);
    // every option is checked before the (slow) data loading
    if (p.get("weights").empty()) throw usage_error("--weights FILE is required");
    if (p.get("data").empty()) throw usage_error("--data SPEC is required; " + std::string(data_help()));
    const bool has_bn = parse_norm(p.get("norm")).batch;
    const auto ks = ad::parse_k_list(p.get("samples"));
    const long long draws = p.get_int("draws");
    if (draws < 1) throw usage_error("--draws must be >= 1");
    std::vector<ad::plan> plans;
    if (!p.get("variants").empty()) {
        if (p.get("adapt") != "both" || p.get("layers") != "all")
            throw usage_error("--variants replaces --adapt and --layers; give the settings in --variants only");
        plans = ad::parse_variants(p.get("variants"));
    } else {
        plans.push_back(ad::parse_plan(p.get("adapt"), p.get("layers"), "--adapt/--layers"));
    }
    const double prior = p.get_double("prior");
    if (!(prior >= 0)) throw usage_error("--prior must be >= 0");
    const std::string var = p.get("variance");
    if (var != "unbiased" && var != "biased") throw usage_error("--variance must be unbiased or biased");
    const std::string pass_name = p.get("pass") == "auto" ? (prior > 0 ? "adapted" : "batch") : p.get("pass");
    if (pass_name != "batch" && pass_name != "adapted") throw usage_error("--pass must be batch, adapted or auto");
    for (auto& pl : plans) {
        pl.opt.pass = pass_name == "batch" ? rectify_pass::batch : rectify_pass::adapted;
        pl.opt.prior = prior;
        pl.opt.variance = var == "biased" ? variance_kind::biased : variance_kind::unbiased;
    }
    if (!has_bn) {  // GroupNorm / InstanceNorm / LayerNorm networks: Acc and mCE only (Tables 9, 10)
        if (!p.get("variants").empty() || p.get("adapt") != "both" || p.get("layers") != "all" || p.get("samples") != "32" ||
            draws != 1 || prior != 0)
            std::cerr << "adapt: note: --norm " << p.get("norm")
                      << " has no BN statistics; the rectification options (--samples, --draws, --variants, --adapt, "
                         "--layers, --prior) are ignored\n";
        plans.clear();
    }
    const auto which = cd::parse_corruptions(p.get("corruptions"));
    const auto sevs = cd::parse_severities(p.get("severities"));
    const auto dspec = parse_data(p.get("data"));
    auto ds = load_split(dspec, p.get("split") == "train");
    const bool limited = p.get_int("limit") > 0 && p.get_int("limit") < ds.size();
    if (limited && !p.get("c-dir").empty())
        throw usage_error("--limit cannot be combined with --c-dir (the files hold the whole split in order)");
    if (limited) ds = ad::subsample(ds, p.get_int("limit"), std::uint64_t(p.get_int("sample-seed")) + 0x5eed);
    if (has_bn)
        for (auto k : ks)
            if (k > ds.size())
                throw usage_error(shiftnorm::detail::concat("--samples ", k, " exceeds the ", ds.size(),
                                                            " images the K samples are drawn from"));
    const auto norm = normalization_from(p, dspec);
    const std::string bname = p.get("baseline") == "auto" ? ad::default_baseline(dspec, ds) : p.get("baseline");
    eval::baseline_table base(eval::parse_baseline(bname));
    corrupt::corrupt_options copt;
    copt.table = p.get("table") == "auto" ? cd::default_table(ds) : corrupt::parse_table(p.get("table"));
    const auto seed = std::uint64_t(p.get_int("seed")), sample_seed = std::uint64_t(p.get_int("sample-seed"));
    const index_t batch = p.get_int("batch");

    // the network (rectifiable BN layers, or group-wise layers), loaded with the source weights
    nn::sequential net = has_bn ? build_model<ad::rect_norm>(p, ds) : build_model<group_norm<>>(p, ds);
    train::load_weights(net, p.get("weights"));
    const auto n_bn = nn::find_all<nn::norm_layer<ad::rect_norm>>(net).size();
    if (has_bn && n_bn == 0) throw value_error("adapt: model '" + p.get("model") + "' has no batch-norm layer to rectify");

    const std::string row = p.get("name").empty() ? p.get("model") : p.get("name");
    if (limited) std::cerr << "adapt: --limit: a seeded random subset of " << ds.size() << " images (all classes)\n";
    std::string settings;
    for (const auto& pl : plans) settings += (settings.empty() ? "" : ",") + pl.spec();
    std::cerr << "adapt: " << row << " (" << n_bn << " BN layers) on " << ds.size() << " " << dspec.kind
              << " images; corruptions " << which.size() << " x severities " << sevs.size();
    if (has_bn)
        std::cerr << "; K = " << p.get("samples") << " (" << draws << " draw(s)), variants " << settings << ", prior " << prior
                  << ", " << var << " variance, " << pass_name << " statistics in the pass";
    else
        std::cerr << "; " << p.get("norm") << " norm: no BN statistics, evaluated without rectification";
    std::cerr << "; mCE: " << eval::mce_variant(base) << "\n";
    const auto t0 = std::chrono::steady_clock::now();
    const double clean = train::evaluate(net, ds, norm, batch).accuracy;
    std::cerr << "  clean accuracy " << 100 * clean << "%\n";

    // results[v][k]: mean over draws; per_draw[v][k][r]: one draw (the spread in the K table)
    eval::results before("before");
    before.set_clean(clean);
    std::vector<std::map<index_t, eval::results>> after(plans.size());
    std::vector<std::map<index_t, std::vector<eval::results>>> per_draw(plans.size());
    for (std::size_t v = 0; v < plans.size(); ++v)
        for (auto k : ks) {
            after[v].emplace(k, eval::results("after K=" + std::to_string(k) + plans[v].label()));
            per_draw[v][k].assign(std::size_t(draws), eval::results("draw"));
        }
    // For every setting v, K and draw r: rectify from K samples of `d` (seed base ^ K ^ r << 40;
    // every setting sees the same samples), evaluate on `d`, hand the accuracy to store(); then
    // the mean over the draws of what get() reads back.
    auto rectify_all = [&](const data::image_dataset& d, std::uint64_t base, auto&& store) {
        for (auto k : ks)
            for (long long r = 0; r < draws; ++r) {
                const auto idx = ad::draw(d.size(), k, base ^ std::uint64_t(k) ^ (std::uint64_t(r) << 40));
                for (std::size_t v = 0; v < plans.size(); ++v) {
                    ad::configure(net, plans[v]);
                    ad::rectify(net, d, idx, norm);
                    store(per_draw[v][k][std::size_t(r)], train::evaluate(net, d, norm, batch).accuracy);
                }
            }
        ad::reset(net);
    };
    auto mean_of_draws = [&](std::size_t v, index_t k, auto&& get) {
        double sum = 0;
        for (const auto& d : per_draw[v][k]) sum += get(d);
        return sum / double(draws);
    };
    // Clean*: each setting rectified on K samples of the clean split itself, then evaluated on it
    // (what rectification costs, or gains, without a corruption: the split may be shifted already)
    rectify_all(ds, sample_seed ^ (std::uint64_t(0xc1ea) << 48), [](eval::results& r, double a) { r.set_clean(a); });
    for (std::size_t v = 0; v < plans.size(); ++v)
        for (auto k : ks) {
            const double m = mean_of_draws(v, k, [](const eval::results& r) { return r.clean().value_or(0.0); });
            after[v].at(k).set_clean(m);
            if (k == ks.front())
                std::cerr << "  clean accuracy after rectification on K=" << k << " clean samples" << plans[v].label() << ": "
                          << 100 * m << "%\n";
        }
    const auto nhwc = cd::to_nhwc(ds);
    const corrupt::const_batch_view images{nhwc.data(), std::size_t(ds.size()), int(ds.height), int(ds.width),
                                           int(ds.channels)};
    std::vector<std::uint8_t> buf(nhwc.size());
    std::size_t cell = 0;
    const std::size_t cells = which.size() * sevs.size();
    for (auto c : which) {
        std::vector<std::uint8_t> file;  // --c-dir: the whole (5N, H, W, C) array of this corruption
        if (!p.get("c-dir").empty()) file = ad::read_c_file(p.get("c-dir"), corrupt::name_of(c), ds);
        for (int s : sevs) {
            const auto cell_t0 = std::chrono::steady_clock::now();
            if (file.empty()) {
                corrupt::batch_view dst{buf.data(), images.count, images.height, images.width, images.channels};
                corrupt::corrupt_batch(c, s, images, dst, seed, copt, 0, 0);
            } else {
                std::copy_n(file.begin() + std::ptrdiff_t(std::size_t(s - 1) * nhwc.size()), nhwc.size(), buf.begin());
            }
            const auto cds = ad::from_nhwc(buf, ds);
            ad::reset(net);
            const auto eb = train::evaluate(net, cds, norm, batch);
            before.set(corrupt::name_of(c), s, eb.accuracy);
            // draw r = 0 keeps the seeds of single-draw runs
            const std::string name = corrupt::name_of(c);
            rectify_all(cds, sample_seed ^ (std::uint64_t(cell) << 20), [&](eval::results& r, double a) { r.set(name, s, a); });
            std::string line;
            for (std::size_t v = 0; v < plans.size(); ++v)
                for (auto k : ks) {
                    const double m = mean_of_draws(v, k, [&](const eval::results& r) { return r.get(name, s).value_or(0.0); });
                    after[v].at(k).set(name, s, m);
                    line += shiftnorm::detail::concat("  ", plans.size() > 1 ? plans[v].spec() + " " : "", "K=", k, " ",
                                                      eval::detail::fmt_fixed(100 * m, 2), "%");
                }
            ++cell;
            const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - cell_t0).count();
            std::fprintf(stderr, "  [%zu/%zu] %-18s s%d  before %.2f%% %s  (%.1f s, ETA %.0f s)\n", cell, cells,
                         corrupt::name_of(c), s, 100 * eb.accuracy, line.c_str(), dt,
                         el / double(cell) * double(cells - cell));
        }
    }

    // table, files, plots
    const fs::path out(p.get("out"));
    fs::create_directories(out);
    std::string title = shiftnorm::detail::concat(dspec.kind, "-C (", corrupt::table_name(copt.table), " table, seed ", seed,
                                                  "), ", ds.size(), " ", p.get("split"), " images; ");
    if (has_bn)
        title += shiftnorm::detail::concat("rectification K=", ks.front(), draws > 1 ? shiftnorm::detail::concat(" (mean of ", draws, " draws)") : "",
                                           plans.size() == 1 ? ", adapt " + plans[0].what + ", layers " + plans[0].layers : "");
    else
        title += p.get("norm") + " norm, no rectification";
    eval::report rep{title, base, {}};
    if (has_bn)
        for (std::size_t v = 0; v < plans.size(); ++v) rep.rows.push_back({row + plans[v].label(), before, after[v].at(ks.front())});
    else
        rep.rows.push_back({row + " (" + p.get("norm") + " norm)", before, std::nullopt});
    eval::print_table(std::cout, rep);
    for (const auto& f : eval::write_report_files((out / "adapt").string(), rep)) std::cerr << "  wrote " << f << "\n";

    auto mean_over_sevs = [&](const eval::results& r, corrupt::corruption c) {
        double sum = 0;
        int n = 0;
        for (int s : sevs) sum += r.get(corrupt::name_of(c), s).value_or(0.0), ++n;
        return 100 * sum / n;
    };
    // accuracy per corruption before / after each variant (Fig. 5), averaged over the severities
    eval::bar_chart_spec bars;
    bars.title = row + ": accuracy per corruption" + (has_bn ? ", before / after rectification (K=" + std::to_string(ks.front()) + ")" : "");
    bars.y_label = "accuracy (%)";
    bars.y_min = 0;
    bars.y_max = 100;
    bars.series.push_back({has_bn ? "before" : p.get("norm") + " norm", {}, {}});
    for (const auto& pl : plans) bars.series.push_back({"after" + pl.label(), {}, {}});
    for (auto c : which) {
        bars.categories.push_back(corrupt::name_of(c));
        bars.series[0].values.push_back(mean_over_sevs(before, c));
        for (std::size_t v = 0; v < plans.size(); ++v) bars.series[v + 1].values.push_back(mean_over_sevs(after[v].at(ks.front()), c));
    }
    eval::grouped_bar_chart((out / "accuracy_per_corruption.png").string(), bars);
    // per-severity curves
    eval::line_plot_spec sev;
    sev.title = row + ": mean accuracy per severity";
    sev.x = {"severity", false, {}, {}};
    sev.y = {"accuracy (%)", false, {}, {}};
    auto curve = [&](const std::string& name, const eval::results& r) {
        eval::plot_series ps{name, {}, {}, false, {}, {}};
        const auto a = eval::accuracy_by_severity(r);
        for (int s = 1; s <= 5; ++s)
            if (a[std::size_t(s - 1)] == a[std::size_t(s - 1)]) ps.x.push_back(s), ps.y.push_back(a[std::size_t(s - 1)]);  // already in percent
        return ps;
    };
    sev.series.push_back(curve(has_bn ? "before" : p.get("norm") + " norm", before));
    for (std::size_t v = 0; v < plans.size(); ++v)
        for (auto k : ks) sev.series.push_back(curve("after K=" + std::to_string(k) + plans[v].label(), after[v].at(k)));
    eval::line_plot((out / "accuracy_per_severity.png").string(), sev);
    if (has_bn && (ks.size() > 1 || draws > 1)) {  // Fig. 4: accuracy vs K; spread over the draws
        const auto sb = eval::summarize(before, base);
        eval::line_plot_spec kp;
        kp.title = row + ": mean corruption accuracy vs representation samples K";
        kp.x = {"K", true, {}, {}};
        kp.y = {"accuracy (%)", false, {}, {}};
        eval::plot_series ref{"before (source statistics)", {}, {}, true, {}, {}};
        eval::line_plot_spec cp = kp;  // Fig. 4 right: (m)CE vs K, when a baseline defines it
        cp.title = row + ": " + (which.size() == 1 ? "CE" : "mCE") + " vs representation samples K";
        cp.y = {which.size() == 1 ? "CE (%)" : "mCE (%)", false, {}, {}};
        eval::plot_series cref{"before (source statistics)", {}, {}, true, {}, {}};
        bool ce_finite = std::isfinite(sb.mce);
        std::ofstream kcsv(out / "adapt_k_sweep.csv");
        kcsv << "variant,k,draws,acc,acc_std_over_draws,mce,mce_std_over_draws\n";
        for (std::size_t v = 0; v < plans.size(); ++v) {
            eval::plot_series ps{"after rectification" + plans[v].label(), {}, {}, false, {}, {}}, cs = ps;
            std::cout << "\nAccuracy vs K" << plans[v].label() << " (mCE as above; before rectification: Acc "
                      << eval::detail::fmt_fixed(sb.acc, 2) << ", mCE " << eval::detail::fmt_fixed(sb.mce, 2) << ")\n"
                      << "     K    Acc*    mCE*" << (draws > 1 ? "  sd(Acc*)  sd(mCE*)  (over the draws)" : "") << "\n";
            for (auto k : ks) {
                const auto sm = eval::summarize(after[v].at(k), base);
                double acc_sd = 0, mce_sd = 0;
                if (draws > 1) {  // sample standard deviation over the draws of the summary metrics
                    double sa = 0, sa2 = 0, sm_ = 0, sm2 = 0;
                    for (const auto& d : per_draw[v][k]) {
                        const auto x = eval::summarize(d, base);
                        sa += x.acc, sa2 += x.acc * x.acc, sm_ += x.mce, sm2 += x.mce * x.mce;
                    }
                    const double n = double(draws);
                    acc_sd = std::sqrt(std::max(0.0, (sa2 - sa * sa / n) / (n - 1)));
                    mce_sd = std::sqrt(std::max(0.0, (sm2 - sm_ * sm_ / n) / (n - 1)));
                }
                ps.x.push_back(double(k)), ps.y.push_back(sm.acc);
                if (v == 0) ref.x.push_back(double(k)), ref.y.push_back(sb.acc);
                cs.x.push_back(double(k)), cs.y.push_back(sm.mce);
                if (v == 0) cref.x.push_back(double(k)), cref.y.push_back(sb.mce);
                ce_finite = ce_finite && std::isfinite(sm.mce);
                if (!std::isfinite(sm.mce)) mce_sd = std::nan("");
                namespace rd = eval::detail;
                std::cout << rd::pad_left(std::to_string(k), 6) << "  " << rd::pad_left(rd::fmt_fixed(sm.acc, 2), 6) << "  "
                          << rd::pad_left(rd::fmt_fixed(sm.mce, 2), 6);
                if (draws > 1) std::cout << "  " << rd::pad_left(rd::fmt_fixed(acc_sd, 2), 8) << "  " << rd::pad_left(rd::fmt_fixed(mce_sd, 2), 8);
                std::cout << "\n";
                kcsv << plans[v].spec() << "," << k << "," << draws << "," << eval::detail::fmt_number(sm.acc, "") << ","
                     << eval::detail::fmt_number(acc_sd, "") << "," << eval::detail::fmt_number(sm.mce, "") << ","
                     << eval::detail::fmt_number(mce_sd, "") << "\n";
            }
            kp.series.push_back(ps);
            cp.series.push_back(cs);
        }
        kp.series.push_back(ref);
        cp.series.push_back(cref);
        if (!kcsv) throw io_error("adapt: cannot write " + (out / "adapt_k_sweep.csv").string());
        if (ks.size() > 1) {
            if (ce_finite) eval::line_plot((out / "ce_vs_k.png").string(), cp);
            eval::line_plot((out / "accuracy_vs_k.png").string(), kp);
        }
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "adapt: done in " << secs << " s; plots and tables in " << out.string() << "\n";
    return 0;
}

}  // namespace shiftnorm::cli
