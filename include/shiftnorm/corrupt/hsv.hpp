// SPDX-License-Identifier: MIT
// skimage's HSV round trip for brightness and saturate: per pixel in float64, 8 pixels at a time on AVX-512.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt::detail {

//! The edit made in HSV space: brightness (V = clip(V + a)) or saturate (S = clip(S a + b)).
struct hsv_edit {
    enum kind_t { value_shift, saturation_affine } kind = value_shift;
    double a = 0.0, b = 0.0;
};

//! skimage.color.rgb2hsv for one pixel (float64, same operation order; blue wins ties over
//! green over red, as the sequential numpy masks do). The hue before the wrap, h / 6, lies in
//! [-1/6, 5/6], where Python's `% 1.0` is the identity or + 1.
SHIFTNORM_FP_EXACT inline void rgb2hsv(const double* rgb, double* hsv) {
    const double mx = std::max(rgb[0], std::max(rgb[1], rgb[2]));
    const double mn = std::min(rgb[0], std::min(rgb[1], rgb[2]));
    const double delta = mx - mn;
    const double v = mx;
    const double s = delta == 0.0 ? 0.0 : delta / v;
    double h = 0.0;
    if (delta != 0.0) {
        if (rgb[2] == mx) h = 4. + (rgb[0] - rgb[1]) / delta;
        else if (rgb[1] == mx) h = 2. + (rgb[2] - rgb[0]) / delta;
        else h = (rgb[1] - rgb[2]) / delta;
        h = h / 6.;
        if (h < 0) h += 1.;
    }
    hsv[0] = h, hsv[1] = s, hsv[2] = v;
}

//! skimage.color.hsv2rgb for one pixel.
SHIFTNORM_FP_EXACT inline void hsv2rgb(const double* hsv, double* rgb) {
    const double h6 = hsv[0] * 6;
    const double hi_f = std::floor(h6);
    const double f = h6 - hi_f;
    const double p = hsv[2] * (1 - hsv[1]);
    const double fs = f * hsv[1];
    const double q = hsv[2] * (1 - fs);
    const double gs = (1 - f) * hsv[1];
    const double t = hsv[2] * (1 - gs);
    const double v = hsv[2];
    const int hi = static_cast<int>(static_cast<std::uint8_t>(static_cast<long long>(hi_f))) % 6;
    switch (hi) {
        case 0: rgb[0] = v, rgb[1] = t, rgb[2] = p; break;
        case 1: rgb[0] = q, rgb[1] = v, rgb[2] = p; break;
        case 2: rgb[0] = p, rgb[1] = v, rgb[2] = t; break;
        case 3: rgb[0] = p, rgb[1] = q, rgb[2] = v; break;
        case 4: rgb[0] = t, rgb[1] = p, rgb[2] = v; break;
        default: rgb[0] = v, rgb[1] = p, rgb[2] = q; break;
    }
}

SHIFTNORM_FP_EXACT inline void apply_edit(const hsv_edit& e, double* hsv) {
    if (e.kind == hsv_edit::value_shift) {
        const double v = hsv[2] + e.a;
        hsv[2] = std::clamp(v, 0.0, 1.0);
    } else {
        const double s = hsv[1] * e.a;
        hsv[1] = std::clamp(s + e.b, 0.0, 1.0);
    }
}

//! One pixel's round trip in 0-255 units: x / 255 -> HSV -> edit -> RGB -> clip(., 0, 1) * 255.
SHIFTNORM_FP_EXACT inline void hsv_round_trip(const hsv_edit& e, const std::uint8_t* in, double* rgb) {
    double hsv[3];
    for (int k = 0; k < 3; ++k) rgb[k] = in[k] / 255.;
    rgb2hsv(rgb, hsv);
    apply_edit(e, hsv);
    hsv2rgb(hsv, rgb);
    for (int k = 0; k < 3; ++k) rgb[k] = std::clamp(rgb[k], 0.0, 1.0) * 255;
}

//! One RGB pixel: the round trip, truncated per channel.
SHIFTNORM_FP_EXACT inline void hsv_pixel(const hsv_edit& e, const std::uint8_t* in, std::uint8_t* out) {
    double rgb[3];
    hsv_round_trip(e, in, rgb);
    for (int k = 0; k < 3; ++k) out[k] = trunc_u8(rgb[k]);
}

