// SPDX-License-Identifier: MIT
// Tables, CSV and plots of the feature-shift analysis (seed 000's Figs. 2 and 3).
#pragma once

#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/eval/feature_shift.hpp"
#include "shiftnorm/eval/plot.hpp"
#include "shiftnorm/eval/report.hpp"

namespace shiftnorm::eval {

//! Fig. 2 as a table on `os`, `dir`/bn_stat_differences.csv and the two |difference| plots
//! (y axis from 0: the values are absolute differences). Returns the files written.
inline std::vector<std::string> write_stat_shift(std::ostream& os, const std::string& dir, const stat_shift_result& r,
                                                 const stat_shift_options& o) {
    namespace rd = detail;
    const std::string cname = corrupt::name_of(o.corruption);
    const int s = o.severity;
    os << "Fig. 2: mean over channels of |mu_a - mu_b| and |var_a - var_b| at each BN layer's input (unbiased\n"
       << "batch statistics), averaged over " << o.measurements << " pairs of disjoint batches of " << o.batch_size
       << " images; corrupted = " << cname << " severity " << s << "\n"
       << "  A = clean/clean (different content), B = corrupted/corrupted (different content),\n"
       << "  C = clean/corrupted (same content),   D = clean/corrupted (different content)\n\n"
       << "layer    C |       dmu A       dmu B       dmu C       dmu D |      dvar A      dvar B      dvar C      dvar D\n";
    const std::string csv_path = dir + "/bn_stat_differences.csv";
    std::ofstream csv(csv_path);
    csv << "layer,channels,comparison,mean_abs_mu,mean_abs_var,measurements,batch_size,corruption,severity\n";
    line_plot_spec pm, pv;
    pm.title = "|mu difference| per BN layer (" + cname + " s" + std::to_string(s) + ")";
    pv.title = "|var difference| per BN layer (" + cname + " s" + std::to_string(s) + ")";
    pm.x = pv.x = {"BN layer", false, {}, {}};
    pm.y = {"mean |d mu|", false, 0.0, {}};
    pv.y = {"mean |d var|", false, 0.0, {}};
    for (const char* name : stat_shift_comparisons)
        pm.series.push_back({name, {}, {}, false, {}, {}, {}}), pv.series.push_back({name, {}, {}, false, {}, {}, {}});
    double top_m = 0, top_v = 0;
    for (std::size_t l = 0; l < r.diff.size(); ++l) {
        std::string lm, lv;
        for (std::size_t k = 0; k < 4; ++k) {
            const auto& d = r.diff[l][k];
            lm += rd::pad_left(rd::fmt_fixed(d.mean_of_mean_abs, 4), 12);
            lv += rd::pad_left(rd::fmt_fixed(d.mean_of_var_abs, 4), 12);
            csv << l + 1 << "," << r.channels[l] << ",\"" << stat_shift_comparisons[k] << "\"," << rd::fmt_number(d.mean_of_mean_abs, "")
                << "," << rd::fmt_number(d.mean_of_var_abs, "") << "," << o.measurements << "," << o.batch_size << "," << cname << ","
                << s << "\n";
            pm.series[k].x.push_back(double(l + 1)), pm.series[k].y.push_back(d.mean_of_mean_abs);
            pv.series[k].x.push_back(double(l + 1)), pv.series[k].y.push_back(d.mean_of_var_abs);
            top_m = std::max(top_m, d.mean_of_mean_abs), top_v = std::max(top_v, d.mean_of_var_abs);
        }
        os << rd::pad_left(std::to_string(l + 1), 5) << rd::pad_left(std::to_string(r.channels[l]), 5) << " |" << lm << " |" << lv
           << "\n";
    }
    if (!csv) throw io_error("write_stat_shift: cannot write " + csv_path);
    // a fixed lower bound needs an upper one too (the plot's contract): 5% headroom
    pm.y.max = top_m > 0 ? top_m * 1.05 : 1.0;
    pv.y.max = top_v > 0 ? top_v * 1.05 : 1.0;
    line_plot(dir + "/bn_stat_diff_mean.png", pm);
    line_plot(dir + "/bn_stat_diff_var.png", pv);
    os << "\n";
    return {csv_path, dir + "/bn_stat_diff_mean.png", dir + "/bn_stat_diff_var.png"};
}

//! Fig. 3 as a table on `os` (layer `plot_layer`, 1-based, and the mean over all layers),
//! `dir`/cosine_similarity.csv and .png. Returns the files written.
inline std::vector<std::string> write_feature_cosine(std::ostream& os, const std::string& dir,
                                                     const std::vector<feature_cosine_row>& rows, const std::vector<index_t>& channels,
                                                     const feature_cosine_options& o, index_t images, std::size_t plot_layer) {
    namespace rd = detail;
    const std::string cname = corrupt::name_of(o.corruption);
    const std::size_t L = channels.size();
    if (plot_layer < 1 || plot_layer > L)
        shiftnorm::detail::fail("write_feature_cosine", "plot_layer", shiftnorm::detail::concat("in [1, ", L, "]"), plot_layer);
    const std::string csv_path = dir + "/cosine_similarity.csv";
    std::ofstream csv(csv_path);
    csv << "corruption,severity,layer,channels,cos_before,cos_after,images,k\n";
    os << "Fig. 3: cosine similarity of each image's feature map (BN layer output) on clean vs " << cname << " input, mean over "
       << images << " images;\nbefore = source statistics, after = statistics rectified from K=" << o.k
       << " corrupted images; layer " << plot_layer << " of " << L << ", and the mean over all layers\n\n"
       << "severity   cos layer " << plot_layer << " before  after  | cos all-layer mean before  after  |  Acc before  after\n";
    line_plot_spec lp;
    lp.title = "cosine similarity clean vs " + cname + " features";
    lp.x = {"severity", false, {}, {}};
    lp.y = {"cosine similarity", false, {}, {}};
    plot_series sb{"before, layer " + std::to_string(plot_layer), {}, {}, false, {}, {}, {}},
        sa{"after, layer " + std::to_string(plot_layer), {}, {}, false, {}, {}, {}},
        mb{"before, mean of layers", {}, {}, true, {}, {}, {}}, ma{"after, mean of layers", {}, {}, true, {}, {}, {}};
    const std::size_t pl = plot_layer - 1;
    for (const auto& row : rows) {
        double mean_b = 0, mean_a = 0;
        for (std::size_t l = 0; l < L; ++l) {
            mean_b += row.before[l] / double(L), mean_a += row.after[l] / double(L);
            csv << cname << "," << row.severity << "," << l + 1 << "," << channels[l] << "," << rd::fmt_number(row.before[l], "") << ","
                << rd::fmt_number(row.after[l], "") << "," << images << "," << o.k << "\n";
        }
        os << rd::pad_left(std::to_string(row.severity), 8) << rd::pad_left(rd::fmt_fixed(row.before[pl], 4), 23)
           << rd::pad_left(rd::fmt_fixed(row.after[pl], 4), 7) << "  |" << rd::pad_left(rd::fmt_fixed(mean_b, 4), 32)
           << rd::pad_left(rd::fmt_fixed(mean_a, 4), 7) << "  |" << rd::pad_left(rd::fmt_fixed(100.0 * row.acc_before, 2), 12)
           << rd::pad_left(rd::fmt_fixed(100.0 * row.acc_after, 2), 7) << "\n";
        sb.x.push_back(row.severity), sb.y.push_back(row.before[pl]), sa.x.push_back(row.severity), sa.y.push_back(row.after[pl]);
        mb.x.push_back(row.severity), mb.y.push_back(mean_b), ma.x.push_back(row.severity), ma.y.push_back(mean_a);
    }
    if (!csv) throw io_error("write_feature_cosine: cannot write " + csv_path);
    lp.series = {sb, sa, mb, ma};
    line_plot(dir + "/cosine_similarity.png", lp);
    return {csv_path, dir + "/cosine_similarity.png"};
}

}  // namespace shiftnorm::eval
