// SPDX-License-Identifier: MIT
// Writes the fuzzers' seed corpus: a few small VALID files per decoder, made with the library's
// own writers (encode_safetensors, encode_npy, encode_png, encode_jpeg) and, for what those do not
// write (palette/16-bit/interlaced PNG, progressive/arithmetic JPEG, gzip IDX, npy version 2,
// CIFAR batches), with libpng, libjpeg, zlib or by hand. Deterministic; every file is < 4 KB.
//   make_corpus OUT_DIR        (writes OUT_DIR/<target>/<name>; fuzz/corpus is the committed copy)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "shiftnorm/data/image_io.hpp"
#include "shiftnorm/data/npy.hpp"
#include "shiftnorm/data/safetensors.hpp"

namespace fs = std::filesystem;
namespace sd = shiftnorm::data;
using bytes_t = std::vector<std::uint8_t>;

namespace {
std::string g_out;

void put(const std::string& target, const std::string& name, const bytes_t& b) {
    if (b.size() >= 4096) throw std::runtime_error(target + "/" + name + ": " + std::to_string(b.size()) + " bytes, keep seeds < 4 KB");
    const fs::path dir = fs::path(g_out) / target;
    fs::create_directories(dir);
    std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    if (!f) throw std::runtime_error("cannot write " + (dir / name).string());
}

//! A deterministic test pattern: gradient plus a little texture.
bytes_t pattern(int h, int w, int c, int seed = 0) {
    bytes_t p(std::size_t(h) * w * c);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k)
                p[(std::size_t(y) * w + x) * c + k] = std::uint8_t((y * 255 / std::max(h - 1, 1) + 37 * k + 11 * ((x ^ y ^ seed) & 7)) & 0xff);
    return p;
}

// ---- safetensors ----------------------------------------------------------------------------
void safetensors_seeds() {
    {
        sd::safetensors_file f;
        put("safetensors", "empty.safetensors", sd::encode_safetensors(f));
    }
    {
        sd::safetensors_file f;
        const float w[6] = {1.f, -2.f, 0.5f, 3.25f, -0.f, 1e-3f};
        f.put_f32("weight", {2, 3}, w);
        put("safetensors", "one_f32.safetensors", sd::encode_safetensors(f));
    }
    {
        sd::safetensors_file f;
        f.metadata["format"] = "pt";
        f.metadata["note"] = "quote \" backslash \\ tab \t";
        const float w[4] = {0.1f, 0.2f, 0.3f, 0.4f};
        const std::int64_t n[1] = {42};
        f.put_f32("layer1.0.bn1.running_mean", {4}, w);
        f.put_i64("layer1.0.bn1.num_batches_tracked", {}, n);
        f.tensors["mask"] = sd::st_tensor{"BOOL", {3}, {1, 0, 1}};
        f.tensors["u8"] = sd::st_tensor{"U8", {2, 2}, {0, 1, 254, 255}};
        f.tensors["half"] = sd::st_tensor{"F16", {2}, {0x00, 0x3c, 0x01, 0x80}};  // 1.0, -subnormal
        f.tensors["bf16"] = sd::st_tensor{"BF16", {1}, {0x80, 0x3f}};
        f.tensors["i32"] = sd::st_tensor{"I32", {1}, {0xff, 0xff, 0xff, 0xff}};
        f.tensors["f64"] = sd::st_tensor{"F64", {1}, {0, 0, 0, 0, 0, 0, 0xf0, 0x3f}};
        f.tensors["empty"] = sd::st_tensor{"F32", {0, 3}, {}};
        f.tensors["f8"] = sd::st_tensor{"F8_E4M3", {1}, {0x38}};
        put("safetensors", "mixed_metadata.safetensors", sd::encode_safetensors(f));
    }
    {  // hand-written header: whitespace, unicode escape, an unknown key with nested values
        const std::string h =
            "{ \"__metadata__\" : { \"k\\u00e9y\" : \"v\\n\" } ,\n \"t\\u0041\" : { \"dtype\" : \"U16\", \"shape\" : [ 2 ],"
            " \"extra\" : { \"a\" : [ 1, -2.5e3, true, false, null, \"s\" ] }, \"data_offsets\" : [ 0, 4 ] } }  ";
        bytes_t b(8);
        for (int k = 0; k < 8; ++k) b[std::size_t(k)] = std::uint8_t(std::uint64_t(h.size()) >> (8 * k));
        b.insert(b.end(), h.begin(), h.end());
        for (std::uint8_t v : {1, 2, 3, 4}) b.push_back(v);
        put("safetensors", "handwritten.safetensors", b);
    }
}

