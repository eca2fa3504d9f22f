// SPDX-License-Identifier: MIT
// Digital corruptions: brightness, contrast, saturate (skimage HSV), JPEG (libjpeg's integer steps), pixelate (Pillow BOX), elastic.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <vector>

#include "shiftnorm/corrupt/filters.hpp"
#include "shiftnorm/corrupt/geometry.hpp"
#include "shiftnorm/corrupt/hsv.hpp"
#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/jpeg_codec.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt {

//! Brightness: V += c in skimage's HSV (clipped to [0, 1]). Deterministic.
SHIFTNORM_FP_EXACT inline void brightness(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar) {
    const double c = brightness_shift(table, severity);
    detail::check_pair("brightness", src, dst);
    detail::hsv_map(src, dst, {detail::hsv_edit::value_shift, c, 0.0});
}

//! Saturate: S = S * scale + shift in skimage's HSV (clipped). Deterministic. On gray images the
//! saturation is 0 and the hue red, so only the shift acts (a slight darkening of the mean).
SHIFTNORM_FP_EXACT inline void saturate(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar) {
    const saturate_params p = saturate_params_for(table, severity);
    detail::check_pair("saturate", src, dst);
    detail::hsv_map(src, dst, {detail::hsv_edit::saturation_affine, p.scale, p.shift});
}

namespace detail {

//! Per-channel sums of the bytes of an HWC image with C = 1 or 3 channels (exact integers).
//! Blocks of 48 bytes (48 = 3 x 16: byte j of a block is channel j mod C) go through 48
//! accumulators, a loop the compiler vectorizes.
SHIFTNORM_FP_EXACT inline std::array<std::uint64_t, 3> channel_sums(const std::uint8_t* p, std::size_t size, int C) {
    std::array<std::uint64_t, 3> sum{0, 0, 0};
    std::size_t i = 0;
    while (i + 48 <= size) {
        // 32-bit accumulators, flushed before they could overflow (2^24 blocks of bytes <= 255)
        std::uint32_t acc[48] = {};
        const std::size_t end = i + 48 * std::min<std::size_t>((size - i) / 48, std::size_t(1) << 24);
        for (; i < end; i += 48)
            for (int j = 0; j < 48; ++j) acc[j] += p[i + j];
        for (int j = 0; j < 48; ++j) sum[static_cast<std::size_t>(j % C)] += acc[j];
    }
    for (std::size_t r = 0; i < size; ++i, ++r) sum[r % static_cast<std::size_t>(C)] += p[i];
    return sum;
}

//! The byte (x / 255 - m) c + m, clipped to [0, 1], times 255, truncated (the reference's
//! float64 steps, each rounded as written).
SHIFTNORM_FP_EXACT inline std::uint8_t contrast_byte(int x, double m, double c) {
    const double f = x / 255.;
    const double d = (f - m) * c;
    const double v = d + m;
    return trunc_u8(std::clamp(v, 0.0, 1.0) * 255.0);
}

//! dst[i] = lut[i % c][src[i]] for n bytes of c (1 or 3) interleaved channels: the plain loop.
inline void channel_lut_plain(const std::uint8_t* src, std::uint8_t* dst, std::size_t n, int c,
                              const std::uint8_t (*lut)[256]) {
    if (c == 3) {
        const std::size_t pixels = n / 3;
        for (std::size_t i = 0; i < pixels; ++i) {
            dst[3 * i] = lut[0][src[3 * i]];
            dst[3 * i + 1] = lut[1][src[3 * i + 1]];
            dst[3 * i + 2] = lut[2][src[3 * i + 2]];
        }
    } else {
        for (std::size_t i = 0; i < n; ++i) dst[i] = lut[0][src[i]];
    }
}

#if defined(SHIFTNORM_CORRUPT_AVX512)
//! channel_lut_plain with AVX-512 VBMI: each 256-entry table in four registers, a byte looked up
//! in its low or high 128 entries by two vpermi2b and picked by its top bit; three channels by
//! three lookups blended by the channel of each byte (192-byte blocks: the phases repeat).
SHIFTNORM_SIMD_WARNINGS_OFF
//! The 64 table entries t[x] of the bytes x of a register (t: a 256-entry table in four registers).
__attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) inline __m512i lut_lookup_vbmi(const __m512i* t,
                                                                                                     __m512i x) {
    const __m512i lo = _mm512_permutex2var_epi8(t[0], x, t[1]);  // entries 0-127 (bit 7 ignored)
    const __m512i hi = _mm512_permutex2var_epi8(t[2], x, t[3]);  // entries 128-255
    return _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi);
}
__attribute__((target("avx512f,avx512bw,avx512vbmi"))) inline void channel_lut_vbmi(
    const std::uint8_t* src, std::uint8_t* dst, std::size_t n, int c, const std::uint8_t (*lut)[256]) {
    __m512i t[3][4];
    for (int k = 0; k < c; ++k)
        for (int q = 0; q < 4; ++q) t[k][q] = _mm512_loadu_si512(lut[k] + 64 * q);
    std::size_t i = 0;
    if (c == 1) {
        for (; i + 64 <= n; i += 64) _mm512_storeu_si512(dst + i, lut_lookup_vbmi(t[0], _mm512_loadu_si512(src + i)));
    } else {
        // byte j of block part v (v = 0, 1, 2) belongs to channel (64 v + j) % 3
        __mmask64 m1[3] = {0, 0, 0}, m2[3] = {0, 0, 0};
        for (int v = 0; v < 3; ++v)
            for (int j = 0; j < 64; ++j) {
                const int ch = (64 * v + j) % 3;
                if (ch == 1) m1[v] |= __mmask64(1) << j;
                if (ch == 2) m2[v] |= __mmask64(1) << j;
            }
        for (; i + 192 <= n; i += 192)
            for (int v = 0; v < 3; ++v) {
                const __m512i x = _mm512_loadu_si512(src + i + 64 * v);
                __m512i y = lut_lookup_vbmi(t[0], x);
                y = _mm512_mask_blend_epi8(m1[v], y, lut_lookup_vbmi(t[1], x));
                y = _mm512_mask_blend_epi8(m2[v], y, lut_lookup_vbmi(t[2], x));
                _mm512_storeu_si512(dst + i + 64 * v, y);
            }
    }
    channel_lut_plain(src + i, dst + i, n - i, c, lut);  // the tail (i is a multiple of c)
}
SHIFTNORM_SIMD_WARNINGS_ON
#endif

