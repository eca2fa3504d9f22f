// SPDX-License-Identifier: MIT
// Digital corruptions: brightness, contrast, saturate (skimage HSV), JPEG (libjpeg), pixelate (Pillow BOX), elastic.
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
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"
#include "shiftnorm/data/image_io.hpp"

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
    if (C == 3) {
        const std::size_t pixels = size / 3;
        for (std::size_t i = 0; i < pixels; ++i) {
            dst.data[3 * i] = lut[0][src.data[3 * i]];
            dst.data[3 * i + 1] = lut[1][src.data[3 * i + 1]];
            dst.data[3 * i + 2] = lut[2][src.data[3 * i + 2]];
        }
    } else {
        for (std::size_t i = 0; i < size; ++i) dst.data[i] = lut[0][src.data[i]];
    }
}

//! JPEG round trip at the table's quality through libjpeg (4:2:0 for RGB, islow DCT), which is
//! what Pillow's save(quality=q) + open does. Deterministic. Needs libjpeg at link time.
SHIFTNORM_FP_EXACT inline void jpeg_compression(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar) {
    const int q = jpeg_quality(table, severity);
    detail::check_pair("jpeg_compression", src, dst);
    const auto bytes = data::encode_jpeg(src.data, src.height, src.width, src.channels, q);
    const data::decoded_image d = data::decode_jpeg(bytes.data(), bytes.size(), "jpeg_compression");
    std::copy(d.pixels.begin(), d.pixels.end(), dst.data);
}

//! Pixelate: Pillow BOX resize to (int(W c), int(H c)) and back (8-bit fixed point). Deterministic.
SHIFTNORM_FP_EXACT inline void pixelate(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar) {
    const double c = pixelate_factor(table, severity);
    detail::check_pair("pixelate", src, dst);
    const int sw = std::max(1, static_cast<int>(src.width * c)), sh = std::max(1, static_cast<int>(src.height * c));
    const image small = detail::pil_box_resize(src, sw, sh);
    const image back = detail::pil_box_resize(small.view(), src.width, src.height);
    std::copy(back.data(), back.data() + back.size(), dst.data);
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
