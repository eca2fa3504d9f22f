// SPDX-License-Identifier: MIT
// Image-folder datasets (`<root>/<class>/<file>.jpg|png`, torchvision ImageFolder order).
#pragma once

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/file.hpp"
#include "shiftnorm/data/image_io.hpp"

namespace shiftnorm::data {

//! Lists `<root>/<class>/<file>` with extensions jpg/jpeg/png (case-insensitive): classes are
//! the sub-directories sorted by name (label = rank, as torchvision's ImageFolder), files are
//! sorted by name within a class. io_error when root is not a directory or holds no images, when
//! an entry of root cannot be resolved (symlink loop), and when an entry named like an image is
//! not a regular file (a FIFO, a directory, a broken symlink: see require_regular_file); other
//! entries are ignored.
inline std::vector<std::pair<std::string, std::int32_t>> list_image_folder(const std::string& root,
                                                                           std::vector<std::string>& classes) {
    namespace fs = std::filesystem;
    using shiftnorm::detail::concat;
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw io_error("image folder '" + root + "' is not a directory");
    classes.clear();
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code sec;
        const fs::file_status st = fs::status(it->path(), sec);
        if (sec && st.type() != fs::file_type::not_found)  // a dangling symlink is just not a class folder
            throw io_error(concat("image folder entry '", it->path().string(), "' cannot be resolved",
                                  sec == std::errc::too_many_symbolic_link_levels ? " (symlink loop?)" : "", ": ",
                                  sec.message(), "; expected a class directory or another file"));
        if (fs::is_directory(st)) classes.push_back(it->path().filename().string());
    }
    if (ec) throw io_error("cannot list image folder '" + root + "': " + ec.message());
    std::sort(classes.begin(), classes.end());
    if (classes.empty()) throw io_error("image folder '" + root + "' has no class sub-directories (<root>/<class>/<file>.jpg)");
    std::vector<std::pair<std::string, std::int32_t>> files;
    for (std::size_t k = 0; k < classes.size(); ++k) {
        std::vector<std::string> names;
        const fs::path dir = fs::path(root) / classes[k];
        for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
            std::string ext = it->path().extension().string();
            std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
            if (ext != ".jpg" && ext != ".jpeg" && ext != ".png") continue;
            require_regular_file(it->path().string(), "image file");
            names.push_back(it->path().string());
        }
        if (ec) throw io_error("cannot list image folder '" + dir.string() + "': " + ec.message());
        std::sort(names.begin(), names.end());
        for (auto& n : names) files.emplace_back(std::move(n), std::int32_t(k));
    }
    if (files.empty()) throw io_error("image folder '" + root + "' contains no .jpg/.jpeg/.png files");
    return files;
}

//! Loads an image folder into memory as `channels`-channel images (3: gray is replicated, alpha
//! dropped; 1: RGB is converted with ITU-R 601 luma like PIL's convert('L')). Every image
//! must have the size of the first one (this loader does not resize): io_error naming the file
//! otherwise, and for undecodable, truncated or empty files.
inline image_dataset load_image_folder(const std::string& root, index_t channels = 3) {
    if (channels != 1 && channels != 3) shiftnorm::detail::fail("load_image_folder", "channels", "1 or 3", channels);
    image_dataset ds;
    const auto files = list_image_folder(root, ds.classes);
    ds.channels = channels;
    for (std::size_t i = 0; i < files.size(); ++i) {
        const decoded_image im = read_image(files[i].first);
        if (i == 0) {
            ds.height = im.height;
            ds.width = im.width;
            ds.pixels.reserve(files.size() * std::size_t(channels * im.height * im.width));
        } else if (im.height != ds.height || im.width != ds.width) {
            throw io_error(shiftnorm::detail::concat(files[i].first, ": image is ", im.height, "x", im.width, ", expected ",
                                                     ds.height, "x", ds.width, " like the first image (no resizing)"));
        }
        const index_t hw = index_t(im.height) * im.width;
        const std::size_t base = ds.pixels.size();
        ds.pixels.resize(base + std::size_t(channels * hw));
        std::uint8_t* out = ds.pixels.data() + base;
        const int ic = im.channels;
        for (index_t p = 0; p < hw; ++p) {
            const std::uint8_t* px = im.pixels.data() + p * ic;
            if (channels == 3) {
                for (int c = 0; c < 3; ++c) out[c * hw + p] = ic >= 3 ? px[c] : px[0];
            } else {
                out[p] = ic >= 3 ? std::uint8_t((px[0] * 19595 + px[1] * 38470 + px[2] * 7471 + 0x8000) >> 16) : px[0];
            }
        }
        ds.labels.push_back(files[i].second);
    }
    ds.validate(root);
    return ds;
}

}  // namespace shiftnorm::data
