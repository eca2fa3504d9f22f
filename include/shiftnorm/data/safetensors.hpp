// SPDX-License-Identifier: MIT
// Reading and atomically writing safetensors files (8-byte header length, JSON header, raw data).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/data/json.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/fault.hpp"
#include "shiftnorm/data/file.hpp"

#if !defined(SHIFTNORM_POSIX_IO)
#if defined(__unix__) || defined(__APPLE__)
#define SHIFTNORM_POSIX_IO 1
#else
#define SHIFTNORM_POSIX_IO 0
#endif
#endif
#if SHIFTNORM_POSIX_IO
#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>
#endif

namespace shiftnorm::data {

//! One tensor of a safetensors file: dtype string as in the format ("F32", "I64", ...), shape
//! (C order) and its little-endian bytes.
struct st_tensor {
    std::string dtype;
    std::vector<std::int64_t> shape;
    std::vector<unsigned char> bytes;

    std::int64_t numel() const {
        std::int64_t n = 1;
        for (auto d : shape) n *= d;
        return n;
    }
    //! The elements as float (F32, F64, F16, BF16, I64, I32, U8 are converted; others throw).
    std::vector<float> to_float(const std::string& name = "") const;
    //! The elements as int64 (I64, I32, U8, BOOL).
    std::vector<std::int64_t> to_int64(const std::string& name = "") const;
};

//! A whole safetensors file in memory: tensors by name, and the free-form `__metadata__`.
struct safetensors_file {
    std::map<std::string, st_tensor> tensors;
    std::map<std::string, std::string> metadata;

