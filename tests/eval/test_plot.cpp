// SPDX-License-Identifier: MIT
// Tests of the raster canvas, the bitmap font, tick selection and the two chart renderers.
#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <string>

#include "shiftnorm/eval/plot.hpp"

using namespace shiftnorm;
using namespace shiftnorm::eval;

namespace {
int count_color(const canvas& cv, rgb c) {
    int n = 0;
    for (int y = 0; y < cv.height(); ++y)
        for (int x = 0; x < cv.width(); ++x) n += cv.at(x, y) == c;
    return n;
}
}  // namespace

TEST_CASE("canvas primitives clip and draw where asked", "[eval][plot]") {
    canvas cv(20, 10);
    CHECK(cv.pixels().size() == 20 * 10 * 3);
    CHECK(cv.at(0, 0) == colors::white);
    cv.fill_rect(-5, -5, 2, 1, colors::black);  // clipped to (0..2, 0..1)
    CHECK(count_color(cv, colors::black) == 6);
    cv.put(100, 100, colors::black);  // no-op
    CHECK_THROWS_AS(cv.at(20, 0), shape_error);
    CHECK_THROWS_AS(canvas(0, 5), value_error);

    canvas l(30, 5);
    l.line(0, 2, 29, 2, colors::black);
    CHECK(count_color(l, colors::black) == 30);
    canvas d(30, 5);
    d.line(0, 2, 29, 2, colors::black, 1, 5);  // 5 on, 5 off: 0-4, 10-14, 20-24
    CHECK(count_color(d, colors::black) == 15);
    CHECK(d.at(7, 2) == colors::white);
    canvas t(30, 30);
    t.line(5, 5, 20, 20, colors::black, 3);
    CHECK(t.at(12, 12) == colors::black);
    CHECK(t.at(13, 12) == colors::black);
    CHECK(t.at(20, 5) == colors::white);
}

TEST_CASE("font: every printable glyph is distinct and inked", "[eval][plot]") {
    std::set<std::array<std::uint8_t, 9>> seen;
    for (int c = 33; c < 127; ++c) {
        const auto& g = eval::detail::glyph(char(c));
        int ink = 0;
        for (auto row : g) ink += row != 0;
        INFO("char " << char(c));
        CHECK(ink > 0);
        CHECK(seen.insert(g).second);
    }
    // 'A' as drawn in scripts/gen_font.py: .###. / #...# / #...# / ##### / #...# x3.
    const auto& a = eval::detail::glyph('A');
    CHECK(a[0] == 0x0e);
    CHECK(a[3] == 0x1f);
    CHECK(a[7] == 0);
    CHECK(eval::detail::glyph('\x01') == eval::detail::glyph('?'));
}

TEST_CASE("text renders inside its box, also rotated", "[eval][plot]") {
    CHECK(canvas::text_width("Acc", 2) == 3 * 12 - 2);
    CHECK(canvas::text_height(2) == 18);
    canvas cv(100, 60);
    cv.text(10, 10, "Hi", colors::black, 2);
    int minx = 999, maxx = -1, miny = 999, maxy = -1;
    for (int y = 0; y < 60; ++y)
        for (int x = 0; x < 100; ++x)
            if (cv.at(x, y) == colors::black) minx = std::min(minx, x), maxx = std::max(maxx, x), miny = std::min(miny, y), maxy = std::max(maxy, y);
    CHECK(minx == 10);
    CHECK(miny == 10);
    CHECK(maxx <= 10 + canvas::text_width("Hi", 2) - 1);
    CHECK(maxy <= 10 + 14 - 1);  // no descenders in "Hi"
    // 'H' column 0 is fully inked in rows 0-6: at scale 2, pixels (10..11, 10..23).
    CHECK(cv.at(11, 23) == colors::black);

    canvas r(60, 100);
    r.text(10, 90, "Hi", colors::black, 1, h_align::left, v_align::bottom, true);
    // Rotated CCW: the text's first column (H's left stroke) lies on the bottom row of the box.
    for (int k = 0; k < 7; ++k) CHECK(r.at(10 + k, 90) == colors::black);
    CHECK(r.at(10, 90 - canvas::text_width("Hi") ) == colors::white);
    CHECK_THROWS_AS(r.text(0, 0, "x", colors::black, 0), value_error);
}

