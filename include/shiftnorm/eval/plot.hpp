// SPDX-License-Identifier: MIT
// Dependency-free charts (grouped bars, line plots with optional log2 x) rendered to PNG files.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/image_io.hpp"
#include "shiftnorm/eval/canvas.hpp"

// Linking: writing PNG files needs libpng (CMake PNG::PNG) and, through data/image_io.hpp's
// translation unit, libjpeg (JPEG::JPEG). render_* functions need neither.

namespace shiftnorm::eval {

//! One axis: label, optional fixed range (data range rounded to nice ticks otherwise), and a
//! log2 scale (x only; values must be > 0, ticks at powers of two: K = 1, 2, 4 ... 256).
struct axis_spec {
    std::string label;
    bool log2 = false;
    std::optional<double> min, max;
};

//! One line: points (x[i], y[i]); a NaN y breaks the line. Colour/marker default to the cycle.
//! `err` (empty, or one per point): a vertical error bar y +- err[i] (e.g. the spread over
//! repeated draws); 0 or NaN draws none. The y range includes the bars.
struct plot_series {
    std::string name;
    std::vector<double> x, y;
    bool dashed = false;
    std::optional<marker> mark;
    std::optional<rgb> color;
    std::vector<double> err;
};

struct line_plot_spec {
    std::string title;
    axis_spec x, y;
    std::vector<plot_series> series;
    int width = 960, height = 600;
};

//! One bar per category; NaN values draw no bar.
struct bar_series {
    std::string name;
    std::vector<double> values;
    std::optional<rgb> color;
};

struct bar_chart_spec {
    std::string title;
    std::vector<std::string> categories;
    std::vector<bar_series> series;
    std::string x_label, y_label;
    std::optional<double> y_min, y_max;
    int width = 1200, height = 640;
};

namespace detail {

//! Ticks covering [lo, hi] with a 1/2/5 x 10^k step, about `target` of them; lo/hi are widened
//! to multiples of the step when `widen`.
inline std::vector<double> nice_ticks(double& lo, double& hi, int target, bool widen) {
    if (!(hi > lo)) {
        const double d = lo == 0 ? 1.0 : std::abs(lo) * 0.1;
        lo -= d, hi += d;
    }
    const double raw = (hi - lo) / std::max(target, 1);
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double f = raw / mag;
    const double step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
    if (widen) {
        lo = std::floor(lo / step + 1e-9) * step;
        hi = std::ceil(hi / step - 1e-9) * step;
    }
    std::vector<double> t;
    for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) t.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
    return t;
}
//! Tick label with as many decimals as the tick step needs.
inline std::string tick_label(double v, double step) {
    const int dec = step >= 1 ? 0 : std::min(6, int(std::ceil(-std::log10(step) - 1e-9)));
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", dec, v);
    return buf;
}
inline void check_size(const char* where, int w, int h) {
    if (w < 240 || w > 8192) shiftnorm::detail::fail<value_error>(where, "width", "[240, 8192]", w);
    if (h < 200 || h > 8192) shiftnorm::detail::fail<value_error>(where, "height", "[200, 8192]", h);
}

//! Plot frame shared by both chart kinds: title, y axis with ticks and grid, legend on the right.
struct frame {
    int left = 0, top = 0, right = 0, bottom = 0;  // plot area, inclusive pixel bounds
    double y_lo = 0, y_hi = 1;
    int y_px(double v) const { return int(std::lround(bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top))); }
};

inline int title_scale(const std::string& title, int width) { return canvas::text_width(title, 2) + 20 <= width ? 2 : 1; }

