// SPDX-License-Identifier: MIT
// Blur corruptions: defocus (disk), glass (local pixel shuffling), motion (own kernel), zoom and gaussian blur.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "shiftnorm/corrupt/defocus.hpp"
#include "shiftnorm/corrupt/fast_filters.hpp"
#include "shiftnorm/corrupt/filters.hpp"
#include "shiftnorm/corrupt/geometry.hpp"
#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt {

namespace detail {

//! acc[x, c] += k * src_row[clamp(x + ox, 0, W - 1), c] over one row (edge pixels repeated, as
//! the reference's shift): the clamped ends pixel by pixel, the middle as one contiguous run.
SHIFTNORM_FP_EXACT inline void motion_tap_row(double* acc, const std::uint8_t* srow, int W, int C, int ox, double k) {
    const int lo = std::clamp(-ox, 0, W), hi = std::clamp(W - ox, lo, W);  // x in [lo, hi): x + ox in range
    for (int x = 0; x < lo; ++x)
        for (int c = 0; c < C; ++c) {
            const double t = k * srow[c];
            acc[x * C + c] += t;
        }
    const std::ptrdiff_t off = static_cast<std::ptrdiff_t>(ox) * C, j0 = static_cast<std::ptrdiff_t>(lo) * C;
    tap_run<double>(acc + j0, srow + j0 + off, static_cast<std::ptrdiff_t>(hi) * C - j0, k);
    const std::uint8_t* last = srow + static_cast<std::ptrdiff_t>(W - 1) * C;
    for (int x = hi; x < W; ++x)
        for (int c = 0; c < C; ++c) {
            const double t = k * last[c];
            acc[x * C + c] += t;
        }
}

//! The motion blur of motion_blur_u8 (taps k[i] at offsets (ox[i], oy[i]), edge pixels
//! repeated, truncated to bytes) in float32, 16 values per step on AVX-512. The values within the
//! band of an integer are computed again as the reference computes them (float64, taps in order
//! from 0.0, each product rounded before its addition); rows with more than 1/16 of them, whole.
//! The error bound (relative: fast_band_for): per term the weight's float32 rounding and the
//! product's, then the additions of the non-negative terms (tap_sum_additions): at most
//! (tap_sum_additions(m) + 2) u v for m taps and a value v (the taps added are those of weight
//! >= 1e-300). Returns false, having written nothing, when the band would pass max_fast_band.
SHIFTNORM_FP_EXACT inline bool fast_motion_u8(const_image_view src, image_view dst, const std::vector<double>& k,
                                              const std::vector<int>& ox, const std::vector<int>& oy) {
    const int H = src.height, W = src.width, C = src.channels;
    const std::size_t n = static_cast<std::size_t>(W) * C;
    std::vector<std::size_t> taps;  // the taps the reference adds (it skips weights below 1e-300)
    for (std::size_t i = 0; i < k.size(); ++i)
        if (!(k[i] < 1e-300)) taps.push_back(i);
    const float band = fast_band_for(tap_sum_additions(taps.size()) + 2.0);
    if (!fast_band_usable(band, 255.0)) return false;
    std::vector<float> kf(k.size());
    for (std::size_t i = 0; i < k.size(); ++i) kf[i] = static_cast<float>(k[i]);
    // Each row with P edge pixels repeated on both sides: every tap is one contiguous run.
    int P = 0;
    for (std::size_t i : taps) P = std::max(P, std::abs(ox[i]));
    const std::size_t pn = n + 2 * static_cast<std::size_t>(P) * C;
    scratch_vector<std::uint8_t> padded(pn * H);
    for (int y = 0; y < H; ++y) {
        const std::uint8_t* s = src.data + static_cast<std::size_t>(y) * n;
        std::uint8_t* d = &padded[static_cast<std::size_t>(y) * pn];
        for (int e = 0; e < P; ++e)
            for (int c = 0; c < C; ++c) {
                d[static_cast<std::size_t>(e) * C + c] = s[c];
                d[pn - static_cast<std::size_t>(e + 1) * C + c] = s[n - C + c];
            }
        std::copy(s, s + n, d + static_cast<std::size_t>(P) * C);
    }
    std::vector<float> acc(n);
    std::vector<std::uint32_t> near(n);
    std::vector<double> exact(n);
    std::vector<int> vx(n), vc(n);
    std::vector<const std::uint8_t*> tap_row(taps.size());
    byte_taps row_taps;
    for (int y = 0; y < H; ++y) {
        row_taps.clear();
        for (std::size_t i : taps)
            row_taps.add(kf[i], &padded[static_cast<std::size_t>(std::clamp(y + oy[i], 0, H - 1)) * pn +
                                        static_cast<std::size_t>(P + ox[i]) * C]);
        byte_tap_rows(row_taps, acc.data(), n);
        const auto whole_row = [&](double* exact_row) {  // motion_blur_u8's row, as the reference runs it
            std::fill(exact_row, exact_row + n, 0.0);
            for (std::size_t i : taps)
                motion_tap_row(exact_row, src.data + static_cast<std::size_t>(std::clamp(y + oy[i], 0, H - 1)) * n, W, C,
                               ox[i], k[i]);
        };
        const auto values = [&](const std::uint32_t* idx, std::size_t m, double* exact_out) {
            // each value's column and channel, and each tap's row, computed once
            for (std::size_t p = 0; p < m; ++p)
                vx[p] = static_cast<int>(idx[p] / C), vc[p] = static_cast<int>(idx[p] % C);
            for (std::size_t t = 0; t < taps.size(); ++t)
                tap_row[t] = src.data + static_cast<std::size_t>(std::clamp(y + oy[taps[t]], 0, H - 1)) * n;
            exact_tap_sums(
                m, taps.size(), [&](std::size_t t) { return k[taps[t]]; },
                [&](std::size_t p, std::size_t t) {
                    const int x = std::clamp(vx[p] + ox[taps[t]], 0, W - 1);
                    return static_cast<double>(tap_row[t][static_cast<std::size_t>(x) * C + static_cast<std::size_t>(vc[p])]);
                },
                exact_out);
        };
        decide_row(acc.data(), n, band, dst.data + static_cast<std::size_t>(y) * n, near.data(), exact.data(), whole_row,
                   values, trunc_u8);
    }
    return true;
}

//! One output row of zoom_accumulate: acc[j] += float(t_j) with t_j the reference's order-1
//! interpolation ((v00 wy0) wx0[j] + (v01 wy0) wx1[j]) + (v10 wy1) wx0[j] + (v11 wy1) wx1[j],
//! where p0 = v0 wy0 and p1 = v1 wy1 are the crop rows already multiplied by their row weight
//! (each product rounded as in the reference) and o0 / o1 the column offsets.
SHIFTNORM_FP_EXACT inline void zoom_row(float* acc, const double* p0, const double* p1, const int* o0, const int* o1,
                                        const double* wx0, const double* wx1, std::size_t n) {
    for (std::size_t j = 0; j < n; ++j) {
        double t = p0[o0[j]] * wx0[j];
        const double b = p0[o1[j]] * wx1[j];
        t = t + b;
        const double c = p1[o0[j]] * wx0[j];
        t = t + c;
        const double d = p1[o1[j]] * wx1[j];
        t = t + d;
        acc[j] += static_cast<float>(t);
    }
}

//! p[i] = double(v[i]) * wy for a crop row (p[n..] stays 0: the outside neighbour).
SHIFTNORM_FP_EXACT inline void scaled_row(double* p, const float* v, std::size_t n, double wy) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<double>(v[i]) * wy;
}

