// SPDX-License-Identifier: MIT
// IDX file reader (MNIST, Fashion-MNIST), plain or gzip-compressed (zlib), with strict checks.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <zlib.h>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/file.hpp"

namespace shiftnorm::data {

//! A decoded IDX array of unsigned bytes: dims (big-endian in the file) and the data.
struct idx_array {
    std::vector<std::int64_t> dims;
    std::vector<std::uint8_t> bytes;
};

namespace detail {

//! Owns a gzFile: closed on every path out of the readers.
struct gz_handle {
    gzFile f = nullptr;
    gz_handle() = default;
    gz_handle(const gz_handle&) = delete;
    gz_handle& operator=(const gz_handle&) = delete;
    ~gz_handle() {
        if (f) gzclose(f);
    }
};

//! Opens a regular file with zlib (which reads gzip and plain files alike); io_error otherwise.
//! Returns the file's size on disk.
inline std::uint64_t gz_open(gz_handle& h, const std::string& path, const char* what) {
    const std::uint64_t size = require_regular_file(path, what);  // never open() a FIFO or a directory
    errno = 0;
    h.f = gzopen(path.c_str(), "rb");
    if (!h.f)
        throw io_error(shiftnorm::detail::concat("cannot open ", what, " '", path, "'",
                                                 errno ? shiftnorm::detail::concat(": ", std::strerror(errno)) : std::string()));
    return size;
}

//! Reads up to `n` bytes (fewer only at the end of the stream); io_error on a corrupt stream.
inline std::size_t gz_read_some(gzFile f, std::uint8_t* dst, std::size_t n, const std::string& path) {
    std::size_t got = 0;
    while (got < n) {
        const int r = gzread(f, dst + got, unsigned(std::min<std::size_t>(n - got, std::size_t(1) << 20)));
        if (r < 0) {
            int code = 0;
            const char* msg = gzerror(f, &code);
            throw io_error("'" + path + "': corrupt or truncated gzip stream (" + (msg ? msg : "unknown error") + ")");
        }
        if (r == 0) break;
        got += std::size_t(r);
    }
    return got;
}

//! gzread returns 0 both at a clean end and at a truncated stream; gzerror tells them apart.
inline void gz_require_clean_end(gzFile f, const std::string& path) {
    int code = Z_OK;
    gzerror(f, &code);
    if (code != Z_OK && code != Z_STREAM_END) throw io_error("'" + path + "': corrupt or truncated gzip stream");
}

//! Checks the 4-byte IDX magic (0x0000 08 D) and returns the rank D.
inline int idx_rank(const std::uint8_t* b, std::size_t n, const std::string& what) {
    if (n < 4) throw io_error(what + ": truncated IDX file (no magic number)");
    if (b[0] != 0 || b[1] != 0)
        throw io_error(shiftnorm::detail::concat(what, ": not an IDX file (magic bytes ", int(b[0]), ",", int(b[1]),
                                                 ", expected 0,0)"));
    if (b[2] != 0x08)
        throw io_error(shiftnorm::detail::concat(what, ": IDX element type 0x", std::hex, int(b[2]),
                                                 " unsupported (expected 0x08, unsigned byte)"));
    const int nd = b[3];
    if (nd < 1 || nd > 4) throw io_error(shiftnorm::detail::concat(what, ": IDX rank ", nd, " outside [1, 4]"));
    return nd;
}

inline std::string idx_shape_str(const std::vector<std::int64_t>& dims) {
    std::string s;
    for (auto d : dims) s += (s.empty() ? "" : "x") + std::to_string(d);
    return s;
}

//! Decodes the `nd` big-endian extents at `p` into `dims` and returns their product, checked
//! against max_idx_elements (with checked multiplication).
inline std::uint64_t idx_dims(const std::uint8_t* p, int nd, std::vector<std::int64_t>& dims, const std::string& what) {
    std::uint64_t count = 1;
    bool overflow = false;
    dims.clear();
    for (int d = 0; d < nd; ++d, p += 4) {
        const std::uint64_t v = (std::uint64_t(p[0]) << 24) | (std::uint64_t(p[1]) << 16) | (std::uint64_t(p[2]) << 8) | p[3];
        dims.push_back(std::int64_t(v));
        overflow = overflow || !checked_mul(count, v, count);
    }
    if (overflow || count > max_idx_elements)
        throw io_error(shiftnorm::detail::concat(what, ": IDX header claims ", idx_shape_str(dims),
                                                 " elements, expected at most ", max_idx_elements,
                                                 " (data::max_idx_elements)"));
    return count;
}

}  // namespace detail

//! Reads a whole file, gunzipping it when it starts with the gzip magic (zlib's gzread also
//! reads uncompressed files transparently). io_error on a missing or non-regular file, a corrupt
//! stream, or more than `max_bytes` of decompressed data (the buffer grows as data arrives).
inline std::vector<std::uint8_t> read_maybe_gzip(const std::string& path, std::uint64_t max_bytes = std::uint64_t(1) << 32) {
    detail::gz_handle gz;
    detail::gz_open(gz, path, "file");
    std::vector<std::uint8_t> out;
    std::vector<std::uint8_t> buf(1 << 16);
    while (true) {
        const std::size_t n = detail::gz_read_some(gz.f, buf.data(), buf.size(), path);
        if (n == 0) break;
        if (out.size() + n > max_bytes)
            throw io_error(shiftnorm::detail::concat("'", path, "': decompressed size exceeds ", max_bytes, " bytes"));
        out.insert(out.end(), buf.begin(), buf.begin() + std::ptrdiff_t(n));
    }
    detail::gz_require_clean_end(gz.f, path);
    return out;
}

//! Parses IDX bytes (magic 0x0000 08 D: unsigned byte data, D dimensions, big-endian sizes).
//! Only the unsigned-byte type (0x08) that MNIST uses is accepted, at most max_idx_elements, and
//! the data must be exactly what the dimensions promise.
inline idx_array parse_idx(const std::vector<std::uint8_t>& b, const std::string& what) {
    const int nd = detail::idx_rank(b.data(), b.size(), what);
    const std::size_t hsize = std::size_t(4 + 4 * nd);
    if (b.size() < hsize) throw io_error(what + ": truncated IDX header");
    idx_array a;
    const std::uint64_t count = detail::idx_dims(b.data() + 4, nd, a.dims, what);
    const std::uint64_t need = hsize + count;
    if (b.size() < need)
        throw io_error(shiftnorm::detail::concat(what, ": truncated IDX data (", b.size(), " bytes, header promises ", need, ")"));
    if (b.size() > need)
        throw io_error(shiftnorm::detail::concat(what, ": IDX file has ", b.size() - need, " trailing bytes"));
    a.bytes.assign(b.begin() + std::ptrdiff_t(hsize), b.end());
    return a;
}

//! Reads an IDX file, plain or gzip-compressed. The header is read first and the element count
//! it claims is checked before anything is allocated for the data: at most max_idx_elements, and
//! no more than the file can hold (exactly its size for a plain file, deflate_max_ratio times its
//! size for a gzip one). The data buffer then grows as data arrives, so a stream that ends early
//! or runs on (a gzip bomb) stops with an io_error after at most the claimed size.
inline idx_array read_idx(const std::string& path) {
    using shiftnorm::detail::concat;
    detail::gz_handle gz;
    const std::uint64_t file_size = detail::gz_open(gz, path, "IDX file");
    std::uint8_t head[4 + 4 * 4];
    const int nd = detail::idx_rank(head, detail::gz_read_some(gz.f, head, 4, path), path);
    const std::size_t hsize = std::size_t(4 + 4 * nd);
    if (detail::gz_read_some(gz.f, head + 4, hsize - 4, path) != hsize - 4) throw io_error(path + ": truncated IDX header");
    idx_array a;
    const std::uint64_t count = detail::idx_dims(head + 4, nd, a.dims, path);
    if (gzdirect(gz.f)) {  // plain file: its size must be exactly header + data
        if (file_size < hsize + count)
            throw io_error(concat(path, ": truncated IDX data (", file_size, " bytes, header promises ", hsize + count, ")"));
        if (file_size > hsize + count)
            throw io_error(concat(path, ": IDX file has ", file_size - hsize - count, " trailing bytes"));
    } else {  // gzip: deflate inflates at most deflate_max_ratio:1
        std::uint64_t can_hold = 0;
        if (detail::checked_mul(file_size, deflate_max_ratio, can_hold) && count > can_hold)
            throw io_error(concat(path, ": IDX header claims ", count, " elements (", detail::idx_shape_str(a.dims),
                                  "), more than a ", file_size, "-byte gzip file can hold (at most ", can_hold,
                                  " bytes at deflate's ", deflate_max_ratio, ":1 ratio; truncated or crafted file)"));
    }
    std::size_t have = 0;
    while (have < count) {
        const std::size_t want = std::size_t(std::min<std::uint64_t>(count, std::max<std::uint64_t>(2 * have, 1 << 20)));
        a.bytes.resize(want);
        have += detail::gz_read_some(gz.f, a.bytes.data() + have, want - have, path);
        if (have < want) break;  // the stream ended
    }
    if (have < count)
        throw io_error(concat(path, ": IDX data ends after ", have, " of ", count, " bytes the header promises (",
                              detail::idx_shape_str(a.dims), "; truncated file)"));
    std::uint8_t extra;
    if (detail::gz_read_some(gz.f, &extra, 1, path) != 0)
        throw io_error(concat(path, ": IDX file has trailing bytes after the ", count, " data bytes the header promises"));
    detail::gz_require_clean_end(gz.f, path);
    return a;
}

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
        // The first candidate that exists in any form (not opened: read_idx then rejects a FIFO,
        // a directory or a broken symlink with a clear message).
        for (const std::string& cand : {base + ".gz", base}) {
            std::error_code ec;
            const auto st = std::filesystem::symlink_status(cand, ec);
            if (!ec && st.type() != std::filesystem::file_type::not_found) return cand;
        }
        throw io_error("missing IDX file '" + base + "[.gz]'");
    };
    return load_idx_pair(pick(pre + "-images-idx3-ubyte"), pick(pre + "-labels-idx1-ubyte"), std::move(classes));
}

}  // namespace shiftnorm::data
