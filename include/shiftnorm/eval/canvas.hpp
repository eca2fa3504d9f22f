// SPDX-License-Identifier: MIT
// RGB raster canvas: clipped pixels, rectangles, thick/dashed lines, markers and 5x7 bitmap text.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/eval/font5x7.hpp"

namespace shiftnorm::eval {

//! An 8-bit sRGB colour.
struct rgb {
    std::uint8_t r = 0, g = 0, b = 0;
    friend bool operator==(const rgb& a, const rgb& b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
    friend bool operator!=(const rgb& a, const rgb& b) { return !(a == b); }
};

namespace colors {
inline constexpr rgb white{255, 255, 255};
inline constexpr rgb black{0, 0, 0};
inline constexpr rgb gray{110, 110, 110};
inline constexpr rgb light_gray{225, 225, 225};
}  // namespace colors

//! The i-th colour of a 10-colour categorical palette (matplotlib's "tab10" values), cyclic.
inline rgb palette(std::size_t i) {
    static constexpr std::array<rgb, 10> p = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                               {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                               {188, 189, 34}, {23, 190, 207}}};
    return p[i % p.size()];
}

//! Marker shapes for line plots.
enum class marker { none, circle, square, triangle, diamond, cross };
//! The i-th marker of a cycle that skips `none`.
inline marker marker_cycle(std::size_t i) {
    static constexpr std::array<marker, 5> m = {marker::circle, marker::square, marker::triangle, marker::diamond,
                                                marker::cross};
    return m[i % m.size()];
}

enum class h_align { left, center, right };
enum class v_align { top, middle, bottom };

//! A width x height RGB image, row-major HWC uint8 (what data::encode_png takes). Every drawing
//! call clips to the canvas, so shapes may extend past the edges. Coordinates: x right, y down.
class canvas {
public:
    //! Throws value_error unless 1 <= width, height <= 16384.
    canvas(int width, int height, rgb background = colors::white) : w_(width), h_(height) {
        if (width < 1 || width > 16384) shiftnorm::detail::fail<value_error>("canvas", "width", "[1, 16384]", width);
        if (height < 1 || height > 16384) shiftnorm::detail::fail<value_error>("canvas", "height", "[1, 16384]", height);
        px_.resize(std::size_t(w_) * std::size_t(h_) * 3);
        for (std::size_t i = 0; i < px_.size(); i += 3) {
            px_[i] = background.r;
            px_[i + 1] = background.g;
            px_[i + 2] = background.b;
        }
    }

    int width() const { return w_; }
    int height() const { return h_; }
    //! Pixels, HWC RGB, size width * height * 3.
    const std::vector<std::uint8_t>& pixels() const { return px_; }

