// SPDX-License-Identifier: MIT
// Hostile input (issue 10): crafted .npy shapes that overflow, PNG/JPEG/IDX files claiming far more
// data than they hold, corrupt PNGs that make libpng longjmp, and safetensors files whose tensors
// overlap or leave holes. Every one is an io_error naming the file, and the size a file claims is
// checked before anything is allocated for it (peak heap growth is measured by the counting
// operator new below).
#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <random>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include "shiftnorm/data/file.hpp"
#include "shiftnorm/data/idx.hpp"
#include "shiftnorm/data/image_io.hpp"
#include "shiftnorm/data/npy.hpp"
#include "shiftnorm/data/safetensors.hpp"

// ---- Counting global operator new (test_data only) --------------------------------------------
// Tracks the live and the peak number of bytes allocated through operator new (std::vector,
// std::string ...), so a test can assert that a hostile file did not make a large allocation and
// that a failed decode left nothing behind. Blocks carry a 16-byte size prefix (keeps the default
// new alignment). Every replaceable non-aligned form is defined here, so that no runtime (the
// sanitizers define their own) pairs one of them with ours.
namespace {
std::atomic<std::int64_t> g_live_bytes{0}, g_peak_bytes{0}, g_live_blocks{0};
constexpr std::size_t k_prefix = 16;

void* counted_alloc(std::size_t n) noexcept {
    void* p = std::malloc(n + k_prefix);
    if (p == nullptr) return nullptr;
    *static_cast<std::size_t*>(p) = n;
    const std::int64_t live = g_live_bytes.fetch_add(std::int64_t(n)) + std::int64_t(n);
    std::int64_t peak = g_peak_bytes.load();
    while (live > peak && !g_peak_bytes.compare_exchange_weak(peak, live)) {
    }
    ++g_live_blocks;
    return static_cast<char*>(p) + k_prefix;
}
void counted_free(void* p) noexcept {
    if (p == nullptr) return;
    char* b = static_cast<char*>(p) - k_prefix;
    g_live_bytes -= std::int64_t(*reinterpret_cast<std::size_t*>(b));
    --g_live_blocks;
    std::free(b);
}
void* counted_alloc_or_throw(std::size_t n) {
    void* p = counted_alloc(n);
    if (p == nullptr) throw std::bad_alloc();
    return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc_or_throw(n); }
void* operator new[](std::size_t n) { return counted_alloc_or_throw(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }

using namespace shiftnorm;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

//! Peak heap growth (operator new) since construction.
struct heap_probe {
    std::int64_t base;
    heap_probe() : base(g_live_bytes.load()) { g_peak_bytes = base; }
    std::int64_t growth() const { return g_peak_bytes.load() - base; }
};

std::string temp_path(const std::string& name) {
    return (fs::temp_directory_path() / ("shiftnorm_hostile_" + std::to_string(::getpid()) + "_" + name)).string();
}

// ---- .npy -------------------------------------------------------------------------------------
std::vector<unsigned char> npy_v1(const std::string& dict, std::size_t payload) {
    std::string hdr = dict;
    while ((10 + hdr.size() + 1) % 64) hdr.push_back(' ');
    hdr.push_back('\n');
    const std::string magic = "\x93NUMPY\x01";
    std::string out = magic + '\0' + char(hdr.size() & 0xff) + char(hdr.size() >> 8) + hdr + std::string(payload, '\7');
    return {out.begin(), out.end()};
}

// ---- PNG --------------------------------------------------------------------------------------
void put32(std::vector<std::uint8_t>& v, std::uint32_t x) {
    for (int k = 3; k >= 0; --k) v.push_back(std::uint8_t(x >> (8 * k)));
}
void png_chunk(std::vector<std::uint8_t>& v, const char* type, const std::vector<std::uint8_t>& data) {
    put32(v, std::uint32_t(data.size()));
    const std::size_t start = v.size();
    v.insert(v.end(), type, type + 4);
    v.insert(v.end(), data.begin(), data.end());
    put32(v, std::uint32_t(crc32(0, v.data() + start, uInt(v.size() - start))));
}
//! Appends an IDAT chunk holding `raw` deflated zero bytes, then IEND.
void png_zero_rows_end(std::vector<std::uint8_t>& v, std::size_t raw) {
    std::vector<std::uint8_t> zeros(raw, 0), z(compressBound(uLong(raw)));
    uLongf zl = uLongf(z.size());
    compress(z.data(), &zl, zeros.data(), uLong(zeros.size()));
    z.resize(zl);
    png_chunk(v, "IDAT", z);
    png_chunk(v, "IEND", {});
}
//! A PNG whose IHDR claims width x height (8-bit RGB) but whose IDAT holds `raw` zero bytes.
std::vector<std::uint8_t> png_claiming(std::uint32_t width, std::uint32_t height, std::size_t raw = 100) {
    std::vector<std::uint8_t> v = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<std::uint8_t> ihdr;
    put32(ihdr, width);
    put32(ihdr, height);
    for (std::uint8_t b : {8, 2, 0, 0, 0}) ihdr.push_back(b);
    png_chunk(v, "IHDR", ihdr);
    png_zero_rows_end(v, raw);
    return v;
}

struct png_out {
    std::vector<std::uint8_t> bytes;
};
void png_write_cb(png_structp png, png_bytep data, png_size_t n) {
    auto* o = static_cast<png_out*>(png_get_io_ptr(png));
    o->bytes.insert(o->bytes.end(), data, data + n);
}
void png_flush_cb(png_structp) {}
//! Encodes packed rows with libpng (any bit depth, colour type, interlace, optional palette/tRNS).
std::vector<std::uint8_t> png_encode_raw(int w, int h, int depth, int type, int interlace,
                                         const std::vector<std::vector<std::uint8_t>>& rows,
                                         const std::vector<png_color>& palette = {},
                                         const std::vector<std::uint8_t>& trns = {}) {
    png_out out;
    std::vector<png_bytep> rp;
    for (const auto& r : rows) rp.push_back(const_cast<png_bytep>(r.data()));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return {};  // the callers' checks fail on an empty stream
    }
    png_set_write_fn(png, &out, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, png_uint_32(w), png_uint_32(h), depth, type, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (!palette.empty()) png_set_PLTE(png, info, palette.data(), int(palette.size()));
    if (!trns.empty()) png_set_tRNS(png, info, trns.data(), int(trns.size()), nullptr);
    png_write_info(png, info);
    png_write_image(png, rp.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return out.bytes;
}

// ---- JPEG -------------------------------------------------------------------------------------
//! Rewrites the height and width of the SOFn segment (walking the marker segments from SOI).
void jpeg_set_dims(std::vector<std::uint8_t>& j, std::uint16_t h, std::uint16_t w) {
    std::size_t p = 2;
    while (p + 9 < j.size() && j[p] == 0xFF) {
        const int m = j[p + 1];
        const std::size_t len = std::size_t(j[p + 2]) << 8 | j[p + 3];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            j[p + 5] = std::uint8_t(h >> 8);
            j[p + 6] = std::uint8_t(h);
            j[p + 7] = std::uint8_t(w >> 8);
            j[p + 8] = std::uint8_t(w);
            return;
        }
        p += 2 + len;
    }
    FAIL("no SOF marker");
}
std::vector<std::uint8_t> jpeg_progressive(int h, int w, const std::vector<std::uint8_t>& rgb) {
    jpeg_compress_struct c;
    jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char* ob = nullptr;
    unsigned long os = 0;
    jpeg_mem_dest(&c, &ob, &os);
    c.image_width = JDIMENSION(w);
    c.image_height = JDIMENSION(h);
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = const_cast<JSAMPROW>(rgb.data() + std::size_t(c.next_scanline) * std::size_t(w) * 3);
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    std::vector<std::uint8_t> out(ob, ob + os);
    jpeg_destroy_compress(&c);
    std::free(ob);
    return out;
}
std::vector<std::uint8_t> noise(std::size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::vector<std::uint8_t> v(n);
    for (auto& x : v) x = std::uint8_t(g() >> 24);
    return v;
}

// ---- IDX --------------------------------------------------------------------------------------
//! Writes a gzip IDX file: header with `dims`, then `zeros` zero bytes and `tail` (streamed).
void write_idx_gz(const std::string& path, const std::vector<std::uint32_t>& dims, std::size_t zeros,
                  const std::vector<std::uint8_t>& tail = {}) {
    std::vector<std::uint8_t> h{0, 0, 0x08, std::uint8_t(dims.size())};
    for (auto d : dims) put32(h, d);
    gzFile f = gzopen(path.c_str(), "wb9");
    REQUIRE(f != nullptr);
    gzwrite(f, h.data(), unsigned(h.size()));
    const std::vector<std::uint8_t> z(1 << 20, 0);
    for (std::size_t left = zeros; left > 0;) {
        const std::size_t n = std::min(left, z.size());
        gzwrite(f, z.data(), unsigned(n));
        left -= n;
    }
    if (!tail.empty()) gzwrite(f, tail.data(), unsigned(tail.size()));
    gzclose(f);
}

// ---- safetensors ------------------------------------------------------------------------------
std::vector<unsigned char> st_file(const std::string& header, std::size_t data_bytes) {
    std::vector<unsigned char> b(8 + header.size() + data_bytes, 0);
    const std::uint64_t n = header.size();
    for (int k = 0; k < 8; ++k) b[std::size_t(k)] = static_cast<unsigned char>(n >> (8 * k));
    std::copy(header.begin(), header.end(), b.begin() + 8);
    return b;
}

}  // namespace

// ================================================================================================

TEST_CASE("npy shapes whose element or byte count overflows are io_errors", "[data][npy][hostile]") {
    // 2^40 * 2^24 = 2^64 elements: each extent is below the 2^48 cap, the product wraps to 0.
    const auto wrap = npy_v1("{'descr': '|u1', 'fortran_order': False, 'shape': (1099511627776, 16777216), }", 0);
    CHECK_THROWS_AS(data::parse_npy(wrap.data(), wrap.size(), "wrap.npy"), io_error);
    CHECK_THROWS_WITH(data::parse_npy(wrap.data(), wrap.size(), "wrap.npy"),
                      Contains("wrap.npy") && Contains("overflow") && Contains("(1099511627776,16777216)"));
    // 2^61 float64 elements fit, their 2^64 bytes do not.
    const auto bytes = npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (2147483648, 1073741824), }", 0);
    CHECK_THROWS_WITH(data::parse_npy(bytes.data(), bytes.size(), "f8.npy"), Contains("f8.npy") && Contains("overflow"));
    // 2^32 + 1 squared wraps to 2^33 + 1: a product that wraps to a non-zero size is caught too.
    const auto odd = npy_v1("{'descr': '|u1', 'fortran_order': False, 'shape': (4294967297, 4294967297), }", 64);
    CHECK_THROWS_WITH(data::parse_npy(odd.data(), odd.size(), "odd.npy"), Contains("overflow"));
}