//! channel_lut_plain on the fastest kernel this CPU has (the same bytes).
inline void channel_lut(const std::uint8_t* src, std::uint8_t* dst, std::size_t n, int c,
                        const std::uint8_t (*lut)[256]) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_vbmi_available()) return channel_lut_vbmi(src, dst, n, c, lut);
#endif
    channel_lut_plain(src, dst, n, c, lut);
}

}  // namespace detail

//! Contrast: (x - mean_c) * c + mean_c with per-channel means over the image. Deterministic.
//! The mean of x / 255 is the exact byte sum over 255 H W, rounded once (numpy's pairwise sum of
//! the divided values can differ from it in the last bit); then the output byte depends on the
//! input byte and the channel only, so it is a 256-entry table per channel.
SHIFTNORM_FP_EXACT inline void contrast(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar) {
    const double c = contrast_factor(table, severity);
    detail::check_pair("contrast", src, dst);
    const int C = src.channels;
    const std::size_t size = src.size();
    const auto sum = detail::channel_sums(src.data, size, C);
    const double n = static_cast<double>(src.height) * src.width;
    std::uint8_t lut[3][256];
    for (int k = 0; k < C; ++k) {
        const double m = static_cast<double>(sum[static_cast<std::size_t>(k)]) / (255.0 * n);
        for (int x = 0; x < 256; ++x) lut[k][x] = detail::contrast_byte(x, m, c);
    }
    detail::channel_lut(src.data, dst.data, size, C, lut);
}

//! JPEG round trip at the table's quality: what Pillow's save(quality=q) + open does through
//! libjpeg (4:2:0 for RGB, islow DCT, fancy upsampling), computed without the file: the same
//! integer steps, the lossless entropy coding left out (jpeg_codec.hpp). Deterministic.
SHIFTNORM_FP_EXACT inline void jpeg_compression(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar) {
    const int q = jpeg_quality(table, severity);
    detail::check_pair("jpeg_compression", src, dst);
    detail::jpeg_round_trip(src, dst, q);
}

//! Pixelate: Pillow BOX resize to (int(W c), int(H c)) and back (8-bit fixed point). Deterministic.
SHIFTNORM_FP_EXACT inline void pixelate(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar) {
    const double c = pixelate_factor(table, severity);
    detail::check_pair("pixelate", src, dst);
    const int sw = std::max(1, static_cast<int>(src.width * c)), sh = std::max(1, static_cast<int>(src.height * c));
    detail::scratch_vector<std::uint8_t> small(static_cast<std::size_t>(sw) * sh * src.channels);
    detail::pil_box_resize_into(src, {small.data(), sh, sw, src.channels});
    detail::pil_box_resize_into({small.data(), sh, sw, src.channels}, dst);
}

