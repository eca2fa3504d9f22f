// SPDX-License-Identifier: MIT
// Writers for the CIFAR-10-C (.npy per corruption) and ImageNet-C (JPEG folder tree) layouts.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/data/image_io.hpp"
#include "shiftnorm/data/npy.hpp"

namespace shiftnorm::corrupt {

namespace detail {
//! create_directories that reports failure as io_error naming the folder (never filesystem_error).
inline void make_dirs(const char* where, const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) fail<io_error>(where, "dir", "a folder that can be created", "'" + dir.string() + "' (" + ec.message() + ")");
}
}  // namespace detail

//! Corrupts `images` at severities 1..5 into one uint8 array (5N, H, W, C), severity-major
//! (rows N*(s-1) .. N*s - 1 are severity s, each the input in order): the CIFAR-10-C layout.
inline std::vector<std::uint8_t> corrupt_all_severities(corruption c, const_batch_view images, std::uint64_t seed,
                                                        const corrupt_options& opt = {}, int threads = 0) {
    std::vector<std::uint8_t> out(5 * images.count * images.image_size());
    for (int s = 1; s <= 5; ++s) {
        batch_view dst{out.data() + (s - 1) * images.count * images.image_size(), images.count, images.height,
                       images.width, images.channels};
        corrupt_batch(c, s, images, dst, seed, opt, threads);
    }
    return out;
}

//! Writes `<dir>/<corruption>.npy` (uint8, (5N, H, W, C), severity-major) for each corruption in
//! `which`, and `<dir>/labels.npy` (uint8, (5N,): `labels` tiled 5 times) when labels are given
//! (labels.size() must equal images.count). Creates `dir`. Bit-identical for any thread count.
inline void write_cifar_c(const std::string& dir, const_batch_view images, const std::vector<std::uint8_t>& labels,
                          const std::vector<corruption>& which, std::uint64_t seed, const corrupt_options& opt = {},
                          int threads = 0) {
    if (!labels.empty() && labels.size() != images.count)
        detail::fail<shape_error>("write_cifar_c", "labels.size()", images.count, labels.size());
    detail::make_dirs("write_cifar_c", dir);
    const std::vector<std::int64_t> shape = {5 * static_cast<std::int64_t>(images.count), images.height, images.width,
                                             images.channels};
    for (corruption c : which) {
        const auto all = corrupt_all_severities(c, images, seed, opt, threads);
        data::write_npy((std::filesystem::path(dir) / (std::string(name_of(c)) + ".npy")).string(), shape, all.data());
    }
    if (!labels.empty()) {
        std::vector<std::uint8_t> tiled;
        for (int s = 0; s < 5; ++s) tiled.insert(tiled.end(), labels.begin(), labels.end());
        data::write_npy((std::filesystem::path(dir) / "labels.npy").string(), {static_cast<std::int64_t>(tiled.size())},
                        tiled.data());
    }
}

//! One image of an ImageNet-style folder: its class folder name (a WordNet id) and file name.
struct imagenet_item {
    std::string wnid;
    std::string file;  //!< written as-is, e.g. "ILSVRC2012_val_00000001.JPEG"
};

//! Writes `<root>/<corruption>/<severity>/<wnid>/<file>` JPEGs (quality 85, like the reference
//! generation script) for every corruption in `which` and severities 1..5. `items[i]` names
//! image i of `images`. `first_index` is the global index of images[0] for seeding, so a data
//! set processed in chunks gives the same files as one call.
inline void write_imagenet_c(const std::string& root, const_batch_view images, const std::vector<imagenet_item>& items,
                             const std::vector<corruption>& which, std::uint64_t seed, const corrupt_options& opt = {},
                             int threads = 0, std::uint64_t first_index = 0, int jpeg_quality = 85) {
    namespace fs = std::filesystem;
    if (items.size() != images.count) detail::fail<shape_error>("write_imagenet_c", "items.size()", images.count, items.size());
    std::vector<std::uint8_t> buf(images.count * images.image_size());
    for (corruption c : which)
        for (int s = 1; s <= 5; ++s) {
            batch_view dst{buf.data(), images.count, images.height, images.width, images.channels};
            corrupt_batch(c, s, images, dst, seed, opt, threads, first_index);
            for (std::size_t i = 0; i < images.count; ++i) {
                const fs::path d = fs::path(root) / name_of(c) / std::to_string(s) / items[i].wnid;
                detail::make_dirs("write_imagenet_c", d);
                data::write_jpeg((d / items[i].file).string(), dst[i].data, images.height, images.width,
                                 images.channels, jpeg_quality);
            }
        }
}

}  // namespace shiftnorm::corrupt