//! The portable kernel on n RGB pixels.
SHIFTNORM_FP_EXACT inline void hsv_rgb_plain(const hsv_edit& e, const std::uint8_t* src, std::uint8_t* dst,
                                              std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) hsv_pixel(e, src + 3 * i, dst + 3 * i);
}

#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_SIMD_WARNINGS_OFF
//! Lanes 0-7 of sec equal to k.
SHIFTNORM_FP_EXACT_TARGET("avx512f") inline __mmask8 sector_is(__m512i sec16, int k) {
    return static_cast<__mmask8>(_mm512_mask_cmpeq_epi32_mask(0xFF, sec16, _mm512_set1_epi32(k)));
}

//! hsv_pixel on 8 pixels in the lanes of r, g, b (x / 255 already), lane-wise, same operations.
SHIFTNORM_FP_EXACT_TARGET("avx512f") inline void hsv8(const hsv_edit& e, __m512d& r,
                                                                                 __m512d& g, __m512d& b) {
    const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0);
    // rgb2hsv
    const __m512d mx = _mm512_max_pd(r, _mm512_max_pd(g, b));
    const __m512d mn = _mm512_min_pd(r, _mm512_min_pd(g, b));
    const __m512d delta = _mm512_sub_pd(mx, mn);
    const __mmask8 chroma = _mm512_cmp_pd_mask(delta, zero, _CMP_NEQ_OQ);
    __m512d s = _mm512_maskz_div_pd(chroma, delta, mx);
    __m512d v = mx;
    const __mmask8 b_max = _mm512_cmp_pd_mask(b, mx, _CMP_EQ_OQ);
    const __mmask8 g_max = _mm512_cmp_pd_mask(g, mx, _CMP_EQ_OQ) & ~b_max;
    // numerator and offset of the hue per case: blue 4 + (r - g), green 2 + (b - r), red (g - b)
    __m512d num = _mm512_sub_pd(g, b), off = zero;
    num = _mm512_mask_sub_pd(num, g_max, b, r);
    off = _mm512_mask_mov_pd(off, g_max, _mm512_set1_pd(2.0));
    num = _mm512_mask_sub_pd(num, b_max, r, g);
    off = _mm512_mask_mov_pd(off, b_max, _mm512_set1_pd(4.0));
    const __m512d ratio = _mm512_mask_div_pd(one, chroma, num, delta);  // lanes without chroma: unused
    // the red case is h = ratio itself (0 + x would turn -0 into +0)
    const __mmask8 red = chroma & ~(b_max | g_max);
    __m512d h = _mm512_add_pd(off, ratio);
    h = _mm512_mask_mov_pd(h, red, ratio);
    h = _mm512_div_pd(h, _mm512_set1_pd(6.0));
    const __mmask8 neg = _mm512_cmp_pd_mask(h, zero, _CMP_LT_OQ);
    h = _mm512_mask_add_pd(h, neg, h, one);
    h = _mm512_maskz_mov_pd(chroma, h);
    // the edit
    if (e.kind == hsv_edit::value_shift) {
        v = _mm512_min_pd(_mm512_max_pd(_mm512_add_pd(v, _mm512_set1_pd(e.a)), zero), one);
    } else {
        s = _mm512_min_pd(_mm512_max_pd(_mm512_add_pd(_mm512_mul_pd(s, _mm512_set1_pd(e.a)), _mm512_set1_pd(e.b)), zero),
                          one);
    }
    // hsv2rgb
    const __m512d h6 = _mm512_mul_pd(h, _mm512_set1_pd(6.0));
    const __m512d hi_f = _mm512_roundscale_pd(h6, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    const __m512d f = _mm512_sub_pd(h6, hi_f);
    const __m512d p = _mm512_mul_pd(v, _mm512_sub_pd(one, s));
    const __m512d q = _mm512_mul_pd(v, _mm512_sub_pd(one, _mm512_mul_pd(f, s)));
    const __m512d t = _mm512_mul_pd(v, _mm512_sub_pd(one, _mm512_mul_pd(_mm512_sub_pd(one, f), s)));
    // sector 0..5 (h * 6 = 6 only for h = 1, which wraps to sector 0 as in the scalar % 6)
    const __m256i sec = _mm512_cvttpd_epi32(hi_f);
    const __m512i sec16 = _mm512_castsi256_si512(sec);  // lanes 8-15 undefined, masked off
    const __mmask8 s0 = sector_is(sec16, 0) | sector_is(sec16, 6), s1 = sector_is(sec16, 1), s2 = sector_is(sec16, 2),
                   s3 = sector_is(sec16, 3), s4 = sector_is(sec16, 4);
    // default (sector 5): (v, p, q)
    __m512d rr = v, gg = p, bb = q;
    rr = _mm512_mask_mov_pd(rr, s0, v), gg = _mm512_mask_mov_pd(gg, s0, t), bb = _mm512_mask_mov_pd(bb, s0, p);
    rr = _mm512_mask_mov_pd(rr, s1, q), gg = _mm512_mask_mov_pd(gg, s1, v), bb = _mm512_mask_mov_pd(bb, s1, p);
    rr = _mm512_mask_mov_pd(rr, s2, p), gg = _mm512_mask_mov_pd(gg, s2, v), bb = _mm512_mask_mov_pd(bb, s2, t);
    rr = _mm512_mask_mov_pd(rr, s3, p), gg = _mm512_mask_mov_pd(gg, s3, q), bb = _mm512_mask_mov_pd(bb, s3, v);
    rr = _mm512_mask_mov_pd(rr, s4, t), gg = _mm512_mask_mov_pd(gg, s4, p), bb = _mm512_mask_mov_pd(bb, s4, v);
    r = rr, g = gg, b = bb;
}