TEST_CASE("npy data must be exactly shape x itemsize bytes", "[data][npy][hostile]") {
    const auto ok = npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 24);
    CHECK(data::parse_npy(ok.data(), ok.size(), "ok.npy").numel() == 6);
    const auto extra = npy_v1("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 25);
    CHECK_THROWS_AS(data::parse_npy(extra.data(), extra.size(), "extra.npy"), io_error);
    CHECK_THROWS_WITH(data::parse_npy(extra.data(), extra.size(), "extra.npy"),
                      Contains("extra.npy") && Contains("24 bytes") && Contains("25"));
    const auto empty = npy_v1("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 5), }", 0);
    CHECK(data::parse_npy(empty.data(), empty.size()).bytes.empty());
}

TEST_CASE("a PNG that makes libpng longjmp leaves no allocation behind", "[data][image_io][hostile]") {
    std::vector<std::uint8_t> img(40 * 30 * 3);
    for (std::size_t i = 0; i < img.size(); ++i) img[i] = std::uint8_t(i * 37 % 251);
    const auto png = data::encode_png(img.data(), 30, 40, 3);
    std::vector<std::vector<std::uint8_t>> corrupt;
    for (std::size_t cut : {std::size_t(40), std::size_t(60), png.size() / 2, png.size() - 20, png.size() - 1})
        corrupt.emplace_back(png.begin(), png.begin() + std::ptrdiff_t(cut));  // truncated in IHDR, IDAT, IEND
    auto crc = png;
    crc[png.size() / 2] ^= 0x55;  // IDAT CRC mismatch
    corrupt.push_back(crc);
    const std::string what = "corrupt.png";
    for (int round = 0; round < 2; ++round) {  // round 0 warms up lazily allocated library state
        for (std::size_t k = 0; k < corrupt.size(); ++k) {
            const auto& c = corrupt[k];
            const std::int64_t bytes_before = g_live_bytes.load(), blocks_before = g_live_blocks.load();
            bool threw = false;
            try {
                data::decode_png(c.data(), c.size(), what);
            } catch (const io_error&) {
                threw = true;
            }
            const std::int64_t leaked = g_live_bytes.load() - bytes_before, blocks = g_live_blocks.load() - blocks_before;
            if (round == 1) {
                INFO("corrupt PNG " << k << " (" << c.size() << " of " << png.size() << " bytes)");
                CHECK(threw);
                CHECK(leaked == 0);
                CHECK(blocks == 0);
            }
        }
    }
    CHECK_THROWS_WITH(data::decode_png(corrupt[2].data(), corrupt[2].size(), what),
                      Contains(what) && Contains("libpng error"));
}

