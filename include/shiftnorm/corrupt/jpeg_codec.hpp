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

// What Pillow's `save(format='JPEG', quality=q)` and `Image.open` do through libjpeg-turbo 2.1
// (Debian 12's libjpeg62-turbo, the library the tests compare with), step by step (jccolor.c, jcsample.c, jcprepct.c, jfdctint.c, jcdctmgr.c, jcparam.c,
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

//! A quantization table prepared for the block kernel: q, half the divisor 8 q (the rounding
//! term), and the multiplier m = floor(2^32 / 8q) + 1 with floor(a / 8q) = (a m) >> 32 for every a < 2^21
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

//! A padded plane of samples (height and width multiples of 8) whose blocks go through one
//! table: uint8 for Y, int32 for Cb and Cr (so that the short rows of their resampling stay in
//! one element type and vectorize at 16 values).
template <class T>
struct jpeg_plane {
    T* data = nullptr;
    int height = 0, width = 0;
    int blocks() const { return (height / 8) * (width / 8); }
    T* block(int b) const {
        const int bw = width / 8;
        return data + static_cast<std::size_t>(b / bw) * 8 * width + static_cast<std::size_t>(b % bw) * 8;
    }
};

//! Round trip of every 8 x 8 block of the planes (all through table d), in place: jpeg_lanes
//! blocks at a time in the order of the planes' rows, across rows and planes (idle lanes of the
//! last group compute on what the previous group left and are not stored).
template <class T>
SHIFTNORM_KERNEL_BODY void jpeg_planes_body(const jpeg_plane<T>* planes, int nplanes, const jpeg_divisors& d) {
    constexpr int L = jpeg_lanes;
    alignas(64) std::int32_t e[64 * L];
    alignas(64) std::int32_t row[8 * L] = {};
    struct run {  // neighbouring blocks of one block row: lanes [lane, lane + count)
        T* data;
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
                const T* src = runs[k].data + static_cast<std::size_t>(r) * runs[k].stride;
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
                T* to = runs[k].data + static_cast<std::size_t>(r) * runs[k].stride;
                const std::int32_t* from = row + 8 * runs[k].lane;
                for (int i = 0; i < 8 * runs[k].count; ++i) to[i] = static_cast<T>(from[i]);
            }
        }
    }
}

SHIFTNORM_KERNEL_BODY void jpeg_luma_blocks_body(const jpeg_plane<std::uint8_t>* planes, int nplanes, const jpeg_divisors& d) {
    jpeg_planes_body(planes, nplanes, d);
}
SHIFTNORM_KERNEL_BODY void jpeg_chroma_blocks_body(const jpeg_plane<std::int32_t>* planes, int nplanes, const jpeg_divisors& d) {
    jpeg_planes_body(planes, nplanes, d);
}