    bool contains(const std::string& name) const { return tensors.count(name) != 0; }
    const st_tensor& at(const std::string& name) const {
        auto it = tensors.find(name);
        if (it == tensors.end()) throw io_error("safetensors: no tensor named '" + name + "'");
        return it->second;
    }
    void put_f32(const std::string& name, std::vector<std::int64_t> shape, const float* data) {
        st_tensor t{"F32", std::move(shape), {}};
        t.bytes.resize(std::size_t(t.numel()) * 4);
        if (!t.bytes.empty()) std::memcpy(t.bytes.data(), data, t.bytes.size());
        tensors[name] = std::move(t);
    }
    void put_i64(const std::string& name, std::vector<std::int64_t> shape, const std::int64_t* data) {
        st_tensor t{"I64", std::move(shape), {}};
        t.bytes.resize(std::size_t(t.numel()) * 8);
        if (!t.bytes.empty()) std::memcpy(t.bytes.data(), data, t.bytes.size());
        tensors[name] = std::move(t);
    }
};

namespace detail {

inline std::size_t st_itemsize(const std::string& d) {
    if (d == "F64" || d == "I64" || d == "U64") return 8;
    if (d == "F32" || d == "I32" || d == "U32") return 4;
    if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
    if (d == "U8" || d == "I8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
    return 0;
}

inline float half_to_float(std::uint16_t h) {
    const std::uint32_t s = std::uint32_t(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    std::uint32_t bits;
    if (e == 0) {
        if (m == 0) {
            bits = s;
        } else {  // subnormal
            float f = float(m) / 1024.0f / 16384.0f;
            return (h >> 15) ? -f : f;
        }
    } else if (e == 31) {
        bits = s | 0x7f800000u | (m << 13);
    } else {
        bits = s | ((e + 112) << 23) | (m << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

//! Minimal strict JSON reader for safetensors headers: objects, arrays, strings, integers,
//! true/false/null. Depth- and length-limited; every error is an io_error naming the offset.
class json_reader {
public:
    json_reader(const char* p, std::size_t n, std::string what) : p_(p), n_(n), what_(std::move(what)) {}

    void ws() {
        while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\n' || p_[i_] == '\r' || p_[i_] == '\t')) ++i_;
    }
    bool peek(char c) {
        ws();
        return i_ < n_ && p_[i_] == c;
    }
    void expect(char c) {
        ws();
        if (i_ >= n_ || p_[i_] != c) err(std::string("expected '") + c + "'");
        ++i_;
    }
    bool at_end() {
        ws();
        return i_ >= n_;
    }
    std::string string() {
        expect('"');
        std::string s;
        while (true) {
            if (i_ >= n_) err("unterminated string");
            char c = p_[i_++];
            if (c == '"') break;
            if (c == '\\') {
                if (i_ >= n_) err("unterminated escape");
                char e = p_[i_++];
                switch (e) {
                    case '"': s += '"'; break;
                    case '\\': s += '\\'; break;
                    case '/': s += '/'; break;
                    case 'b': s += '\b'; break;
                    case 'f': s += '\f'; break;
                    case 'n': s += '\n'; break;
                    case 'r': s += '\r'; break;
                    case 't': s += '\t'; break;
                    case 'u': {
                        if (i_ + 4 > n_) err("truncated \\u escape");
                        unsigned v = 0;
                        for (int k = 0; k < 4; ++k) {
                            char h = p_[i_++];
                            v <<= 4;
                            if (h >= '0' && h <= '9') v |= unsigned(h - '0');
                            else if (h >= 'a' && h <= 'f') v |= unsigned(h - 'a' + 10);
                            else if (h >= 'A' && h <= 'F') v |= unsigned(h - 'A' + 10);
                            else err("bad \\u escape");
                        }
                        if (v < 0x80) s += char(v);
                        else if (v < 0x800) { s += char(0xc0 | (v >> 6)); s += char(0x80 | (v & 0x3f)); }
                        else { s += char(0xe0 | (v >> 12)); s += char(0x80 | ((v >> 6) & 0x3f)); s += char(0x80 | (v & 0x3f)); }
                        break;
                    }
                    default: err("bad escape");
                }
            } else {
                s += c;
            }
        }
        return s;
    }
    std::int64_t integer() {
        ws();
        bool neg = false;
        if (i_ < n_ && p_[i_] == '-') neg = true, ++i_;
        if (i_ >= n_ || p_[i_] < '0' || p_[i_] > '9') err("expected an integer");
        std::int64_t v = 0;
        while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') {
            if (v > (INT64_MAX - 9) / 10) err("integer overflow");
            v = v * 10 + (p_[i_++] - '0');
        }
        if (i_ < n_ && (p_[i_] == '.' || p_[i_] == 'e' || p_[i_] == 'E')) err("expected an integer, got a float");
        return neg ? -v : v;
    }
    std::vector<std::int64_t> int_array() {
        std::vector<std::int64_t> v;
        expect('[');
        if (peek(']')) {
            ++i_;
            return v;
        }
        while (true) {
            v.push_back(integer());
            if (v.size() > 64) err("array too long");
            if (peek(',')) { ++i_; continue; }
            expect(']');
            return v;
        }
    }
    //! Skips any JSON value (used for unknown keys).
    void skip(int depth = 0) {
        if (depth > 32) err("nesting too deep");
        ws();
        if (i_ >= n_) err("unexpected end");
        char c = p_[i_];
        if (c == '"') { string(); return; }
        if (c == '{' || c == '[') {
            const char close = c == '{' ? '}' : ']';
            ++i_;
            if (peek(close)) { ++i_; return; }
            while (true) {
                if (c == '{') { string(); expect(':'); }
                skip(depth + 1);
                if (peek(',')) { ++i_; continue; }
                expect(close);
                return;
            }
        }
        if (c == '-' || (c >= '0' && c <= '9')) {
            ++i_;
            while (i_ < n_ && (std::strchr("0123456789.eE+-", p_[i_]) != nullptr)) ++i_;
            return;
        }
        for (const char* lit : {"true", "false", "null"}) {
            const std::size_t L = std::strlen(lit);
            if (i_ + L <= n_ && std::memcmp(p_ + i_, lit, L) == 0) { i_ += L; return; }
        }
        err("unexpected character");
    }
    [[noreturn]] void err(const std::string& msg) const {
        throw io_error(shiftnorm::detail::concat(what_, ": malformed safetensors JSON header at byte ", i_, ": ", msg));
    }
    std::size_t& pos() { return i_; }

private:
    const char* p_;
    std::size_t n_, i_ = 0;
    std::string what_;
};

}  // namespace detail

inline std::vector<float> st_tensor::to_float(const std::string& name) const {
    const std::size_t n = std::size_t(numel());
    std::vector<float> out(n);
    const unsigned char* b = bytes.data();
    if (dtype == "F32") {
        if (n) std::memcpy(out.data(), b, n * 4);
    } else if (dtype == "F64") {
        for (std::size_t i = 0; i < n; ++i) { double d; std::memcpy(&d, b + 8 * i, 8); out[i] = float(d); }
    } else if (dtype == "F16") {
        for (std::size_t i = 0; i < n; ++i) { std::uint16_t h; std::memcpy(&h, b + 2 * i, 2); out[i] = detail::half_to_float(h); }
    } else if (dtype == "BF16") {
        for (std::size_t i = 0; i < n; ++i) {
            std::uint16_t h; std::memcpy(&h, b + 2 * i, 2);
            std::uint32_t u = std::uint32_t(h) << 16; std::memcpy(&out[i], &u, 4);
        }
    } else if (dtype == "I64") {
        for (std::size_t i = 0; i < n; ++i) { std::int64_t d; std::memcpy(&d, b + 8 * i, 8); out[i] = float(d); }
    } else if (dtype == "I32") {
        for (std::size_t i = 0; i < n; ++i) { std::int32_t d; std::memcpy(&d, b + 4 * i, 4); out[i] = float(d); }
    } else if (dtype == "U8") {
        for (std::size_t i = 0; i < n; ++i) out[i] = float(b[i]);
    } else {
        throw value_error("safetensors: tensor '" + name + "' has dtype " + dtype + ", expected a float or integer type");
    }
    return out;
}

inline std::vector<std::int64_t> st_tensor::to_int64(const std::string& name) const {
    const std::size_t n = std::size_t(numel());
    std::vector<std::int64_t> out(n);
    const unsigned char* b = bytes.data();
    if (dtype == "I64") {
        if (n) std::memcpy(out.data(), b, n * 8);
    } else if (dtype == "I32") {
        for (std::size_t i = 0; i < n; ++i) { std::int32_t d; std::memcpy(&d, b + 4 * i, 4); out[i] = d; }
    } else if (dtype == "U8" || dtype == "BOOL") {
        for (std::size_t i = 0; i < n; ++i) out[i] = b[i];
    } else {
        throw value_error("safetensors: tensor '" + name + "' has dtype " + dtype + ", expected an integer type");
    }
    return out;
}

//! Parses a safetensors image held in memory. Every structural problem (short file, header
//! length beyond the file, malformed JSON, unknown dtype, negative or overflowing shapes,
//! offsets outside the data or disagreeing with dtype x shape, tensors that overlap, leave gaps
//! or do not cover the data area exactly) throws io_error naming `what`. The tensors' bytes are
//! copied only once the whole header is validated, so at most the data area is copied.
inline safetensors_file parse_safetensors(const unsigned char* p, std::size_t size, const std::string& what) {
    if (size < 8)
        throw io_error(shiftnorm::detail::concat(what, ": truncated safetensors file (", size, " bytes, need >= 8)"));
    std::uint64_t hlen = 0;
    for (int k = 7; k >= 0; --k) hlen = (hlen << 8) | p[k];
    if (hlen > size - 8 || hlen > (std::uint64_t(100) << 20))
        throw io_error(shiftnorm::detail::concat(what, ": safetensors header length ", hlen, " exceeds the file (",
                                                 size - 8, " bytes after the length field)"));
    const char* h = reinterpret_cast<const char*>(p + 8);
    const std::size_t data_off = 8 + std::size_t(hlen), data_len = size - data_off;
    detail::json_reader js(h, std::size_t(hlen), what);
    safetensors_file f;
    struct extent {
        std::uint64_t begin, end;
        const std::string* name;
        st_tensor* tensor;
    };
    std::vector<extent> extents;
    js.expect('{');
    if (js.peek('}')) {
        ++js.pos();
    } else {
        while (true) {
            std::string key = js.string();
            js.expect(':');
            if (key == "__metadata__") {
                js.expect('{');
                if (js.peek('}')) {
                    ++js.pos();
                } else {
                    while (true) {
                        std::string k = js.string();
                        js.expect(':');
                        f.metadata[k] = js.string();
                        if (js.peek(',')) { ++js.pos(); continue; }
                        js.expect('}');
                        break;
                    }
                }
            } else {
                st_tensor t;
                bool have_dtype = false, have_shape = false, have_off = false;
                std::vector<std::int64_t> off;
                js.expect('{');
                while (true) {
                    std::string k = js.string();
                    js.expect(':');
                    if (k == "dtype") t.dtype = js.string(), have_dtype = true;
                    else if (k == "shape") t.shape = js.int_array(), have_shape = true;
                    else if (k == "data_offsets") off = js.int_array(), have_off = true;
                    else js.skip();
                    if (js.peek(',')) { ++js.pos(); continue; }
                    js.expect('}');
                    break;
                }
                if (!have_dtype || !have_shape || !have_off || off.size() != 2)
                    throw io_error(what + ": safetensors tensor '" + key + "' lacks dtype, shape or data_offsets[2]");
                const std::size_t item = detail::st_itemsize(t.dtype);
                if (item == 0) throw io_error(what + ": safetensors tensor '" + key + "' has unknown dtype '" + t.dtype + "'");
                std::uint64_t count = 1;
                for (auto d : t.shape) {
                    if (d < 0 || (d > 0 && count > (std::uint64_t(1) << 48) / std::uint64_t(d)))
                        throw io_error(what + ": safetensors tensor '" + key + "' has an invalid shape");
                    count *= std::uint64_t(d);
                }
                if (off[0] < 0 || off[1] < off[0] || std::uint64_t(off[1]) > data_len)
                    throw io_error(shiftnorm::detail::concat(what, ": safetensors tensor '", key, "' data_offsets [",
                                                             off[0], ", ", off[1], "] outside the ", data_len,
                                                             " data bytes (truncated file?)"));
                if (std::uint64_t(off[1] - off[0]) != count * item)
                    throw io_error(shiftnorm::detail::concat(what, ": safetensors tensor '", key, "' has ", off[1] - off[0],
                                                             " bytes, dtype x shape needs ", count * item));
                if (f.tensors.count(key)) throw io_error(what + ": safetensors tensor '" + key + "' appears twice");
                const auto it = f.tensors.emplace(std::move(key), std::move(t)).first;
                extents.push_back({std::uint64_t(off[0]), std::uint64_t(off[1]), &it->first, &it->second});
            }
            if (js.peek(',')) { ++js.pos(); continue; }
            js.expect('}');
            break;
        }
    }
    if (!js.at_end()) js.err("trailing characters after the header object");
    // The data_offsets must tile the data area: sorted by offset, the first tensor begins at 0,
    // each begins where the previous one ended, the last ends at the end of the file (as the
    // reference implementation requires). Overlapping tensors would alias bytes (and could make
    // the copies below far larger than the file); gaps or trailing bytes hide unaccounted data.
    std::sort(extents.begin(), extents.end(), [](const extent& a, const extent& b) {
        return a.begin != b.begin ? a.begin < b.begin : (a.end != b.end ? a.end < b.end : *a.name < *b.name);
    });
    const char* rule = "; data_offsets must tile the data area without overlap or gaps";
    if (extents.empty() && data_len != 0)
        throw io_error(shiftnorm::detail::concat(what, ": safetensors file has no tensors but ", data_len,
                                                 " data bytes after the header, expected none"));
    if (!extents.empty() && extents.front().begin != 0)
        throw io_error(shiftnorm::detail::concat(what, ": safetensors tensor '", *extents.front().name, "' begins at ",
                                                 extents.front().begin, ", expected 0 (the first tensor starts the data area)",
                                                 rule));
    for (std::size_t i = 1; i < extents.size(); ++i) {
        const extent &a = extents[i - 1], &b = extents[i];
        if (b.begin < a.end)
            throw io_error(shiftnorm::detail::concat(what, ": safetensors tensors '", *a.name, "' [", a.begin, ", ", a.end,
                                                     ") and '", *b.name, "' [", b.begin, ", ", b.end, ") overlap", rule));
        if (b.begin > a.end)
            throw io_error(shiftnorm::detail::concat(what, ": safetensors tensor '", *a.name, "' ends at ", a.end, " but '",
                                                     *b.name, "' begins at ", b.begin, " (a gap of ", b.begin - a.end,
                                                     " bytes)", rule));
    }
    if (!extents.empty() && extents.back().end != data_len)
        throw io_error(shiftnorm::detail::concat(what, ": safetensors tensor '", *extents.back().name, "' ends at ",
                                                 extents.back().end, ", expected the end of the ", data_len,
                                                 " data bytes (", data_len - extents.back().end, " trailing bytes)", rule));
    for (const extent& e : extents)
        e.tensor->bytes.assign(p + data_off + e.begin, p + data_off + e.end);
    return f;
}

//! Reads a whole regular file into memory; io_error naming the path when it cannot be opened or
//! read, or is not a regular file (see read_regular_file in file.hpp).
inline std::vector<unsigned char> read_binary_file(const std::string& path, const char* what = "file") {
    return read_regular_file(path, what);
}

inline safetensors_file read_safetensors(const std::string& path) {
    const auto buf = read_regular_file(path, "safetensors file");
    return parse_safetensors(buf.data(), buf.size(), path);
}


//! Serializes to the safetensors layout: tensors in name order, header padded with spaces to a
//! multiple of 8 bytes (as the reference implementation does).
inline std::vector<unsigned char> encode_safetensors(const safetensors_file& f) {
    std::string h = "{";
    bool first = true;
    if (!f.metadata.empty()) {
        h += "\"__metadata__\":{";
        bool f2 = true;
        for (const auto& kv : f.metadata) {
            if (!f2) h += ',';
            f2 = false;
            h += json_string(kv.first);
            h += ':';
            h += json_string(kv.second);
        }
        h += '}';
        first = false;
    }
    std::uint64_t off = 0;
    for (const auto& kv : f.tensors) {
        const auto& t = kv.second;
        if (t.bytes.size() != std::size_t(t.numel()) * detail::st_itemsize(t.dtype))
            throw value_error("encode_safetensors: tensor '" + kv.first + "' bytes disagree with dtype x shape");
        if (!first) h += ',';
        first = false;
        h += json_string(kv.first);
        h += ":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
        for (std::size_t i = 0; i < t.shape.size(); ++i) h += (i ? "," : "") + std::to_string(t.shape[i]);
        h += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + t.bytes.size()) + "]}";
        off += t.bytes.size();
    }
    h += '}';
    while (h.size() % 8) h += ' ';
    std::vector<unsigned char> out(8 + h.size() + off);
    const std::uint64_t hl = h.size();
    for (int k = 0; k < 8; ++k) out[std::size_t(k)] = static_cast<unsigned char>(hl >> (8 * k));
    std::memcpy(out.data() + 8, h.data(), h.size());
    std::size_t pos = 8 + h.size();
    for (const auto& kv : f.tensors) {
        if (!kv.second.bytes.empty()) std::memcpy(out.data() + pos, kv.second.bytes.data(), kv.second.bytes.size());
        pos += kv.second.bytes.size();
    }
    return out;
}

namespace detail {
//! The directory holding `path` ("." for a bare file name).
inline std::string parent_directory(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? std::string("/") : path.substr(0, slash);
}
#if SHIFTNORM_POSIX_IO
inline std::string errno_text(int e) { return std::strerror(e); }
//! write(2) of all `n` bytes, retrying after EINTR and short writes; false (errno set) on error.
inline bool write_all(int fd, const unsigned char* p, std::size_t n) {
    while (n > 0) {
        const ::ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w;
        n -= std::size_t(w);
    }
    return true;
}
inline int fsync_retry(int fd) {
    int r;
    do r = ::fsync(fd);
    while (r != 0 && errno == EINTR);
    return r;
}
#endif
inline void fault_point(const char* tag, const char* step) {
    if (tag != nullptr) fault::point((std::string(tag) + "." + step).c_str());
}
}  // namespace detail

//! Makes the last renames, creations and removals of entries in the directory holding `path`
//! durable (fsync of the directory). io_error naming the directory when it cannot be opened or
//! synced; file systems that cannot sync directories (EINVAL, ENOTSUP) are accepted. A no-op
//! where POSIX I/O is unavailable.
inline void sync_parent_directory(const std::string& path) {
#if SHIFTNORM_POSIX_IO
    const std::string dir = detail::parent_directory(path);
    int flags = O_RDONLY;
#ifdef O_DIRECTORY
    flags |= O_DIRECTORY;
#endif
#ifdef O_CLOEXEC
    flags |= O_CLOEXEC;
#endif
    const int fd = ::open(dir.c_str(), flags);
    if (fd < 0) throw io_error("cannot open directory '" + dir + "' to sync it: " + detail::errno_text(errno));
    if (detail::fsync_retry(fd) != 0 && errno != EINVAL && errno != ENOTSUP) {
        const int e = errno;
        ::close(fd);
        throw io_error("cannot sync directory '" + dir + "' (after writing '" + path + "'): " + detail::errno_text(e));
    }
    ::close(fd);
#else
    (void)path;
#endif
}

//! Renames `from` to `to` (atomically replacing `to`) and syncs the directory; io_error naming
//! both when the rename fails. `fault_tag`: fault::point("<tag>.renamed") between the rename and
//! the directory sync (see write_file_atomic).
inline void rename_file_durable(const std::string& from, const std::string& to, const char* fault_tag = nullptr) {
    if (std::rename(from.c_str(), to.c_str()) != 0) {
        const int e = errno;
        throw io_error("cannot rename '" + from + "' to '" + to + "': " + std::strerror(e));
    }
    detail::fault_point(fault_tag, "renamed");
    sync_parent_directory(to);
}

//! Writes `bytes` to `path` atomically and durably: a temporary file `path.tmp` in the same
//! directory is written, fsynced and renamed over `path`, then the directory is fsynced, so a
//! crash (or a power loss) leaves either the old or the new file, never a torn one; at worst a
//! stale `path.tmp` remains, which the next write replaces. Errors are io_error naming the file
//! (the temporary is removed). `fault_tag` (tests): fault::point("<tag>.tmp_partial") when half
//! the bytes are written, "<tag>.tmp_synced" before the rename, "<tag>.renamed" before the
//! directory sync.
inline void write_file_atomic(const std::string& path, const std::vector<unsigned char>& bytes,
                              const char* fault_tag = nullptr) {
    const std::string tmp = path + ".tmp";
#if SHIFTNORM_POSIX_IO
    int flags = O_WRONLY | O_CREAT | O_TRUNC;
#ifdef O_CLOEXEC
    flags |= O_CLOEXEC;
#endif
    const int fd = ::open(tmp.c_str(), flags, 0666);
    if (fd < 0) {
        const int e = errno;
        throw io_error("cannot create '" + tmp + "': " + detail::errno_text(e) +
                       " (does the directory exist and is it writable?)");
    }
    auto fail = [&](const char* what) {
        const int e = errno;
        ::close(fd);
        std::remove(tmp.c_str());
        throw io_error(std::string("cannot ") + what + " '" + tmp + "': " + detail::errno_text(e));
    };
    const std::size_t half = bytes.size() / 2;
    if (!detail::write_all(fd, bytes.data(), half)) fail("write");
    detail::fault_point(fault_tag, "tmp_partial");
    if (!detail::write_all(fd, bytes.data() + half, bytes.size() - half)) fail("write");
    if (detail::fsync_retry(fd) != 0) fail("sync");
    if (::close(fd) != 0) {
        const int e = errno;
        std::remove(tmp.c_str());
        throw io_error("cannot close '" + tmp + "': " + detail::errno_text(e));
    }
#else
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        if (!out) throw io_error("cannot create '" + tmp + "' (does the directory exist and is it writable?)");
        const std::size_t half = bytes.size() / 2;
        out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(half));
        out.flush();
        detail::fault_point(fault_tag, "tmp_partial");
        out.write(reinterpret_cast<const char*>(bytes.data() + half), std::streamsize(bytes.size() - half));
        out.flush();
        if (!out) {
            out.close();
            std::remove(tmp.c_str());
            throw io_error("cannot write '" + tmp + "' (disk full?)");
        }
    }
#endif
    detail::fault_point(fault_tag, "tmp_synced");
    try {
        rename_file_durable(tmp, path, fault_tag);
    } catch (const io_error&) {
        std::remove(tmp.c_str());  // no-op when the rename succeeded and only the directory sync failed
        throw;
    }
}

inline void write_safetensors(const std::string& path, const safetensors_file& f) {
    write_file_atomic(path, encode_safetensors(f));
}

}  // namespace shiftnorm::data