TEST_CASE("PNGs claiming more pixels than allowed or than the file can hold are rejected before allocating",
          "[data][image_io][hostile]") {
    SECTION("69 bytes claiming 16000 x 16000 (768 MB)") {
        const auto p = png_claiming(16000, 16000);
        heap_probe probe;
        CHECK_THROWS_WITH(data::decode_png(p.data(), p.size(), "claim.png"),
                          Contains("claim.png") && Contains("16000x16000") && Contains(std::to_string(p.size()) + "-byte"));
        CHECK(probe.growth() < (1 << 20));
    }
    SECTION("20000 x 20000 is over max_image_pixels") {
        const auto p = png_claiming(20000, 20000);
        heap_probe probe;
        CHECK_THROWS_WITH(data::decode_png(p.data(), p.size(), "big.png"),
                          Contains("big.png") && Contains("20000x20000") && Contains("max_image_pixels"));
        CHECK(probe.growth() < (1 << 20));
    }
    SECTION("a plausible claim is decoded (and fails when the data runs out)") {
        const auto p = png_claiming(64, 64, 64 * (64 * 3 + 1));  // all rows present: a black image
        const auto d = data::decode_png(p.data(), p.size(), "black.png");
        CHECK(d.width == 64);
        CHECK(d.pixels == std::vector<std::uint8_t>(64 * 64 * 3, 0));
        const auto q = png_claiming(64, 64, 100);
        CHECK_THROWS_WITH(data::decode_png(q.data(), q.size(), "short.png"), Contains("short.png"));
    }
}

