// SPDX-License-Identifier: MIT
// JPEG (libjpeg) and PNG (libpng) encode/decode of uint8 HWC images, libjpeg/libpng errors as io_error.
#pragma once

#include <csetjmp>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <jpeglib.h>
#include <png.h>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/file.hpp"
#include "shiftnorm/data/npy.hpp"

// Linking: JPEG functions need libjpeg (CMake JPEG::JPEG), PNG functions need libpng (PNG::PNG).
// Each is only referenced when its functions are used.
//
// Decoding hostile files: both libraries report errors by longjmp. The decoders call every libjpeg
// or libpng function that can fail from small C-style "phase" functions that hold no object with
// a destructor and return false when the library longjmps back to their setjmp; the C++ callers
// own the library structs and the pixel buffer through destructors and turn a failed phase into
// an io_error. Before any allocation for the image, the size a header claims is checked against
// max_image_pixels and against what the file can hold (see file.hpp); the pixel buffer then grows
// as rows are decoded, so a truncated stream fails long before the claimed size is allocated.

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

//! Throws io_error when a header claims more than max_image_pixels pixels.
inline void check_image_pixels(const std::string& what, const char* format, std::uint64_t width, std::uint64_t height) {
    if (width * height > max_image_pixels)  // both below 2^32: no overflow
        throw io_error(shiftnorm::detail::concat(what, ": ", format, " header claims ", width, "x", height,
                                                 " pixels, expected at most ", max_image_pixels,
                                                 " (data::max_image_pixels)"));
}

//! Rows to decode next into a buffer that grows as rows arrive: doubling, from about 1 MiB.
inline std::size_t next_rows(std::size_t done, std::size_t height, std::size_t stride) {
    const std::size_t first = std::max<std::size_t>(1, (std::size_t(1) << 20) / std::max<std::size_t>(stride, 1));
    return std::min(height, std::max(2 * done, first));
}

//! decode_jpeg's progress monitor: stops the decoder (longjmp, as an error does) when the stream
//! reaches scan max_jpeg_scans + 1; libjpeg calls it before each chunk of input it consumes.
struct jpeg_scan_guard {
    jpeg_progress_mgr mgr;  // first member: cinfo->progress points here
    jpeg_error_ctx* err;
    bool tripped;
};
inline void jpeg_limit_scans(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    const int scan = reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number;
    if (scan <= max_jpeg_scans) return;
    auto* g = reinterpret_cast<jpeg_scan_guard*>(cinfo->progress);
    g->tripped = true;
    std::snprintf(g->err->message, sizeof g->err->message,
                  "JPEG has more than %d scans (data::max_jpeg_scans; crafted file?)", max_jpeg_scans);
    std::longjmp(g->err->jump, 1);
}

//! Owns a libjpeg decompressor (destroyed on every path out of decode_jpeg). The struct starts
//! zeroed, so destroying it is safe even when jpeg_create_decompress failed or never ran.
struct jpeg_decoder {
    jpeg_decompress_struct cinfo{};
    jpeg_error_ctx err{};
    jpeg_scan_guard scans{};
    jpeg_decoder() {
        cinfo.err = jpeg_std_error(&err.mgr);
        err.mgr.error_exit = jpeg_error_exit_longjmp;
        err.mgr.output_message = jpeg_silent_output;
        scans.mgr.progress_monitor = jpeg_limit_scans;
        scans.err = &err;
    }
    //! The message of a failed phase: libjpeg's, or the scan limit's.
    std::string failure(const std::string& what) const {
        return shiftnorm::detail::concat(what, scans.tripped ? ": " : ": libjpeg error: ", err.message);
    }
    jpeg_decoder(const jpeg_decoder&) = delete;
    jpeg_decoder& operator=(const jpeg_decoder&) = delete;
    ~jpeg_decoder() { jpeg_destroy_decompress(&cinfo); }
};

