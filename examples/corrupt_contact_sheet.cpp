// SPDX-License-Identifier: MIT
// Writes a contact sheet PNG: one image under all 19 corruptions (labelled rows) at severities 1-5 (columns).
//
// usage: corrupt_contact_sheet [--input FILE] [--index I] [--table cifar|imagenet|mnist]
//                              [--seed S] [--scale K] [--frost-dir DIR] [--out sheet.png]
//   FILE: a .npy uint8 array (N,H,W,C) or (H,W,C) (image I is used), or a JPEG/PNG file.
//   Without --input a synthetic test pattern is used. Column 0 is the clean image.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/data/image_io.hpp"
#include "shiftnorm/data/npy.hpp"
#include "shiftnorm/eval/canvas.hpp"

namespace sc = shiftnorm::corrupt;
namespace sd = shiftnorm::data;

namespace {

sc::image load_input(const std::string& path, std::size_t index) {
    if (path.size() > 4 && path.substr(path.size() - 4) == ".npy") {
        const sd::npy_array a = sd::read_npy(path);
        if (a.dtype != sd::npy_dtype::u8 || (a.shape.size() != 3 && a.shape.size() != 4))
            throw shiftnorm::value_error("--input: expected a uint8 (N,H,W,C) or (H,W,C) array");
        const auto& s = a.shape;
        const std::size_t off = s.size() == 4 ? 1 : 0;
        const int h = int(s[off]), w = int(s[off + 1]), c = int(s[off + 2]);
        const std::size_t n = s.size() == 4 ? std::size_t(s[0]) : 1;
        if (index >= n) throw shiftnorm::value_error("--index: out of range");
        return sc::image(sc::const_image_view{a.data<std::uint8_t>() + index * std::size_t(h) * w * c, h, w, c});
    }
    const sd::decoded_image d = sd::read_image(path);
    return sc::image(sc::const_image_view{d.pixels.data(), d.height, d.width, d.channels});
}

sc::image test_pattern(int size) {
    sc::image img(size, size, 3);
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
            const bool disk = (x - size / 2) * (x - size / 2) + (y - size / 2) * (y - size / 2) < size * size / 10;
            img(y, x, 0) = static_cast<std::uint8_t>(disk ? 220 : 40 + 150 * x / size);
            img(y, x, 1) = static_cast<std::uint8_t>(disk ? 60 : 90 + 100 * y / size);
            img(y, x, 2) = static_cast<std::uint8_t>(disk ? 50 : 160);
        }
    return img;
}

}  // namespace

int main(int argc, char** argv) try {
    std::string input, out = "corrupt_contact_sheet.png", frost_dir;
    std::size_t index = 0;
    std::uint64_t seed = 0;
    int scale = 0;
    sc::corrupt_options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) throw shiftnorm::value_error("missing value after " + a);
            return argv[++i];
        };
        if (a == "--input") input = next();
        else if (a == "--index") index = std::stoul(next());
        else if (a == "--table") opt.table = sc::parse_table(next());
        else if (a == "--seed") seed = std::stoull(next());
        else if (a == "--scale") scale = std::stoi(next());
        else if (a == "--frost-dir") frost_dir = next();
        else if (a == "--out") out = next();
        else {
            std::fprintf(stderr, "unknown argument %s (see the comment at the top of the source)\n", a.c_str());
            return 2;
        }
    }
    sc::frost_textures textures;
    if (!frost_dir.empty()) {
        textures = sc::frost_textures::load_directory(frost_dir);
        opt.frost = &textures;
    }
    const sc::image src = input.empty() ? test_pattern(opt.table == sc::param_table::imagenet ? 224 : 32)
                                        : load_input(input, index);
    if (scale <= 0) scale = src.height() < 64 ? 4 : 1;
    const int pad = 2, cell_h = src.height() * scale, cell_w = src.width() * scale;
    const int rows = sc::corruption_count, cols = 6;
    // labels: corruption names left of the rows, "clean" / "severity 1..5" above the columns
    namespace ev = shiftnorm::eval;
    const int ts = cell_h >= 64 ? 2 : 1;
    int label_w = 0;
    for (const char* n : sc::corruption_names) label_w = std::max(label_w, ev::canvas::text_width(n, ts));
    const int left = label_w + 4 * ts + pad, top = ev::canvas::text_height(ts) + 4 * ts;
    const int H = top + rows * (cell_h + pad) + pad, W = left + cols * (cell_w + pad) + pad;
    ev::canvas sheet(W, H);
    auto paste = [&](const sc::image& img, int r, int c) {
        for (int y = 0; y < cell_h; ++y)
            for (int x = 0; x < cell_w; ++x) {
                auto v = [&](int k) { return img(y / scale, x / scale, img.channels() == 3 ? k : 0); };
                sheet.put(left + c * (cell_w + pad) + x, top + pad + r * (cell_h + pad) + y, {v(0), v(1), v(2)});
            }
    };
    for (int c = 0; c < cols; ++c)
        sheet.text(left + c * (cell_w + pad) + cell_w / 2, top - 2 * ts,
                   c == 0 ? std::string("clean") : (cell_w >= 60 * ts ? "severity " : "s") + std::to_string(c),
                   ev::colors::black, ts, ev::h_align::center, ev::v_align::bottom);
    for (int r = 0; r < rows; ++r) {
        const auto c = static_cast<sc::corruption>(r);
        sheet.text(left - 3 * ts, top + pad + r * (cell_h + pad) + cell_h / 2, sc::name_of(c), ev::colors::black, ts,
                   ev::h_align::right, ev::v_align::middle);
        paste(src, r, 0);
        for (int s = 1; s <= 5; ++s) paste(sc::corrupt(c, s, src, seed, opt), r, s);
    }
    sd::write_png(out, sheet.pixels().data(), sheet.height(), sheet.width(), 3);
    std::printf("wrote %s (%dx%d): rows in the order", out.c_str(), W, H);
    for (const char* n : sc::corruption_names) std::printf(" %s", n);
    std::printf("; columns clean, severity 1..5; table %s, seed %llu\n", sc::table_name(opt.table),
                static_cast<unsigned long long>(seed));
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "corrupt_contact_sheet: %s\n", e.what());
    return 1;
}