TEST_CASE("PNG chunks claiming more bytes than the file holds are rejected before libpng allocates them",
          "[data][image_io][hostile][fuzz]") {
    // Found by fuzz/fuzz_png (fuzz/corpus/png/regress-ztxt-2gb-length.png): a 117-byte PNG whose
    // zTXt chunk claims 2051621128 bytes made libpng allocate and zero 2 GB before failing to read
    // it (libpng's chunk size limit is only a warning when reading). Now io_error names the chunk.
    std::vector<std::uint8_t> head = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<std::uint8_t> ihdr;
    put32(ihdr, 2);
    put32(ihdr, 2);
    for (std::uint8_t b : {16, 6, 0, 0, 1}) ihdr.push_back(b);  // 16-bit RGBA, interlaced
    png_chunk(head, "IHDR", ihdr);
    for (const char* type : {"zTXt", "iTXt", "tEXt", "iCCP", "abCd"}) {
        INFO(type);
        std::vector<std::uint8_t> p = head;
        put32(p, 2051621128u);
        p.insert(p.end(), type, type + 4);
        for (int i = 0; i < 60; ++i) p.push_back(std::uint8_t(i));
        CHECK_THROWS_WITH(data::decode_png(p.data(), p.size(), "long-chunk.png"),
                          Contains("long-chunk.png") && Contains(std::string("chunk '") + type + "'") &&
                              Contains("2051621128"));
    }
    SECTION("the original fuzzer input") {
        const std::vector<std::uint8_t> p = {
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x02,
            0x00, 0x00, 0x00, 0x02, 0x10, 0x06, 0x00, 0x00, 0x01, 0x55, 0x21, 0xe1, 0xf1, 0x7a, 0x49, 0x41, 0x08, 0x7a, 0x54, 0x58,
            0x74, 0x99, 0x63, 0xe0, 0x66, 0x50, 0x14, 0x37, 0xd7, 0xf1, 0x75, 0x62, 0x80, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x89,
            0x50, 0x30, 0x47, 0x48, 0x47, 0x0d, 0x50, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x37, 0xd7, 0xf1, 0x75,
            0x62, 0x80, 0x25, 0x50, 0x4e, 0x41, 0x4d, 0x41, 0x67, 0x41, 0x4d, 0x41, 0x08, 0x40, 0x99, 0x1a, 0x52,
        };
        REQUIRE(p.size() == 117);
        CHECK_THROWS_WITH(data::decode_png(p.data(), p.size(), "fuzz.png"),
                          Contains("fuzz.png") && Contains("'zTXt'") && Contains("2051621128"));
    }
    SECTION("real ancillary chunks and bytes after IEND still decode") {
        std::vector<std::uint8_t> img(4 * 3 * 3);
        for (std::size_t i = 0; i < img.size(); ++i) img[i] = std::uint8_t(i * 19);
        const auto plain = data::encode_png(img.data(), 4, 3, 3);
        // insert a zTXt chunk right after IHDR (8 + 25 bytes) and append garbage after IEND
        std::vector<std::uint8_t> ztxt = {'C', 'o', 'm', 'm', 'e', 'n', 't', 0, 0};
        const std::string text(300, 'x');
        std::vector<std::uint8_t> z(compressBound(uLong(text.size())));
        uLongf zl = uLongf(z.size());
        compress(z.data(), &zl, reinterpret_cast<const Bytef*>(text.data()), uLong(text.size()));
        ztxt.insert(ztxt.end(), z.begin(), z.begin() + std::ptrdiff_t(zl));
        std::vector<std::uint8_t> p(plain.begin(), plain.begin() + 33);
        png_chunk(p, "zTXt", ztxt);
        p.insert(p.end(), plain.begin() + 33, plain.end());
        for (int i = 0; i < 7; ++i) p.push_back(0xff);
        const auto d = data::decode_png(p.data(), p.size(), "text.png");
        CHECK(d.pixels == img);
    }
    SECTION("a cut chunk frame, CRC or IDAT is still libpng's truncation error") {
        std::vector<std::uint8_t> cut_frame = head;
        put32(cut_frame, 13);
        std::vector<std::uint8_t> cut_idat = head;  // IDAT is streamed by libpng, never allocated whole
        put32(cut_idat, 2051621128u);
        for (char c : std::string("IDAT")) cut_idat.push_back(std::uint8_t(c));
        cut_idat.insert(cut_idat.end(), 40, 0);
        std::vector<std::uint8_t> cut_crc = head;
        png_chunk(cut_crc, "tEXt", {'k', 0, 'v'});
        cut_crc.resize(cut_crc.size() - 2);
        for (const auto* p : {&cut_frame, &cut_idat, &cut_crc})
            CHECK_THROWS_WITH(data::decode_png(p->data(), p->size(), "cut.png"), Contains("cut.png") && Contains("libpng error"));
    }
}

