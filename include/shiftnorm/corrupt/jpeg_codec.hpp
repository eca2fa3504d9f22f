// SPDX-License-Identifier: MIT
// The JPEG corruption's round trip without a file: libjpeg(-turbo)'s baseline encoder and decoder
// at Pillow's settings, every integer step the same, the entropy coding (lossless) left out.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/scratch.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt::detail {

// What Pillow's `save(format='JPEG', quality=q)` and `Image.open` do through libjpeg 6.2 / libjpeg-turbo
// 2.x, step by step (jccolor.c, jcsample.c, jcprepct.c, jfdctint.c, jcdctmgr.c, jcparam.c,
// jidctint.c, jdsample.c, jdmainct.c, jdcolor.c), all in integers:
//  1. RGB -> YCbCr in 16-bit fixed point (Y = (19595 R + 38470 G + 7471 B + 2^15) >> 16, ...).
//  2. Planes padded to whole 16 x 16 MCUs (4:2:0; 8 x 8 for grey images): the last column
//     repeated before Cb and Cr are averaged over 2 x 2 (bias 1, 2, 1, 2 along a row), an odd last
//     row repeated once, then the last row of each plane repeated below (so an even height ends
//     Cb and Cr with copies of their last row, not averages of the image's last row with itself).
//  3. Each 8 x 8 block: forward DCT "islow" (rows, then columns; 13-bit constants, 2 extra bits
//     between the passes), quantization by 8 q rounded half away from zero, q from the standard
//     tables scaled by the quality (jpeg_set_quality(q, force_baseline = TRUE)); the decoder
//     multiplies back by q and runs the inverse "islow" (columns, then rows), + 128, clipped.
//     (libjpeg's table wraps values beyond [-512, 511] around, its SIMD code clips; coefficients
//     of an 8-bit image quantized by q <= 255 do not get there.)
//  4. Cb and Cr back to full size by the "fancy" triangle filter (9/16, 3/16, 3/16, 1/16, biases
//     8 and 7; the rows above the first and below the last repeat them); plain replication when
//     the subsampled width is 2 or less, as libjpeg-turbo does.
//  5. YCbCr -> RGB with libjpeg's tables, clipped.
// The Huffman coding in between is lossless and left out. tests/corrupt/test_jpeg_codec.cpp
// compares the bytes with libjpeg's own encode + decode (data::encode_jpeg / decode_jpeg).

//! libjpeg's standard quantization tables (JPEG Annex K), natural (row-major) order.
inline constexpr std::array<std::uint16_t, 64> jpeg_luma_table = {
    16, 11, 10, 16, 24,  40,  51,  61,  12, 12, 14, 19, 26,  58,  60,  55,  14, 13, 16, 24, 40,  57,
    69, 56, 14, 17, 22,  29,  51,  87,  80, 62, 18, 22, 37,  56,  68,  109, 103, 77, 24, 35, 55, 64,
    81, 104, 113, 92, 49, 64, 78,  87,  103, 121, 120, 101, 72, 92, 95, 98,  112, 100, 103, 99};
inline constexpr std::array<std::uint16_t, 64> jpeg_chroma_table = {
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99,
    99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99};

//! jpeg_set_quality(quality, TRUE): the table scaled by 5000 / q (q < 50) or 200 - 2 q,
//! (t s + 50) / 100 clipped to [1, 255].
inline std::array<std::int32_t, 64> jpeg_quant_table(int quality, bool chroma) {
    quality = std::clamp(quality, 1, 100);
    const long scale = quality < 50 ? 5000L / quality : 200L - 2L * quality;
    const auto& base = chroma ? jpeg_chroma_table : jpeg_luma_table;
    std::array<std::int32_t, 64> q{};
    for (int i = 0; i < 64; ++i) q[i] = static_cast<std::int32_t>(std::clamp((base[i] * scale + 50L) / 100L, 1L, 255L));
    return q;
}

