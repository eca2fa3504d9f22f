// SPDX-License-Identifier: MIT
// File access shared by the readers of data/: only regular files are opened (a FIFO, a directory,
// a device or an unresolvable symlink is an io_error before open(), so nothing blocks or reads
// forever), whole-file reads are bounded, and the decoded-size limits of the readers live here.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include "shiftnorm/core/error.hpp"

namespace shiftnorm::data {

// ---- Limits -------------------------------------------------------------------------------------
// Every reader checks the size a file claims (shape, image dimensions, element count) against
// these limits and against what the file can actually hold BEFORE allocating for it, so a tiny
// hostile file cannot make a huge allocation.

//! Largest file read_regular_file loads into memory: 8 GiB (the largest inputs shiftnorm reads,
//! CIFAR batches, MNIST, checkpoints and .npy corruption sets, are below 1 GiB).
inline constexpr std::uint64_t max_file_bytes = std::uint64_t(1) << 33;

//! Largest decoded image (width x height) decode_png/decode_jpeg accept: 2^28 pixels (16384 x
//! 16384; at most 1 GiB of RGBA output). Images shiftnorm handles are below 1 Mpixel.
inline constexpr std::uint64_t max_image_pixels = std::uint64_t(1) << 28;

//! Most scans decode_jpeg reads from one JPEG: 500 (libjpeg-turbo's suggested limit, djpeg
//! -maxscans, TurboJPEG's TJPARAM_SCANLIMIT). A progressive JPEG visits every 8x8 block of a
//! component in each of its scans, and a scan of end-of-band runs costs a dozen bytes, so without
//! a limit the work grows with the square of the file size (a crafted 97 KB file with 1800 scans
//! over 518400 blocks took 5.6 s). Encoders write at most a few dozen (jpeg_simple_progression:
//! 10 for colour, 6 for gray).
inline constexpr int max_jpeg_scans = 500;

//! Largest IDX payload read_idx/parse_idx accept: 2^31 elements (= bytes, type 0x08); MNIST's
//! training images are 47 MB, EMNIST-ByClass 547 MB.
inline constexpr std::uint64_t max_idx_elements = std::uint64_t(1) << 31;

//! deflate's maximum compression ratio (a 258-byte match coded in 2 bits): a zlib or gzip stream
//! of n bytes never inflates to more than deflate_max_ratio * n bytes. PNG and gzip IDX claims are
//! checked against it, so an implausible claim is rejected before anything is allocated.
inline constexpr std::uint64_t deflate_max_ratio = 1032;

namespace detail {

//! out = a * b; false (out untouched) when the product overflows 64 bits.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
    if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
    out = a * b;
    return true;
}

inline std::string file_type_name(std::filesystem::file_type t) {
    namespace fs = std::filesystem;
    switch (t) {
        case fs::file_type::directory: return "a directory";
        case fs::file_type::fifo: return "a FIFO (named pipe)";
        case fs::file_type::socket: return "a socket";
        case fs::file_type::block: return "a block device";
        case fs::file_type::character: return "a character device";
        case fs::file_type::symlink: return "a symlink";
        case fs::file_type::regular: return "a regular file";
        default: return "not a regular file (unknown type)";
    }
}

}  // namespace detail

//! Throws io_error unless `path` resolves to a regular file (symlinks to regular files are fine)
//! and returns its size in bytes. Only metadata is looked at (std::filesystem::status), the file
//! is never opened, so a FIFO is rejected without blocking. `what` names the kind of file in the
//! message ("safetensors file", "IDX file" ...), e.g. "IDX file 'x' is a FIFO (named pipe),
//! expected a regular file".
inline std::uint64_t require_regular_file(const std::string& path, const char* what = "file") {
    namespace fs = std::filesystem;
    using shiftnorm::detail::concat;
    if (path.empty()) throw io_error(concat(what, ": expected a path to a regular file, got an empty path"));
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (ec && st.type() != fs::file_type::not_found) {
        if (ec == std::errc::too_many_symbolic_link_levels)
            throw io_error(concat(what, " '", path, "' cannot be resolved (symlink loop?): ", ec.message(),
                                  "; expected a regular file"));
        throw io_error(concat(what, " '", path, "' cannot be accessed: ", ec.message(), "; expected a regular file"));
    }
    if (st.type() == fs::file_type::not_found) {
        std::error_code ec2;
        if (fs::is_symlink(fs::symlink_status(path, ec2)))
            throw io_error(concat(what, " '", path, "' is a dangling symlink (its target does not exist), expected a regular file"));
        throw io_error(concat(what, " '", path, "' does not exist, expected a regular file"));
    }
    if (st.type() != fs::file_type::regular)
        throw io_error(concat(what, " '", path, "' is ", detail::file_type_name(st.type()), ", expected a regular file"));
    const std::uintmax_t n = fs::file_size(path, ec);
    if (ec) throw io_error(concat(what, " '", path, "': cannot determine its size: ", ec.message()));
    return std::uint64_t(n);
}

//! Reads a whole regular file into memory. io_error naming the path when it is not a regular file
//! (see require_regular_file), larger than `max_bytes`, unreadable, or changes size while read.
inline std::vector<unsigned char> read_regular_file(const std::string& path, const char* what = "file",
                                                    std::uint64_t max_bytes = max_file_bytes) {
    using shiftnorm::detail::concat;
    const std::uint64_t n = require_regular_file(path, what);
    if (n > max_bytes || n > std::uint64_t(std::numeric_limits<std::streamsize>::max()))
        throw io_error(concat(what, " '", path, "' has ", n, " bytes, expected at most ", max_bytes,
                              " (data::max_file_bytes)"));
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw io_error(concat("cannot open ", what, " '", path, "' for reading",
                              errno ? concat(": ", std::strerror(errno)) : std::string()));
    std::vector<unsigned char> buf;
    try {
        buf.resize(static_cast<std::size_t>(n));
    } catch (const std::bad_alloc&) {
        throw io_error(concat("cannot allocate ", n, " bytes to read ", what, " '", path, "'"));
    }
    if (n > 0 && !in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n)))
        throw io_error(concat("cannot read ", what, " '", path, "': expected ", n, " bytes, got ", in.gcount(),
                              " (file shrank or read error)"));
    if (in.peek() != std::ifstream::traits_type::eof())
        throw io_error(concat(what, " '", path, "' grew while being read (expected ", n, " bytes)"));
    return buf;
}

}  // namespace shiftnorm::data