namespace detail {
//! The elastic transform's jittered control points: pts1[i] + float32(uniform(-jitter, jitter))
//! (the reference adds a float32 array to float64 points), six draws in order.
SHIFTNORM_FP_EXACT_NO_SLP inline std::array<double, 6> jitter_points(const std::array<double, 6>& pts1, double jitter,
                                                               generator& gen) {
    std::array<double, 6> pts2{};
    for (int i = 0; i < 6; ++i) pts2[i] = pts1[i] + static_cast<float>(gen.uniform(-jitter, jitter));
    return pts2;
}
}  // namespace detail

//! Elastic transform (after Simard et al. 2003, the reference's gist): a random affine jitter of
//! three control points (cv2.warpAffine, reflect-101), then a displacement field of uniform
//! noise smoothed by a gaussian of sigma pixels (scipy 'reflect', truncate 3) scaled by alpha,
//! sampled with order-1 map_coordinates ('reflect'). Draws 6 uniforms, then 2*H*W.
namespace detail {
//! elastic_transform's last step: map_coordinates of the warped image at (y + dy, x + dx), every
//! channel of a pixel at once, stored as bytes. One body, a plain and an AVX-512 build.
SHIFTNORM_KERNEL_BODY void elastic_sample_body(const double* warped, int h, int w, int c, const double* dx,
                                               const double* dy, std::uint8_t* dst) {
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const std::size_t i = static_cast<std::size_t>(y) * w + x;
            double v[3];
            sample_reflect_pixel(warped, h, w, c, y + dy[i], x + dx[i], v);
            for (int k = 0; k < c; ++k) dst[i * c + k] = unit_to_u8(v[k]);
        }
}
SHIFTNORM_FP_EXACT inline void elastic_sample_plain(const double* warped, int h, int w, int c, const double* dx,
                                                    const double* dy, std::uint8_t* dst) {
    elastic_sample_body(warped, h, w, c, dx, dy, dst);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void elastic_sample_avx512(
    const double* warped, int h, int w, int c, const double* dx, const double* dy, std::uint8_t* dst) {
    elastic_sample_body(warped, h, w, c, dx, dy, dst);
}
#endif
inline void elastic_sample(const double* warped, int h, int w, int c, const double* dx, const double* dy,
                           std::uint8_t* dst) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return elastic_sample_avx512(warped, h, w, c, dx, dy, dst);
#endif
    elastic_sample_plain(warped, h, w, c, dx, dy, dst);
}
}  // namespace detail

SHIFTNORM_FP_EXACT inline void elastic_transform(const_image_view src, image_view dst, int severity, generator& gen,
                              param_table table = param_table::cifar) {
    const elastic_params p0 = elastic_params_for(table, severity);
    detail::check_pair("elastic_transform", src, dst);
    const int H = src.height, W = src.width, C = src.channels;
    const double scale = std::min(H, W) / p0.nominal_size;
    const double alpha = p0.alpha * scale, sigma = p0.sigma * scale, jitter = p0.affine * scale;
    detail::fimage img = detail::to_unit(src);
    detail::round_float32(img.px.data(), img.px.size(), 1.0);
    const double cs0 = std::floor(H / 2.0), cs1 = std::floor(W / 2.0);
    const double sq = std::min(H, W) / 3;
    const std::array<double, 6> pts1 = {cs0 + sq, cs1 + sq, cs0 + sq, cs1 - sq, cs0 - sq, cs1 - sq};
    const auto M = detail::affine_from_points(pts1, detail::jitter_points(pts1, jitter, gen));
    const detail::fimage warped = detail::warp_affine(img, M);
    detail::fimage dx(H, W, 1), dy(H, W, 1);
    for (double& v : dx.px) v = gen.uniform(-1.0, 1.0);
    for (double& v : dy.px) v = gen.uniform(-1.0, 1.0);
    detail::gaussian_filter(dx, sigma, detail::border::reflect, 3.0);
    detail::gaussian_filter(dy, sigma, detail::border::reflect, 3.0);
    detail::round_float32(dx.px.data(), dx.px.size(), alpha);  // float32(dx * alpha)
    detail::round_float32(dy.px.data(), dy.px.size(), alpha);
    detail::elastic_sample(warped.px.data(), H, W, C, dx.px.data(), dy.px.data(), dst.data);
}

}  // namespace shiftnorm::corrupt

SHIFTNORM_FP_EXACT_END