//! acc += float(clipped_zoom(src, z)) without the intermediate image: the same values added in
//! the same order (an output value outside the zoomed window adds 0). src and acc: h x w x c.
SHIFTNORM_FP_EXACT inline void zoom_accumulate(const std::vector<float>& src, int h, int w, int c, double z, std::vector<float>& acc) {
    const int ch = static_cast<int>(std::ceil(h / z)), cw = static_cast<int>(std::ceil(w / z));
    const int top = (h - ch) / 2, left = (w - cw) / 2;
    const int zh = static_cast<int>(std::nearbyint(ch * z)), zw = static_cast<int>(std::nearbyint(cw * z));
    const lin_axis ay = zoom_axis(ch, zh), ax = zoom_axis(cw, zw);
    const int ty = (zh - h) / 2 >= 0 ? (zh - h) / 2 : 0, tx = (zw - w) / 2 >= 0 ? (zw - w) / 2 : 0;
    const int ny = std::min(h, zh - ty), nx = std::min(w, zw - tx);
    if (ny <= 0 || nx <= 0) return;
    // per output value of a row: offsets into a padded crop row (index cw * c + k holds 0: the
    // reference's outside neighbour) and the column weights
    const std::size_t n = static_cast<std::size_t>(nx) * c;
    std::vector<int> o0(n), o1(n);
    std::vector<double> wx0(n), wx1(n);
    for (int x = 0; x < nx; ++x)
        for (int k = 0; k < c; ++k) {
            const std::size_t j = static_cast<std::size_t>(x) * c + k;
            const int i0 = ax.i0[tx + x], i1 = ax.i1[tx + x];
            o0[j] = (i0 >= 0 ? i0 : cw) * c + k;
            o1[j] = (i1 >= 0 ? i1 : cw) * c + k;
            wx0[j] = ax.w0[tx + x];
            wx1[j] = ax.w1[tx + x];
        }
    // the two crop rows of an output row, times their row weights; one zero pixel after each
    // row stands for the reference's outside neighbour (offset cw * c + k)
    const std::size_t row = static_cast<std::size_t>(cw) * c;
    std::vector<double> p0(row + c, 0.0), p1(row + c, 0.0);
    for (int y = 0; y < ny; ++y) {
        const int oy = ty + y;
        const int i0 = ay.i0[oy], i1 = ay.i1[oy];
        const double wy0 = ay.w0[oy], wy1 = ay.w1[oy];
        if (i0 >= 0) scaled_row(p0.data(), &src[(static_cast<std::size_t>(top + i0) * w + left) * c], row, wy0);
        else std::fill(p0.begin(), p0.begin() + static_cast<std::ptrdiff_t>(row), 0.0);
        if (i1 >= 0) scaled_row(p1.data(), &src[(static_cast<std::size_t>(top + i1) * w + left) * c], row, wy1);
        else std::fill(p1.begin(), p1.begin() + static_cast<std::ptrdiff_t>(row), 0.0);
        zoom_row(&acc[static_cast<std::size_t>(y) * w * c], p0.data(), p1.data(), o0.data(), o1.data(), wx0.data(),
                 wx1.data(), n);
    }
}

