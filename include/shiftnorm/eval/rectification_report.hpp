// SPDX-License-Identifier: MIT
// Tables, CSV and plots of a rectification sweep (seed 000: Table 1-style rows, Figs. 4 and 5).
#pragma once

#include <algorithm>
#include <cmath>
#include <fstream>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/eval/metrics.hpp"
#include "shiftnorm/eval/plot.hpp"
#include "shiftnorm/eval/rectification.hpp"
#include "shiftnorm/eval/report.hpp"

namespace shiftnorm::eval {

//! How a sweep's rows are named: `row` is the model label; `unadapted` names the single row of a
//! network without BN statistics (e.g. "group:8 norm"), empty for a BN network.
struct sweep_labels {
    std::string row;
    std::string unadapted;
};

//! The report of the main K (the first): one row per variant (before / after), or one row
//! without rectification for a network without BN.
inline report make_sweep_report(const rectification_sweep_result& r, const rectification_sweep_options& o,
                                const baseline_table& base, const std::string& title, const sweep_labels& l) {
    report rep{title, base, {}};
    if (o.variants.empty())
        rep.rows.push_back({l.row + " (" + l.unadapted + ")", r.before, std::nullopt});
    else
        for (std::size_t v = 0; v < o.variants.size(); ++v)
            rep.rows.push_back({l.row + o.variants[v].label(), r.before, r.after[v].at(o.ks.front())});
    return rep;
}

//! Sample standard deviation over the draws of the summary Acc and mCE of variant v at K = k
//! (0 for one draw).
inline std::pair<double, double> draw_spread(const rectification_sweep_result& r, std::size_t v, index_t k,
                                             const baseline_table& base) {
    const auto& draws = r.per_draw[v].at(k);
    if (draws.size() < 2) return {0.0, 0.0};
    double sa = 0, sa2 = 0, sm = 0, sm2 = 0;
    for (const auto& d : draws) {
        const auto x = summarize(d, base);
        sa += x.acc, sa2 += x.acc * x.acc, sm += x.mce, sm2 += x.mce * x.mce;
    }
    const double n = double(draws.size());
    const double acc_sd = std::sqrt(std::max(0.0, (sa2 - sa * sa / n) / (n - 1)));
    const double mce_sd = std::sqrt(std::max(0.0, (sm2 - sm * sm / n) / (n - 1)));
    return {acc_sd, std::isfinite(sm) ? mce_sd : std::nan("")};
}

//! Prints the "Accuracy vs K" table of every variant (mean and, for several draws, the spread
//! over the draws) and writes the same numbers to `csv_path` (variant,k,draws,acc,...).
inline void write_k_table(std::ostream& os, const std::string& csv_path, const rectification_sweep_result& r,
                          const rectification_sweep_options& o, const baseline_table& base) {
    namespace rd = detail;
    const auto sb = summarize(r.before, base);
    std::ofstream csv(csv_path);
    csv << "variant,k,draws,acc,acc_std_over_draws,mce,mce_std_over_draws\n";
    for (std::size_t v = 0; v < o.variants.size(); ++v) {
        os << "\nAccuracy vs K" << o.variants[v].label() << " (mCE as above; before rectification: Acc "
           << rd::fmt_fixed(sb.acc, 2) << ", mCE " << rd::fmt_fixed(sb.mce, 2) << ")\n"
           << "     K    Acc*    mCE*" << (o.draws > 1 ? "  sd(Acc*)  sd(mCE*)  (over the draws)" : "") << "\n";
        for (auto k : o.ks) {
            const auto sm = summarize(r.after[v].at(k), base);
            auto [acc_sd, mce_sd] = draw_spread(r, v, k, base);
            if (!std::isfinite(sm.mce)) mce_sd = std::nan("");
            os << rd::pad_left(std::to_string(k), 6) << "  " << rd::pad_left(rd::fmt_fixed(sm.acc, 2), 6) << "  "
               << rd::pad_left(rd::fmt_fixed(sm.mce, 2), 6);
            if (o.draws > 1) os << "  " << rd::pad_left(rd::fmt_fixed(acc_sd, 2), 8) << "  " << rd::pad_left(rd::fmt_fixed(mce_sd, 2), 8);
            os << "\n";
            csv << o.variants[v].spec() << "," << k << "," << o.draws << "," << rd::fmt_number(sm.acc, "") << ","
                << rd::fmt_number(acc_sd, "") << "," << rd::fmt_number(sm.mce, "") << "," << rd::fmt_number(mce_sd, "") << "\n";
        }
    }
    if (!csv) throw io_error("write_k_table: cannot write " + csv_path);
}

//! A named set of cells for the accuracy plots.
struct accuracy_series {
    std::string name;
    const results* cells;
};

//! accuracy_per_corruption.png (grouped bars: each of `bars` averaged over `severities` for
//! every corruption) and accuracy_per_severity.png (a line per entry of `lines`: the mean over the
//! 15 common corruptions at each severity) in `dir`; returns the files written.
inline std::vector<std::string> write_accuracy_plots(const std::string& dir, const std::string& row, const std::string& bar_note,
                                                     const std::vector<accuracy_series>& bars_of,
                                                     const std::vector<accuracy_series>& lines,
                                                     const std::vector<std::string>& corruptions,
                                                     const std::vector<int>& severities) {
    std::vector<std::string> files;
    auto mean_over_sevs = [&](const results& x, const std::string& c) {
        double sum = 0;
        for (int s : severities) sum += x.get(c, s).value_or(0.0);
        return 100 * sum / double(severities.size());
    };
    bar_chart_spec bars;
    bars.title = row + ": accuracy per corruption" + bar_note;
    bars.y_label = "accuracy (%)";
    bars.y_min = 0;
    bars.y_max = 100;
    for (const auto& b : bars_of) bars.series.push_back({b.name, {}, {}});
    for (const auto& c : corruptions) {
        bars.categories.push_back(c);
        for (std::size_t i = 0; i < bars_of.size(); ++i) bars.series[i].values.push_back(mean_over_sevs(*bars_of[i].cells, c));
    }
    files.push_back(dir + "/accuracy_per_corruption.png");
    grouped_bar_chart(files.back(), bars);

    line_plot_spec sev;
    sev.title = row + ": mean accuracy per severity";
    sev.x = {"severity", false, {}, {}};
    sev.y = {"accuracy (%)", false, {}, {}};
    for (const auto& l : lines) {
        plot_series ps{l.name, {}, {}, false, {}, {}, {}};
        const auto a = accuracy_by_severity(*l.cells);  // percent already
        for (int s = 1; s <= 5; ++s)
            if (a[std::size_t(s - 1)] == a[std::size_t(s - 1)]) ps.x.push_back(s), ps.y.push_back(a[std::size_t(s - 1)]);
        sev.series.push_back(std::move(ps));
    }
    files.push_back(dir + "/accuracy_per_severity.png");
    line_plot(files.back(), sev);
    return files;
}

//! Redraws accuracy_per_corruption.png and accuracy_per_severity.png of an earlier sweep in `dir`
//! from its cells (parse_cells_csv of <dir>/adapt_cells.csv). `k` is the run's main K (the
//! legends say "after K=k"; the cells file does not record it). Rows are variants, "<model>" for
//! the paper's setting and "<model> [var only]" etc. for the others (a trailing " [...]" is read
//! as the variant). A network without BN has one row "<model> (<norm> norm)" and no after cells.
//! Returns the files written.
inline std::vector<std::string> replot_sweep(const std::string& dir, const std::vector<cells_row>& rows, index_t k) {
    if (rows.empty()) throw value_error("replot_sweep: no rows");
    const bool bn = rows.front().after.has_value();
    // "<model> [var only]" -> {"<model>", " [var only]"}; no bracket: the paper's setting, label ""
    auto split = [](const std::string& m) -> std::pair<std::string, std::string> {
        const auto at = m.rfind(" [");
        if (!m.empty() && m.back() == ']' && at != std::string::npos) return {m.substr(0, at), m.substr(at)};
        return {m, ""};
    };
    std::string row = split(rows.front().model).first, unadapted;
    if (!bn) {
        row = rows.front().model;
        const auto open = row.rfind(" (");
        if (open != std::string::npos && row.back() == ')') {
            unadapted = row.substr(open + 2, row.size() - open - 3);
            row = row.substr(0, open);
        }
    }
    std::vector<accuracy_series> bars{{bn ? "before" : unadapted, &rows.front().before}}, lines = bars;
    for (const auto& r : rows) {
        if (bn != r.after.has_value())
            throw value_error("replot_sweep: row '" + r.model + "' " + (bn ? "has no" : "has") + " after cells, unlike the first");
        if (!bn) continue;
        const std::string label = split(r.model).second;
        bars.push_back({"after" + label, &*r.after});
        lines.push_back({"after K=" + std::to_string(k) + label, &*r.after});
    }
    std::vector<std::string> corruptions;
    std::vector<int> severities;
    for (const auto& c : rows.front().before.corruptions()) {
        corruptions.push_back(c);
        for (int s = 1; s <= severity_count; ++s)
            if (rows.front().before.get(c, s) && std::find(severities.begin(), severities.end(), s) == severities.end())
                severities.push_back(s);
    }
    if (corruptions.empty()) throw value_error("replot_sweep: the cells hold no corrupted accuracy");
    std::sort(severities.begin(), severities.end());
    const std::string note = bn ? ", before / after rectification (K=" + std::to_string(k) + ")" : "";
    return write_accuracy_plots(dir, row, note, bars, lines, corruptions, severities);
}

//! The sweep's plots in `dir`: accuracy per corruption (Fig. 5), per severity, and, for several
//! K, accuracy and (m)CE vs K (Fig. 4, with the spread over the draws as error bars). Returns
//! the files written.
inline std::vector<std::string> write_sweep_plots(const std::string& dir, const rectification_sweep_result& r,
                                                  const rectification_sweep_options& o, const baseline_table& base,
                                                  const sweep_labels& l) {
    const bool bn = !o.variants.empty();
    const index_t k0 = o.ks.front();
    std::vector<accuracy_series> bars{{bn ? "before" : l.unadapted, &r.before}}, lines = bars;
    for (std::size_t v = 0; v < o.variants.size(); ++v) {
        bars.push_back({"after" + o.variants[v].label(), &r.after[v].at(k0)});
        for (auto k : o.ks) lines.push_back({"after K=" + std::to_string(k) + o.variants[v].label(), &r.after[v].at(k)});
    }
    std::vector<std::string> names;
    for (auto c : o.corruptions) names.push_back(corrupt::name_of(c));
    std::vector<std::string> files = write_accuracy_plots(
        dir, l.row, bn ? ", before / after rectification (K=" + std::to_string(k0) + ")" : "", bars, lines, names, o.severities);

    if (!bn || o.ks.size() < 2) return files;
    const auto sb = summarize(r.before, base);
    const bool one = o.corruptions.size() == 1;
    line_plot_spec kp;
    kp.title = l.row + ": mean corruption accuracy vs representation samples K";
    kp.x = {"K", true, {}, {}};
    kp.y = {"accuracy (%)", false, {}, {}};
    line_plot_spec cp = kp;
    cp.title = l.row + ": " + (one ? "CE" : "mCE") + " vs representation samples K";
    cp.y = {one ? "CE (%)" : "mCE (%)", false, {}, {}};
    plot_series ref{"before (source statistics)", {}, {}, true, {}, {}, {}}, cref = ref;
    bool ce_finite = std::isfinite(sb.mce);
    for (std::size_t v = 0; v < o.variants.size(); ++v) {
        plot_series ps{"after rectification" + o.variants[v].label(), {}, {}, false, {}, {}, {}}, cs = ps;
        for (auto k : o.ks) {
            const auto sm = summarize(r.after[v].at(k), base);
            const auto [acc_sd, mce_sd] = draw_spread(r, v, k, base);
            ps.x.push_back(double(k)), ps.y.push_back(sm.acc), ps.err.push_back(acc_sd);
            cs.x.push_back(double(k)), cs.y.push_back(sm.mce), cs.err.push_back(mce_sd);
            if (v == 0) ref.x.push_back(double(k)), ref.y.push_back(sb.acc), cref.x.push_back(double(k)), cref.y.push_back(sb.mce);
            ce_finite = ce_finite && std::isfinite(sm.mce);
        }
        kp.series.push_back(ps);
        cp.series.push_back(cs);
    }
    kp.series.push_back(ref);
    cp.series.push_back(cref);
    if (ce_finite) {
        files.push_back(dir + "/ce_vs_k.png");
        line_plot(files.back(), cp);
    }
    files.push_back(dir + "/accuracy_vs_k.png");
    line_plot(files.back(), kp);
    return files;
}

}  // namespace shiftnorm::eval
