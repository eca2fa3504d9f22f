// SPDX-License-Identifier: MIT
// JPEG (libjpeg) and PNG (libpng) encode/decode of uint8 HWC images, libjpeg/libpng errors as io_error.
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/npy.hpp"

// Linking: JPEG functions need libjpeg (CMake JPEG::JPEG), PNG functions need libpng (PNG::PNG).
// Each is only referenced when its functions are used.

namespace shiftnorm::data {

//! A decoded uint8 image, HWC, 1 (gray) or 3 (RGB) channels (PNG also 2/4 with alpha).
struct decoded_image {
    int height = 0;
    int width = 0;
    int channels = 0;
    std::vector<std::uint8_t> pixels;
};

//! Chroma subsampling for encode_jpeg. `s420` is libjpeg's and Pillow's default.
enum class jpeg_subsampling { s444, s422, s420 };

namespace detail {

inline void check_image_args(const char* where, const void* data, int h, int w, int c, bool allow_alpha) {
    if (data == nullptr) shiftnorm::detail::fail<shape_error>(where, "data", "a non-null pointer", "nullptr");
    if (h <= 0 || w <= 0)
        shiftnorm::detail::fail<shape_error>(where, "height x width", "positive extents",
                                             shiftnorm::detail::concat(h, "x", w));
    if (!(c == 1 || c == 3 || (allow_alpha && (c == 2 || c == 4))))
        shiftnorm::detail::fail<shape_error>(where, "channels", allow_alpha ? "1, 2, 3 or 4" : "1 or 3", c);
}

struct jpeg_error_ctx {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};
inline void jpeg_error_exit_longjmp(j_common_ptr cinfo) {
    auto* ctx = reinterpret_cast<jpeg_error_ctx*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, ctx->message);
    std::longjmp(ctx->jump, 1);
}
inline void jpeg_silent_output(j_common_ptr) {}

}  // namespace detail

//! Encodes a uint8 HWC image (1 or 3 channels) as baseline JPEG with the given quality (1-100),
//! libjpeg's standard quantisation tables scaled by jpeg_set_quality(quality, force_baseline=TRUE),
//! islow DCT, no optimised Huffman tables: the same stream Pillow's `save(..., quality=q)` writes.
inline std::vector<std::uint8_t> encode_jpeg(const std::uint8_t* hwc, int height, int width, int channels,
                                             int quality, jpeg_subsampling sub = jpeg_subsampling::s420) {
    detail::check_image_args("encode_jpeg", hwc, height, width, channels, false);
    if (quality < 1 || quality > 100) shiftnorm::detail::fail<value_error>("encode_jpeg", "quality", "[1, 100]", quality);
    jpeg_compress_struct cinfo;
    detail::jpeg_error_ctx err;
    unsigned char* volatile outbuf = nullptr;
    unsigned long outsize = 0;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = detail::jpeg_error_exit_longjmp;
    err.mgr.output_message = detail::jpeg_silent_output;
    if (setjmp(err.jump)) {
        jpeg_destroy_compress(&cinfo);
        if (outbuf) std::free(outbuf);
        throw io_error(shiftnorm::detail::concat("encode_jpeg: libjpeg error: ", err.message));
    }
    jpeg_create_compress(&cinfo);
    unsigned char* ob = nullptr;
    jpeg_mem_dest(&cinfo, &ob, &outsize);
    cinfo.image_width = static_cast<JDIMENSION>(width);
    cinfo.image_height = static_cast<JDIMENSION>(height);
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (channels == 3) {
        const int hs = sub == jpeg_subsampling::s444 ? 1 : 2;
        const int vs = sub == jpeg_subsampling::s420 ? 2 : 1;
        cinfo.comp_info[0].h_samp_factor = hs;
        cinfo.comp_info[0].v_samp_factor = vs;
        cinfo.comp_info[1].h_samp_factor = cinfo.comp_info[1].v_samp_factor = 1;
        cinfo.comp_info[2].h_samp_factor = cinfo.comp_info[2].v_samp_factor = 1;
    }
    jpeg_start_compress(&cinfo, TRUE);
    const std::size_t stride = static_cast<std::size_t>(width) * channels;
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(hwc + cinfo.next_scanline * stride);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    outbuf = ob;
    std::vector<std::uint8_t> out(ob, ob + outsize);
    jpeg_destroy_compress(&cinfo);
    std::free(ob);
    return out;
}

