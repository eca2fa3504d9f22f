// SPDX-License-Identifier: MIT
// Outputs of seed 003's Fig. 2 protocol (eval/attack_stat_shift.hpp): a per-layer table, the
// per-batch per-channel differences as CSV, heat maps (batches x channels) and a per-layer plot.
#pragma once

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/eval/attack_stat_shift.hpp"
#include "shiftnorm/eval/heatmap.hpp"
#include "shiftnorm/eval/plot.hpp"
#include "shiftnorm/eval/report.hpp"

namespace shiftnorm::eval {

//! One row per BN layer: channels, mean |d mu| and |d var| for clean and adversarial batches,
//! their ratio, and the channel-pattern consistency across batches.
inline void print_attack_stat_shift(std::ostream& os, const attack_stat_shift_result& r) {
    os << "Batch statistics minus population statistics at each BN input (" << r.batches << " batches, " << r.images
       << " images; accuracy with population statistics: clean " << std::fixed << std::setprecision(1)
       << 100 * r.clean_accuracy << "%, adversarial " << 100 * r.adversarial_accuracy << "%)\n";
    os << "layer  channels   |dmu| clean    |dmu| adv  ratio   |dvar| clean   |dvar| adv  ratio   corr(dmu) corr(dvar)\n";
    for (std::size_t l = 0; l < r.layers.size(); ++l) {
        const auto& s = r.layers[l];
        auto ratio = [](double a, double b) { return b > 0 ? a / b : NAN; };
        os << std::setw(5) << l << std::setw(10) << s.channels << std::setprecision(4) << std::setw(14)
           << s.mean_abs_dmean_clean << std::setw(13) << s.mean_abs_dmean_adv << std::setprecision(2) << std::setw(7)
           << ratio(s.mean_abs_dmean_adv, s.mean_abs_dmean_clean) << std::setprecision(4) << std::setw(15)
           << s.mean_abs_dvar_clean << std::setw(13) << s.mean_abs_dvar_adv << std::setprecision(2) << std::setw(7)
           << ratio(s.mean_abs_dvar_adv, s.mean_abs_dvar_clean) << std::setw(12) << s.consistency_dmean_adv << std::setw(11)
           << s.consistency_dvar_adv << "\n";
    }
    os.unsetf(std::ios::floatfield);
}

//! layer,batch,channel,kind,dmean,dvar (kind: clean | adversarial).
inline std::string to_attack_stat_shift_csv(const attack_stat_shift_result& r) {
    std::ostringstream os;
    os << "layer,batch,channel,kind,dmean,dvar\n" << std::setprecision(9);
    for (std::size_t l = 0; l < r.layers.size(); ++l) {
        const auto& s = r.layers[l];
        for (int adv = 0; adv < 2; ++adv) {
            const auto& dm = adv ? s.dmean_adv : s.dmean_clean;
            const auto& dv = adv ? s.dvar_adv : s.dvar_clean;
            for (std::size_t b = 0; b < dm.size(); ++b)
                for (std::size_t c = 0; c < dm[b].size(); ++c)
                    os << l << "," << b << "," << c << "," << (adv ? "adversarial" : "clean") << "," << dm[b][c] << ","
                       << dv[b][c] << "\n";
        }
    }
    return os.str();
}

//! Writes <prefix>.csv, <prefix>_layers.png (mean |d mu|, |d var| per layer, clean vs
//! adversarial) and <prefix>_layer<L>_{mean,var}.png heat maps (rows: batches, columns:
//! channels, |difference|; the colour range is shared by the clean and adversarial maps of a
//! layer) for the first, middle and last BN layer. Returns the paths.
inline std::vector<std::string> write_attack_stat_shift_report(const std::string& prefix, const attack_stat_shift_result& r,
                                                               const std::string& title) {
    std::vector<std::string> paths = {prefix + ".csv"};
    write_text_file(paths[0], to_attack_stat_shift_csv(r));
    if (r.layers.empty()) return paths;
    line_plot_spec lp;
    lp.title = title + ": mean |batch - population| per BN layer";
    lp.x.label = "BN layer";
    lp.y.label = "mean over batches and channels";
    lp.y.min = 0.0;
    const char* names[4] = {"|d mean| clean", "|d mean| adversarial", "|d var| clean", "|d var| adversarial"};
    for (int k = 0; k < 4; ++k) {
        plot_series s;
        s.name = names[k];
        s.dashed = k % 2 == 0;
        for (std::size_t l = 0; l < r.layers.size(); ++l) {
            const auto& L = r.layers[l];
            s.x.push_back(double(l));
            s.y.push_back(k == 0 ? L.mean_abs_dmean_clean : k == 1 ? L.mean_abs_dmean_adv : k == 2 ? L.mean_abs_dvar_clean : L.mean_abs_dvar_adv);
        }
        lp.series.push_back(s);
    }
    paths.push_back(prefix + "_layers.png");
    line_plot(paths.back(), lp);

    std::vector<std::size_t> pick = {0, r.layers.size() / 2, r.layers.size() - 1};
    pick.erase(std::unique(pick.begin(), pick.end()), pick.end());
    for (std::size_t l : pick) {
        const auto& L = r.layers[l];
        if (L.dmean_adv.empty()) continue;
        for (int var = 0; var < 2; ++var) {
            const auto& clean = var ? L.dvar_clean : L.dmean_clean;
            const auto& adv = var ? L.dvar_adv : L.dmean_adv;
            double hi = 0;
            for (const auto* rows : {&clean, &adv})
                for (const auto& row : *rows)
                    for (double v : row) hi = std::max(hi, std::abs(v));
            if (!(hi > 0)) hi = 1;
            heatmap_spec h;
            h.title = title + ", BN layer " + std::to_string(l) + ": |batch " + (var ? "var" : "mean") +
                      " - population| (top: clean, bottom: adversarial)";
            h.print_values = false;
            h.cell = 8;
            h.hi = hi;
            h.row_title = "batch";
            h.column_title = "channel";
            for (std::size_t c = 0; c < adv.front().size(); ++c) h.columns.push_back(c % 8 == 0 ? std::to_string(c) : "");
            for (int a = 0; a < 2; ++a) {
                const auto& rows = a ? adv : clean;
                for (std::size_t b = 0; b < rows.size(); ++b) {
                    h.rows.push_back(b == 0 ? (a ? "adv 0" : "clean 0") : "");
                    std::vector<double> v(rows[b].size());
                    for (std::size_t c = 0; c < v.size(); ++c) v[c] = std::abs(rows[b][c]);
                    h.values.push_back(std::move(v));
                }
            }
            paths.push_back(prefix + "_layer" + std::to_string(l) + (var ? "_var.png" : "_mean.png"));
            heatmap(paths.back(), h);
        }
    }
    return paths;
}

}  // namespace shiftnorm::eval
