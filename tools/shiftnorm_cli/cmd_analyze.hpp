// SPDX-License-Identifier: MIT
// `shiftnorm analyze`: seed 000's feature-shift analysis. Fig. 2: absolute differences of the BN
// statistics between clean and corrupted batches; Fig. 3: cosine similarity of clean and
// corrupted feature maps per severity, before and after rectification.
#pragma once

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_adapt.hpp"
#include "cmd_corrupt.hpp"
#include "common.hpp"
#include "shiftnorm/eval/analysis.hpp"
#include "shiftnorm/eval/plot.hpp"
#include "shiftnorm/eval/report.hpp"
#include "shiftnorm/nn/visit.hpp"

namespace shiftnorm::cli {

namespace analyze_detail {

using layer_t = nn::norm_layer<adapt_detail::rect_norm>;

//! Records, for every BN layer of a network, the input (`inputs`) or output (`outputs`) of its
//! last forward pass: copies made by the layers' observer taps.
class feature_tap {
public:
    feature_tap(nn::module& net, bool keep_inputs) : layers_(nn::find_all<layer_t>(net)) {
        features.resize(layers_.size());
        for (std::size_t i = 0; i < layers_.size(); ++i)
            layers_[i]->observer = [this, i, keep_inputs](const tensor<float>& src, const tensor<float>& dst, nn::mode) {
                features[i] = keep_inputs ? src : dst;
            };
    }
    ~feature_tap() {
        for (auto* l : layers_) l->observer = nullptr;
    }
    feature_tap(const feature_tap&) = delete;
    feature_tap& operator=(const feature_tap&) = delete;
    std::size_t size() const { return layers_.size(); }
    const layer_t& layer(std::size_t i) const { return *layers_[i]; }