TEST_CASE("interlaced, 16-bit, palette and low-bit-depth PNGs still decode exactly", "[data][image_io]") {
    const int w = 13, h = 9;
    std::vector<std::vector<std::uint8_t>> rgb, g16, pal4;
    for (int y = 0; y < h; ++y) {
        std::vector<std::uint8_t> r, s, p((w + 1) / 2, 0);
        for (int x = 0; x < w; ++x) {
            for (int c = 0; c < 3; ++c) r.push_back(std::uint8_t(x * 19 + y * 7 + c * 50));
            s.push_back(std::uint8_t(x * 11 + y));  // high byte
            s.push_back(0xAB);                        // low byte, dropped
            p[std::size_t(x / 2)] |= std::uint8_t(((x + y) % 3) << (x % 2 ? 0 : 4));
        }
        rgb.push_back(r);
        g16.push_back(s);
        pal4.push_back(p);
    }
    const auto ai = png_encode_raw(w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, rgb);
    const auto a = data::decode_png(ai.data(), ai.size());
    REQUIRE(a.channels == 3);
    for (int y = 0; y < h; ++y)
        CHECK(std::vector<std::uint8_t>(a.pixels.begin() + y * w * 3, a.pixels.begin() + (y + 1) * w * 3) == rgb[y]);
    const auto g = png_encode_raw(w, h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7, g16);
    const auto b = data::decode_png(g.data(), g.size());
    REQUIRE(b.channels == 1);
    CHECK(b.pixels[std::size_t(4 * w + 5)] == std::uint8_t(5 * 11 + 4));
    const std::vector<png_color> palette = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}};
    const auto pp = png_encode_raw(w, h, 4, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, pal4, palette, {255, 0, 128});
    const auto c = data::decode_png(pp.data(), pp.size());
    REQUIRE(c.channels == 4);  // tRNS becomes alpha
    const std::size_t at = std::size_t(2 * w + 3) * 4;  // x = 3, y = 2: index (3 + 2) % 3 = 2
    CHECK(c.pixels[at] == 70);
    CHECK(c.pixels[at + 3] == 128);
}