//! Decodes a JPEG stream to uint8 HWC (gray -> 1 channel, everything else -> RGB), libjpeg's
//! default islow IDCT and fancy upsampling (Pillow's decoder settings). Truncated or corrupt
//! data throws io_error with libjpeg's message; a premature end of data is an error too.
inline decoded_image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& what = "<memory>") {
    if (data == nullptr || size < 4 || data[0] != 0xFF || data[1] != 0xD8)
        throw io_error(shiftnorm::detail::concat(what, ": argument 'data' expected a JPEG stream (starting FF D8), got ",
                                                 size, " bytes without that marker"));
    jpeg_decompress_struct cinfo;
    detail::jpeg_error_ctx err;
    decoded_image img;
    cinfo.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = detail::jpeg_error_exit_longjmp;
    err.mgr.output_message = detail::jpeg_silent_output;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        throw io_error(shiftnorm::detail::concat(what, ": libjpeg error: ", err.message));
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, const_cast<unsigned char*>(data), static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    img.height = static_cast<int>(cinfo.output_height);
    img.width = static_cast<int>(cinfo.output_width);
    img.channels = cinfo.output_components;
    img.pixels.resize(static_cast<std::size_t>(img.height) * img.width * img.channels);
    const std::size_t stride = static_cast<std::size_t>(img.width) * img.channels;
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = img.pixels.data() + cinfo.output_scanline * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    // libjpeg only warns on a premature end of data (it pads with gray); treat it as an error.
    const long warnings = err.mgr.num_warnings;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (warnings > 0)
        throw io_error(shiftnorm::detail::concat(what, ": corrupt or truncated JPEG data (", warnings, " libjpeg warning(s))"));
    return img;
}

namespace detail {
struct png_mem_writer {
    std::vector<std::uint8_t>* out;
};
inline void png_write_to_vector(png_structp png, png_bytep data, png_size_t len) {
    auto* w = static_cast<png_mem_writer*>(png_get_io_ptr(png));
    w->out->insert(w->out->end(), data, data + len);
}
inline void png_flush_noop(png_structp) {}
struct png_mem_reader {
    const std::uint8_t* p;
    std::size_t size, pos;
};
inline void png_read_from_memory(png_structp png, png_bytep data, png_size_t len) {
    auto* r = static_cast<png_mem_reader*>(png_get_io_ptr(png));
    if (r->pos + len > r->size) png_error(png, "unexpected end of PNG data (truncated file)");
    std::memcpy(data, r->p + r->pos, len);
    r->pos += len;
}
inline void png_error_to_jmp(png_structp png, png_const_charp msg) {
    auto* buf = static_cast<std::string*>(png_get_error_ptr(png));
    if (buf) *buf = msg;
    png_longjmp(png, 1);
}
inline void png_warning_silent(png_structp, png_const_charp) {}
}  // namespace detail