//! A quantization table prepared for the block kernel: q, the divisor 8 q, half of it, and the
//! multiplier m = floor(2^32 / 8q) + 1 with floor(a / 8q) = (a m) >> 32 for every a < 2^21
//! (the error a (m 8q - 2^32) / 2^32 stays below 1 when a 8q < 2^32).
struct jpeg_divisors {
    std::array<std::int32_t, 64> q{}, half{};
    std::array<std::uint32_t, 64> mul{};
    explicit jpeg_divisors(const std::array<std::int32_t, 64>& table) {
        for (int i = 0; i < 64; ++i) {
            const std::uint32_t d = static_cast<std::uint32_t>(table[i]) * 8u;
            q[i] = table[i];
            half[i] = static_cast<std::int32_t>(d / 2);
            mul[i] = static_cast<std::uint32_t>((std::uint64_t{1} << 32) / d + 1);
        }
    }
};

//! The prepared luma and chroma tables of every quality 1-100, built on first use.
inline const std::array<jpeg_divisors, 2>& jpeg_tables(int quality) {
    static const std::vector<std::array<jpeg_divisors, 2>> all = [] {
        std::vector<std::array<jpeg_divisors, 2>> t;
        t.reserve(100);
        for (int q = 1; q <= 100; ++q) t.push_back({jpeg_divisors(jpeg_quant_table(q, false)), jpeg_divisors(jpeg_quant_table(q, true))});
        return t;
    }();
    return all[static_cast<std::size_t>(std::clamp(quality, 1, 100) - 1)];
}

//! Blocks processed side by side: one lane per block.
inline constexpr int jpeg_lanes = 16;

// The islow constants (13 fractional bits).
inline constexpr std::int32_t jpeg_c0_298 = 2446, jpeg_c0_390 = 3196, jpeg_c0_541 = 4433, jpeg_c0_765 = 6270,
                              jpeg_c0_899 = 7373, jpeg_c1_175 = 9633, jpeg_c1_501 = 12299, jpeg_c1_847 = 15137,
                              jpeg_c1_961 = 16069, jpeg_c2_053 = 16819, jpeg_c2_562 = 20995, jpeg_c3_072 = 25172;

//! One 1-D forward islow pass over the 8 elements e[0], e[step], ..., e[7 step] of every lane
//! (each element a row of jpeg_lanes values): the outputs 0 and 4 shifted left by `left`
//! (pass 1) or descaled by `even` (pass 2), the others descaled by `odd` bits.
template <int Left, int Even, int Odd>
SHIFTNORM_KERNEL_BODY void jpeg_fdct_pass(std::int32_t* e, int step) {
    constexpr int L = jpeg_lanes;
    std::int32_t* p[8];
    for (int k = 0; k < 8; ++k) p[k] = e + static_cast<std::ptrdiff_t>(k) * step * L;
    for (int l = 0; l < L; ++l) {
        const std::int32_t t0 = p[0][l] + p[7][l], t7 = p[0][l] - p[7][l];
        const std::int32_t t1 = p[1][l] + p[6][l], t6 = p[1][l] - p[6][l];
        const std::int32_t t2 = p[2][l] + p[5][l], t5 = p[2][l] - p[5][l];
        const std::int32_t t3 = p[3][l] + p[4][l], t4 = p[3][l] - p[4][l];
        const std::int32_t t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
        if constexpr (Even == 0) {
            p[0][l] = (t10 + t11) * (1 << Left);
            p[4][l] = (t10 - t11) * (1 << Left);
        } else {
            p[0][l] = (t10 + t11 + (1 << (Even - 1))) >> Even;
            p[4][l] = (t10 - t11 + (1 << (Even - 1))) >> Even;
        }
        constexpr std::int32_t r = 1 << (Odd - 1);
        const std::int32_t z1 = (t12 + t13) * jpeg_c0_541;
        p[2][l] = (z1 + t13 * jpeg_c0_765 + r) >> Odd;
        p[6][l] = (z1 - t12 * jpeg_c1_847 + r) >> Odd;
        const std::int32_t z5 = (t4 + t6 + t5 + t7) * jpeg_c1_175;
        const std::int32_t a1 = (t4 + t7) * -jpeg_c0_899, a2 = (t5 + t6) * -jpeg_c2_562;
        const std::int32_t a3 = (t4 + t6) * -jpeg_c1_961 + z5, a4 = (t5 + t7) * -jpeg_c0_390 + z5;
        p[7][l] = (t4 * jpeg_c0_298 + a1 + a3 + r) >> Odd;
        p[5][l] = (t5 * jpeg_c2_053 + a2 + a4 + r) >> Odd;
        p[3][l] = (t6 * jpeg_c3_072 + a2 + a3 + r) >> Odd;
        p[1][l] = (t7 * jpeg_c1_501 + a1 + a4 + r) >> Odd;
    }
}

