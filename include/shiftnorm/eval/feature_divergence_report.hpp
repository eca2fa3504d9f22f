// SPDX-License-Identifier: MIT
// Outputs of the feature-divergence protocol (seed 001, Fig. 4): a table per block, CSV and a line chart PNG.
#pragma once

#include <algorithm>
#include <iomanip>
#include <limits>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/eval/feature_divergence.hpp"
#include "shiftnorm/eval/plot.hpp"
#include "shiftnorm/eval/report.hpp"

namespace shiftnorm::eval {

//! The divergence rows of several networks (e.g. the pretrained one and its AdvBN fine-tune), by label.
using divergence_runs = std::vector<std::pair<std::string, std::vector<divergence_row>>>;

//! Blocks in first-seen order and, per run, the mean divergence of each block over the corruptions.
inline std::pair<std::vector<std::string>, std::vector<std::vector<double>>> divergence_by_block(const divergence_runs& runs) {
    std::vector<std::string> blocks;
    for (const auto& r : runs)
        for (const auto& row : r.second)
            if (std::find(blocks.begin(), blocks.end(), row.block) == blocks.end()) blocks.push_back(row.block);
    std::vector<std::vector<double>> mean(runs.size(), std::vector<double>(blocks.size(), 0.0));
    for (std::size_t k = 0; k < runs.size(); ++k) {
        std::vector<int> n(blocks.size(), 0);
        for (const auto& row : runs[k].second) {
            const auto b = std::size_t(std::find(blocks.begin(), blocks.end(), row.block) - blocks.begin());
            mean[k][b] += row.divergence;
            ++n[b];
        }
        for (std::size_t b = 0; b < blocks.size(); ++b)
            mean[k][b] = n[b] ? mean[k][b] / n[b] : std::numeric_limits<double>::quiet_NaN();
    }
    return {blocks, mean};
}

//! Table: one row per block, one column per run: D(clean || corrupted) averaged over the corruptions.
inline void print_divergence_table(std::ostream& os, const divergence_runs& runs) {
    const auto [blocks, mean] = divergence_by_block(runs);
    os << "mean symmetric KL divergence, clean vs corrupted (eq. 5), per block\n" << detail::pad_left("block", 12);
    for (const auto& r : runs) os << detail::pad_left(r.first, 14);
    os << "\n";
    for (std::size_t b = 0; b < blocks.size(); ++b) {
        os << detail::pad_left(blocks[b], 12);
        for (std::size_t k = 0; k < runs.size(); ++k) os << detail::pad_left(detail::fmt_fixed(mean[k][b], 4), 14);
        os << "\n";
    }
}

inline std::string to_divergence_csv(const divergence_runs& runs) {
    std::ostringstream os;
    os << "model,corruption,severity,block,divergence\n" << std::setprecision(9);
    for (const auto& r : runs)
        for (const auto& row : r.second)
            os << r.first << "," << row.corruption << "," << row.severity << "," << row.block << "," << row.divergence << "\n";
    return os.str();
}

//! Writes <prefix>.csv and <prefix>.png (mean divergence per block, one line per run); returns the paths.
inline std::vector<std::string> write_divergence_report(const std::string& prefix, const divergence_runs& runs) {
    if (runs.empty()) throw value_error("write_divergence_report: no runs");
    std::vector<std::string> paths = {prefix + ".csv", prefix + ".png"};
    write_text_file(paths[0], to_divergence_csv(runs));
    const auto [blocks, mean] = divergence_by_block(runs);
    line_plot_spec spec;
    spec.title = "Feature divergence clean vs corrupted (mean over corruptions)";
    spec.x.label = "block index (" + blocks.front() + " .. " + blocks.back() + ")";
    spec.y.label = "symmetric KL (eq. 5)";
    for (std::size_t k = 0; k < runs.size(); ++k) {
        plot_series s;
        s.name = runs[k].first;
        for (std::size_t b = 0; b < blocks.size(); ++b) {
            s.x.push_back(double(b + 1));
            s.y.push_back(mean[k][b]);
        }
        spec.series.push_back(std::move(s));
    }
    write_png(paths[1], render_line_plot(spec));
    return paths;
}

}  // namespace shiftnorm::eval
