// SPDX-License-Identifier: MIT
// Heat maps (confusion matrices, sensitivity matrices, per-channel differences) as PNG.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/eval/canvas.hpp"
#include "shiftnorm/eval/plot.hpp"

namespace shiftnorm::eval {

//! A matrix drawn as colored cells (white at `lo` to dark blue at `hi`; NaN cells hatched gray),
//! with row labels on the left, column labels above (vertical text), and the value printed in
//! each cell when `print_values` and the cells are large enough.
struct heatmap_spec {
    std::string title;
    std::vector<std::string> rows, columns;
    std::vector<std::vector<double>> values;  //!< [row][column]
    double lo = 0, hi = 1;                    //!< color range; values are clamped into it
    bool print_values = true;
    int value_scale = 100;                    //!< printed value = round(v * value_scale)
    std::string row_title, column_title;
    int cell = 28;                            //!< cell size in pixels
};

inline canvas render_heatmap(const heatmap_spec& s) {
    if (s.rows.empty() || s.columns.empty()) throw value_error("heatmap: needs at least one row and one column");
    if (s.values.size() != s.rows.size())
        shiftnorm::detail::fail<shape_error>("heatmap", "values", shiftnorm::detail::concat(s.rows.size(), " rows"), s.values.size());
    for (const auto& r : s.values)
        if (r.size() != s.columns.size())
            shiftnorm::detail::fail<shape_error>("heatmap", "row", shiftnorm::detail::concat(s.columns.size(), " values"), r.size());
    if (!(s.hi > s.lo) || !std::isfinite(s.lo) || !std::isfinite(s.hi))
        shiftnorm::detail::fail("heatmap", "lo < hi", "finite bounds with lo < hi", s.hi - s.lo);
    if (s.cell < 8 || s.cell > 200) shiftnorm::detail::fail("heatmap", "cell", "in [8, 200]", s.cell);
    int row_w = 0, col_h = 0;
    for (const auto& r : s.rows) row_w = std::max(row_w, canvas::text_width(r, 1));
    for (const auto& c : s.columns) col_h = std::max(col_h, canvas::text_width(c, 1));
    const int ts = 2;
    const int left = 12 + (s.row_title.empty() ? 0 : canvas::text_height(1) + 10) + row_w + 8;
    const int top = 16 + canvas::text_height(ts) + 14 + (s.column_title.empty() ? 0 : canvas::text_height(1) + 8) + col_h + 8;
    const int W = left + int(s.columns.size()) * s.cell + 20, H = top + int(s.rows.size()) * s.cell + 20;
    canvas cv(std::max(W, canvas::text_width(s.title, ts) + 40), H);
    cv.text(cv.width() / 2, 16, s.title, colors::black, ts, h_align::center);
    if (!s.column_title.empty())
        cv.text(left + int(s.columns.size()) * s.cell / 2, 16 + canvas::text_height(ts) + 14, s.column_title, colors::black, 1,
                h_align::center);
    if (!s.row_title.empty())
        cv.text(12, top + int(s.rows.size()) * s.cell / 2, s.row_title, colors::black, 1, h_align::left, v_align::middle, true);
    for (std::size_t j = 0; j < s.columns.size(); ++j)
        cv.text(left + int(j) * s.cell + s.cell / 2, top - 6, s.columns[j], colors::black, 1, h_align::center, v_align::bottom, true);
    for (std::size_t i = 0; i < s.rows.size(); ++i) {
        const int y0 = top + int(i) * s.cell;
        cv.text(left - 6, y0 + s.cell / 2, s.rows[i], colors::black, 1, h_align::right, v_align::middle);
        for (std::size_t j = 0; j < s.columns.size(); ++j) {
            const int x0 = left + int(j) * s.cell;
            const double v = s.values[i][j];
            if (std::isnan(v)) {
                cv.fill_rect(x0, y0, x0 + s.cell - 1, y0 + s.cell - 1, colors::light_gray);
                for (int d = 0; d < s.cell; d += 4) cv.line(x0 + d, y0 + s.cell - 1, x0 + s.cell - 1, y0 + d, colors::gray);
                continue;
            }
            const double t = std::clamp((v - s.lo) / (s.hi - s.lo), 0.0, 1.0);
            const rgb c{std::uint8_t(std::lround(255 - t * (255 - 20))), std::uint8_t(std::lround(255 - t * (255 - 60))),
                        std::uint8_t(std::lround(255 - t * (255 - 140)))};
            cv.fill_rect(x0, y0, x0 + s.cell - 1, y0 + s.cell - 1, c);
            if (s.print_values) {
                const std::string txt = std::to_string(long(std::lround(v * s.value_scale)));
                if (canvas::text_width(txt, 1) + 4 <= s.cell)
                    cv.text(x0 + s.cell / 2, y0 + s.cell / 2, txt, t > 0.55 ? colors::white : colors::black, 1, h_align::center,
                            v_align::middle);
            }
        }
    }
    cv.rect(left - 1, top - 1, left + int(s.columns.size()) * s.cell, top + int(s.rows.size()) * s.cell, colors::gray);
    return cv;
}

inline void heatmap(const std::string& path, const heatmap_spec& s) { write_png(path, render_heatmap(s)); }

}  // namespace shiftnorm::eval
