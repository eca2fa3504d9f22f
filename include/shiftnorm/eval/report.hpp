// SPDX-License-Identifier: MIT
// Result tables: fixed-width text in the layout of seed 000's Table 1, CSV and JSON writers.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <locale>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/data/json.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/eval/baselines.hpp"
#include "shiftnorm/eval/metrics.hpp"

namespace shiftnorm::eval {

//! Everything a report shows: a title (dataset, model family ...), the baseline that defines the
//! mCE variant, and rows of models before / after rectification.
struct report {
    std::string title;
    baseline_table baseline;
    std::vector<model_results> rows;
    //! Where the numbers come from (version, commit, command line, seeds, digests of weights
    //! and data), written to JSON as "provenance": {key: value, ...} in this order.
    std::vector<std::pair<std::string, std::string>> provenance;
};

//! Short column names for the per-corruption tables (full names go to CSV and JSON).
inline const char* short_corruption_name(const std::string& name) {
    static const char* const shorts[known_corruption_count] = {
        "gauss", "shot", "impul", "defoc", "glass", "motn", "zoom", "snow", "frost", "fog",
        "brigh", "contr", "elast", "pixel", "jpeg", "speck", "gblur", "spatt", "satur"};
    return shorts[std::size_t(check_corruption("short_corruption_name", "corruption", name))];
}

namespace detail {

//! Fixed-point number with `prec` decimals, "-" for NaN (locale independent).
inline std::string fmt_fixed(double v, int prec) {
    if (!std::isfinite(v)) return "-";
    std::ostringstream os;
    os.imbue(std::locale::classic());
    os << std::fixed << std::setprecision(prec) << v;
    return os.str();
}
inline std::string pad_left(const std::string& s, std::size_t w) { return s.size() >= w ? s : std::string(w - s.size(), ' ') + s; }
inline std::string pad_right(const std::string& s, std::size_t w) { return s.size() >= w ? s : s + std::string(w - s.size(), ' '); }

//! Shortest round-trip JSON/CSV number (max 17 significant digits), "null"/"" for NaN.
inline std::string fmt_number(double v, const char* nan_text) {
    if (!std::isfinite(v)) return nan_text;
    std::ostringstream os;
    os.imbue(std::locale::classic());
    os << std::setprecision(10) << v;
    return os.str();
}

//! The summaries of every row, in order: (before, after or nullptr).
struct row_summaries {
    summary before;
    std::optional<summary> after;
};
inline std::vector<row_summaries> summarize_rows(const report& rep) {
    std::vector<row_summaries> v;
    for (const auto& row : rep.rows) {
        row_summaries s{summarize(row.before, rep.baseline), std::nullopt};
        if (row.after) s.after = summarize(*row.after, rep.baseline);
        v.push_back(std::move(s));
    }
    return v;
}

//! Common corruptions evaluated by at least one row, in ImageNet-C order, then held-out ones.
inline std::vector<std::string> evaluated_columns(const report& rep) {
    std::vector<std::string> cols;
    for (const char* name : corruption_names) {
        bool any = false;
        for (const auto& row : rep.rows) {
            any = any || row.before.severities_evaluated(name) > 0;
            if (row.after) any = any || row.after->severities_evaluated(name) > 0;
        }
        if (any) cols.emplace_back(name);
    }
    return cols;
}

}  // namespace detail

//! Prints the report as fixed-width text:
//! 1. a header line naming the mCE variant (mce_variant()),
//! 2. seed 000's Table 1 layout: Model | Acc | Acc* | mCE | mCE* (+ Clean, Clean*, and rel. mCE
//!    columns when any row has them), values in % with `precision` decimals, "-" = not available,
//! 3. per-corruption CE and accuracy tables (rows "model" and "model*"),
//! 4. notes: rows whose means do not cover all 15 x 5 cells, with the excluded corruptions.
inline void print_table(std::ostream& os, const report& rep, int precision = 1) {
    const auto sums = detail::summarize_rows(rep);
    const auto cols = detail::evaluated_columns(rep);
    std::size_t name_w = 12;
    for (const auto& row : rep.rows) name_w = std::max(name_w, row.model.size() + 2);
    bool has_clean = false, has_rel = false;
    for (const auto& s : sums) {
        has_clean = has_clean || std::isfinite(s.before.clean_accuracy) || (s.after && std::isfinite(s.after->clean_accuracy));
        has_rel = has_rel || std::isfinite(s.before.relative_mce) || (s.after && std::isfinite(s.after->relative_mce));
    }
    const std::size_t w = 8;
    if (!rep.title.empty()) os << rep.title << "\n";
    {  // the variant, one clause per line
        std::string v = mce_variant(rep.baseline);
        for (std::size_t p = v.find("; "); p != std::string::npos; p = v.find("; ", p)) v.replace(p, 2, "\n  ");
        os << v << "\n";
    }
    os << "Acc = mean top-1 accuracy (%) over the 15 common corruptions x 5 severities; * = after BN rectification\n";

    auto header = [&](std::ostream& o) {
        o << detail::pad_right("Model", name_w) << detail::pad_left("Acc", w) << detail::pad_left("Acc*", w)
          << detail::pad_left("mCE", w) << detail::pad_left("mCE*", w);
        if (has_rel) o << detail::pad_left("rmCE", w) << detail::pad_left("rmCE*", w);
        if (has_clean) o << detail::pad_left("Clean", w) << detail::pad_left("Clean*", w);
        o << "\n";
    };
    std::ostringstream hdr;
    header(hdr);
    const std::string line(hdr.str().size() - 1, '-');
    os << line << "\n" << hdr.str() << line << "\n";
    for (std::size_t i = 0; i < rep.rows.size(); ++i) {
        const summary& b = sums[i].before;
        const summary* a = sums[i].after ? &*sums[i].after : nullptr;
        const double nan = detail::nan;
        os << detail::pad_right(rep.rows[i].model, name_w) << detail::pad_left(detail::fmt_fixed(b.acc, precision), w)
           << detail::pad_left(detail::fmt_fixed(a ? a->acc : nan, precision), w)
           << detail::pad_left(detail::fmt_fixed(b.mce, precision), w)
           << detail::pad_left(detail::fmt_fixed(a ? a->mce : nan, precision), w);
        if (has_rel)
            os << detail::pad_left(detail::fmt_fixed(b.relative_mce, precision), w)
               << detail::pad_left(detail::fmt_fixed(a ? a->relative_mce : nan, precision), w);
        if (has_clean)
            os << detail::pad_left(detail::fmt_fixed(b.clean_accuracy, precision), w)
               << detail::pad_left(detail::fmt_fixed(a ? a->clean_accuracy : nan, precision), w);
        os << "\n";
    }
    os << line << "\n";

    if (!cols.empty()) {
        const std::size_t cw = 7;
        for (int table = 0; table < 2; ++table) {
            os << "\n"
               << (table == 0 ? "Per-corruption CE (%), baseline " + rep.baseline.name()
                              : std::string("Per-corruption accuracy (%), mean over evaluated severities"))
               << "\n";
            os << detail::pad_right("Model", name_w);
            for (const auto& c : cols) os << detail::pad_left(short_corruption_name(c), cw);
            os << "\n";
            for (std::size_t i = 0; i < rep.rows.size(); ++i) {
                for (int k = 0; k < 2; ++k) {
                    const summary* s = k == 0 ? &sums[i].before : (sums[i].after ? &*sums[i].after : nullptr);
                    if (!s) continue;
                    os << detail::pad_right(rep.rows[i].model + (k == 1 ? "*" : ""), name_w);
                    for (const auto& c : cols) {
                        const corruption_metrics* m = s->find(c);
                        const double v = !m ? detail::nan : table == 0 ? m->ce : m->accuracy;
                        os << detail::pad_left(detail::fmt_fixed(v, precision), cw);
                    }
                    os << "\n";
                }
            }
        }
    }

    // Notes: what the means exclude, so a partial run can never pass for a full benchmark.
    std::vector<std::string> notes;
    for (std::size_t i = 0; i < rep.rows.size(); ++i)
        for (int k = 0; k < 2; ++k) {
            const summary* s = k == 0 ? &sums[i].before : (sums[i].after ? &*sums[i].after : nullptr);
            if (!s || s->complete()) continue;
            std::string n = rep.rows[i].model + (k == 1 ? "*" : "") + ": Acc over " + std::to_string(s->cells) +
                            " of 75 cells, mCE over " + std::to_string(s->mce_count) + " of 15 corruptions";
            std::string not_evaluated, no_ce;
            for (const auto& m : s->missing) {
                const corruption_metrics* cm = s->find(m);
                if (!cm) not_evaluated += (not_evaluated.empty() ? "" : ", ") + m;
                else no_ce += (no_ce.empty() ? "" : ", ") + m + " (" + cm->note + ")";
            }
            if (!not_evaluated.empty()) n += "; not evaluated: " + not_evaluated;
            if (!no_ce.empty()) n += "; no CE: " + no_ce;
            notes.push_back(n);
        }
    if (!notes.empty()) {
        os << "\nNotes (partial results):\n";
        for (const auto& n : notes) os << "  " << n << "\n";
    }
}

//! The library's one JSON escaper (data/json.hpp).
using data::json_escape;

//! Quotes a CSV field when it holds a comma, quote, CR or LF (RFC 4180: quotes doubled).
inline std::string csv_escape(const std::string& s) {
    if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
    std::string o = "\"";
    for (const char ch : s) o += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    return o + "\"";
}

//! The fields of one CSV line as csv_escape writes them (quoted fields with doubled quotes; a
//! CR before the end is dropped).
inline std::vector<std::string> csv_fields(const std::string& l) {
    std::vector<std::string> f(1);
    bool quoted = false;
    for (std::size_t i = 0; i < l.size(); ++i) {
        const char c = l[i];
        if (quoted) {
            if (c == '"' && i + 1 < l.size() && l[i + 1] == '"') f.back() += '"', ++i;
            else if (c == '"') quoted = false;
            else f.back() += c;
        } else if (c == '"') quoted = true;
        else if (c == ',') f.emplace_back();
        else if (c != '\r') f.back() += c;
    }
    return f;
}

//! One CSV line per (model, condition): model, condition (before/after), baseline, mce_variant,
//! clean_acc, acc, cells, mce, mce_corruptions, relative_mce, then ce_<name> for the 15 common
//! corruptions. Percentages; empty field = not available.
inline std::string to_summary_csv(const report& rep) {
    const auto sums = detail::summarize_rows(rep);
    std::ostringstream os;
    os << "model,condition,baseline,mce_variant,clean_acc,acc,cells,mce,mce_corruptions,relative_mce";
    for (int c = 0; c < common_corruption_count; ++c) os << ",ce_" << corruption_names[std::size_t(c)];
    os << "\n";
    const std::string variant = csv_escape(mce_variant(rep.baseline));
    for (std::size_t i = 0; i < rep.rows.size(); ++i)
        for (int k = 0; k < 2; ++k) {
            const summary* s = k == 0 ? &sums[i].before : (sums[i].after ? &*sums[i].after : nullptr);
            if (!s) continue;
            os << csv_escape(rep.rows[i].model) << "," << (k == 0 ? "before" : "after") << "," << s->baseline << ","
               << variant << "," << detail::fmt_number(s->clean_accuracy, "") << "," << detail::fmt_number(s->acc, "")
               << "," << s->cells << "," << detail::fmt_number(s->mce, "") << "," << s->mce_count << ","
               << detail::fmt_number(s->relative_mce, "");
            for (int c = 0; c < common_corruption_count; ++c) {
                const corruption_metrics* m = s->find(corruption_names[std::size_t(c)]);
                os << "," << (m ? detail::fmt_number(m->ce, "") : std::string());
            }
            os << "\n";
        }
    return os.str();
}

//! Long-format CSV of every evaluated cell: model, condition, corruption, severity, accuracy
//! (fraction). The clean accuracy is a row with corruption "clean" and severity 0.
inline std::string to_cells_csv(const report& rep) {
    std::ostringstream os;
    os << "model,condition,corruption,severity,accuracy\n";
    for (const auto& row : rep.rows)
        for (int k = 0; k < 2; ++k) {
            const results* r = k == 0 ? &row.before : (row.after ? &*row.after : nullptr);
            if (!r) continue;
            const std::string prefix = csv_escape(row.model) + (k == 0 ? ",before," : ",after,");
            if (const auto c = r->clean()) os << prefix << "clean,0," << detail::fmt_number(*c, "") << "\n";
            for (const auto& name : r->corruptions())
                for (int s = 1; s <= severity_count; ++s)
                    if (const auto a = r->get(name, s)) os << prefix << name << "," << s << "," << detail::fmt_number(*a, "") << "\n";
        }
    return os.str();
}

//! One row of a <prefix>_cells.csv read back: its model label, before and (BN networks) after.
struct cells_row {
    std::string model;
    results before{"before"};
    std::optional<results> after;
};

//! Parses what to_cells_csv wrote, rows in file order; io_error naming `what` and the line for a
//! wrong header, field count, condition, corruption, severity or accuracy.
inline std::vector<cells_row> parse_cells_csv(const std::string& text, const std::string& what = "adapt_cells.csv") {
    std::istringstream in(text);
    std::string line;
    const std::string header = "model,condition,corruption,severity,accuracy";
    if (!std::getline(in, line) || csv_fields(line) != csv_fields(header))
        throw io_error(what + ": expected the header '" + header + "' (a file written by shiftnorm adapt)");
    std::vector<cells_row> rows;
    std::size_t no = 1;
    while (std::getline(in, line)) {
        ++no;
        if (line.empty() || line == "\r") continue;
        const auto f = csv_fields(line);
        auto bad = [&](const std::string& why) {
            return io_error(shiftnorm::detail::concat(what, ": line ", no, ": ", why));
        };
        if (f.size() != 5) throw bad(shiftnorm::detail::concat(f.size(), " fields, expected 5"));
        if (f[1] != "before" && f[1] != "after") throw bad("condition '" + f[1] + "' is neither before nor after");
        char* end = nullptr;
        const long sev = std::strtol(f[3].c_str(), &end, 10);
        if (f[3].empty() || *end != '\0' || sev < 0 || sev > severity_count) throw bad("severity '" + f[3] + "' is not in 0-5");
        const double acc = std::strtod(f[4].c_str(), &end);
        if (f[4].empty() || *end != '\0' || !(acc >= 0.0 && acc <= 1.0)) throw bad("accuracy '" + f[4] + "' is not in [0, 1]");
        auto it = std::find_if(rows.begin(), rows.end(), [&](const cells_row& r) { return r.model == f[0]; });
        if (it == rows.end()) it = rows.insert(rows.end(), cells_row{f[0], results("before"), std::nullopt});
        results* r = &it->before;
        if (f[1] == "after") {
            if (!it->after) it->after = results("after");
            r = &*it->after;
        }
        try {
            if (f[2] == "clean") r->set_clean(acc);
            else r->set(f[2], int(sev), acc);
        } catch (const std::exception& e) {
            throw bad(e.what());
        }
    }
    if (rows.empty()) throw io_error(what + ": no cells");
    return rows;
}

namespace detail {
inline void json_summary(std::ostream& os, const results& r, const summary& s, const std::string& indent) {
    auto num = [](double v) { return fmt_number(v, "null"); };
    os << "{\n"
       << indent << "  \"label\": \"" << json_escape(r.label) << "\",\n"
       << indent << "  \"clean_acc\": " << num(s.clean_accuracy) << ",\n"
       << indent << "  \"acc\": " << num(s.acc) << ",\n"
       << indent << "  \"cells\": " << s.cells << ",\n"
       << indent << "  \"mce\": " << num(s.mce) << ",\n"
       << indent << "  \"mce_corruptions\": " << s.mce_count << ",\n"
       << indent << "  \"relative_mce\": " << num(s.relative_mce) << ",\n"
       << indent << "  \"missing\": [";
    for (std::size_t i = 0; i < s.missing.size(); ++i) os << (i ? ", " : "") << "\"" << json_escape(s.missing[i]) << "\"";
    os << "],\n" << indent << "  \"per_corruption\": {";
    for (std::size_t i = 0; i < s.per_corruption.size(); ++i) {
        const auto& m = s.per_corruption[i];
        os << (i ? "," : "") << "\n" << indent << "    \"" << json_escape(m.corruption) << "\": {\"common\": "
           << (m.common ? "true" : "false") << ", \"accuracy_by_severity\": [";
        for (int sv = 1; sv <= severity_count; ++sv) {
            const auto a = r.get(m.corruption, sv);
            os << (sv > 1 ? ", " : "") << (a ? fmt_number(*a, "null") : std::string("null"));
        }
        os << "], \"accuracy\": " << num(m.accuracy) << ", \"ce\": " << num(m.ce)
           << ", \"relative_ce\": " << num(m.relative_ce) << ", \"note\": \"" << json_escape(m.note) << "\"}";
    }
    os << (s.per_corruption.empty() ? "" : "\n" + indent + "  ") << "}\n" << indent << "}";
}
}  // namespace detail

//! The whole report as JSON: title, baseline, mce_variant, and per row the model name and
//! "before"/"after" objects (after is null when absent) with summary metrics in %, accuracies
//! per severity as fractions (null = not evaluated), CE per corruption in %, and notes.
inline std::string to_json(const report& rep) {
    const auto sums = detail::summarize_rows(rep);
    std::ostringstream os;
    os << "{\n  \"title\": \"" << json_escape(rep.title) << "\",\n"
       << "  \"baseline\": \"" << json_escape(rep.baseline.name()) << "\",\n"
       << "  \"baseline_clean_error\": "
       << (rep.baseline.clean_error() ? detail::fmt_number(*rep.baseline.clean_error(), "null") : std::string("null"))
       << ",\n  \"mce_variant\": \"" << json_escape(mce_variant(rep.baseline)) << "\",\n"
       << "  \"units\": \"acc, mce, ce in percent; accuracy_by_severity as fractions\",\n"
       << "  \"rows\": [";
    for (std::size_t i = 0; i < rep.rows.size(); ++i) {
        os << (i ? "," : "") << "\n    {\n      \"model\": \"" << json_escape(rep.rows[i].model) << "\",\n      \"before\": ";
        detail::json_summary(os, rep.rows[i].before, sums[i].before, "      ");
        os << ",\n      \"after\": ";
        if (sums[i].after) detail::json_summary(os, *rep.rows[i].after, *sums[i].after, "      ");
        else os << "null";
        os << "\n    }";
    }
    os << (rep.rows.empty() ? "" : "\n  ") << "]";
    if (!rep.provenance.empty()) {
        os << ",\n  \"provenance\": {";
        for (std::size_t i = 0; i < rep.provenance.size(); ++i)
            os << (i ? "," : "") << "\n    \"" << json_escape(rep.provenance[i].first) << "\": \"" << json_escape(rep.provenance[i].second) << "\"";
        os << "\n  }";
    }
    os << "\n}\n";
    return os.str();
}

//! Writes `text` to `path` (truncating); throws io_error naming the path if it cannot be written.
inline void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) shiftnorm::detail::fail<io_error>("write_text_file", "path", "a writable file", "'" + path + "'");
    f << text;
    f.flush();
    if (!f) shiftnorm::detail::fail<io_error>("write_text_file", "path", "a complete write", "a short write to '" + path + "'");
}

//! Writes <prefix>_summary.csv, <prefix>_cells.csv and <prefix>.json; returns the paths written.
inline std::vector<std::string> write_report_files(const std::string& prefix, const report& rep) {
    const std::vector<std::string> paths = {prefix + "_summary.csv", prefix + "_cells.csv", prefix + ".json"};
    write_text_file(paths[0], to_summary_csv(rep));
    write_text_file(paths[1], to_cells_csv(rep));
    write_text_file(paths[2], to_json(rep));
    return paths;
}

}  // namespace shiftnorm::eval
