// SPDX-License-Identifier: MIT
// Separable and 2-D linear filters with scipy.ndimage / OpenCV border semantics, on float work images.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt::detail {

//! out[x] = sum_t w[t] * src[t][x] for x in [0, n), taps added in order t = 0, 1, ... starting
//! from 0.0, each product rounded before its addition: the plain loop.
SHIFTNORM_FP_EXACT inline void tap_sum_row_plain(const double* const* src, const double* w, int taps, double* out, int n) {
    std::fill(out, out + n, 0.0);
    for (int t = 0; t < taps; ++t) {
        const double wt = w[t];
        const double* s = src[t];
        for (int x = 0; x < n; ++x) out[x] += wt * s[x];
    }
}

#if defined(SHIFTNORM_CORRUPT_AVX512)
//! tap_sum_row_plain with 32 outputs held in four AVX-512 registers across all taps (the row is
//! read once per tap, never the accumulator). Multiply then add, never fused
//! (fp-contract=off): every output is the same sequence of roundings as the plain loop, so the
//! two give the same bits (tests/corrupt: "AVX-512 tap sums").
SHIFTNORM_SIMD_WARNINGS_OFF
SHIFTNORM_FP_EXACT_TARGET("avx512f") inline void tap_sum_row_avx512(
    const double* const* src, const double* w, int taps, double* out, int n) {
    int x = 0;
    for (; x + 32 <= n; x += 32) {
        __m512d a0 = _mm512_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        for (int t = 0; t < taps; ++t) {
            const __m512d wt = _mm512_set1_pd(w[t]);
            const double* s = src[t] + x;
            a0 = _mm512_add_pd(a0, _mm512_mul_pd(wt, _mm512_loadu_pd(s)));
            a1 = _mm512_add_pd(a1, _mm512_mul_pd(wt, _mm512_loadu_pd(s + 8)));
            a2 = _mm512_add_pd(a2, _mm512_mul_pd(wt, _mm512_loadu_pd(s + 16)));
            a3 = _mm512_add_pd(a3, _mm512_mul_pd(wt, _mm512_loadu_pd(s + 24)));
        }
        _mm512_storeu_pd(out + x, a0);
        _mm512_storeu_pd(out + x + 8, a1);
        _mm512_storeu_pd(out + x + 16, a2);
        _mm512_storeu_pd(out + x + 24, a3);
    }
    for (; x < n; x += 8) {
        const __mmask8 m = n - x >= 8 ? __mmask8(0xFF) : __mmask8((1u << (n - x)) - 1u);
        __m512d a = _mm512_setzero_pd();
        for (int t = 0; t < taps; ++t)
            a = _mm512_add_pd(a, _mm512_mul_pd(_mm512_set1_pd(w[t]), _mm512_maskz_loadu_pd(m, src[t] + x)));
        _mm512_mask_storeu_pd(out + x, m, a);
    }
}
SHIFTNORM_SIMD_WARNINGS_ON
#endif

//! tap_sum_row_plain on the fastest kernel this CPU has (the same bits on every CPU).
SHIFTNORM_FP_EXACT inline void tap_sum_row(const double* const* src, const double* w, int taps, double* out, int n) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_rows_available()) return tap_sum_row_avx512(src, w, taps, out, n);
#endif
    tap_sum_row_plain(src, w, taps, out, n);
}