//! One 1-D inverse islow pass (the same element layout), outputs descaled by `Shift` bits and,
//! when `Clip`, moved to [0, 255] (+ 128, clipped).
template <int Shift, bool Clip>
SHIFTNORM_KERNEL_BODY void jpeg_idct_pass(std::int32_t* e, int step) {
    constexpr int L = jpeg_lanes;
    constexpr std::int32_t r = (1 << (Shift - 1)) + (Clip ? (128 << Shift) : 0);
    std::int32_t* p[8];
    for (int k = 0; k < 8; ++k) p[k] = e + static_cast<std::ptrdiff_t>(k) * step * L;
    for (int l = 0; l < L; ++l) {
        const std::int32_t z2 = p[2][l], z3 = p[6][l];
        const std::int32_t z1 = (z2 + z3) * jpeg_c0_541;
        const std::int32_t e2 = z1 - z3 * jpeg_c1_847, e3 = z1 + z2 * jpeg_c0_765;
        const std::int32_t e0 = (p[0][l] + p[4][l]) * (1 << 13), e1 = (p[0][l] - p[4][l]) * (1 << 13);
        const std::int32_t t10 = e0 + e3 + r, t13 = e0 - e3 + r, t11 = e1 + e2 + r, t12 = e1 - e2 + r;
        const std::int32_t o3 = p[1][l], o2 = p[3][l], o1 = p[5][l], o0 = p[7][l];
        const std::int32_t z5 = (o0 + o2 + o1 + o3) * jpeg_c1_175;
        const std::int32_t a1 = (o0 + o3) * -jpeg_c0_899, a2 = (o1 + o2) * -jpeg_c2_562;
        const std::int32_t a3 = (o0 + o2) * -jpeg_c1_961 + z5, a4 = (o1 + o3) * -jpeg_c0_390 + z5;
        const std::int32_t s0 = o0 * jpeg_c0_298 + a1 + a3, s1 = o1 * jpeg_c2_053 + a2 + a4;
        const std::int32_t s2 = o2 * jpeg_c3_072 + a2 + a3, s3 = o3 * jpeg_c1_501 + a1 + a4;
        std::int32_t v[8] = {t10 + s3, t11 + s2, t12 + s1, t13 + s0, t13 - s0, t12 - s1, t11 - s2, t10 - s3};
        for (int k = 0; k < 8; ++k) {
            std::int32_t x = v[k] >> Shift;
            if constexpr (Clip) x = std::min(std::max(x, 0), 255);
            p[k][l] = x;
        }
    }
}

//! Quantization and dequantization of the coefficients: 8 q x rounded half away from zero to a
//! multiple of 8 q, then times q (what the decoder sees): sign(t) floor((|t| + 4 q) / 8 q) q.
SHIFTNORM_KERNEL_BODY void jpeg_requantize(std::int32_t* e, const jpeg_divisors& d) {
    constexpr int L = jpeg_lanes;
    for (int i = 0; i < 64; ++i) {
        std::int32_t* row = e + static_cast<std::ptrdiff_t>(i) * L;
        const std::uint64_t m = d.mul[i];
        const std::int32_t h = d.half[i], q = d.q[i];
        for (int l = 0; l < L; ++l) {
            const std::int32_t t = row[l];
            const std::uint32_t a = static_cast<std::uint32_t>((t < 0 ? -t : t) + h);
            const std::int32_t k = static_cast<std::int32_t>((a * m) >> 32) * q;
            row[l] = t < 0 ? -k : k;
        }
    }
}