TEST_CASE("an interlaced 1-bit PNG whose rows are missing fails before its 8-bit buffer is allocated",
          "[data][image_io][hostile][fuzz]") {
    // docs/fuzzing.md: a 1-bit palette image with tRNS expands 32-fold to 8-bit RGBA, and libpng
    // reads an interlaced image into a whole-image buffer, so a ~33 KB file claiming 16384 x 16384
    // passed the deflate check (2048 stored bytes per row) and cost a 1 GiB allocation before
    // libpng found the data missing. Now the stored-depth rows are decoded first (32 MiB here).
    const std::uint32_t side = 16384;
    std::vector<std::uint8_t> v = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<std::uint8_t> ihdr;
    put32(ihdr, side);
    put32(ihdr, side);
    for (std::uint8_t b : {1, 3, 0, 0, 1}) ihdr.push_back(b);  // 1-bit palette, Adam7
    png_chunk(v, "IHDR", ihdr);
    png_chunk(v, "PLTE", {0, 0, 0, 255, 255, 255});
    png_chunk(v, "tRNS", {0, 255});
    std::vector<std::uint8_t> text = {'C', 'o', 'm', 'm', 'e', 'n', 't', 0};
    text.resize(40000, 'x');  // makes the file big enough for the claim at deflate's ratio
    png_chunk(v, "tEXt", text);
    png_zero_rows_end(v, 1000);
    heap_probe probe;
    CHECK_THROWS_WITH(data::decode_png(v.data(), v.size(), "adam7-1bit.png"),
                      Contains("adam7-1bit.png") && Contains("libpng error"));
    CHECK(probe.growth() < (std::int64_t(64) << 20));  // was 1 GiB (16384^2 x 4 channels)

    SECTION("a complete interlaced 1-bit palette image with tRNS still decodes exactly") {
        const int w = 21, h = 11;
        std::vector<std::vector<std::uint8_t>> rows;
        for (int y = 0; y < h; ++y) {
            std::vector<std::uint8_t> r((w + 7) / 8, 0);
            for (int x = 0; x < w; ++x)
                if ((x * 3 + y) % 5 == 0) r[std::size_t(x / 8)] |= std::uint8_t(0x80 >> (x % 8));
            rows.push_back(r);
        }
        const std::vector<png_color> palette = {{10, 20, 30}, {200, 210, 220}};
        const auto png = png_encode_raw(w, h, 1, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_ADAM7, rows, palette, {77, 255});
        const auto d = data::decode_png(png.data(), png.size(), "small-adam7.png");
        REQUIRE(d.channels == 4);
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                const bool on = (x * 3 + y) % 5 == 0;
                const std::size_t at = std::size_t(y * w + x) * 4;
                CHECK(d.pixels[at] == (on ? 200 : 10));
                CHECK(d.pixels[at + 2] == (on ? 220 : 30));
                CHECK(d.pixels[at + 3] == (on ? 255 : 77));
            }
    }
}

TEST_CASE("JPEGs claiming more than they can hold are rejected before allocating", "[data][image_io][hostile]") {
    const std::vector<std::uint8_t> gray(16 * 16 * 3, 128);
    SECTION("a baseline JPEG of ~600 bytes claiming 16000 x 16000 (768 MB)") {
        auto j = data::encode_jpeg(gray.data(), 16, 16, 3, 90);
        jpeg_set_dims(j, 16000, 16000);
        heap_probe probe;
        CHECK_THROWS_WITH(data::decode_jpeg(j.data(), j.size(), "claim.jpg"),
                          Contains("claim.jpg") && Contains("16000x16000") && Contains(std::to_string(j.size()) + "-byte"));
        CHECK(probe.growth() < (1 << 20));
    }
    SECTION("a progressive JPEG claiming 16000 x 16000 (whole-image coefficient buffers)") {
        auto j = jpeg_progressive(16, 16, gray);
        jpeg_set_dims(j, 16000, 16000);
        CHECK_THROWS_WITH(data::decode_jpeg(j.data(), j.size(), "prog.jpg"), Contains("prog.jpg") && Contains("16000x16000"));
    }
    SECTION("20000 x 20000 is over max_image_pixels") {
        auto j = data::encode_jpeg(gray.data(), 16, 16, 3, 90);
        jpeg_set_dims(j, 20000, 20000);
        CHECK_THROWS_WITH(data::decode_jpeg(j.data(), j.size(), "big.jpg"), Contains("max_image_pixels"));
    }
    SECTION("a truncated JPEG stops at the end of its data, without allocating the whole image") {
        const int n = 1024;
        const auto img = noise(std::size_t(n) * n * 3, 5);
        const auto j = data::encode_jpeg(img.data(), n, n, 3, 90);
        const std::vector<std::uint8_t> cut(j.begin(), j.begin() + std::ptrdiff_t(j.size() / 10));
        heap_probe probe;
        CHECK_THROWS_WITH(data::decode_jpeg(cut.data(), cut.size(), "cut.jpg"), Contains("cut.jpg"));
        CHECK(probe.growth() < std::int64_t(n) * n * 3 / 2);
        // the whole file, and a large uniform one (the cheapest blocks), decode
        CHECK(data::decode_jpeg(j.data(), j.size()).pixels.size() == std::size_t(n) * n * 3);
        const std::vector<std::uint8_t> flat(std::size_t(n) * n, 128);  // mid-gray: exact after the DCT
        const auto f = data::encode_jpeg(flat.data(), n, n, 1, 50);
        CHECK(data::decode_jpeg(f.data(), f.size()).pixels == flat);
        const auto fp = jpeg_progressive(n, n, std::vector<std::uint8_t>(std::size_t(n) * n * 3, 77));
        CHECK(data::decode_jpeg(fp.data(), fp.size()).pixels.size() == std::size_t(n) * n * 3);
    }
}