//! Encodes a uint8 HWC image (1-4 channels: gray, gray+alpha, RGB, RGBA) as an 8-bit PNG.
inline std::vector<std::uint8_t> encode_png(const std::uint8_t* hwc, int height, int width, int channels) {
    detail::check_image_args("encode_png", hwc, height, width, channels, true);
    std::vector<std::uint8_t> out;
    std::string msg;
    detail::png_mem_writer w{&out};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &msg, detail::png_error_to_jmp,
                                              detail::png_warning_silent);
    if (!png) throw io_error("encode_png: png_create_write_struct failed");
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : nullptr);
        throw io_error(shiftnorm::detail::concat("encode_png: libpng error: ", msg));
    }
    png_set_write_fn(png, &w, detail::png_write_to_vector, detail::png_flush_noop);
    const int type = channels == 1 ? PNG_COLOR_TYPE_GRAY
                     : channels == 2 ? PNG_COLOR_TYPE_GRAY_ALPHA
                     : channels == 3 ? PNG_COLOR_TYPE_RGB
                                     : PNG_COLOR_TYPE_RGBA;
    png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const std::size_t stride = static_cast<std::size_t>(width) * channels;
    for (int y = 0; y < height; ++y) png_write_row(png, const_cast<png_bytep>(hwc + y * stride));
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return out;
}

//! Decodes a PNG stream to 8-bit HWC: palette expands to RGB(A), 16-bit is reduced to 8, gray
//! below 8 bits is expanded; channels are 1-4 as stored. Truncated/corrupt data throws io_error.
inline decoded_image decode_png(const std::uint8_t* data, std::size_t size, const std::string& what = "<memory>") {
    if (data == nullptr || size < 8 || png_sig_cmp(const_cast<png_bytep>(data), 0, 8) != 0)
        throw io_error(shiftnorm::detail::concat(what, ": argument 'data' expected a PNG stream (8-byte signature), got ",
                                                 size, " bytes without it"));
    std::string msg;
    decoded_image img;
    detail::png_mem_reader r{data, size, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &msg, detail::png_error_to_jmp,
                                             detail::png_warning_silent);
    if (!png) throw io_error("decode_png: png_create_read_struct failed");
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
        throw io_error(shiftnorm::detail::concat(what, ": libpng error: ", msg));
    }
    png_set_read_fn(png, &r, detail::png_read_from_memory);
    png_read_info(png, info);
    const int type = png_get_color_type(png, info);
    const int depth = png_get_bit_depth(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    png_read_update_info(png, info);
    img.width = static_cast<int>(png_get_image_width(png, info));
    img.height = static_cast<int>(png_get_image_height(png, info));
    img.channels = png_get_channels(png, info);
    img.pixels.resize(static_cast<std::size_t>(img.height) * img.width * img.channels);
    std::vector<png_bytep> rows(img.height);
    for (int y = 0; y < img.height; ++y) rows[y] = img.pixels.data() + static_cast<std::size_t>(y) * img.width * img.channels;
    png_read_image(png, rows.data());
    png_read_end(png, nullptr);
    png_destroy_read_struct(&png, &info, nullptr);
    return img;
}

//! Writes bytes to a file; throws io_error naming the path on failure.
inline void write_file_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) throw io_error(shiftnorm::detail::concat("write_file_bytes: argument 'path' expected a writable file, got '", path, "'"));
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!f) throw io_error(shiftnorm::detail::concat("write_file_bytes: short write to '", path, "'"));
}

inline void write_jpeg(const std::string& path, const std::uint8_t* hwc, int height, int width, int channels,
                       int quality, jpeg_subsampling sub = jpeg_subsampling::s420) {
    write_file_bytes(path, encode_jpeg(hwc, height, width, channels, quality, sub));
}
inline void write_png(const std::string& path, const std::uint8_t* hwc, int height, int width, int channels) {
    write_file_bytes(path, encode_png(hwc, height, width, channels));
}

//! Reads a JPEG or PNG file, chosen by its signature; throws io_error for anything else.
inline decoded_image read_image(const std::string& path) {
    const auto bytes = read_file_bytes(path);
    if (bytes.size() >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) return decode_jpeg(bytes.data(), bytes.size(), path);
    if (bytes.size() >= 8 && png_sig_cmp(const_cast<png_bytep>(bytes.data()), 0, 8) == 0)
        return decode_png(bytes.data(), bytes.size(), path);
    throw io_error(shiftnorm::detail::concat(path, ": argument 'path' expected a JPEG or PNG file, got unknown signature"));
}

}  // namespace shiftnorm::data