// C-style phases of decode_jpeg: nothing with a destructor lives in these frames, so the longjmp
// of jpeg_error_exit_longjmp back to their setjmp skips no C++ cleanup. Each returns false after
// a libjpeg error (the message is in err->message).
inline bool jpeg_phase_header(jpeg_decompress_struct* cinfo, jpeg_error_ctx* err, jpeg_progress_mgr* progress,
                              const std::uint8_t* data, std::size_t size) {
    if (setjmp(err->jump)) return false;
    jpeg_create_decompress(cinfo);
    cinfo->progress = progress;
    jpeg_mem_src(cinfo, const_cast<unsigned char*>(data), static_cast<unsigned long>(size));
    jpeg_read_header(cinfo, TRUE);
    return true;
}
inline bool jpeg_phase_start(jpeg_decompress_struct* cinfo, jpeg_error_ctx* err) {
    if (setjmp(err->jump)) return false;
    cinfo->out_color_space = cinfo->num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(cinfo);
    return true;
}
//! Decodes scanlines up to row `end` into `pixels`; stops early at the first warning (libjpeg
//! only warns at a premature end of data and pads the rest with gray).
inline bool jpeg_phase_rows(jpeg_decompress_struct* cinfo, jpeg_error_ctx* err, std::uint8_t* pixels,
                            std::size_t stride, JDIMENSION end) {
    if (setjmp(err->jump)) return false;
    while (cinfo->output_scanline < end && err->mgr.num_warnings == 0) {
        JSAMPROW row = pixels + std::size_t(cinfo->output_scanline) * stride;
        if (jpeg_read_scanlines(cinfo, &row, 1) != 1) break;
    }
    return true;
}
inline bool jpeg_phase_finish(jpeg_decompress_struct* cinfo, jpeg_error_ctx* err) {
    if (setjmp(err->jump)) return false;
    jpeg_finish_decompress(cinfo);
    return true;
}

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
//! Limits, checked on the header before anything is allocated for the image: at most
//! max_image_pixels pixels, and at most 8 * size 8x8 blocks (Huffman coding spends at least one
//! bit on every block; only an arithmetic-coded, nearly uniform image can be denser, and such a
//! file is rejected too). The pixel buffer grows as scanlines are decoded. At most
//! max_jpeg_scans scans are read (a progressive JPEG's work is scans x blocks).
inline decoded_image decode_jpeg(const std::uint8_t* data, std::size_t size, const std::string& what = "<memory>") {
    using shiftnorm::detail::concat;
    if (data == nullptr || size < 4 || data[0] != 0xFF || data[1] != 0xD8)
        throw io_error(concat(what, ": argument 'data' expected a JPEG stream (starting FF D8), got ", size,
                              " bytes without that marker"));
    detail::jpeg_decoder d;
    if (!detail::jpeg_phase_header(&d.cinfo, &d.err, &d.scans.mgr, data, size)) throw io_error(d.failure(what));
    const std::uint64_t width = d.cinfo.image_width, height = d.cinfo.image_height;
    detail::check_image_pixels(what, "JPEG", width, height);
    std::uint64_t blocks = 0, can_hold = 0;
    for (int c = 0; c < d.cinfo.num_components; ++c)
        blocks += std::uint64_t(d.cinfo.comp_info[c].width_in_blocks) * d.cinfo.comp_info[c].height_in_blocks;
    if (detail::checked_mul(size, 8, can_hold) && blocks > can_hold)
        throw io_error(concat(what, ": JPEG header claims ", width, "x", height, " pixels (", blocks,
                              " 8x8 blocks), more than a ", size, "-byte file can hold (at most ", can_hold,
                              " blocks at one bit per block; truncated or crafted file)"));
    if (!detail::jpeg_phase_start(&d.cinfo, &d.err)) throw io_error(d.failure(what));
    decoded_image img;
    img.height = static_cast<int>(d.cinfo.output_height);
    img.width = static_cast<int>(d.cinfo.output_width);
    img.channels = d.cinfo.output_components;
    const std::size_t stride = static_cast<std::size_t>(img.width) * img.channels, h = d.cinfo.output_height;
    while (d.cinfo.output_scanline < h) {
        const std::size_t rows = detail::next_rows(d.cinfo.output_scanline, h, stride);
        img.pixels.resize(rows * stride);
        if (!detail::jpeg_phase_rows(&d.cinfo, &d.err, img.pixels.data(), stride, JDIMENSION(rows)))
            throw io_error(d.failure(what));
        if (d.err.mgr.num_warnings > 0 || d.cinfo.output_scanline < rows)
            throw io_error(concat(what, ": corrupt or truncated JPEG data (libjpeg warning at row ", d.cinfo.output_scanline,
                                  " of ", h, ")"));
    }
    if (!detail::jpeg_phase_finish(&d.cinfo, &d.err)) throw io_error(d.failure(what));
    if (d.err.mgr.num_warnings > 0)
        throw io_error(concat(what, ": corrupt or truncated JPEG data (", d.err.mgr.num_warnings, " libjpeg warning(s))"));
    return img;
}