//! out[x] = c0[x] * w[0], then out[x] += (a[j-1][x] + b[j-1][x]) * w[j] for j = r, r-1, ..., 1,
//! each operation rounded as written: the symmetric path of scipy's NI_Correlate1D (centre tap
//! first, then outer-to-inner pairs) for n outputs whose taps are rows a / b.
SHIFTNORM_KERNEL_BODY void sym_tap_row_body(const double* c0, const double* const* a, const double* const* b,
                                            const double* w, int r, double* out, std::size_t n) {
    for (std::size_t x = 0; x < n; ++x) out[x] = c0[x] * w[0];
    for (int j = r; j >= 1; --j) {
        const double* aj = a[j - 1];
        const double* bj = b[j - 1];
        const double wj = w[j];
        for (std::size_t x = 0; x < n; ++x) out[x] += (aj[x] + bj[x]) * wj;
    }
}
SHIFTNORM_FP_EXACT inline void sym_tap_row_plain(const double* c0, const double* const* a, const double* const* b,
                                                 const double* w, int r, double* out, std::size_t n) {
    sym_tap_row_body(c0, a, b, w, r, out, n);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
//! sym_tap_row_body with 32 outputs held in four AVX-512 registers across all taps (as
//! tap_sum_row_avx512): the rows are read once per tap pair, the accumulator never. Add, multiply,
//! add, never fused (fp-contract=off): each output the same roundings as the plain loop.
SHIFTNORM_SIMD_WARNINGS_OFF
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void sym_tap_row_avx512(
    const double* c0, const double* const* a, const double* const* b, const double* w, int r, double* out,
    std::size_t n) {
    const __m512d w0 = _mm512_set1_pd(w[0]);
    std::size_t x = 0;
    for (; x + 32 <= n; x += 32) {
        __m512d s0 = _mm512_mul_pd(_mm512_loadu_pd(c0 + x), w0);
        __m512d s1 = _mm512_mul_pd(_mm512_loadu_pd(c0 + x + 8), w0);
        __m512d s2 = _mm512_mul_pd(_mm512_loadu_pd(c0 + x + 16), w0);
        __m512d s3 = _mm512_mul_pd(_mm512_loadu_pd(c0 + x + 24), w0);
        for (int j = r; j >= 1; --j) {
            const double* aj = a[j - 1] + x;
            const double* bj = b[j - 1] + x;
            const __m512d wj = _mm512_set1_pd(w[j]);
            s0 = _mm512_add_pd(s0, _mm512_mul_pd(_mm512_add_pd(_mm512_loadu_pd(aj), _mm512_loadu_pd(bj)), wj));
            s1 = _mm512_add_pd(s1, _mm512_mul_pd(_mm512_add_pd(_mm512_loadu_pd(aj + 8), _mm512_loadu_pd(bj + 8)), wj));
            s2 = _mm512_add_pd(s2, _mm512_mul_pd(_mm512_add_pd(_mm512_loadu_pd(aj + 16), _mm512_loadu_pd(bj + 16)), wj));
            s3 = _mm512_add_pd(s3, _mm512_mul_pd(_mm512_add_pd(_mm512_loadu_pd(aj + 24), _mm512_loadu_pd(bj + 24)), wj));
        }
        _mm512_storeu_pd(out + x, s0);
        _mm512_storeu_pd(out + x + 8, s1);
        _mm512_storeu_pd(out + x + 16, s2);
        _mm512_storeu_pd(out + x + 24, s3);
    }
    for (; x < n; x += 8) {
        const __mmask8 m = n - x >= 8 ? __mmask8(0xFF) : __mmask8((1u << (n - x)) - 1u);
        __m512d s = _mm512_mul_pd(_mm512_maskz_loadu_pd(m, c0 + x), w0);
        for (int j = r; j >= 1; --j) {
            const __m512d ab = _mm512_add_pd(_mm512_maskz_loadu_pd(m, a[j - 1] + x), _mm512_maskz_loadu_pd(m, b[j - 1] + x));
            s = _mm512_add_pd(s, _mm512_mul_pd(ab, _mm512_set1_pd(w[j])));
        }
        _mm512_mask_storeu_pd(out + x, m, s);
    }
}
SHIFTNORM_SIMD_WARNINGS_ON
#endif
//! sym_tap_row_body on the fastest build this CPU runs (the same bits on every CPU: a portable
//! build's SSE2 loop is 2 lanes wide, the twin's 8).
inline void sym_tap_row(const double* c0, const double* const* a, const double* const* b, const double* w, int r,
                        double* out, std::size_t n) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return sym_tap_row_avx512(c0, a, b, w, r, out, n);
#endif
    sym_tap_row_plain(c0, a, b, w, r, out, n);
}

//! Border extension modes, named as scipy.ndimage names them.
//! nearest: a a a | a b c d | d d d      (skimage.filters.gaussian's default)
//! reflect: c b a | a b c d | d c b      (scipy 'reflect', half-sample symmetric)
//! mirror:  d c b | a b c d | c b a      (scipy 'mirror' = OpenCV BORDER_REFLECT_101)
enum class border { nearest, reflect, mirror };

//! Maps an out-of-range index into [0, n) for the given border mode (any distance).
SHIFTNORM_KERNEL_BODY int border_index(int i, int n, border mode) {
    if (i >= 0 && i < n) return i;
    if (n == 1) return 0;
    switch (mode) {
        case border::nearest: return i < 0 ? 0 : n - 1;
        case border::reflect: {
            const int period = 2 * n;
            int m = i % period;
            if (m < 0) m += period;
            return m < n ? m : period - 1 - m;
        }
        case border::mirror: {
            const int period = 2 * n - 2;
            int m = i % period;
            if (m < 0) m += period;
            return m < n ? m : period - m;
        }
    }
    return 0;
}

