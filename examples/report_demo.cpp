// SPDX-License-Identifier: MIT
// Exercises shiftnorm::eval's writers and plots on SYNTHETIC numbers (no model is run or measured).
//
// Usage: report_demo OUT_DIR [--baseline alexnet-imagenet|alexnet-cifar10|alexnet-cifar100|none]
// Writes OUT_DIR/report_summary.csv, report_cells.csv, report.json and four PNG plots, and prints
// the table to stdout. Every accuracy below comes from a made-up formula, labelled as such in
// every title: the demo checks the formatting, not any result of the paper.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "shiftnorm/eval/analysis.hpp"
#include "shiftnorm/eval/metrics.hpp"
#include "shiftnorm/eval/plot.hpp"
#include "shiftnorm/eval/report.hpp"

namespace ev = shiftnorm::eval;

namespace {

// Synthetic accuracy of corruption c at severity s: falls with severity, differs per corruption;
// `gain` mimics a rectification effect. Deterministic (fixed seed) so the output is stable.
ev::results synthetic_results(const std::string& label, double gain, unsigned seed) {
    ev::results r(label);
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> jitter(-0.02, 0.02);
    for (int c = 0; c < ev::common_corruption_count; ++c)
        for (int s = 1; s <= ev::severity_count; ++s) {
            const double hardness = 0.03 + 0.012 * double((c * 7) % 15);
            const double acc = 0.92 - hardness * s * (1.0 - gain) + jitter(g);
            r.set(ev::corruption_names[std::size_t(c)], s, std::clamp(acc, 0.05, 0.99));
        }
    r.set_clean(0.92);
    return r;
}

// Synthetic Fig. 3 analysis on random tensors: "corrupted" features are scaled, shifted and
// noisier versions of "clean" ones; "rectified" re-standardizes them per channel with their own
// batch statistics and maps them to the clean statistics (what BN rectification does to a layer).
void cosine_analysis(std::vector<double>& before, std::vector<double>& after) {
    const shiftnorm::shape4 s{16, 8, 6, 6};
    std::mt19937 g(42);
    std::normal_distribution<double> nd(0.0, 1.0);
    shiftnorm::tensor<float> clean(s);
    for (auto& v : clean) v = float(std::max(0.0, nd(g) + 0.5));  // ReLU-like features
    const auto cs = ev::batch_channel_stats(clean);
    for (int sev = 1; sev <= 5; ++sev) {
        shiftnorm::tensor<float> cor(s), rect(s);
        for (shiftnorm::index_t i = 0; i < cor.numel(); ++i)
            cor[i] = float(clean[i] * (1.0 + 0.4 * sev) + 0.6 * sev + 0.25 * sev * nd(g));
        const auto ks = ev::batch_channel_stats(cor);
        for (shiftnorm::index_t n = 0; n < s.n; ++n)
            for (shiftnorm::index_t c = 0; c < s.c; ++c)
                for (shiftnorm::index_t h = 0; h < s.h; ++h)
                    for (shiftnorm::index_t w = 0; w < s.w; ++w) {
                        const std::size_t k = std::size_t(c);
                        const double z = (cor(n, c, h, w) - ks.mean[k]) / std::sqrt(ks.var[k] + 1e-5);
                        rect(n, c, h, w) = float(z * std::sqrt(cs.var[k]) + cs.mean[k]);
                    }
        before.push_back(ev::cosine_similarity(clean, cor));
        after.push_back(ev::cosine_similarity(clean, rect));
    }
}

}  // namespace