    //! The colour at (x, y); throws shape_error outside the canvas.
    rgb at(int x, int y) const {
        if (x < 0 || x >= w_) shiftnorm::detail::fail<shape_error>("canvas::at", "x", shiftnorm::detail::concat("[0, ", w_, ")"), x);
        if (y < 0 || y >= h_) shiftnorm::detail::fail<shape_error>("canvas::at", "y", shiftnorm::detail::concat("[0, ", h_, ")"), y);
        const std::size_t i = (std::size_t(y) * std::size_t(w_) + std::size_t(x)) * 3;
        return {px_[i], px_[i + 1], px_[i + 2]};
    }
    //! Sets one pixel; no-op outside the canvas.
    void put(int x, int y, rgb c) {
        if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
        const std::size_t i = (std::size_t(y) * std::size_t(w_) + std::size_t(x)) * 3;
        px_[i] = c.r;
        px_[i + 1] = c.g;
        px_[i + 2] = c.b;
    }
    //! Fills the rectangle with corners (x0, y0), (x1, y1), both inclusive, in any order.
    void fill_rect(int x0, int y0, int x1, int y1, rgb c) {
        if (x0 > x1) std::swap(x0, x1);
        if (y0 > y1) std::swap(y0, y1);
        x0 = std::max(x0, 0), y0 = std::max(y0, 0), x1 = std::min(x1, w_ - 1), y1 = std::min(y1, h_ - 1);
        for (int y = y0; y <= y1; ++y)
            for (int x = x0; x <= x1; ++x) put(x, y, c);
    }
    //! 1-pixel outline of a rectangle (inclusive corners).
    void rect(int x0, int y0, int x1, int y1, rgb c) {
        fill_rect(x0, y0, x1, y0, c);
        fill_rect(x0, y1, x1, y1, c);
        fill_rect(x0, y0, x0, y1, c);
        fill_rect(x1, y0, x1, y1, c);
    }
    //! Line from (x0, y0) to (x1, y1) (rounded to pixels, Bresenham), `thickness` pixels wide
    //! (a square pen), dashed with `dash` pixels on / `dash` off when dash > 0.
    void line(double x0, double y0, double x1, double y1, rgb c, int thickness = 1, int dash = 0) {
        int ax = int(std::lround(x0)), ay = int(std::lround(y0));
        const int bx = int(std::lround(x1)), by = int(std::lround(y1));
        const int dx = std::abs(bx - ax), dy = -std::abs(by - ay);
        const int sx = ax < bx ? 1 : -1, sy = ay < by ? 1 : -1;
        int err = dx + dy;
        const int lo = -(thickness - 1) / 2, hi = thickness / 2;
        for (long step = 0;; ++step) {
            if (dash <= 0 || (step / dash) % 2 == 0) fill_rect(ax + lo, ay + lo, ax + hi, ay + hi, c);
            if (ax == bx && ay == by) break;
            const int e2 = 2 * err;
            if (e2 >= dy) {
                err += dy;
                ax += sx;
            }
            if (e2 <= dx) {
                err += dx;
                ay += sy;
            }
        }
    }
    //! A filled marker centred on (x, y) with half-size `r` pixels (cross: 2-pixel strokes).
    void draw_marker(int x, int y, marker m, int r, rgb c) {
        switch (m) {
            case marker::none: return;
            case marker::square: fill_rect(x - r, y - r, x + r, y + r, c); return;
            case marker::circle:
                for (int j = -r; j <= r; ++j)
                    for (int i = -r; i <= r; ++i)
                        if (i * i + j * j <= r * r + r) put(x + i, y + j, c);
                return;
            case marker::diamond:
                for (int j = -r; j <= r; ++j)
                    for (int i = -r; i <= r; ++i)
                        if (std::abs(i) + std::abs(j) <= r) put(x + i, y + j, c);
                return;
            case marker::triangle:  // apex up, base at y + r
                for (int j = -r; j <= r; ++j) {
                    const int half = (j + r) / 2;
                    fill_rect(x - half, y + j, x + half, y + j, c);
                }
                return;
            case marker::cross:
                line(x - r, y - r, x + r, y + r, c, 2);
                line(x - r, y + r, x + r, y - r, c, 2);
                return;
        }
    }

    //! Width in pixels of `s` drawn at integer `scale` (6-pixel advance per glyph at scale 1).
    static int text_width(const std::string& s, int scale = 1) {
        return s.empty() ? 0 : int(s.size()) * (detail::font_glyph_width + 1) * scale - scale;
    }
    //! Height in pixels of one line of text (7 rows above the baseline + 2 descender rows).
    static int text_height(int scale = 1) { return detail::font_glyph_rows * scale; }

    //! Draws `s` with the built-in 5x7 font magnified `scale` times (1..16; throws value_error
    //! otherwise). (x, y) is the anchor of the text box under the given alignment. With
    //! `vertical`, the text is rotated 90 degrees counter-clockwise (reads bottom to top) and the
    //! alignment applies to the rotated box (width text_height, height text_width).
    void text(int x, int y, const std::string& s, rgb c, int scale = 1, h_align ha = h_align::left,
              v_align va = v_align::top, bool vertical = false) {
        if (scale < 1 || scale > 16) shiftnorm::detail::fail<value_error>("canvas::text", "scale", "[1, 16]", scale);
        const int tw = text_width(s, scale), th = text_height(scale);
        const int bw = vertical ? th : tw, bh = vertical ? tw : th;
        const int x0 = ha == h_align::left ? x : ha == h_align::center ? x - bw / 2 : x - bw + 1;
        const int y0 = va == v_align::top ? y : va == v_align::middle ? y - bh / 2 : y - bh + 1;
        for (std::size_t k = 0; k < s.size(); ++k) {
            const auto& g = detail::glyph(s[k]);
            for (int row = 0; row < detail::font_glyph_rows; ++row)
                for (int col = 0; col < detail::font_glyph_width; ++col) {
                    if (!((g[std::size_t(row)] >> (detail::font_glyph_width - 1 - col)) & 1)) continue;
                    // (u, v): pixel of the unrotated text box, u along the text, v down.
                    const int u = int(k) * (detail::font_glyph_width + 1) * scale + col * scale;
                    const int v = row * scale;
                    if (!vertical) fill_rect(x0 + u, y0 + v, x0 + u + scale - 1, y0 + v + scale - 1, c);
                    else fill_rect(x0 + v, y0 + bh - 1 - u - (scale - 1), x0 + v + scale - 1, y0 + bh - 1 - u, c);
                }
        }
    }

private:
    int w_, h_;
    std::vector<std::uint8_t> px_;
};

}  // namespace shiftnorm::eval