SHIFTNORM_FP_EXACT_TARGET("avx512f") inline void hsv_rgb_avx512(const hsv_edit& e,
                                                                                           const std::uint8_t* src,
                                                                                           std::uint8_t* dst,
                                                                                           std::size_t n) {
    // x / 255 by a table of the 256 divisions (the same doubles as dividing)
    static const auto unit = [] {
        std::array<double, 256> u{};
        for (int x = 0; x < 256; ++x) u[x] = x / 255.;
        return u;
    }();
    const __m512d zero = _mm512_setzero_pd(), one = _mm512_set1_pd(1.0), c255 = _mm512_set1_pd(255.0);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        alignas(64) double cr[8], cg[8], cb[8];
        const std::uint8_t* s = src + 3 * i;
        for (int l = 0; l < 8; ++l) cr[l] = unit[s[3 * l]], cg[l] = unit[s[3 * l + 1]], cb[l] = unit[s[3 * l + 2]];
        __m512d r = _mm512_load_pd(cr), g = _mm512_load_pd(cg), b = _mm512_load_pd(cb);
        hsv8(e, r, g, b);
        // clip(., 0, 1) * 255 truncated: in [0, 255], so the conversion is trunc_u8
        alignas(32) std::int32_t o[3][8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(o[0]),
                           _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_min_pd(_mm512_max_pd(r, zero), one), c255)));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o[1]),
                           _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_min_pd(_mm512_max_pd(g, zero), one), c255)));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o[2]),
                           _mm512_cvttpd_epi32(_mm512_mul_pd(_mm512_min_pd(_mm512_max_pd(b, zero), one), c255)));
        std::uint8_t* d = dst + 3 * i;
        for (int l = 0; l < 8; ++l)
            d[3 * l] = static_cast<std::uint8_t>(o[0][l]), d[3 * l + 1] = static_cast<std::uint8_t>(o[1][l]),
                  d[3 * l + 2] = static_cast<std::uint8_t>(o[2][l]);
    }
    for (; i < n; ++i) hsv_pixel(e, src + 3 * i, dst + 3 * i);
}
SHIFTNORM_SIMD_WARNINGS_ON
#endif

//! The HSV round trip with edit `e` on an image: RGB images on the fastest kernel (the same
//! bytes on every CPU); gray images go through (x, x, x) and come back as the mean of the three
//! channels.
inline void hsv_map(const_image_view src, image_view dst, const hsv_edit& e) {
    const std::size_t n = static_cast<std::size_t>(src.height) * src.width;
    if (src.channels == 3) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
        if (avx512_rows_available()) return hsv_rgb_avx512(e, src.data, dst.data, n);
#endif
        return hsv_rgb_plain(e, src.data, dst.data, n);
    }
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t in[3] = {src.data[i], src.data[i], src.data[i]};
        double rgb[3];
        hsv_round_trip(e, in, rgb);
        dst.data[i] = trunc_u8((rgb[0] + rgb[1] + rgb[2]) / 3.0);
    }
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
