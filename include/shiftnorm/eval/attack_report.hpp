// SPDX-License-Identifier: MIT
// Outputs of the attack protocol: the Table-1 layout on a stream, CSV, JSON and a bar chart PNG.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <iomanip>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/eval/attack_eval.hpp"
#include "shiftnorm/eval/plot.hpp"
#include "shiftnorm/eval/report.hpp"

namespace shiftnorm::eval {

namespace detail {
inline std::string eps_text(double eps, attack::input_space space) {
    if (std::isnan(eps)) return "";
    std::ostringstream os;
    const double k = eps * 255.0;
    if (space == attack::input_space::pixel && std::abs(k - std::round(k)) < 1e-9 && k >= 1)
        os << std::llround(k) << "/255";
    else
        os << std::setprecision(6) << eps;
    return os.str();
}
//! Orders a series' points by x (a sweep given out of order must not zigzag).
inline void sort_points(plot_series& s) {
    std::vector<std::size_t> idx(s.x.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
    std::stable_sort(idx.begin(), idx.end(), [&](std::size_t a, std::size_t b) { return s.x[a] < s.x[b]; });
    std::vector<double> x, y;
    for (std::size_t i : idx) x.push_back(s.x[i]), y.push_back(s.y[i]);
    s.x = std::move(x), s.y = std::move(y);
}
inline std::string upper(std::string s) {
    for (auto& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
    return s;
}
}  // namespace detail

//! Seed 003's Table-1 layout, one table per eps: rows = subject (and batch size when several),
//! columns = Clean, then the attacks in the order run; accuracies in percent. CW (no budget)
//! appears in every eps table with the same value.
inline void print_attack_table(std::ostream& os, const attack_eval_result& r, attack::input_space space) {
    std::vector<double> eps_list;
    std::vector<std::string> attacks;
    std::vector<std::pair<std::string, index_t>> keys;
    bool several_batches = false;
    for (const auto& row : r.rows) {
        if (!std::isnan(row.eps) && std::find(eps_list.begin(), eps_list.end(), row.eps) == eps_list.end()) eps_list.push_back(row.eps);
        if (row.attack != "clean" && std::find(attacks.begin(), attacks.end(), row.attack) == attacks.end()) attacks.push_back(row.attack);
        const auto key = std::make_pair(row.subject, row.batch);
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
        if (row.batch != r.rows.front().batch) several_batches = true;
    }
    if (eps_list.empty()) eps_list.push_back(std::numeric_limits<double>::quiet_NaN());
    auto find = [&](const std::pair<std::string, index_t>& k, const std::string& a, double e) -> const attack_row* {
        for (const auto& row : r.rows)
            if (row.subject == k.first && row.batch == k.second && row.attack == a &&
                (a == "clean" || a == "cw" || row.eps == e))
                return &row;
        return nullptr;
    };
    for (double e : eps_list) {
        os << "\nAdversarial accuracy (%), " << r.images << " images, " << attack::to_string(space) << " space"
           << (std::isnan(e) ? std::string() : ", eps = " + detail::eps_text(e, space)) << "\n";
        os << detail::pad_right("stat.", 10) << (several_batches ? detail::pad_left("batch", 7) : "") << detail::pad_left("Clean", 8);
        for (const auto& a : attacks) os << detail::pad_left(detail::upper(a), 8);
        os << "\n";
        for (const auto& k : keys) {
            os << detail::pad_right(k.first, 10) << (several_batches ? detail::pad_left(std::to_string(k.second), 7) : "");
            const auto* c = find(k, "clean", e);
            os << detail::pad_left(c ? detail::fmt_fixed(100 * c->accuracy, 1) : "-", 8);
            for (const auto& a : attacks) {
                const auto* x = find(k, a, e);
                os << detail::pad_left(x ? detail::fmt_fixed(100 * x->accuracy, 1) : "-", 8);
            }
            os << "\n";
        }
    }
}

//! One CSV line per row: subject,batch,attack,eps,images,correct,accuracy,mean_linf,max_linf,mean_l2,seconds.
inline std::string to_attack_csv(const attack_eval_result& r) {
    std::ostringstream os;
    os << "subject,batch,attack,eps,images,correct,accuracy,mean_linf,max_linf,mean_l2,seconds\n" << std::setprecision(8);
    for (const auto& row : r.rows) {
        os << csv_escape(row.subject) << ',' << row.batch << ',' << row.attack << ',';
        if (!std::isnan(row.eps)) os << row.eps;
        os << ',' << row.images << ',' << row.correct << ',' << row.accuracy << ',' << row.mean_linf << ',' << row.max_linf
           << ',' << row.mean_l2 << ',' << row.seconds << '\n';
    }
    return os.str();
}

//! Parses what to_attack_csv writes (quoted fields allowed), e.g. to redraw the plots of an
//! earlier run. Throws io_error naming the line for a wrong header, field count or number.
inline attack_eval_result parse_attack_csv(const std::string& text, const std::string& what = "attack.csv") {
    attack_eval_result r;
    std::istringstream in(text);
    std::string line;
    const auto fields_of = [](const std::string& l) { return csv_fields(l); };
    const std::string header = "subject,batch,attack,eps,images,correct,accuracy,mean_linf,max_linf,mean_l2,seconds";
    if (!std::getline(in, line) || fields_of(line) != fields_of(header))
        throw io_error(what + ": expected the header '" + header + "' (a file written by shiftnorm attack)");
    std::size_t no = 1;
    while (std::getline(in, line)) {
        ++no;
        if (line.empty()) continue;
        const auto f = fields_of(line);
        if (f.size() != 11) throw io_error(shiftnorm::detail::concat(what, ": line ", no, " has ", f.size(), " fields, expected 11"));
        auto num = [&](const std::string& v, const char* col) {
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !std::isfinite(x))
                throw io_error(shiftnorm::detail::concat(what, ": line ", no, ": column ", col, " is not a number: '", v, "'"));
            return x;
        };
        attack_row row;
        row.subject = f[0];
        row.batch = index_t(num(f[1], "batch"));
        row.attack = f[2];
        row.eps = f[3].empty() ? std::numeric_limits<double>::quiet_NaN() : num(f[3], "eps");
        row.images = index_t(num(f[4], "images"));
        row.correct = index_t(num(f[5], "correct"));
        row.accuracy = num(f[6], "accuracy");
        row.mean_linf = num(f[7], "mean_linf");
        row.max_linf = num(f[8], "max_linf");
        row.mean_l2 = num(f[9], "mean_l2");
        row.seconds = num(f[10], "seconds");
        r.images = std::max(r.images, row.images);
        r.rows.push_back(row);
    }
    if (r.rows.empty()) throw io_error(what + ": no rows");
    return r;
}

//! JSON: {"provenance": {...}, "settings": {...}, "rows": [...]}; eps null where not applicable.
inline std::string to_attack_json(const attack_eval_result& r, const attack_eval_options& o,
                                  const std::vector<std::pair<std::string, std::string>>& provenance) {
    std::ostringstream os;
    os << std::setprecision(10) << "{\n  \"provenance\": {";
    for (std::size_t i = 0; i < provenance.size(); ++i)
        os << (i ? ", " : "") << '"' << json_escape(provenance[i].first) << "\": \"" << json_escape(provenance[i].second) << '"';
    os << "},\n  \"settings\": {\"space\": \"" << attack::to_string(o.space) << "\", \"steps\": " << o.base.steps
       << ", \"step\": ";
    if (o.base.step < 0) os << "\"eps/10\"";
    else os << o.base.step;
    os << ", \"mim_decay\": " << o.base.decay << ", \"seed\": " << o.base.seed
       << ", \"cw_c\": " << o.base.cw_c << ", \"cw_binary_steps\": " << o.base.cw_binary_steps
       << ", \"cw_steps\": " << o.base.cw_steps << ", \"cw_lr\": " << o.base.cw_lr << ", \"cw_kappa\": " << o.base.cw_kappa
       << ", \"images\": " << r.images << ", \"dataset_digest\": \"" << json_escape(r.dataset_digest) << "\"},\n  \"rows\": [";
    for (std::size_t i = 0; i < r.rows.size(); ++i) {
        const auto& row = r.rows[i];
        os << (i ? "," : "") << "\n    {\"subject\": \"" << json_escape(row.subject) << "\", \"batch\": " << row.batch
           << ", \"attack\": \"" << row.attack << "\", \"eps\": ";
        if (std::isnan(row.eps)) os << "null";
        else os << row.eps;
        os << ", \"images\": " << row.images << ", \"correct\": " << row.correct << ", \"accuracy\": " << row.accuracy
           << ", \"mean_linf\": " << row.mean_linf << ", \"max_linf\": " << row.max_linf << ", \"mean_l2\": " << row.mean_l2
           << ", \"seconds\": " << row.seconds << "}";
    }
    os << "\n  ]\n}\n";
    return os.str();
}

//! Bar chart per eps: categories = Clean + attacks, one series per (subject, batch).
inline std::vector<std::string> write_attack_charts(const std::string& prefix, const attack_eval_result& r,
                                                    attack::input_space space) {
    std::vector<double> eps_list;
    for (const auto& row : r.rows)
        if (!std::isnan(row.eps) && std::find(eps_list.begin(), eps_list.end(), row.eps) == eps_list.end()) eps_list.push_back(row.eps);
    if (eps_list.empty()) eps_list.push_back(std::numeric_limits<double>::quiet_NaN());
    std::vector<std::string> written;
    for (std::size_t ei = 0; ei < eps_list.size(); ++ei) {
        const double e = eps_list[ei];
        bar_chart_spec spec;
        spec.title = "Accuracy under attack" + (std::isnan(e) ? std::string() : ", eps " + detail::eps_text(e, space));
        spec.y_label = "accuracy (%)";
        spec.y_min = 0, spec.y_max = 100;
        spec.categories.push_back("clean");
        for (const auto& row : r.rows)
            if (row.attack != "clean" && std::find(spec.categories.begin(), spec.categories.end(), row.attack) == spec.categories.end())
                spec.categories.push_back(row.attack);
        for (const auto& row : r.rows) {
            const std::string name = row.subject + " (batch " + std::to_string(row.batch) + ")";
            auto it = std::find_if(spec.series.begin(), spec.series.end(), [&](const bar_series& s) { return s.name == name; });
            if (it == spec.series.end()) {
                spec.series.push_back({name, std::vector<double>(spec.categories.size(), std::nan("")), std::nullopt});
                it = spec.series.end() - 1;
            }
            if (!(row.attack == "clean" || row.attack == "cw" || row.eps == e)) continue;
            const auto c = std::size_t(std::find(spec.categories.begin(), spec.categories.end(), row.attack) - spec.categories.begin());
            it->values[c] = 100 * row.accuracy;
        }
        const std::string path = prefix + (eps_list.size() > 1 ? "_eps" + std::to_string(ei + 1) : std::string()) + ".png";
        grouped_bar_chart(path, spec);
        written.push_back(path);
    }
    return written;
}

//! Sweep plots (seed 003's Figs. 4 and 7): with several batch sizes, <prefix>_vs_batch.png
//! (accuracy vs inference batch size, log2 axis; one line per subject and attack, clean solid,
//! attacks dashed; one plot per eps, _vs_batch_epsK.png, when there are several); with
//! several eps, <prefix>_vs_eps_<attack>.png per L-inf attack (accuracy vs eps, one line per
//! subject, at the largest batch size; clean as eps 0). Returns the paths written (none for a
//! single point).
inline std::vector<std::string> write_attack_sweep_plots(const std::string& prefix, const attack_eval_result& r,
                                                         attack::input_space space) {
    std::vector<std::string> written;
    std::vector<index_t> batches;
    std::vector<double> eps_list;
    for (const auto& row : r.rows) {
        if (std::find(batches.begin(), batches.end(), row.batch) == batches.end()) batches.push_back(row.batch);
        if (!std::isnan(row.eps) && std::find(eps_list.begin(), eps_list.end(), row.eps) == eps_list.end()) eps_list.push_back(row.eps);
    }
    std::sort(batches.begin(), batches.end());
    std::sort(eps_list.begin(), eps_list.end());
    auto series_of = [](std::vector<plot_series>& v, const std::string& name, bool dashed) -> plot_series& {
        for (auto& s : v)
            if (s.name == name) return s;
        plot_series s;
        s.name = name;
        s.dashed = dashed;
        v.push_back(s);
        return v.back();
    };
    if (batches.size() > 1) {
        const std::size_t plots = std::max<std::size_t>(1, eps_list.size());
        for (std::size_t ei = 0; ei < plots; ++ei) {
            line_plot_spec lp;
            lp.title = "Accuracy vs inference batch size" +
                       (eps_list.empty() ? std::string() : ", eps " + detail::eps_text(eps_list[ei], space));
            lp.x.label = "batch size";
            lp.x.log2 = true;
            lp.y.label = "accuracy (%)";
            lp.y.min = 0, lp.y.max = 100;
            for (const auto& row : r.rows) {
                if (!(row.attack == "clean" || row.attack == "cw" || (!eps_list.empty() && row.eps == eps_list[ei]))) continue;
                auto& s = series_of(lp.series, row.subject + " " + row.attack, row.attack != "clean");
                s.x.push_back(double(row.batch));
                s.y.push_back(100 * row.accuracy);
            }
            for (auto& sr : lp.series) detail::sort_points(sr);
            written.push_back(prefix + "_vs_batch" + (plots > 1 ? "_eps" + std::to_string(ei + 1) : std::string()) + ".png");
            line_plot(written.back(), lp);
        }
    }
    if (eps_list.size() > 1) {
        const index_t B = batches.back();
        std::vector<std::string> subjects, attacks;
        for (const auto& row : r.rows) {
            if (row.batch != B) continue;
            if (std::find(subjects.begin(), subjects.end(), row.subject) == subjects.end()) subjects.push_back(row.subject);
            if (!std::isnan(row.eps) && std::find(attacks.begin(), attacks.end(), row.attack) == attacks.end())
                attacks.push_back(row.attack);
        }
        for (const auto& atk : attacks) {  // one plot per attack (the paper's Fig. 7 panels)
            line_plot_spec lp;
            lp.title = detail::upper(atk) + ": accuracy vs eps (" + std::string(attack::to_string(space)) + " space, batch " +
                       std::to_string(B) + ")";
            lp.x.label = "eps";
            lp.y.label = "accuracy (%)";
            lp.y.min = 0, lp.y.max = 100;
            for (const auto& subj : subjects) {
                auto& s = series_of(lp.series, subj, false);
                for (const auto& row : r.rows) {
                    if (row.batch != B || row.subject != subj) continue;
                    if (row.attack == "clean") s.x.push_back(0.0), s.y.push_back(100 * row.accuracy);  // eps 0
                    else if (row.attack == atk) s.x.push_back(row.eps), s.y.push_back(100 * row.accuracy);
                }
            }
            for (auto& sr : lp.series) detail::sort_points(sr);
            written.push_back(prefix + "_vs_eps_" + atk + ".png");
            line_plot(written.back(), lp);
        }
    }
    return written;
}

//! Writes <prefix>.csv, <prefix>.json, the chart(s) <prefix>[_epsK].png and the sweep plots
//! (write_attack_sweep_plots); returns the paths.
inline std::vector<std::string> write_attack_report(const std::string& prefix, const attack_eval_result& r,
                                                    const attack_eval_options& o,
                                                    const std::vector<std::pair<std::string, std::string>>& provenance) {
    std::vector<std::string> paths = {prefix + ".csv", prefix + ".json"};
    write_text_file(paths[0], to_attack_csv(r));
    write_text_file(paths[1], to_attack_json(r, o, provenance));
    for (auto& p : write_attack_charts(prefix, r, o.space)) paths.push_back(p);
    for (auto& p : write_attack_sweep_plots(prefix, r, o.space)) paths.push_back(p);
    return paths;
}

}  // namespace shiftnorm::eval