// ---- npy ------------------------------------------------------------------------------------
void npy_seeds() {
    const bytes_t u8 = pattern(2, 3, 1);
    put("npy", "u8_2x3.npy", sd::encode_npy(sd::npy_dtype::u8, {2, 3}, u8.data()));
    const float f[4] = {1.f, -1.f, 0.25f, 1e30f};
    put("npy", "f32_4.npy", sd::encode_npy(sd::npy_dtype::f32, {4}, f));
    const double d = 3.5;
    put("npy", "f64_scalar.npy", sd::encode_npy(sd::npy_dtype::f64, {}, &d));
    put("npy", "f32_empty.npy", sd::encode_npy(sd::npy_dtype::f32, {0, 5}, f));
    const bytes_t img = pattern(1, 4, 3);
    put("npy", "u8_1x2x2x3.npy", sd::encode_npy(sd::npy_dtype::u8, {1, 2, 2, 3}, img.data()));
    {  // version 2.0 header (4-byte length), '<u1', numpy's spacing
        std::string h = "{'descr': '<u1', 'fortran_order': False, 'shape': (3,), }";
        while ((12 + h.size() + 1) % 64) h += ' ';
        h += '\n';
        bytes_t b = {0x93, 'N', 'U', 'M', 'P', 'Y', 2, 0};
        for (int k = 0; k < 4; ++k) b.push_back(std::uint8_t(h.size() >> (8 * k)));
        b.insert(b.end(), h.begin(), h.end());
        for (std::uint8_t v : {7, 8, 9}) b.push_back(v);
        put("npy", "v2_u1_3.npy", b);
    }
}

// ---- IDX ------------------------------------------------------------------------------------
bytes_t idx_bytes(const std::vector<std::uint32_t>& dims, const bytes_t& data) {
    bytes_t b = {0, 0, 0x08, std::uint8_t(dims.size())};
    for (auto d : dims)
        for (int s = 24; s >= 0; s -= 8) b.push_back(std::uint8_t(d >> s));
    b.insert(b.end(), data.begin(), data.end());
    return b;
}
bytes_t gzip(const bytes_t& in) {
    z_stream z{};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflateInit2");
    bytes_t out(deflateBound(&z, uLong(in.size())) + 32);
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = uInt(in.size());
    z.next_out = out.data();
    z.avail_out = uInt(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate");
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}
void idx_seeds() {
    const bytes_t labels = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3};
    const bytes_t images = pattern(3 * 6, 5, 1);  // 3 images of 6x5
    put("idx", "labels_10.idx1-ubyte", idx_bytes({10}, labels));
    put("idx", "images_3x6x5.idx3-ubyte", idx_bytes({3, 6, 5}, images));
    put("idx", "labels_10.idx1-ubyte.gz", gzip(idx_bytes({10}, labels)));
    put("idx", "images_3x6x5.idx3-ubyte.gz", gzip(idx_bytes({3, 6, 5}, images)));
    put("idx", "rank4_2x1x2x2.idx", idx_bytes({2, 1, 2, 2}, pattern(1, 8, 1)));
    put("idx", "empty_0x28x28.idx", idx_bytes({0, 28, 28}, {}));
}

// ---- CIFAR ----------------------------------------------------------------------------------
void cifar_seeds() {
    const bytes_t px = pattern(32, 32, 3);
    bytes_t planes(3072);  // HWC pattern -> CHW planes as in the batches
    for (int c = 0; c < 3; ++c)
        for (int i = 0; i < 1024; ++i) planes[std::size_t(c) * 1024 + i] = px[std::size_t(i) * 3 + c];
    bytes_t c10 = {7};
    c10.insert(c10.end(), planes.begin(), planes.end());
    put("cifar", "cifar10_one_record.bin", c10);
    bytes_t c100 = {9, 42};
    c100.insert(c100.end(), planes.begin(), planes.end());
    put("cifar", "cifar100_one_record.bin", c100);
}