//! libjpeg's RGB -> YCbCr (jccolor.c) of n pixels, three planes out.
SHIFTNORM_KERNEL_BODY void jpeg_to_ycc_body(const std::uint8_t* rgb, std::size_t n, std::uint8_t* y, std::int32_t* cb, std::int32_t* cr) {
    for (std::size_t i = 0; i < n; ++i) {
        const std::int32_t r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
        y[i] = static_cast<std::uint8_t>((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
        cb[i] = (-11059 * r - 21709 * g + 32768 * b + 8421375) >> 16;
        cr[i] = (32768 * r - 27439 * g - 5329 * b + 8421375) >> 16;
    }
}

//! libjpeg's YCbCr -> RGB (jdcolor.c: its table values, clipped) of n pixels.
SHIFTNORM_KERNEL_BODY void jpeg_to_rgb_body(const std::uint8_t* y, const std::int32_t* cbp, const std::int32_t* crp, std::size_t n,
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

//! Cb or Cr of a full-size H x W plane averaged over 2 x 2 into the padded hc x wc plane out:
//! jcsample.c h2v2_downsample with the bias 1, 2, 1, 2 along a row, the last column repeated
//! beyond W, an odd last row paired with itself, then the last subsampled row repeated below
//! (jcprepct.c pads each plane with its own last row).
SHIFTNORM_KERNEL_BODY void jpeg_subsample_body(const std::int32_t* full, int H, int W, int hc, int wc, std::int32_t* out) {
    const int ch = (H + 1) / 2, inside = W / 2;
    for (int r = 0; r < ch; ++r) {
        const std::int32_t* a = full + static_cast<std::size_t>(2 * r) * W;
        const std::int32_t* b = full + static_cast<std::size_t>(std::min(2 * r + 1, H - 1)) * W;
        std::int32_t* o = out + static_cast<std::size_t>(r) * wc;
        for (int i = 0; i < inside; ++i) o[i] = (a[2 * i] + a[2 * i + 1] + b[2 * i] + b[2 * i + 1] + 1 + (i & 1)) >> 2;
        for (int i = inside; i < wc; ++i) {
            const int x0 = std::min(2 * i, W - 1), x1 = std::min(2 * i + 1, W - 1);
            o[i] = (a[x0] + a[x1] + b[x0] + b[x1] + 1 + (i & 1)) >> 2;
        }
    }
    for (int r = ch; r < hc; ++r) std::copy_n(out + static_cast<std::size_t>(ch - 1) * wc, wc, out + static_cast<std::size_t>(r) * wc);
}

//! Cb or Cr back to full size H x W (out) from the decoded subsampled plane (rows of wc values):
//! jdsample.c h2v2_fancy_upsample, each output row from the subsampled row nearest (n) and the
//! next nearest (f: above for even rows, below for odd; the rows above the first and below the
//! last repeat them, jdmainct.c) weighed 3 : 1, then 3 : 1 between the columns with the bias 8
//! (even pixels) and 7 (odd), each end column weighed with itself. When the subsampled width is
//! 1 or 2 libjpeg-turbo replicates instead (jdsample.c h2v2_upsample).
//! The row loop runs over all cw columns (one vector at CIFAR's 16) and reads one value before
//! and after each row, writes one after it (when W is odd), then writes the two end columns
//! again: the plane needs one readable value before it and after it, out one writable after it.
SHIFTNORM_KERNEL_BODY void jpeg_upsample_body(const std::int32_t* plane, int wc, int H, int W, std::int32_t* out) {
    const int ch = (H + 1) / 2, cw = (W + 1) / 2;
    for (int y = 0; y < H; ++y) {
        const int in = y / 2, far = (y & 1) ? std::min(in + 1, ch - 1) : std::max(in - 1, 0);
        const std::int32_t* n = plane + static_cast<std::size_t>(in) * wc;
        const std::int32_t* f = plane + static_cast<std::size_t>(far) * wc;
        std::int32_t* o = out + static_cast<std::size_t>(y) * W;
        if (cw <= 2) {
            for (int x = 0; x < W; ++x) o[x] = n[x / 2];
            continue;
        }
        for (int i = 0; i < cw; ++i) {
            const std::int32_t s = 3 * n[i] + f[i];
            o[2 * i] = (s * 3 + 3 * n[i - 1] + f[i - 1] + 8) >> 4;
            o[2 * i + 1] = (s * 3 + 3 * n[i + 1] + f[i + 1] + 7) >> 4;
        }
        const std::int32_t s0 = 3 * n[0] + f[0], sl = 3 * n[cw - 1] + f[cw - 1];
        o[0] = (s0 * 4 + 8) >> 4;
        if (2 * cw - 1 < W) o[2 * cw - 1] = (sl * 4 + 7) >> 4;
    }
}

// Each kernel body compiled into a portable function, an AVX2 twin and an AVX-512 twin, the
// widest the CPU runs chosen at run time (SHIFTNORM_KERNEL_TWINS; integer arithmetic: the same
// bytes from each; without the AVX2 twin an AVX2-only CPU ran the SSE2 build, 224 px 0.46-0.54 ms
// against libjpeg's 0.18-0.23).
SHIFTNORM_KERNEL_TWINS(jpeg_luma_blocks, (const jpeg_plane<std::uint8_t>* planes, int nplanes, const jpeg_divisors& d),
                     (planes, nplanes, d))
SHIFTNORM_KERNEL_TWINS(jpeg_chroma_blocks, (const jpeg_plane<std::int32_t>* planes, int nplanes, const jpeg_divisors& d),
                     (planes, nplanes, d))
SHIFTNORM_KERNEL_TWINS(jpeg_to_ycc, (const std::uint8_t* rgb, std::size_t n, std::uint8_t* y, std::int32_t* cb, std::int32_t* cr),
                     (rgb, n, y, cb, cr))
SHIFTNORM_KERNEL_TWINS(jpeg_to_rgb, (const std::uint8_t* y, const std::int32_t* cb, const std::int32_t* cr, std::size_t n, std::uint8_t* rgb),
                     (y, cb, cr, n, rgb))
SHIFTNORM_KERNEL_TWINS(jpeg_subsample, (const std::int32_t* full, int H, int W, int hc, int wc, std::int32_t* out), (full, H, W, hc, wc, out))
SHIFTNORM_KERNEL_TWINS(jpeg_upsample, (const std::int32_t* plane, int wc, int H, int W, std::int32_t* out), (plane, wc, H, W, out))

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
    const jpeg_plane<std::uint8_t> y_plane{yplane.data(), Hp, Wp};
    if (C == 1) {
        jpeg_pad_plane(src.data, H, W, yplane.data(), Hp, Wp);
        jpeg_luma_blocks(&y_plane, 1, luma);
        for (int y = 0; y < H; ++y) std::copy_n(yplane.data() + static_cast<std::size_t>(y) * Wp, W, dst.data + static_cast<std::size_t>(y) * W);
        return;
    }
    const int Hc = Hp / 2, Wc = Wp / 2;
    scratch_vector<std::uint8_t> fy(n);                  // Y of every pixel, later decoded
    // Cb, Cr of every pixel, later decoded (each with a spare value after it), and the padded
    // subsampled planes (with a spare value before and after each): jpeg_upsample's margins.
    const std::size_t csize = static_cast<std::size_t>(Hc) * Wc;
    scratch_vector<std::int32_t> fc(2 * n + 2), cplanes(2 * csize + 3);
    std::int32_t* fulls[2] = {fc.data(), fc.data() + n + 1};
    const jpeg_plane<std::int32_t> c_planes[2] = {{cplanes.data() + 1, Hc, Wc}, {cplanes.data() + csize + 2, Hc, Wc}};
    jpeg_to_ycc(src.data, n, fy.data(), fulls[0], fulls[1]);
    jpeg_pad_plane(fy.data(), H, W, yplane.data(), Hp, Wp);
    for (int k = 0; k < 2; ++k) jpeg_subsample(fulls[k], H, W, Hc, Wc, c_planes[k].data);
    jpeg_luma_blocks(&y_plane, 1, luma);
    jpeg_chroma_blocks(c_planes, 2, jpeg_tables(quality)[1]);
    for (int y = 0; y < H; ++y) std::copy_n(yplane.data() + static_cast<std::size_t>(y) * Wp, W, fy.data() + static_cast<std::size_t>(y) * W);
    for (int k = 0; k < 2; ++k) jpeg_upsample(c_planes[k].data, Wc, H, W, fulls[k]);
    jpeg_to_rgb(fy.data(), fulls[0], fulls[1], n, dst.data);
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