//! scipy.ndimage._gaussian_kernel1d (order 0): half-width int(truncate*sigma + 0.5), weights
//! exp(-x^2 / (2 sigma^2)) normalised to sum 1. Returns the weights w[0..r] of offsets 0..r.
SHIFTNORM_FP_EXACT inline std::vector<double> gaussian_half_kernel(double sigma, double truncate = 4.0) {
    const int r = static_cast<int>(truncate * sigma + 0.5);
    std::vector<double> full(2 * r + 1);
    const double s2 = sigma * sigma;
    double sum = 0.0;
    for (int x = -r; x <= r; ++x) sum += (full[x + r] = std::exp(-0.5 / s2 * double(x) * double(x)));
    std::vector<double> half(r + 1);
    for (int x = 0; x <= r; ++x) half[x] = full[x + r] / sum;
    return half;
}

//! Symmetric 1-D correlation of every line of `f` along `axis` (0 = rows/vertical, 1 =
//! columns/horizontal), with the summation order of scipy's NI_Correlate1D symmetric path
//! (centre tap first, then outer-to-inner pairs), so float64 results match scipy bit for bit.
//! Scheduled for the cache: every output value keeps that order, but the loops run along the
//! contiguous H x (W*C) rows (vertical pass: whole rows at a time; horizontal: one border-padded
//! row, all channels interleaved): unit-stride rows summed by sym_tap_row, rounded as
//! written in every build (a -march=native build contracted the loop into FMAs before 2026-12-03
//! and wrote other bytes than the portable build). An AVX-512 twin holding 32 outputs in
//! registers across the taps ran no faster on 224x224 images (0.75 ms per gaussian_blur image
//! either way, 2026-12-03): not kept.
SHIFTNORM_FP_EXACT inline void correlate1d_symmetric(fimage& f, int axis, const std::vector<double>& half, border mode) {
    const int r = static_cast<int>(half.size()) - 1;
    if (r == 0 && half[0] == 1.0) {
        for (double& v : f.px) v = v * 1.0;
        return;
    }
    const std::size_t C = static_cast<std::size_t>(f.c), row = static_cast<std::size_t>(f.w) * C;
    std::vector<const double*> a(static_cast<std::size_t>(r)), b(static_cast<std::size_t>(r));
    if (axis == 0) {
        scratch_vector<double> out(f.px.size());
        for (int y = 0; y < f.h; ++y) {
            for (int j = 1; j <= r; ++j) {
                a[static_cast<std::size_t>(j - 1)] = &f.px[static_cast<std::size_t>(border_index(y - j, f.h, mode)) * row];
                b[static_cast<std::size_t>(j - 1)] = &f.px[static_cast<std::size_t>(border_index(y + j, f.h, mode)) * row];
            }
            sym_tap_row(&f.px[static_cast<std::size_t>(y) * row], a.data(), b.data(), half.data(), r,
                        &out[static_cast<std::size_t>(y) * row], row);
        }
        f.px.swap(out);
        return;
    }
    std::vector<double> buf((static_cast<std::size_t>(f.w) + 2 * r) * C), out(row);
    const double* p = &buf[static_cast<std::size_t>(r) * C];
    for (int j = 1; j <= r; ++j) {
        a[static_cast<std::size_t>(j - 1)] = p - static_cast<std::size_t>(j) * C;
        b[static_cast<std::size_t>(j - 1)] = p + static_cast<std::size_t>(j) * C;
    }
    for (int y = 0; y < f.h; ++y) {
        double* line = &f.px[static_cast<std::size_t>(y) * row];
        auto border_pixel = [&](int i) {  // the border pixels of the padded row, all channels
            const double* src = line + static_cast<std::size_t>(border_index(i, f.w, mode)) * C;
            for (std::size_t ch = 0; ch < C; ++ch) buf[static_cast<std::size_t>(i + r) * C + ch] = src[ch];
        };
        for (int i = -r; i < 0; ++i) border_pixel(i);
        std::copy(line, line + row, &buf[static_cast<std::size_t>(r) * C]);
        for (int i = f.w; i < f.w + r; ++i) border_pixel(i);
        sym_tap_row(p, a.data(), b.data(), half.data(), r, out.data(), row);
        std::copy(out.begin(), out.end(), line);
    }
}