int main(int argc, char** argv) try {
    if (argc < 2) {
        std::cerr << "usage: " << argv[0] << " OUT_DIR [--baseline alexnet-imagenet|alexnet-cifar10|alexnet-cifar100|none]\n";
        return 2;
    }
    const std::string dir = argv[1];
    ev::baseline_kind kind = ev::baseline_kind::alexnet_cifar10;
    for (int i = 2; i + 1 < argc; ++i)
        if (std::string(argv[i]) == "--baseline") kind = ev::parse_baseline(argv[i + 1]);

    ev::report rep;
    rep.title = "SYNTHETIC DATA (report_demo: made-up numbers, not a measurement)";
    rep.baseline = ev::baseline_table(kind);
    rep.rows.push_back({"Synthetic-A", synthetic_results("before", 0.0, 1), synthetic_results("after", 0.35, 2)});
    rep.rows.push_back({"Synthetic-B", synthetic_results("before", 0.1, 3), synthetic_results("after", 0.5, 4)});
    ev::results partial("before");  // a partial run: shows how the table reports missing entries
    partial.set("gaussian_noise", 3, 0.41);
    partial.set("fog", 1, 0.83);
    rep.rows.push_back({"Synthetic-partial", partial, std::nullopt});

    ev::print_table(std::cout, rep);
    for (const auto& p : ev::write_report_files(dir + "/report", rep)) std::cout << "wrote " << p << "\n";

    // 1. Accuracy per corruption before/after (grouped bars), from the metrics.
    const auto sb = ev::summarize(rep.rows[0].before, rep.baseline), sa = ev::summarize(*rep.rows[0].after, rep.baseline);
    ev::bar_chart_spec bars;
    bars.title = "Synthetic data: accuracy per corruption, Synthetic-A";
    bars.y_label = "Accuracy (%)";
    bars.x_label = "Corruption (mean over 5 severities)";
    bars.y_min = 0, bars.y_max = 100;
    ev::bar_series before{"Acc (before)", {}, std::nullopt}, after{"Acc* (rectified)", {}, std::nullopt};
    for (int c = 0; c < ev::common_corruption_count; ++c) {
        const std::string name = ev::corruption_names[std::size_t(c)];
        bars.categories.push_back(name);
        before.values.push_back(sb.find(name)->accuracy);
        after.values.push_back(sa.find(name)->accuracy);
    }
    bars.series = {before, after};
    ev::grouped_bar_chart(dir + "/accuracy_per_corruption.png", bars);

    // 2. Accuracy vs number of representation samples K (log2 axis), synthetic saturating curve.
    ev::line_plot_spec k_plot;
    k_plot.title = "Synthetic data: accuracy vs K (representation samples)";
    k_plot.x = {"K (log2 scale)", true, std::nullopt, std::nullopt};
    k_plot.y = {"Accuracy (%)", false, std::nullopt, std::nullopt};
    ev::plot_series k_series{"rectified", {}, {}};
    for (int k = 1; k <= 256; k *= 2) {
        k_series.x.push_back(k);
        k_series.y.push_back(78.0 - 30.0 * std::exp(-double(k) / 6.0));
    }
    ev::plot_series k_ref{"no rectification", {1, 256}, {sb.acc, sb.acc}, true, ev::marker::none};
    k_plot.series = {k_series, k_ref};
    ev::line_plot(dir + "/accuracy_vs_k.png", k_plot);

    // 3. Per-severity curves before/after.
    ev::line_plot_spec sev_plot;
    sev_plot.title = "Synthetic data: accuracy per severity, Synthetic-A";
    sev_plot.x = {"Severity", false, std::nullopt, std::nullopt};
    sev_plot.y = {"Accuracy (%)", false, 0.0, 100.0};
    const auto ab = ev::accuracy_by_severity(rep.rows[0].before), aa = ev::accuracy_by_severity(*rep.rows[0].after);
    sev_plot.series = {{"Acc (before)", {1, 2, 3, 4, 5}, {ab.begin(), ab.end()}},
                       {"Acc* (rectified)", {1, 2, 3, 4, 5}, {aa.begin(), aa.end()}}};
    ev::line_plot(dir + "/accuracy_per_severity.png", sev_plot);

    // 4. Fig. 3 style: cosine similarity clean vs corrupted features per severity (random tensors).
    std::vector<double> cb, ca;
    cosine_analysis(cb, ca);
    ev::line_plot_spec cos_plot;
    cos_plot.title = "Synthetic tensors: cosine similarity clean vs corrupted";
    cos_plot.x = {"Severity", false, std::nullopt, std::nullopt};
    cos_plot.y = {"Cosine similarity", false, std::nullopt, std::nullopt};
    cos_plot.series = {{"not rectified", {1, 2, 3, 4, 5}, cb}, {"rectified", {1, 2, 3, 4, 5}, ca}};
    ev::line_plot(dir + "/cosine_similarity.png", cos_plot);
    for (const char* p : {"accuracy_per_corruption.png", "accuracy_vs_k.png", "accuracy_per_severity.png", "cosine_similarity.png"})
        std::cout << "wrote " << dir << "/" << p << "\n";
    return 0;
} catch (const std::exception& e) {
    std::cerr << "report_demo: " << e.what() << "\n";
    return 1;
}