//! The round trip of jpeg_lanes blocks: e holds 64 rows of jpeg_lanes samples (element r * 8 + c
//! of every block, level-shifted by -128) and receives the decoded samples (0-255).
SHIFTNORM_KERNEL_BODY void jpeg_blocks_body(std::int32_t* e, const jpeg_divisors& d) {
    constexpr int L = jpeg_lanes;
    for (int r = 0; r < 8; ++r) jpeg_fdct_pass<2, 0, 11>(e + r * 8 * L, 1);  // rows
    for (int c = 0; c < 8; ++c) jpeg_fdct_pass<0, 2, 15>(e + c * L, 8);     // columns
    jpeg_requantize(e, d);
    for (int c = 0; c < 8; ++c) jpeg_idct_pass<11, false>(e + c * L, 8);    // columns
    for (int r = 0; r < 8; ++r) jpeg_idct_pass<18, true>(e + r * 8 * L, 1);  // rows
}

//! A padded uint8 plane (height and width multiples of 8) whose blocks go through one table.
struct jpeg_plane {
    std::uint8_t* data = nullptr;
    int height = 0, width = 0;
    int blocks() const { return (height / 8) * (width / 8); }
    std::uint8_t* block(int b) const {
        const int bw = width / 8;
        return data + static_cast<std::size_t>(b / bw) * 8 * width + static_cast<std::size_t>(b % bw) * 8;
    }
};

//! Round trip of every 8 x 8 block of the planes (all through table d), in place: jpeg_lanes
//! blocks at a time in the order of the planes' rows, across rows and planes (idle lanes of the
//! last group compute on what the previous group left and are not stored).
SHIFTNORM_KERNEL_BODY void jpeg_planes_body(const jpeg_plane* planes, int nplanes, const jpeg_divisors& d) {
    constexpr int L = jpeg_lanes;
    alignas(64) std::int32_t e[64 * L];
    alignas(64) std::int32_t row[8 * L] = {};
    struct run {  // neighbouring blocks of one block row: lanes [lane, lane + count)
        std::uint8_t* data;
        int stride, lane, count;
    } runs[L];
    int p = 0, b = 0;  // the next block: plane p, block b
    for (;;) {
        int n = 0, nruns = 0;
        while (n < L) {
            while (p < nplanes && b == planes[p].blocks()) ++p, b = 0;
            if (p == nplanes) break;
            const int bw = planes[p].width / 8;
            const int count = std::min(L - n, bw - b % bw);
            runs[nruns++] = {planes[p].block(b), planes[p].width, n, count};
            n += count;
            b += count;
        }
        if (n == 0) return;
        for (int r = 0; r < 8; ++r) {
            for (int k = 0; k < nruns; ++k) {
                const std::uint8_t* src = runs[k].data + static_cast<std::size_t>(r) * runs[k].stride;
                std::int32_t* to = row + 8 * runs[k].lane;
                for (int i = 0; i < 8 * runs[k].count; ++i) to[i] = static_cast<std::int32_t>(src[i]) - 128;
            }
            for (int c = 0; c < 8; ++c)
                for (int l = 0; l < L; ++l) e[(r * 8 + c) * L + l] = row[8 * l + c];
        }
        jpeg_blocks_body(e, d);
        for (int r = 0; r < 8; ++r) {
            for (int c = 0; c < 8; ++c)
                for (int l = 0; l < L; ++l) row[8 * l + c] = e[(r * 8 + c) * L + l];
            for (int k = 0; k < nruns; ++k) {
                std::uint8_t* to = runs[k].data + static_cast<std::size_t>(r) * runs[k].stride;
                const std::int32_t* from = row + 8 * runs[k].lane;
                for (int i = 0; i < 8 * runs[k].count; ++i) to[i] = static_cast<std::uint8_t>(from[i]);
            }
        }
    }
}