//! skimage.filters.gaussian(x, sigma, channel_axis=-1, mode, truncate): scipy gaussian_filter
//! over the two spatial axes (axis 0 first, then axis 1), channels untouched. In place.
SHIFTNORM_FP_EXACT inline void gaussian_filter(fimage& f, double sigma, border mode = border::nearest, double truncate = 4.0) {
    if (!(sigma > 1e-15)) return;
    const auto half = gaussian_half_kernel(sigma, truncate);
    correlate1d_symmetric(f, 0, half, mode);
    correlate1d_symmetric(f, 1, half, mode);
}

//! cv2.getGaussianKernel(ksize, sigma) for sigma > 0: exp(-(i - (k-1)/2)^2 / (2 sigma^2)), normalised.
SHIFTNORM_FP_EXACT inline std::vector<double> cv_gaussian_kernel(int ksize, double sigma) {
    std::vector<double> k(ksize);
    const double scale2x = -0.5 / (sigma * sigma);
    double sum = 0.0;
    for (int i = 0; i < ksize; ++i) {
        const double x = i - (ksize - 1) * 0.5;
        sum += (k[i] = std::exp(scale2x * x * x));
    }
    for (double& v : k) v /= sum;
    return k;
}

//! Dense 2-D correlation (cv2.filter2D semantics: anchor at the centre, no kernel flip) of every
//! channel of `f` with a (2r+1)x(2r+1) kernel stored row-major; border mode OpenCV's default
//! BORDER_REFLECT_101 (= border::mirror) unless told otherwise.
SHIFTNORM_FP_EXACT inline fimage filter2d(const fimage& f, const std::vector<double>& kernel, int r, border mode = border::mirror) {
    const int k = 2 * r + 1;
    // Pad each channel plane once (border-mapped), then build each output row with tap_sum_row:
    // taps in (dy, dx) order (the summation order of every value is that of a tap-major loop),
    // unit-stride rows; zero taps are skipped (disk kernels are sparse).
    const int ph = f.h + 2 * r, pw = f.w + 2 * r;
    scratch_vector<double> pad(static_cast<std::size_t>(ph) * pw);
    std::vector<double> acc(static_cast<std::size_t>(f.w));
    std::vector<int> taps;  // non-zero taps, in (dy, dx) order
    std::vector<double> w;
    for (int t = 0; t < k * k; ++t)
        if (kernel[t] != 0.0) taps.push_back(t), w.push_back(kernel[t]);
    std::vector<const double*> src(taps.size());
    fimage out(f.h, f.w, f.c);
    for (int ch = 0; ch < f.c; ++ch) {
        for (int y = 0; y < ph; ++y) {
            const int sy = border_index(y - r, f.h, mode);
            for (int x = 0; x < pw; ++x) pad[static_cast<std::size_t>(y) * pw + x] = f(sy, border_index(x - r, f.w, mode), ch);
        }
        for (int y = 0; y < f.h; ++y) {
            for (std::size_t i = 0; i < taps.size(); ++i)
                src[i] = &pad[static_cast<std::size_t>(y + taps[i] / k) * pw + taps[i] % k];
            tap_sum_row(src.data(), w.data(), int(taps.size()), acc.data(), f.w);
            for (int x = 0; x < f.w; ++x) out(y, x, ch) = acc[x];
        }
    }
    return out;
}

//! The h x w plane v with p extra rows and columns on every side filled in `mode`
//! (border_index): (h + 2p) x (w + 2p) values, row-major. Interior rows are copied whole; every
//! value is written, so the buffer is not zeroed first (scratch_buffer).
template <class T>
inline scratch_buffer<T> padded_plane(const T* v, int h, int w, int p, border mode) {
    if (h <= 0 || w <= 0 || p < 0) return {};
    const std::size_t pw = static_cast<std::size_t>(w) + 2 * static_cast<std::size_t>(p);
    scratch_buffer<T> out(pw * (static_cast<std::size_t>(h) + 2 * static_cast<std::size_t>(p)));
    for (int y = -p; y < h + p; ++y) {
        const T* row = v + static_cast<std::size_t>(border_index(y, h, mode)) * w;
        T* o = &out[static_cast<std::size_t>(y + p) * pw];
        for (int x = -p; x < 0; ++x) o[x + p] = row[border_index(x, w, mode)];
        std::copy_n(row, static_cast<std::size_t>(w), o + p);
        for (int x = w; x < w + p; ++x) o[x + p] = row[border_index(x, w, mode)];
    }
    return out;
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