// ---- PNG ------------------------------------------------------------------------------------
//! libpng writer for what encode_png does not write: bit depth, palette (+ tRNS), interlace.
bytes_t png_raw(int h, int w, int color_type, int depth, bool interlace, const bytes_t& rows_packed, int palette_size = 0,
                int trns = 0) {
    bytes_t out;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) throw std::runtime_error("libpng write error");
    png_set_write_fn(png, &out, [](png_structp p, png_bytep d, png_size_t n) {
        auto* o = static_cast<bytes_t*>(png_get_io_ptr(p));
        o->insert(o->end(), d, d + n);
    }, [](png_structp) {});
    png_set_IHDR(png, info, png_uint_32(w), png_uint_32(h), depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        std::vector<png_color> pal(static_cast<std::size_t>(palette_size));
        for (int i = 0; i < palette_size; ++i) pal[std::size_t(i)] = {png_byte(i * 60), png_byte(255 - i * 40), png_byte(i * 17)};
        png_set_PLTE(png, info, pal.data(), palette_size);
        if (trns > 0) {
            std::vector<png_byte> t(static_cast<std::size_t>(trns));
            for (int i = 0; i < trns; ++i) t[std::size_t(i)] = png_byte(i * 100);
            png_set_tRNS(png, info, t.data(), trns, nullptr);
        }
    }
    png_write_info(png, info);
    if (depth == 16) png_set_swap(png);  // rows_packed holds little-endian 16-bit samples
    const std::size_t stride = rows_packed.size() / std::size_t(h);
    std::vector<png_bytep> rows(static_cast<std::size_t>(h));
    for (int y = 0; y < h; ++y) rows[std::size_t(y)] = const_cast<png_bytep>(rows_packed.data() + std::size_t(y) * stride);
    png_write_image(png, rows.data());
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return out;
}
void png_seeds() {
    put("png", "gray_8x8.png", sd::encode_png(pattern(8, 8, 1).data(), 8, 8, 1));
    put("png", "gray_alpha_5x3.png", sd::encode_png(pattern(5, 3, 2).data(), 5, 3, 2));
    put("png", "rgb_6x7.png", sd::encode_png(pattern(6, 7, 3).data(), 6, 7, 3));
    put("png", "rgba_4x4.png", sd::encode_png(pattern(4, 4, 4).data(), 4, 4, 4));
    put("png", "rgb_9x9_interlaced.png", png_raw(9, 9, PNG_COLOR_TYPE_RGB, 8, true, pattern(9, 9, 3)));
    put("png", "gray16_4x3.png", png_raw(4, 3, PNG_COLOR_TYPE_GRAY, 16, false, pattern(4, 6, 1)));
    put("png", "rgba16_2x2_interlaced.png", png_raw(2, 2, PNG_COLOR_TYPE_RGBA, 16, true, pattern(2, 16, 1)));
    bytes_t bits(2 * 2);  // 1-bit gray, 10x2: 2 bytes per row
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = std::uint8_t(0xA5 ^ (i * 0x3c));
    put("png", "gray1_10x2.png", png_raw(2, 10, PNG_COLOR_TYPE_GRAY, 1, false, bits));
    bytes_t idx4(3 * 3);  // 4-bit palette, 5x3: 3 bytes per row, indices < 4
    for (std::size_t i = 0; i < idx4.size(); ++i) idx4[i] = std::uint8_t(((i % 4) << 4) | ((i + 1) % 4));
    put("png", "palette4_trns_5x3.png", png_raw(3, 5, PNG_COLOR_TYPE_PALETTE, 4, false, idx4, 4, 2));
    bytes_t idx8(6 * 6);
    for (std::size_t i = 0; i < idx8.size(); ++i) idx8[i] = std::uint8_t(i % 5);
    put("png", "palette8_6x6_interlaced.png", png_raw(6, 6, PNG_COLOR_TYPE_PALETTE, 8, true, idx8, 5));
}

// ---- JPEG -----------------------------------------------------------------------------------
//! libjpeg writer for what encode_jpeg does not write: progressive, arithmetic, restart markers.
bytes_t jpeg_raw(int h, int w, int c, bool progressive, bool arith, int restart_rows) {
    const bytes_t px = pattern(h, w, c, 3);
    jpeg_compress_struct cinfo;
    jpeg_error_mgr err;
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    unsigned char* buf = nullptr;
    unsigned long len = 0;
    jpeg_mem_dest(&cinfo, &buf, &len);
    cinfo.image_width = JDIMENSION(w);
    cinfo.image_height = JDIMENSION(h);
    cinfo.input_components = c;
    cinfo.in_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, 80, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    cinfo.arith_code = arith ? TRUE : FALSE;
    cinfo.restart_in_rows = restart_rows;
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(px.data() + std::size_t(cinfo.next_scanline) * w * c);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    bytes_t out(buf, buf + len);
    std::free(buf);
    return out;
}
void jpeg_seeds() {
    put("jpeg", "gray_8x8.jpg", sd::encode_jpeg(pattern(8, 8, 1).data(), 8, 8, 1, 90));
    put("jpeg", "rgb_16x16_420.jpg", sd::encode_jpeg(pattern(16, 16, 3).data(), 16, 16, 3, 75));
    put("jpeg", "rgb_13x7_444.jpg", sd::encode_jpeg(pattern(7, 13, 3).data(), 7, 13, 3, 95, sd::jpeg_subsampling::s444));
    put("jpeg", "rgb_9x17_422.jpg", sd::encode_jpeg(pattern(17, 9, 3).data(), 17, 9, 3, 50, sd::jpeg_subsampling::s422));
    put("jpeg", "rgb_16x16_progressive.jpg", jpeg_raw(16, 16, 3, true, false, 0));
    put("jpeg", "gray_16x8_progressive.jpg", jpeg_raw(8, 16, 1, true, false, 0));
    put("jpeg", "rgb_16x16_arithmetic.jpg", jpeg_raw(16, 16, 3, false, true, 0));
    put("jpeg", "rgb_32x24_restart.jpg", jpeg_raw(24, 32, 3, false, false, 1));
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: make_corpus OUT_DIR\n";
        return 2;
    }
    g_out = argv[1];
    try {
        safetensors_seeds();
        npy_seeds();
        idx_seeds();
        cifar_seeds();
        png_seeds();
        jpeg_seeds();
    } catch (const std::exception& e) {
        std::cerr << "make_corpus: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