SHIFTNORM_FP_EXACT inline void jpeg_planes_portable(const jpeg_plane* planes, int nplanes, const jpeg_divisors& d) {
    jpeg_planes_body(planes, nplanes, d);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void jpeg_planes_avx512(const jpeg_plane* planes, int nplanes,
                                                                                    const jpeg_divisors& d) {
    jpeg_planes_body(planes, nplanes, d);
}
#endif
inline void jpeg_planes_round_trip(const jpeg_plane* planes, int nplanes, const jpeg_divisors& d) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return jpeg_planes_avx512(planes, nplanes, d);
#endif
    jpeg_planes_portable(planes, nplanes, d);
}

//! libjpeg's RGB -> YCbCr (jccolor.c) of n pixels, three planes out.
SHIFTNORM_KERNEL_BODY void jpeg_to_ycc_body(const std::uint8_t* rgb, std::size_t n, std::uint8_t* y, std::uint8_t* cb, std::uint8_t* cr) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::int32_t r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        y[i] = static_cast<std::uint8_t>((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
        cb[i] = static_cast<std::uint8_t>((-11059 * r - 21709 * g + 32768 * b + 8421375) >> 16);
        cr[i] = static_cast<std::uint8_t>((32768 * r - 27439 * g - 5329 * b + 8421375) >> 16);
    }
}

//! libjpeg's YCbCr -> RGB (jdcolor.c: its table values, clipped) of n pixels.
SHIFTNORM_KERNEL_BODY void jpeg_to_rgb_body(const std::uint8_t* y, const std::uint8_t* cbp, const std::uint8_t* crp, std::size_t n,
                                            std::uint8_t* rgb) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::int32_t cb = cbp[i] - 128, cr = crp[i] - 128, yy = y[i];
        const std::int32_t r = yy + ((91881 * cr + 32768) >> 16);
        const std::int32_t g = yy + ((-22554 * cb + 32768 - 46802 * cr) >> 16);
        const std::int32_t b = yy + ((116130 * cb + 32768) >> 16);
        rgb[3 * i] = static_cast<std::uint8_t>(std::min(std::max(r, 0), 255));
        rgb[3 * i + 1] = static_cast<std::uint8_t>(std::min(std::max(g, 0), 255));
        rgb[3 * i + 2] = static_cast<std::uint8_t>(std::min(std::max(b, 0), 255));
    }
}

//! Cb or Cr of two full-size rows (a, b: W values) averaged over 2 x 2 into wc values with the
//! bias 1, 2, 1, 2 (jcsample.c h2v2_downsample; the last column repeated beyond W).
SHIFTNORM_KERNEL_BODY void jpeg_subsample_body(const std::uint8_t* a, const std::uint8_t* b, int W, int wc, std::uint8_t* out) {
    const int inside = W / 2;
    for (int i = 0; i < inside; ++i)
        out[i] = static_cast<std::uint8_t>((a[2 * i] + a[2 * i + 1] + b[2 * i] + b[2 * i + 1] + 1 + (i & 1)) >> 2);
    for (int i = inside; i < wc; ++i) {
        const int x0 = std::min(2 * i, W - 1), x1 = std::min(2 * i + 1, W - 1);
        out[i] = static_cast<std::uint8_t>((a[x0] + a[x1] + b[x0] + b[x1] + 1 + (i & 1)) >> 2);
    }
}