TEST_CASE("nice ticks", "[eval][plot]") {
    double lo = 0, hi = 87;
    auto t = eval::detail::nice_ticks(lo, hi, 6, true);
    CHECK(t == std::vector<double>{0, 20, 40, 60, 80, 100});
    CHECK(hi == 100);
    lo = 0.61, hi = 0.97;
    t = eval::detail::nice_ticks(lo, hi, 6, true);
    CHECK(t.front() == Approx(0.6));
    CHECK(t.back() == Approx(1.0));
    CHECK(eval::detail::tick_label(0.05, 0.05) == "0.05");
    CHECK(eval::detail::tick_label(40, 20) == "40");
}

TEST_CASE("grouped bar chart: bar heights proportional to values", "[eval][plot]") {
    bar_chart_spec spec;
    spec.title = "test";
    spec.categories = {"a", "b"};
    spec.series = {{"s0", {25, 50}, std::nullopt}, {"s1", {50, 100}, std::nullopt}};
    spec.y_min = 0, spec.y_max = 100;
    spec.y_label = "acc";
    const canvas cv = render_grouped_bar_chart(spec);
    // Find the x axis (a long black row near the bottom), then measure each bar just above it.
    int axis_y = -1;
    for (int y = cv.height() - 1; y > 0 && axis_y < 0; --y) {
        int black = 0;
        for (int x = 0; x < cv.width(); ++x) black += cv.at(x, y) == colors::black;
        if (black > cv.width() / 2) axis_y = y;
    }
    REQUIRE(axis_y > 0);
    std::vector<std::pair<rgb, int>> bars;  // colour, height
    for (int x = 1; x < cv.width(); ++x) {
        const rgb c = cv.at(x, axis_y - 2);
        if (c == colors::white || c == colors::black || c == colors::light_gray || c == cv.at(x - 1, axis_y - 2)) continue;
        int h = 0;
        while (cv.at(x + 3, axis_y - 1 - h) == c) ++h;
        bars.emplace_back(c, h);
    }
    REQUIRE(bars.size() == 4);
    CHECK(bars[0].first == palette(0));
    CHECK(bars[1].first == palette(1));
    CHECK(bars[1].second == Approx(2 * bars[0].second).margin(2));
    CHECK(bars[2].second == Approx(2 * bars[0].second).margin(2));
    CHECK(bars[3].second == Approx(4 * bars[0].second).margin(3));

    spec.series[0].values = {1};
    CHECK_THROWS_AS(render_grouped_bar_chart(spec), shape_error);
    spec.series[0].values = {1, INFINITY};
    CHECK_THROWS_AS(render_grouped_bar_chart(spec), numeric_error);
    spec.series[0].values = {1, std::nan("")};  // NaN = missing bar
    CHECK_NOTHROW(render_grouped_bar_chart(spec));
    spec.categories.clear();
    CHECK_THROWS_AS(render_grouped_bar_chart(spec), value_error);
}

TEST_CASE("line plot: log2 axis, validation, PNG round trip", "[eval][plot]") {
    line_plot_spec spec;
    spec.title = "acc vs K";
    spec.x = {"K", true, std::nullopt, std::nullopt};
    spec.y = {"acc (%)", false, 0.0, 100.0};
    plot_series s{"rect", {1, 2, 4, 8, 16, 32, 64, 128, 256}, {20, 40, 60, 70, 75, 78, 79, 79.5, 80}};
    plot_series ref{"none", {1, 256}, {50, 50}, true};
    spec.series = {s, ref};
    const canvas cv = render_line_plot(spec);
    CHECK(count_color(cv, palette(0)) > 100);
    CHECK(count_color(cv, palette(1)) > 50);

    const std::string path = "test_eval_plot_tmp.png";
    write_png(path, cv);
    const auto img = data::read_image(path);
    CHECK(img.width == cv.width());
    CHECK(img.height == cv.height());
    CHECK(img.channels == 3);
    CHECK(img.pixels == cv.pixels());
    std::remove(path.c_str());
    CHECK_THROWS_AS(line_plot("/nonexistent-dir/p.png", spec), io_error);

    auto bad = spec;
    bad.series[0].x[0] = 0;
    CHECK_THROWS_AS(render_line_plot(bad), value_error);  // log2 of 0
    bad = spec;
    bad.series[0].y.pop_back();
    CHECK_THROWS_AS(render_line_plot(bad), shape_error);
    bad = spec;
    bad.y.max = -1.0;
    CHECK_THROWS_AS(render_line_plot(bad), value_error);
    bad = spec;
    bad.width = 100;
    CHECK_THROWS_WITH(render_line_plot(bad), Catch::Contains("'width'"));
}