namespace detail {
//! libpng's error pointer: the message of the last error (plain data, nothing to destroy).
struct png_message {
    char text[256];
};
struct png_mem_writer {
    std::vector<std::uint8_t>* out;
};
inline void png_write_to_vector(png_structp png, png_bytep data, png_size_t len) {
    auto* w = static_cast<png_mem_writer*>(png_get_io_ptr(png));
    bool ok = true;
    try {
        w->out->insert(w->out->end(), data, data + len);
    } catch (...) {  // never let a C++ exception unwind through libpng
        ok = false;
    }
    if (!ok) png_error(png, "out of memory while writing the PNG stream");
}
inline void png_flush_noop(png_structp) {}
//! decode_png's input: the stream, the read position and the error message (plain data).
struct png_mem_reader {
    const std::uint8_t* p;
    std::size_t size, pos;
    png_message error;
};
inline void png_read_from_memory(png_structp png, png_bytep data, png_size_t len) {
    auto* r = static_cast<png_mem_reader*>(png_get_io_ptr(png));
    if (len > r->size - r->pos) png_error(png, "unexpected end of PNG data (truncated file)");
    std::memcpy(data, r->p + r->pos, len);
    r->pos += len;
}
inline void png_error_to_jmp(png_structp png, png_const_charp msg) {
    if (auto* m = static_cast<png_message*>(png_get_error_ptr(png))) {
        std::strncpy(m->text, msg ? msg : "unknown error", sizeof m->text - 1);
        m->text[sizeof m->text - 1] = '\0';
    }
    png_longjmp(png, 1);
}
inline void png_warning_silent(png_structp, png_const_charp) {}

//! Owns libpng's read structs (destroyed on every path out of decode_png).
struct png_reader {
    png_structp png = nullptr;
    png_infop info = nullptr;
    png_reader() = default;
    png_reader(const png_reader&) = delete;
    png_reader& operator=(const png_reader&) = delete;
    ~png_reader() {
        if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    }
};

// C-style phases of decode_png: nothing with a destructor lives in these frames, so the longjmp
// of png_error_to_jmp back to their setjmp skips no C++ cleanup. Each returns false after a
// libpng error (the message is in the reader's png_message).
inline bool png_phase_info(png_structp png, png_infop info) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_info(png, info);
    return true;
}
//! Sets up 8-bit output (palette -> RGB(A), gray below 8 bits expanded, 16 -> 8 bits, tRNS ->
//! alpha, libpng's interlace handling) and returns the number of passes in *passes.
inline bool png_phase_transform(png_structp png, png_infop info, int* passes) {
    if (setjmp(png_jmpbuf(png))) return false;
    const int type = png_get_color_type(png, info);
    const int depth = png_get_bit_depth(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16) png_set_strip_16(png);
    *passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return true;
}
//! No transformation but libpng's interlace handling (rows stay at their stored bit depth).
inline bool png_phase_interlace_only(png_structp png, png_infop info, int* passes) {
    if (setjmp(png_jmpbuf(png))) return false;
    *passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return true;
}
//! Reads rows [y0, y1) in each of `passes` passes (an interlaced image needs all rows at once).
inline bool png_phase_rows(png_structp png, std::uint8_t* pixels, std::size_t stride, std::size_t y0, std::size_t y1,
                           int passes) {
    if (setjmp(png_jmpbuf(png))) return false;
    for (int pass = 0; pass < passes; ++pass)
        for (std::size_t y = y0; y < y1; ++y) png_read_row(png, pixels + y * stride, nullptr);
    return true;
}
inline bool png_phase_end(png_structp png) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_read_end(png, nullptr);
    return true;
}
}  // namespace detail

namespace detail {
//! Walks the chunk list of an in-memory PNG (signature already checked) up to IEND and throws
//! io_error when a chunk other than IDAT claims more data than the rest of the stream holds.
//! libpng allocates (and zeroes) a buffer of the claimed length for some ancillary chunks (zTXt,
//! iTXt ...) before reading them, and for such chunks its own length limit is only a warning, so
//! without this check a 100-byte file could cost gigabytes; libpng rejects such a file anyway,
//! once it fails to read the chunk. IDAT is streamed in small pieces, so a cut IDAT (like a cut
//! chunk frame or CRC) is left to libpng's truncation error. Types and CRCs stay libpng's business.
inline void png_check_chunk_lengths(const std::uint8_t* data, std::size_t size, const std::string& what) {
    std::size_t pos = 8;
    while (size - pos >= 8) {
        const std::uint32_t len = (std::uint32_t(data[pos]) << 24) | (std::uint32_t(data[pos + 1]) << 16) |
                                  (std::uint32_t(data[pos + 2]) << 8) | std::uint32_t(data[pos + 3]);
        const char type[5] = {char(data[pos + 4]), char(data[pos + 5]), char(data[pos + 6]), char(data[pos + 7]), '\0'};
        if (std::memcmp(type, "IDAT", 4) != 0 && len > size - pos - 8) {
            const bool printable = std::all_of(type, type + 4, [](char c) { return c >= 0x20 && c < 0x7f; });
            throw io_error(shiftnorm::detail::concat(what, ": PNG chunk '", printable ? type : "?", "' at byte ", pos,
                                                     " claims ", len, " bytes of data, but only ", size - pos - 8,
                                                     " bytes follow its header (truncated or crafted file)"));
        }
        if (std::memcmp(type, "IEND", 4) == 0 || std::uint64_t(len) + 12 > size - pos) return;
        pos += 12 + std::size_t(len);
    }
}
}  // namespace detail