//! One full-size row of Cb or Cr from the subsampled rows nearest (n) and next nearest (f):
//! jdsample.c h2v2_fancy_upsample, 3 : 1 between the rows, then 3 : 1 between the columns with
//! the bias 8 (even pixels) and 7 (odd), each end column weighed with itself. work: cw + 2 ints.
SHIFTNORM_KERNEL_BODY void jpeg_upsample_body(const std::uint8_t* n, const std::uint8_t* f, int W, int cw, std::int32_t* work,
                                              std::uint8_t* out) {
    std::int32_t* s = work + 1;
    for (int i = 0; i < cw; ++i) s[i] = 3 * n[i] + f[i];
    s[-1] = s[0];
    s[cw] = s[cw - 1];
    for (int i = 0; i < W / 2; ++i) {
        out[2 * i] = static_cast<std::uint8_t>((s[i] * 3 + s[i - 1] + 8) >> 4);
        out[2 * i + 1] = static_cast<std::uint8_t>((s[i] * 3 + s[i + 1] + 7) >> 4);
    }
    if (W & 1) out[W - 1] = static_cast<std::uint8_t>((s[W / 2] * 3 + s[W / 2 - 1] + 8) >> 4);
}

#define SHIFTNORM_JPEG_TWINS(name, params, args)                                                         \
    SHIFTNORM_FP_EXACT inline void name##_portable params { name##_body args; }                          \
    SHIFTNORM_JPEG_AVX512_TWIN(name, params, args)                                                        \
    inline void name params {                                                                            \
        SHIFTNORM_JPEG_AVX512_CALL(name, args)                                                            \
        name##_portable args;                                                                            \
    }
#if defined(SHIFTNORM_CORRUPT_AVX512)
#define SHIFTNORM_JPEG_AVX512_TWIN(name, params, args) \
    SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void name##_avx512 params { name##_body args; }
#define SHIFTNORM_JPEG_AVX512_CALL(name, args) \
    if (avx512_kernels_available()) return name##_avx512 args;
#else
#define SHIFTNORM_JPEG_AVX512_TWIN(name, params, args)
#define SHIFTNORM_JPEG_AVX512_CALL(name, args)
#endif
SHIFTNORM_JPEG_TWINS(jpeg_to_ycc, (const std::uint8_t* rgb, std::size_t n, std::uint8_t* y, std::uint8_t* cb, std::uint8_t* cr),
                     (rgb, n, y, cb, cr))
SHIFTNORM_JPEG_TWINS(jpeg_to_rgb, (const std::uint8_t* y, const std::uint8_t* cb, const std::uint8_t* cr, std::size_t n, std::uint8_t* rgb),
                     (y, cb, cr, n, rgb))
SHIFTNORM_JPEG_TWINS(jpeg_subsample, (const std::uint8_t* a, const std::uint8_t* b, int W, int wc, std::uint8_t* out), (a, b, W, wc, out))
SHIFTNORM_JPEG_TWINS(jpeg_upsample, (const std::uint8_t* n, const std::uint8_t* f, int W, int cw, std::int32_t* work, std::uint8_t* out),
                     (n, f, W, cw, work, out))
#undef SHIFTNORM_JPEG_TWINS
#undef SHIFTNORM_JPEG_AVX512_TWIN
#undef SHIFTNORM_JPEG_AVX512_CALL

//! Copies h rows of w bytes into a plane of width wp and height hp, repeating the last column and
//! the last row (jcsample.c expand_right_edge, jcprepct.c expand_bottom_edge).
inline void jpeg_pad_plane(const std::uint8_t* src, int h, int w, std::uint8_t* plane, int hp, int wp) {
    for (int y = 0; y < h; ++y) {
        std::uint8_t* row = plane + static_cast<std::size_t>(y) * wp;
        std::copy_n(src + static_cast<std::size_t>(y) * w, w, row);
        std::fill(row + w, row + wp, row[w - 1]);
    }
    for (int y = h; y < hp; ++y) std::copy_n(plane + static_cast<std::size_t>(h - 1) * wp, wp, plane + static_cast<std::size_t>(y) * wp);
}