//! ImageMagick's MotionBlurImage(radius, sigma, angle) on a uint8 HWC image, without ImageMagick:
//! a one-sided kernel of width 2*ceil(radius)+1 with weights exp(-i^2 / (2 sigma^2)) (normalised)
//! sampled at integer offsets (ceil(i cos(a) - 0.5), ceil(i sin(a) - 0.5)) along the angle,
//! edge-replicated borders, results truncated to uint8. (Truncation, not rounding: the reference
//! figures show the -0.5 level bias of truncation, see docs/corruptions.md.)
//! `arithmetic`: fast_motion_u8 or the float64 rows below (the same bytes: fast_filters.hpp).
SHIFTNORM_FP_EXACT inline image motion_blur_u8(const_image_view src, double radius, double sigma, double angle_deg,
                                               filter_arithmetic arithmetic = filter_arithmetic::fast) {
    const int width = radius > 1e-12 ? static_cast<int>(2.0 * std::ceil(radius) + 1.0) : 3;
    const double s = std::fabs(sigma) < 1e-12 ? 1e-12 : sigma;
    std::vector<double> k(width);
    double norm = 0.0;
    for (int i = 0; i < width; ++i) norm += (k[i] = std::exp(-(double(i) * i) / (2.0 * s * s)) / (2.5066282746310002 * s));
    for (double& v : k) v /= norm;
    const double a = angle_deg * 3.14159265358979323846 / 180.0;
    const double px = width * std::sin(a), py = width * std::cos(a);
    const double hyp = std::hypot(px, py);
    std::vector<int> ox(width), oy(width);
    for (int i = 0; i < width; ++i) {
        ox[i] = static_cast<int>(std::ceil(i * py / hyp - 0.5));
        oy[i] = static_cast<int>(std::ceil(i * px / hyp - 0.5));
    }
    // Row by row, taps in order into a row accumulator that stays in L1 (each value's sum is
    // the taps in order from 0.0, each product rounded before its addition: the reference's).
    const int H = src.height, W = src.width, C = src.channels;
    const std::size_t row_len = static_cast<std::size_t>(W) * C;
    image out(H, W, C);
    if (arithmetic == filter_arithmetic::fast && fast_motion_u8(src, out.view(), k, ox, oy)) return out;
    std::vector<double> row_acc(row_len);
    for (int y = 0; y < H; ++y) {
        std::fill(row_acc.begin(), row_acc.end(), 0.0);
        for (int i = 0; i < width; ++i) {
            if (k[i] < 1e-300) continue;
            const std::uint8_t* srow = src.data + static_cast<std::size_t>(border_index(y + oy[i], H, border::nearest)) * row_len;
            motion_tap_row(row_acc.data(), srow, W, C, ox[i], k[i]);
        }
        std::uint8_t* orow = out.data() + static_cast<std::size_t>(y) * row_len;
        for (std::size_t j = 0; j < row_len; ++j) orow[j] = trunc_u8(row_acc[j]);
    }
    return out;
}

}  // namespace detail

//! skimage.filters.gaussian(x / 255, sigma, channel_axis=-1) (mode 'nearest', truncate 4).
//! Deterministic. O(HWC * sigma). `arithmetic`: fast_filters.hpp.
SHIFTNORM_FP_EXACT inline void gaussian_blur(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar,
                                             filter_arithmetic arithmetic = filter_arithmetic::fast) {
    const double sigma = gaussian_blur_sigma(table, severity);
    detail::check_pair("gaussian_blur", src, dst);
    if (arithmetic == filter_arithmetic::fast && detail::fast_gaussian_u8(src, dst, sigma)) return;
    detail::fimage f = detail::to_unit(src);
    detail::gaussian_filter(f, sigma);
    detail::store_unit(f, dst);
}

