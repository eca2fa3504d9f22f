// SPDX-License-Identifier: MIT
// Outputs of the attack protocol: the Table-1 layout on a stream, CSV, JSON and a bar chart PNG.
#pragma once

#include <cmath>
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

//! Writes <prefix>.csv, <prefix>.json and the chart(s) <prefix>[_epsK].png; returns the paths.
inline std::vector<std::string> write_attack_report(const std::string& prefix, const attack_eval_result& r,
                                                    const attack_eval_options& o,
                                                    const std::vector<std::pair<std::string, std::string>>& provenance) {
    std::vector<std::string> paths = {prefix + ".csv", prefix + ".json"};
    write_text_file(paths[0], to_attack_csv(r));
    write_text_file(paths[1], to_attack_json(r, o, provenance));
    for (auto& p : write_attack_charts(prefix, r, o.space)) paths.push_back(p);
    return paths;
}

}  // namespace shiftnorm::eval