namespace detail {
//! An interlaced PNG is read into a whole-image buffer before any row is known to be there, and
//! libpng's 8-bit expansions (palette -> RGBA, 1-bit gray -> 8 bits) make that buffer up to 32x
//! the stored rows that decode_png's deflate check bounds. So an interlaced image is first
//! decoded once at its stored depth, untransformed (at most h x stored_row bytes, which the
//! file can hold), and only a stream whose rows all decode gets the 8-bit buffer. Throws io_error.
inline void png_validate_interlaced(const std::uint8_t* data, std::size_t size, const std::string& what, std::size_t height,
                                    std::size_t stored_row) {
    using shiftnorm::detail::concat;
    png_mem_reader r{data, size, 0, {}};
    png_reader pr;
    pr.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.error, png_error_to_jmp, png_warning_silent);
    if (!pr.png) throw io_error(concat(what, ": png_create_read_struct failed"));
    pr.info = png_create_info_struct(pr.png);
    if (!pr.info) throw io_error(concat(what, ": png_create_info_struct failed"));
    png_set_read_fn(pr.png, &r, png_read_from_memory);
    if (!png_phase_info(pr.png, pr.info)) throw io_error(concat(what, ": libpng error: ", r.error.text));
    int passes = 1;
    if (!png_phase_interlace_only(pr.png, pr.info, &passes)) throw io_error(concat(what, ": libpng error: ", r.error.text));
    if (png_get_rowbytes(pr.png, pr.info) != stored_row)
        throw io_error(concat(what, ": libpng stored row size ", png_get_rowbytes(pr.png, pr.info), ", expected ", stored_row));
    std::vector<std::uint8_t> rows(height * stored_row);
    if (!png_phase_rows(pr.png, rows.data(), stored_row, 0, height, passes))
        throw io_error(concat(what, ": libpng error: ", r.error.text));
}
}  // namespace detail

namespace detail {
//! Owns libpng's write structs (destroyed on every path out of encode_png).
struct png_writer {
    png_structp png = nullptr;
    png_infop info = nullptr;
    png_writer() = default;
    png_writer(const png_writer&) = delete;
    png_writer& operator=(const png_writer&) = delete;
    ~png_writer() {
        if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
    }
};
//! C-style phase of encode_png (see decode_png's phases): false after a libpng error.
inline bool png_phase_encode(png_structp png, png_infop info, const std::uint8_t* hwc, int height, int width, int channels) {
    if (setjmp(png_jmpbuf(png))) return false;
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
    return true;
}
}  // namespace detail

//! Encodes a uint8 HWC image (1-4 channels: gray, gray+alpha, RGB, RGBA) as an 8-bit PNG.
inline std::vector<std::uint8_t> encode_png(const std::uint8_t* hwc, int height, int width, int channels) {
    detail::check_image_args("encode_png", hwc, height, width, channels, true);
    std::vector<std::uint8_t> out;
    detail::png_message msg{};
    detail::png_mem_writer w{&out};
    detail::png_writer pw;
    pw.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &msg, detail::png_error_to_jmp, detail::png_warning_silent);
    if (!pw.png) throw io_error("encode_png: png_create_write_struct failed");
    pw.info = png_create_info_struct(pw.png);
    if (!pw.info) throw io_error("encode_png: png_create_info_struct failed");
    png_set_write_fn(pw.png, &w, detail::png_write_to_vector, detail::png_flush_noop);
    if (!detail::png_phase_encode(pw.png, pw.info, hwc, height, width, channels))
        throw io_error(shiftnorm::detail::concat("encode_png: libpng error: ", msg.text));
    return out;
}

