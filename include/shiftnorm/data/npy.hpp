// SPDX-License-Identifier: MIT
// Reading and writing NumPy .npy files (C order; uint8, float32, float64 read; uint8/float32 write).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/file.hpp"

namespace shiftnorm::data {

namespace detail {
// Error helpers of the core, visible as data::detail::fail / concat.
using shiftnorm::detail::concat;
using shiftnorm::detail::fail;
}  // namespace detail

//! Element types shiftnorm reads from .npy files.
enum class npy_dtype { u8, f32, f64 };

inline const char* npy_descr(npy_dtype t) {
    switch (t) {
        case npy_dtype::u8: return "|u1";
        case npy_dtype::f32: return "<f4";
        case npy_dtype::f64: return "<f8";
    }
    return "?";
}
inline std::size_t npy_itemsize(npy_dtype t) { return t == npy_dtype::u8 ? 1 : (t == npy_dtype::f32 ? 4 : 8); }

//! A whole .npy array in memory: dtype, C-order shape, raw little-endian bytes.
struct npy_array {
    npy_dtype dtype = npy_dtype::u8;
    std::vector<std::int64_t> shape;
    std::vector<unsigned char> bytes;

    std::size_t numel() const {
        std::size_t n = 1;
        for (auto d : shape) n *= static_cast<std::size_t>(d);
        return n;
    }
    //! Typed pointer to the data; throws value_error when T does not match the stored dtype.
    template <class T>
    const T* data() const {
        check<T>();
        return reinterpret_cast<const T*>(bytes.data());
    }
    template <class T>
    T* data() {
        check<T>();
        return reinterpret_cast<T*>(bytes.data());
    }
    //! The elements converted to double (any dtype).
    std::vector<double> to_double() const {
        std::vector<double> out(numel());
        for (std::size_t i = 0; i < out.size(); ++i) {
            switch (dtype) {
                case npy_dtype::u8: out[i] = bytes[i]; break;
                case npy_dtype::f32: {
                    float f;
                    std::memcpy(&f, bytes.data() + 4 * i, 4);
                    out[i] = f;
                    break;
                }
                case npy_dtype::f64: std::memcpy(&out[i], bytes.data() + 8 * i, 8); break;
            }
        }
        return out;
    }

private:
    template <class T>
    void check() const {
        const npy_dtype want = sizeof(T) == 1 ? npy_dtype::u8 : (sizeof(T) == 4 ? npy_dtype::f32 : npy_dtype::f64);
        if (want != dtype) detail::fail<value_error>("npy_array::data", "T", npy_descr(dtype), npy_descr(want));
    }
};

namespace detail {

inline std::string npy_shape_str(const std::vector<std::int64_t>& shape) {
    std::string s = "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    return s + ")";
}

//! Finds the value text of key `key` in a .npy header dict ("'descr': '<f4', ...").
inline std::string npy_header_value(const std::string& hdr, const std::string& key, const std::string& what) {
    const std::string k = "'" + key + "'";
    auto p = hdr.find(k);
    if (p == std::string::npos) throw io_error(concat(what, ": .npy header lacks key ", k, " (header: ", hdr, ")"));
    p = hdr.find(':', p + k.size());
    if (p == std::string::npos) throw io_error(concat(what, ": malformed .npy header: ", hdr));
    ++p;
    while (p < hdr.size() && hdr[p] == ' ') ++p;
    if (p >= hdr.size()) throw io_error(concat(what, ": malformed .npy header: ", hdr));
    std::size_t e;
    if (hdr[p] == '(') e = hdr.find(')', p);
    else if (hdr[p] == '\'') e = hdr.find('\'', p + 1);
    else e = hdr.find_first_of(",}", p) - 1;
    if (e == std::string::npos || e < p) throw io_error(concat(what, ": malformed .npy header: ", hdr));
    return hdr.substr(p, e - p + 1);
}

}  // namespace detail

