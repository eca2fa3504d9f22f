// SPDX-License-Identifier: MIT
// Outputs of seed 002's protocols: detector scores, open-set sweep, sensitivity matrix, stream table.
#pragma once

#include <algorithm>
#include <cmath>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/eval/dynamic_bn.hpp"
#include "shiftnorm/eval/heatmap.hpp"
#include "shiftnorm/eval/report.hpp"

namespace shiftnorm::eval {

namespace detail {
inline std::string pct(double v, int prec = 1) { return std::isnan(v) ? "-" : detail::fmt_fixed(100 * v, prec); }
}  // namespace detail

//! Prints the detector's accuracy (overall, clean, per severity) and writes
//! <prefix>_confusion.csv / .png (rows: true class, normalized per row) and <prefix>_scores.csv.
inline std::vector<std::string> write_detection_scores(std::ostream& os, const std::string& prefix, const detection_scores& s,
                                                       const std::string& title) {
    using detail::pct;
    os << title << "\n";
    os << "  accuracy " << pct(s.accuracy, 2) << "% over " << s.known << " images; clean " << pct(s.clean_accuracy, 2) << "%; per severity:";
    for (std::size_t j = 0; j < 5; ++j) os << " s" << j + 1 << " " << pct(s.per_severity[j], 1) << "%";
    os << "\n";
    const std::size_t K = s.classes.size();
    std::ostringstream csv;
    csv << "true\\predicted";
    for (const auto& c : s.classes) csv << "," << c;
    csv << "\n";
    heatmap_spec h;
    h.title = title;
    h.row_title = "true class";
    h.column_title = "predicted class (% of the row)";
    h.rows = h.columns = s.classes;
    for (std::size_t i = 0; i < K; ++i) {
        long long n = 0;
        for (auto v : s.confusion[i]) n += v;
        csv << s.classes[i];
        std::vector<double> row;
        for (std::size_t j = 0; j < K; ++j) {
            csv << "," << s.confusion[i][j];
            row.push_back(n ? double(s.confusion[i][j]) / double(n) : std::nan(""));
        }
        csv << "\n";
        h.values.push_back(row);
        os << "  " << detail::pad_right(s.classes[i], 22) << pct(n ? double(s.confusion[i][i]) / double(n) : std::nan(""), 1) << "% of " << n
           << "\n";
    }
    write_text_file(prefix + "_confusion.csv", csv.str());
    heatmap(prefix + "_confusion.png", h);
    std::ostringstream sc;
    sc << "metric,value\naccuracy," << s.accuracy << "\nclean_accuracy," << s.clean_accuracy << "\n";
    for (std::size_t j = 0; j < 5; ++j) sc << "severity_" << j + 1 << "," << s.per_severity[j] << "\n";
    sc << "images," << s.known << "\n";
    write_text_file(prefix + "_scores.csv", sc.str());
    return {prefix + "_confusion.csv", prefix + "_confusion.png", prefix + "_scores.csv"};
}

//! Prints and writes (<path>) the open-set sweep.
inline std::string write_open_set(std::ostream& os, const std::string& path, const std::vector<open_set_row>& rows) {
    using detail::pct;
    os << "open set: images below the confidence threshold fall back to the source statistics\n";
    os << "  threshold  known accepted  known accepted+correct  held-out sent to source\n";
    std::ostringstream csv;
    csv << "threshold,known_accepted,known_correct,heldout_fallback\n";
    for (const auto& r : rows) {
        os << "  " << detail::pad_left(detail::fmt_fixed(r.threshold, 2), 9) << "  " << detail::pad_left(pct(r.known_accepted) + "%", 14) << "  "
           << detail::pad_left(pct(r.known_correct) + "%", 22) << "  " << detail::pad_left(pct(r.heldout_fallback) + "%", 23) << "\n";
        csv << r.threshold << "," << r.known_accepted << "," << r.known_correct << "," << r.heldout_fallback << "\n";
    }
    write_text_file(path, csv.str());
    return path;
}

//! Prints the sensitivity matrix and writes <prefix>.csv / .png.
inline std::vector<std::string> write_sensitivity(std::ostream& os, const std::string& prefix, const sensitivity_result& r,
                                                  const std::string& title) {
    std::ostringstream csv;
    csv << "statistics\\evaluated";
    for (const auto& c : r.columns) csv << "," << c;
    csv << "\n";
    os << title << "\n  " << detail::pad_right("statistics of", 18);
    for (const auto& c : r.columns) os << detail::pad_left(short_corruption_name(c), 7);
    os << "\n";
    heatmap_spec h;
    h.title = title;
    h.rows = r.keys;
    h.columns = r.columns;
    h.row_title = "BN statistics of";
    h.column_title = "evaluated on (accuracy %)";
    for (std::size_t i = 0; i < r.keys.size(); ++i) {
        csv << r.keys[i];
        os << "  " << detail::pad_right(r.keys[i], 18);
        for (std::size_t j = 0; j < r.columns.size(); ++j) {
            csv << "," << r.acc[i][j];
            os << detail::pad_left(detail::pct(r.acc[i][j]), 7);
        }
        csv << "\n";
        os << "\n";
    }
    h.values = r.acc;
    double lo = 1, hi = 0;  // the colour range spans the measured accuracies
    for (const auto& row : r.acc)
        for (double v : row)
            if (!std::isnan(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (hi > lo) h.lo = lo, h.hi = hi;
    write_text_file(prefix + ".csv", csv.str());
    heatmap(prefix + ".png", h);
    return {prefix + ".csv", prefix + ".png"};
}

//! Prints the stream table (methods x switching intervals, then mixed and clean streams) and
//! writes <prefix>.csv, <prefix>.json and <prefix>.png (bars per method and interval).
inline std::vector<std::string> write_stream(std::ostream& os, const std::string& prefix, const stream_result& r,
                                             const std::string& title, const std::vector<std::pair<std::string, std::string>>& provenance = {}) {
    using detail::pct;
    auto interval = [](index_t b) { return b == 0 ? std::string("cell") : std::to_string(b); };
    os << title << "\n";
    os << "  " << detail::pad_right("method", 16);
    for (auto b : r.switch_every) os << detail::pad_left("B=" + interval(b), 9);
    os << detail::pad_left("mixed B=" + interval(r.switch_every.front()), 11) << detail::pad_left("clean", 8) << "\n";
    std::ostringstream csv, js;
    csv << "method,stream,switch_every,accuracy\n";
    js << "{\n  \"title\": \"" << json_escape(title) << "\",\n  \"provenance\": {";
    for (std::size_t i = 0; i < provenance.size(); ++i)
        js << (i ? ", " : "") << "\"" << json_escape(provenance[i].first) << "\": \"" << json_escape(provenance[i].second) << "\"";
    js << "},\n  \"detector_batch_accuracy\": " << r.detector_batch_accuracy << ",\n  \"fallback_rate\": " << r.fallback_rate
       << ",\n  \"batches\": " << r.batches << ",\n  \"methods\": [\n";
    bar_chart_spec bars;
    bars.title = title;
    bars.y_label = "accuracy (%)";
    for (auto b : r.switch_every) bars.categories.push_back("switch every " + interval(b));
    for (std::size_t m = 0; m < stream_methods.size(); ++m) {
        os << "  " << detail::pad_right(stream_methods[m], 16);
        bar_series bs;
        bs.name = stream_methods[m];
        for (std::size_t b = 0; b < r.switch_every.size(); ++b) {
            os << detail::pad_left(pct(r.corrupted[m][b]), 9);
            csv << stream_methods[m] << ",corrupted," << interval(r.switch_every[b]) << "," << r.corrupted[m][b] << "\n";
            csv << stream_methods[m] << ",mixed," << interval(r.switch_every[b]) << "," << r.mixed[m][b] << "\n";
            bs.values.push_back(100 * r.corrupted[m][b]);
        }
        bars.series.push_back(bs);
        csv << stream_methods[m] << ",clean,-," << r.clean[m] << "\n";
        os << detail::pad_left(pct(r.mixed[m].front()), 11) << detail::pad_left(pct(r.clean[m]), 8) << "\n";
        js << "    {\"method\": \"" << stream_methods[m] << "\", \"clean\": " << r.clean[m] << ", \"corrupted\": [";
        for (std::size_t b = 0; b < r.switch_every.size(); ++b) js << (b ? ", " : "") << r.corrupted[m][b];
        js << "], \"mixed\": [";
        for (std::size_t b = 0; b < r.switch_every.size(); ++b) js << (b ? ", " : "") << r.mixed[m][b];
        js << "]}" << (m + 1 < stream_methods.size() ? "," : "") << "\n";
    }
    js << "  ]\n}\n";
    os << "  detector: " << pct(r.detector_batch_accuracy, 2) << "% of " << r.batches << " batches name their true domain; "
       << pct(r.fallback_rate, 2) << "% fell back to the source statistics\n";
    write_text_file(prefix + ".csv", csv.str());
    write_text_file(prefix + ".json", js.str());
    grouped_bar_chart(prefix + ".png", bars);
    return {prefix + ".csv", prefix + ".json", prefix + ".png"};
}

}  // namespace shiftnorm::eval