//! The JPEG round trip of an image at `quality` (1-100): 4:2:0 for RGB, one plane for grey.
//! dst may be src.
inline void jpeg_round_trip(const_image_view src, image_view dst, int quality) {
    const int H = src.height, W = src.width, C = src.channels;
    const int mcu = C == 3 ? 16 : 8;
    const int Hp = (H + mcu - 1) / mcu * mcu, Wp = (W + mcu - 1) / mcu * mcu;
    const std::size_t n = static_cast<std::size_t>(H) * W;
    const jpeg_divisors& luma = jpeg_tables(quality)[0];
    scratch_vector<std::uint8_t> yplane(static_cast<std::size_t>(Hp) * Wp);
    const jpeg_plane y_plane{yplane.data(), Hp, Wp};
    if (C == 1) {
        jpeg_pad_plane(src.data, H, W, yplane.data(), Hp, Wp);
        jpeg_planes_round_trip(&y_plane, 1, luma);
        for (int y = 0; y < H; ++y) std::copy_n(yplane.data() + static_cast<std::size_t>(y) * Wp, W, dst.data + static_cast<std::size_t>(y) * W);
        return;
    }
    const int Hc = Hp / 2, Wc = Wp / 2, ch = (H + 1) / 2, cw = (W + 1) / 2;
    scratch_vector<std::uint8_t> full(3 * n);  // Y, Cb, Cr of every pixel; later Y, Cb, Cr decoded
    std::uint8_t *fy = full.data(), *fb = fy + n, *fr = fb + n;
    jpeg_to_ycc(src.data, n, fy, fb, fr);
    jpeg_pad_plane(fy, H, W, yplane.data(), Hp, Wp);
    scratch_vector<std::uint8_t> cplanes(2 * static_cast<std::size_t>(Hc) * Wc);
    std::uint8_t* planes[2] = {cplanes.data(), cplanes.data() + static_cast<std::size_t>(Hc) * Wc};
    std::uint8_t* fulls[2] = {fb, fr};
    for (int k = 0; k < 2; ++k) {
        auto crow = [&](int i) { return planes[k] + static_cast<std::size_t>(i) * Wc; };
        for (int i = 0; i < ch; ++i)  // an odd last image row is paired with itself
            jpeg_subsample(fulls[k] + static_cast<std::size_t>(2 * i) * W, fulls[k] + static_cast<std::size_t>(std::min(2 * i + 1, H - 1)) * W,
                           W, Wc, crow(i));
        for (int i = ch; i < Hc; ++i) std::copy_n(crow(ch - 1), Wc, crow(i));  // the plane's own last row below
    }
    const jpeg_divisors& chroma = jpeg_tables(quality)[1];
    const jpeg_plane c_planes[2] = {{planes[0], Hc, Wc}, {planes[1], Hc, Wc}};
    jpeg_planes_round_trip(&y_plane, 1, luma);
    jpeg_planes_round_trip(c_planes, 2, chroma);
    scratch_vector<std::int32_t> work(static_cast<std::size_t>(cw) + 2);
    for (int y = 0; y < H; ++y) {
        std::copy_n(yplane.data() + static_cast<std::size_t>(y) * Wp, W, fy + static_cast<std::size_t>(y) * W);
        const int in = y / 2, far = (y & 1) ? std::min(in + 1, ch - 1) : std::max(in - 1, 0);
        for (int k = 0; k < 2; ++k) {
            const std::uint8_t* near_row = planes[k] + static_cast<std::size_t>(in) * Wc;
            std::uint8_t* out = fulls[k] + static_cast<std::size_t>(y) * W;
            if (cw > 2)  // the rows above the first and below the last repeat them (jdmainct.c)
                jpeg_upsample(near_row, planes[k] + static_cast<std::size_t>(far) * Wc, W, cw, work.data(), out);
            else  // libjpeg-turbo replicates when the subsampled width is 1 or 2 (jdsample.c)
                for (int x = 0; x < W; ++x) out[x] = near_row[x / 2];
        }
    }
    jpeg_to_rgb(fy, fb, fr, n, dst.data);
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
