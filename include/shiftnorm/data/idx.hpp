// SPDX-License-Identifier: MIT
// IDX file reader (MNIST, Fashion-MNIST), plain or gzip-compressed (zlib), with strict checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <zlib.h>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/dataset.hpp"

namespace shiftnorm::data {

//! A decoded IDX array of unsigned bytes: dims (big-endian in the file) and the data.
struct idx_array {
    std::vector<std::int64_t> dims;
    std::vector<std::uint8_t> bytes;
};

//! Reads a whole file, gunzipping it when it starts with the gzip magic (zlib's gzread also
//! reads uncompressed files transparently). io_error on a missing file or a corrupt stream.
inline std::vector<std::uint8_t> read_maybe_gzip(const std::string& path) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw io_error("cannot open '" + path + "'");
    std::vector<std::uint8_t> out;
    std::vector<std::uint8_t> buf(1 << 16);
    while (true) {
        const int n = gzread(f, buf.data(), unsigned(buf.size()));
        if (n < 0) {
            int code = 0;
            const char* msg = gzerror(f, &code);
            std::string m = msg ? msg : "unknown error";
            gzclose(f);
            throw io_error("'" + path + "': corrupt or truncated gzip stream (" + m + ")");
        }
        if (n == 0) break;
        out.insert(out.end(), buf.begin(), buf.begin() + n);
        if (out.size() > (std::size_t(1) << 32)) {
            gzclose(f);
            throw io_error("'" + path + "': decompressed size exceeds 4 GiB");
        }
    }
    // gzread returns 0 both at a clean end and at a truncated stream; gzerror tells them apart.
    int code = Z_OK;
    gzerror(f, &code);
    gzclose(f);
    if (code != Z_OK && code != Z_STREAM_END)
        throw io_error("'" + path + "': corrupt or truncated gzip stream");
    return out;
}

//! Parses IDX bytes (magic 0x0000 08 D: unsigned byte data, D dimensions, big-endian sizes).
//! Only the unsigned-byte type (0x08) that MNIST uses is accepted.
inline idx_array parse_idx(const std::vector<std::uint8_t>& b, const std::string& what) {
    if (b.size() < 4) throw io_error(what + ": truncated IDX file (no magic number)");
    if (b[0] != 0 || b[1] != 0)
        throw io_error(shiftnorm::detail::concat(what, ": not an IDX file (magic bytes ", int(b[0]), ",", int(b[1]),
                                                 ", expected 0,0)"));
    if (b[2] != 0x08)
        throw io_error(shiftnorm::detail::concat(what, ": IDX element type 0x", std::hex, int(b[2]),
                                                 " unsupported (expected 0x08, unsigned byte)"));
    const int nd = b[3];
    if (nd < 1 || nd > 4) throw io_error(shiftnorm::detail::concat(what, ": IDX rank ", nd, " outside [1, 4]"));
    if (b.size() < std::size_t(4 + 4 * nd)) throw io_error(what + ": truncated IDX header");
    idx_array a;
    std::uint64_t count = 1;
    for (int d = 0; d < nd; ++d) {
        const std::uint8_t* p = b.data() + 4 + 4 * d;
        const std::uint64_t v = (std::uint64_t(p[0]) << 24) | (std::uint64_t(p[1]) << 16) | (std::uint64_t(p[2]) << 8) | p[3];
        a.dims.push_back(std::int64_t(v));
        count *= v;
        if (count > (std::uint64_t(1) << 34)) throw io_error(what + ": IDX dimensions too large");
    }
    const std::size_t need = std::size_t(4 + 4 * nd) + std::size_t(count);
    if (b.size() < need)
        throw io_error(shiftnorm::detail::concat(what, ": truncated IDX data (", b.size(), " bytes, header promises ", need, ")"));
    if (b.size() > need)
        throw io_error(shiftnorm::detail::concat(what, ": IDX file has ", b.size() - need, " trailing bytes"));
    a.bytes.assign(b.begin() + std::ptrdiff_t(4 + 4 * nd), b.end());
    return a;
}

inline idx_array read_idx(const std::string& path) { return parse_idx(read_maybe_gzip(path), path); }

//! An MNIST-style pair: images [N, H, W] and labels [N] -> dataset of N 1xHxW images.
inline image_dataset load_idx_pair(const std::string& images_path, const std::string& labels_path,
                                   std::vector<std::string> classes = numbered_classes(10)) {
    idx_array im = read_idx(images_path), lb = read_idx(labels_path);
    if (im.dims.size() != 3)
        throw io_error(shiftnorm::detail::concat(images_path, ": expected a rank-3 IDX image array, got rank ", im.dims.size()));
    if (lb.dims.size() != 1)
        throw io_error(shiftnorm::detail::concat(labels_path, ": expected a rank-1 IDX label array, got rank ", lb.dims.size()));
    if (im.dims[0] != lb.dims[0])
        throw io_error(shiftnorm::detail::concat(images_path, ": ", im.dims[0], " images but ", labels_path, " has ",
                                                 lb.dims[0], " labels"));
    image_dataset ds;
    ds.channels = 1;
    ds.height = im.dims[1];
    ds.width = im.dims[2];
    ds.pixels = std::move(im.bytes);
    ds.labels.assign(lb.bytes.begin(), lb.bytes.end());
    ds.classes = std::move(classes);
    ds.validate(labels_path);
    return ds;
}

inline std::vector<std::string> fashion_mnist_classes() {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
}

//! MNIST / Fashion-MNIST directory with the four standard files (`train-images-idx3-ubyte`
//! etc., each optionally `.gz`). `train` picks the training or the t10k split.
inline image_dataset load_mnist_dir(const std::string& dir, bool train, std::vector<std::string> classes = numbered_classes(10)) {
    const std::string pre = dir + "/" + (train ? "train" : "t10k");
    auto pick = [](const std::string& base) {
        for (const std::string& cand : {base + ".gz", base}) {
            std::FILE* f = std::fopen(cand.c_str(), "rb");
            if (f) {
                std::fclose(f);
                return cand;
            }
        }
        throw io_error("missing IDX file '" + base + "[.gz]'");
    };
    return load_idx_pair(pick(pre + "-images-idx3-ubyte"), pick(pre + "-labels-idx1-ubyte"), std::move(classes));
}

}  // namespace shiftnorm::data