    std::vector<tensor<float>> features;

private:
    std::vector<layer_t*> layers_;
};

}  // namespace analyze_detail

//! shiftnorm analyze --model M --weights W --data SPEC [--what stats|cosine|both]
inline int cmd_analyze(const std::vector<std::string>& args) {
    namespace ad = adapt_detail;
    namespace an = analyze_detail;
    namespace cd = corrupt_detail;
    namespace fs = std::filesystem;
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
    const auto corr = cs.front();
    const auto sev_stats = cd::parse_severities(p.get("severity"));
    if (sev_stats.size() != 1) throw usage_error("--severity names one severity, got '" + p.get("severity") + "'");
    const auto sevs = cd::parse_severities(p.get("severities"));
    const long long M = p.get_int("measurements"), B = p.get_int("batch-size"), K = p.get_int("samples");
    if (M < 1) throw usage_error("--measurements must be >= 1");
    if (B < 2) throw usage_error("--batch-size must be >= 2 (an unbiased variance needs two values)");
    if (K < 1) throw usage_error("--samples must be >= 1");
    const auto dspec = parse_data(p.get("data"));
    auto ds = load_split(dspec, false);
    if (p.get_int("limit") > 0 && p.get_int("limit") < ds.size())
        ds = data::random_subset(ds, p.get_int("limit"), std::uint64_t(p.get_int("sample-seed")) + 0x5eed);
    if (what != "stats" && K > ds.size())
        throw usage_error(shiftnorm::detail::concat("--samples ", K, " exceeds the ", ds.size(), " images of the split"));
    if ((what != "cosine") && 2 * B > ds.size())
        throw usage_error(shiftnorm::detail::concat("--batch-size ", B, ": two disjoint batches need ", 2 * B, " images, the split has ", ds.size()));
    const auto norm = normalization_from(p, dspec);
    corrupt::corrupt_options copt;
    copt.table = p.get("table") == "auto" ? cd::default_table(ds) : corrupt::parse_table(p.get("table"));
    const auto seed = std::uint64_t(p.get_int("seed")), sample_seed = std::uint64_t(p.get_int("sample-seed"));

    nn::sequential net = build_model<ad::rect_norm>(p, ds);
    train::load_weights(net, p.get("weights"));
    const std::size_t L = nn::find_all<an::layer_t>(net).size();
    if (L == 0) throw value_error("analyze: model '" + p.get("model") + "' has no batch-norm layer");
    const long long plot_layer = p.get_int("layer") == 0 ? (long long)L : p.get_int("layer");
    if (plot_layer < 1 || plot_layer > (long long)L)
        throw usage_error(shiftnorm::detail::concat("--layer ", plot_layer, ": the model has BN layers 1..", L));
    const fs::path out(p.get("out"));
    fs::create_directories(out);
    const auto nhwc = cd::to_nhwc(ds);
    const corrupt::const_batch_view images{nhwc.data(), std::size_t(ds.size()), int(ds.height), int(ds.width), int(ds.channels)};
    auto corrupted = [&](int s) {
        std::vector<std::uint8_t> buf(nhwc.size());
        corrupt::batch_view dst{buf.data(), images.count, images.height, images.width, images.channels};
        corrupt::corrupt_batch(corr, s, images, dst, seed, copt, 0, 0);
        return data::from_nhwc(buf, ds);
    };
    const std::string cname = corrupt::name_of(corr);
    std::cerr << "analyze: " << p.get("model") << " (" << L << " BN layers) on " << ds.size() << " " << dspec.kind
              << " test images, " << cname << "\n";

    if (what != "cosine") {  // ---- Fig. 2 ----
        const int s = sev_stats.front();
        const auto cds = corrupted(s);
        const char* names[4] = {"clean/clean, different content", "corrupted/corrupted, different content",
                                "clean/corrupted, same content", "clean/corrupted, different content"};
        std::vector<std::array<eval::stat_difference_average, 4>> avg(L);
        an::feature_tap tap(net, true);
        random_engine g(sample_seed ^ 0xf162);
        auto stats_of = [&](const data::image_dataset& d, const std::vector<index_t>& idx) {
            net.forward(eval::batch_of(d, idx, norm), nn::mode::eval);
            std::vector<channel_stats<double>> st;
            for (std::size_t l = 0; l < L; ++l) st.push_back(eval::batch_channel_stats(tap.features[l], variance_kind::unbiased));
            return st;
        };
        for (long long m = 0; m < M; ++m) {
            const auto both = data::draw_indices(ds.size(), 2 * B, g.next());
            const std::vector<index_t> a(both.begin(), both.begin() + B), b(both.begin() + B, both.end());
            const auto ca = stats_of(ds, a), cb = stats_of(ds, b), xa = stats_of(cds, a), xb = stats_of(cds, b);
            for (std::size_t l = 0; l < L; ++l) {
                avg[l][0].add(eval::bn_stat_difference(ca[l], cb[l]));
                avg[l][1].add(eval::bn_stat_difference(xa[l], xb[l]));
                avg[l][2].add(eval::bn_stat_difference(ca[l], xa[l]));
                avg[l][3].add(eval::bn_stat_difference(ca[l], xb[l]));
            }
        }
        namespace rd = eval::detail;
        std::cout << "Fig. 2: mean over channels of |mu_a - mu_b| and |var_a - var_b| at each BN layer's input (unbiased\n"
                  << "batch statistics), averaged over " << M << " pairs of disjoint batches of " << B << " images; corrupted = "
                  << cname << " severity " << s << "\n"
                  << "  A = clean/clean (different content), B = corrupted/corrupted (different content),\n"
                  << "  C = clean/corrupted (same content),   D = clean/corrupted (different content)\n\n"
                  << "layer    C |       dmu A       dmu B       dmu C       dmu D |      dvar A      dvar B      dvar C      dvar D\n";
        std::ofstream csv(out / "bn_stat_differences.csv");
        csv << "layer,channels,comparison,mean_abs_mu,mean_abs_var,measurements,batch_size,corruption,severity\n";
        eval::line_plot_spec pm, pv;
        pm.title = "|mu difference| per BN layer (" + cname + " s" + std::to_string(s) + ")";
        pv.title = "|var difference| per BN layer (" + cname + " s" + std::to_string(s) + ")";
        pm.x = pv.x = {"BN layer", false, {}, {}};
        pm.y = {"mean |d mu|", false, {}, {}};
        pv.y = {"mean |d var|", false, {}, {}};
        for (int k = 0; k < 4; ++k) pm.series.push_back({names[k], {}, {}, false, {}, {}}), pv.series.push_back({names[k], {}, {}, false, {}, {}});
        for (std::size_t l = 0; l < L; ++l) {
            std::string lm, lv;
            for (int k = 0; k < 4; ++k) {
                const auto d = avg[l][std::size_t(k)].mean();
                lm += rd::pad_left(rd::fmt_fixed(d.mean_of_mean_abs, 4), 12);
                lv += rd::pad_left(rd::fmt_fixed(d.mean_of_var_abs, 4), 12);
                csv << l + 1 << "," << tap.layer(l).channels() << ",\"" << names[k] << "\"," << rd::fmt_number(d.mean_of_mean_abs, "")
                    << "," << rd::fmt_number(d.mean_of_var_abs, "") << "," << M << "," << B << "," << cname << "," << s << "\n";
                pm.series[std::size_t(k)].x.push_back(double(l + 1)), pm.series[std::size_t(k)].y.push_back(d.mean_of_mean_abs);
                pv.series[std::size_t(k)].x.push_back(double(l + 1)), pv.series[std::size_t(k)].y.push_back(d.mean_of_var_abs);
            }
            std::cout << rd::pad_left(std::to_string(l + 1), 5) << rd::pad_left(std::to_string(tap.layer(l).channels()), 5) << " |"
                      << lm << " |" << lv << "\n";
        }
        if (!csv) throw io_error("analyze: cannot write " + (out / "bn_stat_differences.csv").string());
        eval::line_plot((out / "bn_stat_diff_mean.png").string(), pm);
        eval::line_plot((out / "bn_stat_diff_var.png").string(), pv);
        std::cout << "\n";
        std::cerr << "  wrote " << (out / "bn_stat_differences.csv").string() << ", bn_stat_diff_mean.png, bn_stat_diff_var.png\n";
    }

    if (what != "stats") {  // ---- Fig. 3 ----
        // two copies of the network: the source one and one rectified on each severity
        nn::sequential rect = build_model<ad::rect_norm>(p, ds);
        train::load_weights(rect, p.get("weights"));
        eval::rectify_variant plan;  // both statistics, every layer: the paper's setting
        const index_t eval_batch = 100;
        std::ofstream csv(out / "cosine_similarity.csv");
        csv << "corruption,severity,layer,channels,cos_before,cos_after,images,k\n";
        namespace rd = eval::detail;
        std::cout << "Fig. 3: cosine similarity of each image's feature map (BN layer output) on clean vs " << cname
                  << " input, mean over " << ds.size() << " images;\nbefore = source statistics, after = statistics rectified "
                  << "from K=" << K << " corrupted images; layer " << plot_layer << " of " << L << ", and the mean over all layers\n\n"
                  << "severity   cos layer " << plot_layer << " before  after  | cos all-layer mean before  after  |  Acc before  after\n";
        eval::line_plot_spec lp;
        lp.title = "cosine similarity clean vs " + cname + " features";
        lp.x = {"severity", false, {}, {}};
        lp.y = {"cosine similarity", false, {}, {}};
        eval::plot_series sb{"before, layer " + std::to_string(plot_layer), {}, {}, false, {}, {}},
            sa{"after, layer " + std::to_string(plot_layer), {}, {}, false, {}, {}},
            mb{"before, mean of layers", {}, {}, true, {}, {}}, ma{"after, mean of layers", {}, {}, true, {}, {}};
        for (int s : sevs) {
            const auto cds = corrupted(s);
            eval::configure_rectification(rect, plan);
            eval::rectify_from(rect, cds, data::draw_indices(cds.size(), K, sample_seed ^ (std::uint64_t(s) << 20) ^ std::uint64_t(K)), norm);
            std::vector<double> cos_b(L, 0.0), cos_a(L, 0.0);
            index_t correct_b = 0, correct_a = 0;
            for (index_t i0 = 0; i0 < ds.size(); i0 += eval_batch) {
                std::vector<index_t> idx;
                for (index_t i = i0; i < std::min(ds.size(), i0 + eval_batch); ++i) idx.push_back(i);
                std::vector<tensor<float>> clean_f;
                {
                    an::feature_tap tap(net, false);
                    net.forward(eval::batch_of(ds, idx, norm), nn::mode::eval);
                    clean_f = std::move(tap.features);
                }
                auto add = [&](nn::sequential& model, std::vector<double>& acc, index_t& correct) {
                    an::feature_tap tap(model, false);
                    std::vector<std::int32_t> labels;
                    const auto& logits = model.forward(eval::batch_of(cds, idx, norm, &labels), nn::mode::eval);
                    for (std::size_t l = 0; l < L; ++l)
                        for (double c : eval::cosine_similarity_per_sample(clean_f[l], tap.features[l])) acc[l] += c;
                    correct += index_t(nn::count_correct(logits, labels));
                };
                add(net, cos_b, correct_b);
                add(rect, cos_a, correct_a);
            }
            double mean_b = 0, mean_a = 0;
            for (std::size_t l = 0; l < L; ++l) {
                cos_b[l] /= double(ds.size()), cos_a[l] /= double(ds.size());
                mean_b += cos_b[l] / double(L), mean_a += cos_a[l] / double(L);
                csv << cname << "," << s << "," << l + 1 << "," << nn::find_all<an::layer_t>(net)[l]->channels() << ","
                    << rd::fmt_number(cos_b[l], "") << "," << rd::fmt_number(cos_a[l], "") << "," << ds.size() << "," << K << "\n";
            }
            const std::size_t pl = std::size_t(plot_layer - 1);
            std::cout << rd::pad_left(std::to_string(s), 8) << rd::pad_left(rd::fmt_fixed(cos_b[pl], 4), 23)
                      << rd::pad_left(rd::fmt_fixed(cos_a[pl], 4), 7) << "  |" << rd::pad_left(rd::fmt_fixed(mean_b, 4), 32)
                      << rd::pad_left(rd::fmt_fixed(mean_a, 4), 7) << "  |" << rd::pad_left(rd::fmt_fixed(100.0 * double(correct_b) / double(ds.size()), 2), 12)
                      << rd::pad_left(rd::fmt_fixed(100.0 * double(correct_a) / double(ds.size()), 2), 7) << "\n";
            std::cout.flush();
            sb.x.push_back(s), sb.y.push_back(cos_b[pl]), sa.x.push_back(s), sa.y.push_back(cos_a[pl]);
            mb.x.push_back(s), mb.y.push_back(mean_b), ma.x.push_back(s), ma.y.push_back(mean_a);
        }
        if (!csv) throw io_error("analyze: cannot write " + (out / "cosine_similarity.csv").string());
        lp.series = {sb, sa, mb, ma};
        eval::line_plot((out / "cosine_similarity.png").string(), lp);
        std::cerr << "  wrote " << (out / "cosine_similarity.csv").string() << ", cosine_similarity.png\n";
    }
    return 0;
}

}  // namespace shiftnorm::cli