//! Decodes a PNG stream to 8-bit HWC: palette expands to RGB(A), 16-bit is reduced to 8, gray
//! below 8 bits is expanded; channels are 1-4 as stored. Truncated/corrupt data throws io_error.
//! Limits, checked on the header before anything is allocated for the image: at most
//! max_image_pixels pixels, and no more pixel data than the file can hold at deflate's maximum
//! ratio (deflate_max_ratio). The pixel buffer of a non-interlaced image grows as rows decode;
//! an interlaced image is decoded at its stored depth first (png_validate_interlaced), so its
//! 8-bit buffer is allocated only once every row is known to be in the file.
//! No chunk may claim more bytes than the stream holds (checked before libpng runs).
inline decoded_image decode_png(const std::uint8_t* data, std::size_t size, const std::string& what = "<memory>") {
    using shiftnorm::detail::concat;
    if (data == nullptr || size < 8 || png_sig_cmp(const_cast<png_bytep>(data), 0, 8) != 0)
        throw io_error(concat(what, ": argument 'data' expected a PNG stream (8-byte signature), got ", size,
                              " bytes without it"));
    detail::png_check_chunk_lengths(data, size, what);
    detail::png_mem_reader r{data, size, 0, {}};
    detail::png_reader pr;
    pr.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r.error, detail::png_error_to_jmp, detail::png_warning_silent);
    if (!pr.png) throw io_error(concat(what, ": png_create_read_struct failed"));
    pr.info = png_create_info_struct(pr.png);
    if (!pr.info) throw io_error(concat(what, ": png_create_info_struct failed"));
    png_set_read_fn(pr.png, &r, detail::png_read_from_memory);
    if (!detail::png_phase_info(pr.png, pr.info)) throw io_error(concat(what, ": libpng error: ", r.error.text));
    const std::uint64_t width = png_get_image_width(pr.png, pr.info), height = png_get_image_height(pr.png, pr.info);
    detail::check_image_pixels(what, "PNG", width, height);
    // The filtered rows inflate from the IDAT stream, which is part of the file.
    const std::uint64_t stored_row = (width * png_get_channels(pr.png, pr.info) * png_get_bit_depth(pr.png, pr.info) + 7) / 8;
    std::uint64_t can_hold = 0;
    if (detail::checked_mul(size, deflate_max_ratio, can_hold) && height * stored_row > can_hold)
        throw io_error(concat(what, ": PNG header claims ", width, "x", height, " pixels (", height * stored_row,
                              " bytes of pixel data), more than a ", size, "-byte file can hold (at most ", can_hold,
                              " bytes at deflate's ", deflate_max_ratio, ":1 ratio; truncated or crafted file)"));
    if (png_get_interlace_type(pr.png, pr.info) != PNG_INTERLACE_NONE)
        detail::png_validate_interlaced(data, size, what, static_cast<std::size_t>(height), static_cast<std::size_t>(stored_row));
    int passes = 1;
    if (!detail::png_phase_transform(pr.png, pr.info, &passes)) throw io_error(concat(what, ": libpng error: ", r.error.text));
    decoded_image img;
    img.width = static_cast<int>(width);
    img.height = static_cast<int>(height);
    img.channels = png_get_channels(pr.png, pr.info);
    const std::size_t stride = static_cast<std::size_t>(width) * img.channels, h = static_cast<std::size_t>(height);
    if (png_get_rowbytes(pr.png, pr.info) != stride)
        throw io_error(concat(what, ": libpng row size ", png_get_rowbytes(pr.png, pr.info), ", expected ", stride));
    for (std::size_t done = 0; done < h;) {
        const std::size_t rows = passes == 1 ? detail::next_rows(done, h, stride) : h;
        img.pixels.resize(rows * stride);
        if (!detail::png_phase_rows(pr.png, img.pixels.data(), stride, done, rows, passes))
            throw io_error(concat(what, ": libpng error: ", r.error.text));
        done = rows;
    }
    if (!detail::png_phase_end(pr.png)) throw io_error(concat(what, ": libpng error: ", r.error.text));
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
    const auto bytes = read_regular_file(path, "image file");
    if (bytes.size() >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) return decode_jpeg(bytes.data(), bytes.size(), path);
    if (bytes.size() >= 8 && png_sig_cmp(const_cast<png_bytep>(bytes.data()), 0, 8) == 0)
        return decode_png(bytes.data(), bytes.size(), path);
    throw io_error(shiftnorm::detail::concat(path, ": argument 'path' expected a JPEG or PNG file, got unknown signature"));
}

}  // namespace shiftnorm::data