struct legend_entry {
    std::string name;
    rgb color;
    marker mark;
    bool dashed;
    bool bar;
};
inline int legend_width(const std::vector<legend_entry>& e) {
    int w = 0;
    for (const auto& x : e) w = std::max(w, canvas::text_width(x.name, 2));
    return e.empty() ? 0 : w + 36 + 20;
}
inline void draw_legend(canvas& cv, int x, int y, const std::vector<legend_entry>& entries) {
    if (entries.empty()) return;
    const int row_h = canvas::text_height(2) + 8;
    const int w = legend_width(entries) - 10;
    cv.fill_rect(x, y, x + w, y + int(entries.size()) * row_h + 8, colors::white);
    cv.rect(x, y, x + w, y + int(entries.size()) * row_h + 8, colors::gray);
    for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& e = entries[i];
        const int cy = y + 8 + int(i) * row_h + canvas::text_height(2) / 2 - 2;
        if (e.bar) {
            cv.fill_rect(x + 8, cy - 6, x + 30, cy + 6, e.color);
        } else {
            cv.line(x + 6, cy, x + 32, cy, e.color, 2, e.dashed ? 5 : 0);
            cv.draw_marker(x + 19, cy, e.mark, 4, e.color);
        }
        cv.text(x + 40, y + 8 + int(i) * row_h, e.name, colors::black, 2);
    }
}

//! Draws title, y label, y ticks/grid and the plot box; `bottom_margin` is reserved below.
inline frame draw_frame(canvas& cv, const std::string& title, const std::string& y_label, double y_lo, double y_hi,
                        bool widen, int legend_w, int bottom_margin, std::vector<double>& y_ticks) {
    frame f;
    f.y_lo = y_lo, f.y_hi = y_hi;
    y_ticks = nice_ticks(f.y_lo, f.y_hi, 6, widen);
    const double step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : 1.0;
    int tick_w = 0;
    for (double t : y_ticks) tick_w = std::max(tick_w, canvas::text_width(tick_label(t, step), 2));
    const int ts = title_scale(title, cv.width());
    f.top = 16 + canvas::text_height(ts) + 18;
    f.left = 12 + (y_label.empty() ? 0 : canvas::text_height(2) + 12) + tick_w + 12;
    f.right = cv.width() - 1 - (legend_w > 0 ? legend_w + 10 : 24);
    f.bottom = cv.height() - 1 - bottom_margin;
    if (f.right - f.left < 60 || f.bottom - f.top < 60)
        shiftnorm::detail::fail<value_error>("plot", "width x height", "room for a plot area of at least 60x60 pixels",
                                             shiftnorm::detail::concat(cv.width(), "x", cv.height()));
    cv.text(cv.width() / 2, 16, title, colors::black, ts, h_align::center);
    if (!y_label.empty())
        cv.text(12, (f.top + f.bottom) / 2, y_label, colors::black, 2, h_align::left, v_align::middle, true);
    for (double t : y_ticks) {
        const int py = f.y_px(t);
        if (py < f.top - 1 || py > f.bottom + 1) continue;
        cv.fill_rect(f.left + 1, py, f.right - 1, py, colors::light_gray);
        cv.fill_rect(f.left - 6, py, f.left - 1, py, colors::black);
        cv.text(f.left - 10, py, tick_label(t, step), colors::black, 2, h_align::right, v_align::middle);
    }
    return f;
}

inline void check_finite_or_nan(const char* where, const char* arg, double v) {
    if (std::isinf(v)) shiftnorm::detail::fail<numeric_error>(where, arg, "finite values (NaN = missing)", v);
}

}  // namespace detail