//! Disk (defocus) kernel, cv2.filter2D with BORDER_REFLECT_101. Deterministic. `arithmetic`:
//! fast_filters.hpp (the fast path through the disk's runs where the kernel allows it,
//! else the folded kernel: defocus.hpp).
SHIFTNORM_FP_EXACT inline void defocus_blur(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar,
                                            filter_arithmetic arithmetic = filter_arithmetic::fast) {
    const defocus_params p = defocus_blur_params(table, severity);
    detail::check_pair("defocus_blur", src, dst);
    const detail::defocus_plan& plan = detail::defocus_plan_cached(p.radius, p.alias_blur);
    if (arithmetic == filter_arithmetic::fast &&
        (detail::fast_defocus_disk_u8(src, dst, plan) || detail::fast_defocus_fold_u8(src, dst, plan)))
        return;
    const detail::fimage f = detail::filter2d(detail::to_unit(src), plan.kernel, plan.R);
    detail::store_unit(f, dst);
}

//! Glass blur: gaussian blur, truncation to uint8, then for `iterations` passes over the interior
//! pixels (bottom-right to top-left) each pixel takes the value of a random neighbour at offset
//! (dy, dx) in [-d, d) (numpy randint), then a second gaussian blur. Mirrors the reference
//! exactly, including its tuple "swap" on numpy views, which copies the neighbour into the
//! pixel and leaves the neighbour unchanged. O(HW * iterations): milliseconds where the Python
//! reference needs seconds.
SHIFTNORM_FP_EXACT inline void glass_blur(const_image_view src, image_view dst, int severity, generator& gen,
                       param_table table = param_table::cifar) {
    const glass_params p = glass_blur_params(table, severity);
    detail::check_pair("glass_blur", src, dst);
    detail::fimage f = detail::to_unit(src);
    detail::gaussian_filter(f, p.sigma);
    const int H = src.height, W = src.width, C = src.channels, d = p.max_delta;
    std::vector<std::uint8_t> u(f.size());
    for (std::size_t i = 0; i < u.size(); ++i) u[i] = detail::trunc_u8(f.px[i] * 255.0);
    for (int it = 0; it < p.iterations; ++it)
        for (int h = H - d; h > d; --h)
            for (int w = W - d; w > d; --w) {
                const int dx = static_cast<int>(gen.randint(-d, d));
                const int dy = static_cast<int>(gen.randint(-d, d));
                const int hp = h + dy, wp = w + dx;
                for (int c = 0; c < C; ++c)
                    u[(static_cast<std::size_t>(h) * W + w) * C + c] = u[(static_cast<std::size_t>(hp) * W + wp) * C + c];
            }
    for (std::size_t i = 0; i < u.size(); ++i) f.px[i] = detail::byte_unit(u[i]);
    detail::gaussian_filter(f, p.sigma);
    detail::store_unit(f, dst);
}

//! Motion blur along a random angle in [-45, 45) degrees (one uniform draw), see motion_blur_u8.
SHIFTNORM_FP_EXACT inline void motion_blur(const_image_view src, image_view dst, int severity, generator& gen,
                        param_table table = param_table::cifar, filter_arithmetic arithmetic = filter_arithmetic::fast) {
    const motion_params p = motion_blur_params(table, severity);
    detail::check_pair("motion_blur", src, dst);
    const double angle = gen.uniform(-45.0, 45.0);
    const image out = detail::motion_blur_u8(src, p.radius, p.sigma, angle, arithmetic);
    std::copy(out.data(), out.data() + out.size(), dst.data);
}

//! Zoom blur: the average of the image and its centre zooms by the factors
//! numpy.arange(1, stop, step) (scipy zoom, order 1), in float32 like the reference. Deterministic.
SHIFTNORM_FP_EXACT inline void zoom_blur(const_image_view src, image_view dst, int severity, param_table table = param_table::cifar) {
    const zoom_params p = zoom_blur_params(table, severity);
    detail::check_pair("zoom_blur", src, dst);
    const auto zooms = detail::np_arange(1.0, p.stop, p.step);
    const int H = src.height, W = src.width, C = src.channels;
    std::vector<float> x(src.size()), out(src.size(), 0.0f);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(detail::byte_unit(src.data[i]));
    for (double z : zooms) detail::zoom_accumulate(x, H, W, C, z, out);
    const float n1 = static_cast<float>(zooms.size() + 1);
    for (std::size_t i = 0; i < x.size(); ++i) {
        float v = (x[i] + out[i]) / n1;
        v = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        dst.data[i] = detail::trunc_u8(static_cast<double>(v * 255.0f));
    }
}

}  // namespace shiftnorm::corrupt

SHIFTNORM_FP_EXACT_END