//! Parses an in-memory .npy file. `what` names the source in error messages. Throws io_error on
//! a bad magic, unsupported version, dtype or Fortran order, a malformed header, a shape whose
//! element or byte count overflows, or a payload that is not exactly shape x itemsize bytes
//! (never reads past `size`, allocates only what the payload holds).
inline npy_array parse_npy(const unsigned char* p, std::size_t size, const std::string& what = "<memory>") {
    static const unsigned char magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (size < 10 || std::memcmp(p, magic, 6) != 0)
        throw io_error(detail::concat(what, ": argument 'file' expected a .npy file (magic \\x93NUMPY), got ",
                                      size < 10 ? "a file of " + std::to_string(size) + " bytes" : "another magic"));
    const int major = p[6];
    std::size_t hlen, off;
    if (major == 1) {
        hlen = p[8] | (std::size_t(p[9]) << 8);
        off = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) throw io_error(detail::concat(what, ": truncated .npy header (", size, " bytes)"));
        hlen = p[8] | (std::size_t(p[9]) << 8) | (std::size_t(p[10]) << 16) | (std::size_t(p[11]) << 24);
        off = 12;
    } else {
        detail::fail<io_error>(what.c_str(), "version", "1, 2 or 3", major);
    }
    if (off + hlen > size)
        throw io_error(detail::concat(what, ": truncated .npy header: expected ", off + hlen, " bytes, file has ", size));
    const std::string hdr(reinterpret_cast<const char*>(p + off), hlen);
    npy_array a;
    const std::string descr = detail::npy_header_value(hdr, "descr", what);
    if (descr == "'|u1'" || descr == "'<u1'" || descr == "'u1'") a.dtype = npy_dtype::u8;
    else if (descr == "'<f4'") a.dtype = npy_dtype::f32;
    else if (descr == "'<f8'") a.dtype = npy_dtype::f64;
    else detail::fail<io_error>(what.c_str(), "descr", "'|u1', '<f4' or '<f8'", descr);
    const std::string fo = detail::npy_header_value(hdr, "fortran_order", what);
    if (fo.rfind("False", 0) != 0) detail::fail<io_error>(what.c_str(), "fortran_order", "False", fo);
    const std::string sh = detail::npy_header_value(hdr, "shape", what);
    std::size_t i = 1;
    while (i < sh.size()) {
        while (i < sh.size() && (sh[i] == ' ' || sh[i] == ',')) ++i;
        if (i >= sh.size() || sh[i] == ')') break;
        if (sh[i] < '0' || sh[i] > '9') detail::fail<io_error>(what.c_str(), "shape", "a tuple of non-negative integers", sh);
        std::int64_t v = 0;
        while (i < sh.size() && sh[i] >= '0' && sh[i] <= '9') {
            v = v * 10 + (sh[i] - '0');
            if (v > (std::int64_t(1) << 48)) detail::fail<io_error>(what.c_str(), "shape", "extents below 2^48", sh);
            ++i;
        }
        a.shape.push_back(v);
    }
    // The product of the extents (each below 2^48) and the byte count, with checked
    // multiplication: a crafted shape must not wrap around to a small size.
    std::uint64_t count = 1, need = 0;
    for (auto d : a.shape)
        if (!detail::checked_mul(count, std::uint64_t(d), count))
            throw io_error(detail::concat(what, ": .npy shape ", detail::npy_shape_str(a.shape),
                                          " expected an element count below 2^64, got one that overflows"));
    if (!detail::checked_mul(count, npy_itemsize(a.dtype), need) || need > std::numeric_limits<std::size_t>::max())
        throw io_error(detail::concat(what, ": .npy shape ", detail::npy_shape_str(a.shape), " ", descr, " (", count,
                                      " elements) expected a byte count below 2^64, got one that overflows"));
    const std::size_t have = size - off - hlen;
    if (have < need)
        throw io_error(detail::concat(what, ": truncated .npy data: shape ", detail::npy_shape_str(a.shape), " ",
                                      descr, " needs ", need, " bytes, file has ", have));
    if (have > need)
        throw io_error(detail::concat(what, ": .npy data: shape ", detail::npy_shape_str(a.shape), " ", descr,
                                      " expected exactly ", need, " bytes, file has ", have, " (", have - need,
                                      " trailing bytes)"));
    a.bytes.assign(p + off + hlen, p + off + hlen + std::size_t(need));
    return a;
}

//! Reads a whole regular file into memory; throws io_error naming the path when it cannot (see
//! read_regular_file in file.hpp: a FIFO, a directory or a symlink loop is rejected unopened).
inline std::vector<unsigned char> read_file_bytes(const std::string& path) { return read_regular_file(path, "file"); }

//! Reads a .npy file (see parse_npy for the checks).
inline npy_array read_npy(const std::string& path) {
    const auto buf = read_regular_file(path, ".npy file");
    return parse_npy(buf.data(), buf.size(), path);
}

//! Serialises a C-order array as .npy version 1.0 (header padded to a multiple of 64 bytes).
inline std::vector<unsigned char> encode_npy(npy_dtype dtype, const std::vector<std::int64_t>& shape, const void* data) {
    std::string hdr = std::string("{'descr': '") + npy_descr(dtype) + "', 'fortran_order': False, 'shape': " +
                      detail::npy_shape_str(shape) + ", }";
    const std::size_t total = 10 + hdr.size() + 1;
    hdr.append((64 - total % 64) % 64, ' ');
    hdr.push_back('\n');
    std::size_t n = npy_itemsize(dtype);
    for (auto d : shape) {
        if (d < 0) detail::fail<shape_error>("encode_npy", "shape", "non-negative extents", detail::npy_shape_str(shape));
        n *= static_cast<std::size_t>(d);
    }
    // one allocation, filled with memcpy (GCC 12 misreports vector::insert from a string at -O3)
    std::vector<unsigned char> out(10 + hdr.size() + n);
    const unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(hdr.size() & 0xff),
                                     static_cast<unsigned char>(hdr.size() >> 8)};
    std::memcpy(out.data(), magic, 10);
    std::memcpy(out.data() + 10, hdr.data(), hdr.size());
    if (n > 0) std::memcpy(out.data() + 10 + hdr.size(), data, n);  // an empty array may come with a null pointer
    return out;
}

//! Writes a C-order array to `path` as .npy; throws io_error naming the path on failure.
inline void write_npy(const std::string& path, npy_dtype dtype, const std::vector<std::int64_t>& shape, const void* data) {
    const auto bytes = encode_npy(dtype, shape, data);
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw io_error(detail::concat("write_npy: argument 'path' expected a writable file, got '", path, "'"));
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw io_error(detail::concat("write_npy: short write to '", path, "'"));
}
inline void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const std::uint8_t* data) {
    write_npy(path, npy_dtype::u8, shape, data);
}
inline void write_npy(const std::string& path, const std::vector<std::int64_t>& shape, const float* data) {
    write_npy(path, npy_dtype::f32, shape, data);
}

}  // namespace shiftnorm::data