//! Renders a grouped bar chart: one group per category, one bar per series (e.g. accuracy per
//! corruption before / after rectification). y range: y_min/y_max or [min(0, data), max(data)]
//! widened to nice ticks. Category labels are drawn rotated when they do not fit horizontally.
//! Throws value_error for no categories / series, shape_error when a series' size differs from
//! the category count, numeric_error for an infinite value.
inline canvas render_grouped_bar_chart(const bar_chart_spec& spec) {
    const char* where = "grouped_bar_chart";
    detail::check_size(where, spec.width, spec.height);
    if (spec.categories.empty()) shiftnorm::detail::fail<value_error>(where, "categories", "at least one category", 0);
    if (spec.series.empty()) shiftnorm::detail::fail<value_error>(where, "series", "at least one series", 0);
    double lo = 0, hi = -INFINITY;
    for (const auto& s : spec.series) {
        if (s.values.size() != spec.categories.size())
            shiftnorm::detail::fail<shape_error>(where, ("series '" + s.name + "' values").c_str(), spec.categories.size(),
                                                 s.values.size());
        for (double v : s.values) {
            detail::check_finite_or_nan(where, "values", v);
            if (std::isnan(v)) continue;
            lo = std::min(lo, v), hi = std::max(hi, v);
        }
    }
    if (!std::isfinite(hi)) hi = 1;
    if (spec.y_min) lo = *spec.y_min;
    if (spec.y_max) hi = *spec.y_max;
    if (!(hi > lo)) shiftnorm::detail::fail<value_error>(where, "y_max", shiftnorm::detail::concat("a value > y_min = ", lo), hi);

    canvas cv(spec.width, spec.height);
    std::vector<detail::legend_entry> legend;
    for (std::size_t i = 0; i < spec.series.size(); ++i)
        legend.push_back({spec.series[i].name, spec.series[i].color.value_or(palette(i)), marker::none, false, true});
    const int legend_w = detail::legend_width(legend);
    // Category labels: horizontal if they fit in a slot, rotated otherwise.
    int label_w = 0;
    for (const auto& c : spec.categories) label_w = std::max(label_w, canvas::text_width(c, 2));
    const int est_plot_w = spec.width - 120 - legend_w;
    const bool rotate = label_w + 6 > est_plot_w / int(spec.categories.size());
    const int label_h = rotate ? label_w : canvas::text_height(2);
    const int bottom_margin = 10 + label_h + 14 + (spec.x_label.empty() ? 0 : canvas::text_height(2) + 12);
    std::vector<double> ticks;
    const detail::frame f = detail::draw_frame(cv, spec.title, spec.y_label, lo, hi, !(spec.y_min || spec.y_max),
                                               legend_w, bottom_margin, ticks);
    const double slot = double(f.right - f.left) / double(spec.categories.size());
    const double group = slot * 0.8, bar = group / double(spec.series.size());
    const double base = std::clamp(0.0, f.y_lo, f.y_hi);
    for (std::size_t c = 0; c < spec.categories.size(); ++c) {
        const double gx = f.left + slot * double(c) + (slot - group) / 2;
        for (std::size_t s = 0; s < spec.series.size(); ++s) {
            const double v = spec.series[s].values[c];
            if (std::isnan(v)) continue;
            const double vc = std::clamp(v, f.y_lo, f.y_hi);
            const int x0 = int(std::lround(gx + bar * double(s))), x1 = int(std::lround(gx + bar * double(s + 1))) - 1;
            cv.fill_rect(x0, f.y_px(base), std::max(x0, x1 - (bar >= 6 ? 1 : 0)), f.y_px(vc), legend[s].color);
        }
        const int cx = int(std::lround(f.left + slot * (double(c) + 0.5)));
        cv.fill_rect(cx, f.bottom + 1, cx, f.bottom + 5, colors::black);
        if (rotate)
            cv.text(cx, f.bottom + 10, spec.categories[c], colors::black, 2, h_align::center, v_align::top, true);
        else
            cv.text(cx, f.bottom + 10, spec.categories[c], colors::black, 2, h_align::center, v_align::top);
    }
    cv.rect(f.left, f.top, f.right, f.bottom, colors::black);
    if (!spec.x_label.empty())
        cv.text((f.left + f.right) / 2, cv.height() - 10, spec.x_label, colors::black, 2, h_align::center, v_align::bottom);
    detail::draw_legend(cv, f.right + 10, f.top, legend);
    return cv;
}