//! A progressive gray JPEG of `scans` AC scans (Ss=1..Se=63, one component) whose entropy data is
//! end-of-band runs: a dozen bytes per scan, each scan visiting every 8x8 block.
std::vector<std::uint8_t> jpeg_many_scans(std::uint16_t h, std::uint16_t w, int scans) {
    std::vector<std::uint8_t> j = {0xFF, 0xD8};
    auto segment = [&j](std::uint8_t marker, const std::vector<std::uint8_t>& payload) {
        j.push_back(0xFF);
        j.push_back(marker);
        j.push_back(std::uint8_t((payload.size() + 2) >> 8));
        j.push_back(std::uint8_t(payload.size() + 2));
        j.insert(j.end(), payload.begin(), payload.end());
    };
    std::vector<std::uint8_t> dqt(65, 1);
    dqt[0] = 0;
    segment(0xDB, dqt);
    segment(0xC2, {8, std::uint8_t(h >> 8), std::uint8_t(h), std::uint8_t(w >> 8), std::uint8_t(w), 1, 1, 0x11, 0});
    std::vector<std::uint8_t> dht = {0x10, 1};  // AC table 0: one 1-bit code, for EOB run class 14
    dht.resize(17, 0);
    dht.push_back(0xE0);
    segment(0xC4, dht);
    const std::size_t blocks = std::size_t((h + 7) / 8) * std::size_t((w + 7) / 8);
    std::string bits;
    for (std::size_t run = 0; run < blocks; run += 32767) bits += "0" + std::string(14, '1');  // runs of 32767
    while (bits.size() % 8) bits += '1';
    std::vector<std::uint8_t> entropy;
    for (std::size_t i = 0; i < bits.size(); i += 8) {
        entropy.push_back(std::uint8_t(std::stoi(bits.substr(i, 8), nullptr, 2)));
        if (entropy.back() == 0xFF) entropy.push_back(0);
    }
    for (int s = 0; s < scans; ++s) {
        segment(0xDA, {1, 1, 0, 1, 63, 0});
        j.insert(j.end(), entropy.begin(), entropy.end());
    }
    j.push_back(0xFF);
    j.push_back(0xD9);
    return j;
}

TEST_CASE("JPEGs with more than max_jpeg_scans scans are rejected when the limit is reached", "[data][image_io][hostile]") {
    // Found reviewing fuzz/fuzz_jpeg: a progressive JPEG visits every block in each scan, and a scan
    // of end-of-band runs costs ~12 bytes, so a crafted 97 KB file (1800 scans of a 5760x5760
    // image) cost 5.6 s; decode_jpeg now stops at scan max_jpeg_scans + 1.
    const auto over = jpeg_many_scans(64, 64, data::max_jpeg_scans + 1);
    CHECK_THROWS_WITH(data::decode_jpeg(over.data(), over.size(), "scans.jpg"),
                      Contains("scans.jpg") && Contains("max_jpeg_scans") && Contains("500 scans"));
    // up to the limit the scans are read (and this stream is still rejected as corrupt: it never
    // codes the DC coefficients)
    const auto at = jpeg_many_scans(64, 64, data::max_jpeg_scans);
    CHECK_THROWS_WITH(data::decode_jpeg(at.data(), at.size(), "scans.jpg"),
                      Contains("scans.jpg") && !Contains("max_jpeg_scans"));
    // 600 scans over 65536 blocks in a 12 KB file (passes the blocks-per-byte check)
    const auto big = jpeg_many_scans(2048, 2048, 600);
    CHECK(big.size() < 12000);
    CHECK_THROWS_WITH(data::decode_jpeg(big.data(), big.size(), "big-scans.jpg"), Contains("max_jpeg_scans"));
}