//! Renders a line plot of several series (accuracy vs K with x.log2, accuracy per severity,
//! cosine similarity per severity ...). Dashed series suit reference levels (e.g. the model
//! without rectification, Fig. 4). Throws value_error for no series / no finite point / x <= 0
//! on a log2 axis / a fixed range with max <= min, shape_error when x and y sizes differ,
//! numeric_error for infinite values.
inline canvas render_line_plot(const line_plot_spec& spec) {
    const char* where = "line_plot";
    detail::check_size(where, spec.width, spec.height);
    if (spec.series.empty()) shiftnorm::detail::fail<value_error>(where, "series", "at least one series", 0);
    if (spec.y.log2) shiftnorm::detail::fail<value_error>(where, "y.log2", "false (log2 is supported on x only)", "true");
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (const auto& s : spec.series) {
        if (s.x.size() != s.y.size())
            shiftnorm::detail::fail<shape_error>(where, ("series '" + s.name + "' y").c_str(), s.x.size(), s.y.size());
        if (!s.err.empty() && s.err.size() != s.x.size())
            shiftnorm::detail::fail<shape_error>(where, ("series '" + s.name + "' err").c_str(), s.x.size(), s.err.size());
        for (std::size_t i = 0; i < s.x.size(); ++i) {
            if (!std::isfinite(s.x[i])) shiftnorm::detail::fail<numeric_error>(where, "x", "finite values", s.x[i]);
            detail::check_finite_or_nan(where, "y", s.y[i]);
            if (spec.x.log2 && !(s.x[i] > 0)) shiftnorm::detail::fail<value_error>(where, "x", "values > 0 on a log2 axis", s.x[i]);
            if (std::isnan(s.y[i])) continue;
            const double xv = spec.x.log2 ? std::log2(s.x[i]) : s.x[i];
            const double e = i < s.err.size() && std::isfinite(s.err[i]) ? std::fabs(s.err[i]) : 0.0;
            xlo = std::min(xlo, xv), xhi = std::max(xhi, xv), ylo = std::min(ylo, s.y[i] - e), yhi = std::max(yhi, s.y[i] + e);
        }
    }
    if (!std::isfinite(xlo)) shiftnorm::detail::fail<value_error>(where, "series", "at least one finite point", "none");
    if (spec.x.min) xlo = spec.x.log2 ? std::log2(*spec.x.min) : *spec.x.min;
    if (spec.x.max) xhi = spec.x.log2 ? std::log2(*spec.x.max) : *spec.x.max;
    if (spec.y.min) ylo = *spec.y.min;
    if (spec.y.max) yhi = *spec.y.max;
    if ((spec.x.min || spec.x.max) && !(xhi > xlo))
        shiftnorm::detail::fail<value_error>(where, "x.max", shiftnorm::detail::concat("a value > x.min"), xhi);
    if ((spec.y.min || spec.y.max) && !(yhi > ylo))
        shiftnorm::detail::fail<value_error>(where, "y.max", shiftnorm::detail::concat("a value > y.min = ", ylo), yhi);
    if (!(yhi > ylo)) {  // a flat line: give it some room
        const double d = ylo == 0 ? 1.0 : std::abs(ylo) * 0.05;
        ylo -= d, yhi += d;
    } else if (!(spec.y.min || spec.y.max)) {
        const double pad = (yhi - ylo) * 0.05;
        ylo -= pad, yhi += pad;
    }
    if (!(xhi > xlo)) xlo -= 0.5, xhi += 0.5;

    canvas cv(spec.width, spec.height);
    std::vector<detail::legend_entry> legend;
    for (std::size_t i = 0; i < spec.series.size(); ++i) {
        const auto& s = spec.series[i];
        legend.push_back({s.name, s.color.value_or(palette(i)), s.mark.value_or(marker_cycle(i)), s.dashed, false});
    }
    const int bottom_margin = 10 + canvas::text_height(2) + 14 + (spec.x.label.empty() ? 0 : canvas::text_height(2) + 12);
    std::vector<double> yt;
    const detail::frame f = detail::draw_frame(cv, spec.title, spec.y.label, ylo, yhi, !(spec.y.min || spec.y.max),
                                               detail::legend_width(legend), bottom_margin, yt);
    // x axis: a small inset so markers at the ends stay inside the box.
    const int inset = 12;
    auto x_px = [&](double xv) {
        return int(std::lround(f.left + inset + (xv - xlo) / (xhi - xlo) * (f.right - f.left - 2 * inset)));
    };
    std::vector<double> xt;
    double xstep = 1;
    if (spec.x.log2) {
        for (double e = std::ceil(xlo - 1e-9); e <= xhi + 1e-9; e += 1) xt.push_back(e);
    } else {
        double a = xlo, b = xhi;
        xt = detail::nice_ticks(a, b, 8, false);
        xstep = xt.size() > 1 ? xt[1] - xt[0] : 1.0;
        // Integer data (severities 1..5, epochs ...) gets integer ticks only.
        bool integral = true;
        for (const auto& s : spec.series)
            for (double v : s.x) integral = integral && v == std::floor(v);
        if (integral && xstep < 1) {
            xt.clear();
            for (double v = std::ceil(xlo); v <= xhi + 1e-9; v += 1) xt.push_back(v);
            xstep = 1;
        }
    }
    for (double t : xt) {
        const int px = x_px(t);
        cv.fill_rect(px, f.top + 1, px, f.bottom - 1, colors::light_gray);
        cv.fill_rect(px, f.bottom + 1, px, f.bottom + 6, colors::black);
        const std::string label = spec.x.log2 ? detail::tick_label(std::exp2(t), 1.0) : detail::tick_label(t, xstep);
        cv.text(px, f.bottom + 10, label, colors::black, 2, h_align::center, v_align::top);
    }
    // Series, clipped to the plot area by clamping y (values outside a fixed range hit the edge).
    for (std::size_t i = 0; i < spec.series.size(); ++i) {
        const auto& s = spec.series[i];
        const auto& e = legend[i];
        auto px = [&](std::size_t k) { return x_px(spec.x.log2 ? std::log2(s.x[k]) : s.x[k]); };
        auto py = [&](std::size_t k) { return f.y_px(std::clamp(s.y[k], f.y_lo, f.y_hi)); };
        for (std::size_t k = 1; k < s.x.size(); ++k)
            if (!std::isnan(s.y[k - 1]) && !std::isnan(s.y[k]))
                cv.line(px(k - 1), py(k - 1), px(k), py(k), e.color, 2, s.dashed ? 8 : 0);
        for (std::size_t k = 0; k < s.err.size(); ++k)  // error bars with 4 px caps
            if (!std::isnan(s.y[k]) && std::isfinite(s.err[k]) && s.err[k] != 0) {
                const double d = std::fabs(s.err[k]);
                const int lo = f.y_px(std::clamp(s.y[k] - d, f.y_lo, f.y_hi)), hi = f.y_px(std::clamp(s.y[k] + d, f.y_lo, f.y_hi));
                cv.line(px(k), lo, px(k), hi, e.color, 1, 0);
                cv.line(px(k) - 4, lo, px(k) + 4, lo, e.color, 1, 0);
                cv.line(px(k) - 4, hi, px(k) + 4, hi, e.color, 1, 0);
            }
        for (std::size_t k = 0; k < s.x.size(); ++k)
            if (!std::isnan(s.y[k])) cv.draw_marker(px(k), py(k), e.mark, 4, e.color);
    }
    cv.rect(f.left, f.top, f.right, f.bottom, colors::black);
    if (!spec.x.label.empty())
        cv.text((f.left + f.right) / 2, cv.height() - 10, spec.x.label, colors::black, 2, h_align::center, v_align::bottom);
    detail::draw_legend(cv, f.right + 10, f.top, legend);
    return cv;
}

//! Writes a canvas as an 8-bit RGB PNG (libpng via data/image_io.hpp); io_error names the path.
inline void write_png(const std::string& path, const canvas& cv) {
    data::write_png(path, cv.pixels().data(), cv.height(), cv.width(), 3);
}

//! render_grouped_bar_chart + write_png.
inline void grouped_bar_chart(const std::string& path, const bar_chart_spec& spec) {
    write_png(path, render_grouped_bar_chart(spec));
}

//! render_line_plot + write_png.
inline void line_plot(const std::string& path, const line_plot_spec& spec) { write_png(path, render_line_plot(spec)); }

}  // namespace shiftnorm::eval