TEST_CASE("IDX files claiming more than they can hold are rejected before allocating", "[data][idx][hostile]") {
    const std::string p = temp_path("claim.idx.gz");
    SECTION("8 MB of zeros (8 KB of gzip) claiming 10^9 elements") {
        write_idx_gz(p, {1000, 1000, 1000}, std::size_t(8) << 20);
        heap_probe probe;
        CHECK_THROWS_WITH(data::read_idx(p), Contains(p) && Contains("1000000000") && Contains("-byte"));
        CHECK(probe.growth() < (1 << 20));
    }
    SECTION("a gzip bomb after a truthful header: reading stops after the claimed size") {
        write_idx_gz(p, {1000, 1000}, 1000000 + (std::size_t(16) << 20));
        heap_probe probe;
        CHECK_THROWS_WITH(data::read_idx(p), Contains(p) && Contains("trailing"));
        CHECK(probe.growth() < (3 << 20));
    }
    SECTION("a stream that ends before the claimed size") {
        write_idx_gz(p, {200, 1000}, 0, noise(50000, 3));
        CHECK_THROWS_WITH(data::read_idx(p), Contains(p) && Contains("50000") && Contains("200000"));
    }
    SECTION("a claim above max_idx_elements") {
        std::vector<std::uint8_t> h{0, 0, 0x08, 2};
        put32(h, 65536);
        put32(h, 65536);
        std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(h.data()), std::streamsize(h.size()));
        CHECK_THROWS_WITH(data::read_idx(p), Contains(p) && Contains("max_idx_elements"));
        CHECK_THROWS_WITH(data::parse_idx(h, "mem"), Contains("max_idx_elements"));
    }
    SECTION("plain and gzip files that hold exactly their claim load") {
        write_idx_gz(p, {3, 4}, 12);
        const auto a = data::read_idx(p);
        CHECK(a.dims == std::vector<std::int64_t>{3, 4});
        CHECK(a.bytes == std::vector<std::uint8_t>(12, 0));
    }
    std::remove(p.c_str());
}

TEST_CASE("safetensors tensors must tile the data area without overlap or gaps", "[data][safetensors][hostile]") {
    auto parse = [](const std::string& header, std::size_t data) {
        const auto b = st_file(header, data);
        return data::parse_safetensors(b.data(), b.size(), "tiles.safetensors");
    };
    // header order need not be offset order; an empty tensor sits anywhere on the tiling
    const auto ok = parse(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
                          R"("e":{"dtype":"F32","shape":[0],"data_offsets":[8,8]},)"
                          R"("a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})",
                          16);
    CHECK(ok.tensors.size() == 3);
    CHECK(parse("{}", 0).tensors.empty());
    const struct {
        const char* header;
        std::size_t data;
        const char* expect[3];
    } bad[] = {
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
         12, {"'a'", "'b'", "overlap"}},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
         8, {"'a'", "'b'", "overlap"}},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})",
         20, {"'a'", "'b'", "gap"}},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12, {"'a'", "begins at 4", "expected 0"}},
        {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 16, {"'a'", "ends at 8", "16"}},
        {R"({})", 8, {"no tensors", "8 data bytes", "tiles.safetensors"}},
    };
    for (const auto& c : bad) {
        INFO("header " << c.header << " with " << c.data << " data bytes");
        const auto b = st_file(c.header, c.data);
        CHECK_THROWS_AS(data::parse_safetensors(b.data(), b.size(), "tiles.safetensors"), io_error);
        CHECK_THROWS_WITH(data::parse_safetensors(b.data(), b.size(), "tiles.safetensors"),
                          Contains("tiles.safetensors") && Contains(c.expect[0]) && Contains(c.expect[1]) &&
                              Contains(c.expect[2]));
    }
    // 1000 tensors all claiming the same 1 MB: rejected before copying (not 1 GB of copies)
    std::string many = "{";
    for (int i = 0; i < 1000; ++i)
        many += (i ? "," : "") + std::string("\"t") + std::to_string(i) + R"(":{"dtype":"U8","shape":[1048576],"data_offsets":[0,1048576]})";
    many += "}";
    const auto b = st_file(many, 1 << 20);
    heap_probe probe;
    CHECK_THROWS_WITH(data::parse_safetensors(b.data(), b.size(), "many"), Contains("overlap"));
    CHECK(probe.growth() < (4 << 20));
}
