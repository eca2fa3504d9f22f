// SPDX-License-Identifier: MIT
// Resampling with reference semantics: scipy zoom/map_coordinates (order 1), OpenCV warpAffine, Pillow BOX resize.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "shiftnorm/corrupt/filters.hpp"
#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt::detail {

//! numpy.arange(start, stop, step) for doubles: length ceil((stop - start) / step), values
//! start + i * (start + step - start), exactly as numpy fills them (so the float quirks match:
//! arange(1, 1.06, 0.01) has 7 elements).
SHIFTNORM_FP_EXACT inline std::vector<double> np_arange(double start, double stop, double step) {
    const double len_f = std::ceil((stop - start) / step);
    const int len = len_f > 0 ? static_cast<int>(len_f) : 0;
    const double delta = (start + step) - start;
    std::vector<double> v(len);
    for (int i = 0; i < len; ++i) v[i] = start + i * delta;
    if (len > 0) v[0] = start;
    return v;
}

//! One axis of scipy.ndimage.zoom(order=1, grid_mode=False): output index o samples input
//! coordinate o * (in - 1) / (out - 1); i0/i1 are the neighbours (-1 = outside, value 0),
//! w0/w1 their weights.
struct lin_axis {
    std::vector<int> i0, i1;
    std::vector<double> w0, w1;
};
SHIFTNORM_FP_EXACT inline lin_axis zoom_axis(int in, int out) {
    lin_axis a;
    a.i0.resize(out), a.i1.resize(out), a.w0.resize(out), a.w1.resize(out);
    const double z = out > 1 ? static_cast<double>(in - 1) / static_cast<double>(out - 1) : 1.0;
    for (int o = 0; o < out; ++o) {
        const double cc = static_cast<double>(o) * z;
        const int s = static_cast<int>(std::floor(cc));
        const double t = cc - s;
        a.i0[o] = (s >= 0 && s < in) ? s : -1;
        a.i1[o] = (s + 1 >= 0 && s + 1 < in) ? s + 1 : -1;
        a.w0[o] = 1.0 - t;
        a.w1[o] = t;
    }
    return a;
}

//! One output row of zoom_crop for one channel: out[x] = T(((r0[j0] wx0 + r0[j1] wx1) + r1[j0] wx0)
//! + r1[j1] wx1), r0 / r1 the two input rows already times their row weights, j0 / j1 the
//! columns (shifted by one; 0 = outside). One body, a plain and an AVX-512 build.
template <class T>
SHIFTNORM_KERNEL_BODY void zoom_row_c1_body(const double* r0, const double* r1, const int* j0, const int* j1,
                                            const double* v0, const double* v1, T* out, int n) {
    for (int x = 0; x < n; ++x) {
        double t = r0[j0[x]] * v0[x];
        t += r0[j1[x]] * v1[x];
        t += r1[j0[x]] * v0[x];
        t += r1[j1[x]] * v1[x];
        out[x] = static_cast<T>(t);
    }
}
template <class T>
SHIFTNORM_FP_EXACT void zoom_row_c1_plain(const double* r0, const double* r1, const int* j0, const int* j1,
                                          const double* v0, const double* v1, T* out, int n) {
    zoom_row_c1_body(r0, r1, j0, j1, v0, v1, out, n);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
template <class T>
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) void zoom_row_c1_avx512(const double* r0, const double* r1,
                                                                               const int* j0, const int* j1,
                                                                               const double* v0, const double* v1,
                                                                               T* out, int n) {
    zoom_row_c1_body(r0, r1, j0, j1, v0, v1, out, n);
}
#endif
template <class T>
void zoom_row_c1(const double* r0, const double* r1, const int* j0, const int* j1, const double* v0, const double* v1,
                 T* out, int n) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return zoom_row_c1_avx512(r0, r1, j0, j1, v0, v1, out, n);
#endif
    zoom_row_c1_plain(r0, r1, j0, j1, v0, v1, out, n);
}

//! scipy.ndimage.zoom(img[y0:y0+ch, x0:x0+cw], (zy, zx, 1), order=1) of a float32 or float64
//! image (T), then the output window [ty:ty+oh, tx:tx+ow]. Computed in float64 and rounded to T
//! like scipy does. Output shape before trimming: round(ch * zy) x round(cw * zx).
template <class T, class Vec>
SHIFTNORM_FP_EXACT scratch_vector<T> zoom_crop(const Vec& src, int h, int w, int c, int y0, int x0, int ch, int cw,
                                           double zy, double zx, int oh, int ow) {
    const int zh = static_cast<int>(std::nearbyint(ch * zy));
    const int zw = static_cast<int>(std::nearbyint(cw * zx));
    const lin_axis ay = zoom_axis(ch, zh), ax = zoom_axis(cw, zw);
    const int ty = (zh - oh) / 2 >= 0 ? (zh - oh) / 2 : 0;
    const int tx = (zw - ow) / 2 >= 0 ? (zw - ow) / 2 : 0;
    scratch_vector<T> out(static_cast<std::size_t>(oh) * ow * c, T(0));
    // the output columns' taps, shifted by one: index 0 stands for -1 (outside, value 0)
    const int nx = std::max(0, std::min(ow, zw - tx));
    scratch_vector<int> j0(static_cast<std::size_t>(nx)), j1(static_cast<std::size_t>(nx));
    scratch_vector<double> v0(static_cast<std::size_t>(nx)), v1(static_cast<std::size_t>(nx));
    for (int x = 0; x < nx; ++x) {
        j0[static_cast<std::size_t>(x)] = ax.i0[tx + x] + 1, j1[static_cast<std::size_t>(x)] = ax.i1[tx + x] + 1;
        v0[static_cast<std::size_t>(x)] = ax.w0[tx + x], v1[static_cast<std::size_t>(x)] = ax.w1[tx + x];
    }
    // per output row, its two input rows times their row weight (value * wy, the reference's
    // first product), slot 0 holding 0 * wy for the columns outside
    const std::size_t rw = (static_cast<std::size_t>(cw) + 1) * c;
    scratch_vector<double> r0(rw), r1(rw);
    const auto weigh = [&](scratch_vector<double>& r, int iy, double wy) {
        for (int k = 0; k < c; ++k) r[static_cast<std::size_t>(k)] = 0.0 * wy;
        for (int xx = 0; xx < cw; ++xx)
            for (int k = 0; k < c; ++k)
                r[(static_cast<std::size_t>(xx) + 1) * c + k] =
                    (iy < 0 ? 0.0 : static_cast<double>(src[(static_cast<std::size_t>(y0 + iy) * w + (x0 + xx)) * c + k])) *
                    wy;
    };
    for (int y = 0; y < oh && ty + y < zh; ++y) {
        const int oy = ty + y;
        weigh(r0, ay.i0[oy], ay.w0[oy]);
        weigh(r1, ay.i1[oy], ay.w1[oy]);
        T* o = &out[static_cast<std::size_t>(y) * ow * c];
        if (c == 1) {
            zoom_row_c1(r0.data(), r1.data(), j0.data(), j1.data(), v0.data(), v1.data(), o, nx);
            continue;
        }
        for (int x = 0; x < nx; ++x) {
            const std::size_t a = static_cast<std::size_t>(j0[static_cast<std::size_t>(x)]) * c;
            const std::size_t b = static_cast<std::size_t>(j1[static_cast<std::size_t>(x)]) * c;
            const double wx0 = v0[static_cast<std::size_t>(x)], wx1 = v1[static_cast<std::size_t>(x)];
            for (int k = 0; k < c; ++k) {
                double t = r0[a + k] * wx0;
                t += r0[b + k] * wx1;
                t += r1[a + k] * wx0;
                t += r1[b + k] * wx1;
                o[static_cast<std::size_t>(x) * c + k] = static_cast<T>(t);
            }
        }
    }
    (void)h;
    return out;
}

//! The reference's clipped_zoom: crop the centred ceil(h / z) window, zoom it by z (order 1),
//! keep the centred h x w window. Generalised to non-square images axis by axis.
template <class T, class Vec>
SHIFTNORM_FP_EXACT scratch_vector<T> clipped_zoom(const Vec& src, int h, int w, int c, double z) {
    const int ch = static_cast<int>(std::ceil(h / z));
    const int cw = static_cast<int>(std::ceil(w / z));
    const int top = (h - ch) / 2, left = (w - cw) / 2;
    return zoom_crop<T>(src, h, w, c, top, left, ch, cw, z, z, h, w);
}

//! scipy.ndimage.map_coordinates(img, (yy, xx), order=1, mode='reflect') of every channel of one
//! pixel: out[k] for the c channels of the h x w x c values px (raw pointers, so the loop inlines).
SHIFTNORM_KERNEL_BODY void sample_reflect_pixel(const double* px, int h, int w, int c, double yy, double xx,
                                                    double* out) {
    const double fy = std::floor(yy), fx = std::floor(xx);
    const int sy = static_cast<int>(fy), sx = static_cast<int>(fx);
    const double ty = yy - fy, tx = xx - fx, uy = 1 - ty, ux = 1 - tx;
    const std::size_t y0 = static_cast<std::size_t>(border_index(sy, h, border::reflect)) * w;
    const std::size_t y1 = static_cast<std::size_t>(border_index(sy + 1, h, border::reflect)) * w;
    const std::size_t x0 = static_cast<std::size_t>(border_index(sx, w, border::reflect));
    const std::size_t x1 = static_cast<std::size_t>(border_index(sx + 1, w, border::reflect));
    const double* p00 = px + (y0 + x0) * c;
    const double* p01 = px + (y0 + x1) * c;
    const double* p10 = px + (y1 + x0) * c;
    const double* p11 = px + (y1 + x1) * c;
    for (int k = 0; k < c; ++k) out[k] = p00[k] * uy * ux + p01[k] * uy * tx + p10[k] * ty * ux + p11[k] * ty * tx;
}

//! cv2.getAffineTransform: the 2x3 matrix M with dst_i = M * (src_i, 1) for three point pairs (x, y).
SHIFTNORM_FP_EXACT inline std::array<double, 6> affine_from_points(const std::array<double, 6>& src, const std::array<double, 6>& dst) {
    // Solve [x y 1] * (a b c)^T = u and = v for the two rows by Cramer's rule.
    const double x0 = src[0], y0 = src[1], x1 = src[2], y1 = src[3], x2 = src[4], y2 = src[5];
    const double det = x0 * (y1 - y2) - y0 * (x1 - x2) + (x1 * y2 - x2 * y1);
    std::array<double, 6> m{};
    for (int r = 0; r < 2; ++r) {
        const double u0 = dst[r], u1 = dst[2 + r], u2 = dst[4 + r];
        m[r * 3 + 0] = (u0 * (y1 - y2) - y0 * (u1 - u2) + (u1 * y2 - u2 * y1)) / det;
        m[r * 3 + 1] = (x0 * (u1 - u2) - u0 * (x1 - x2) + (x1 * u2 - x2 * u1)) / det;
        m[r * 3 + 2] = (x0 * (y1 * u2 - y2 * u1) - y0 * (x1 * u2 - x2 * u1) + u0 * (x1 * y2 - x2 * y1)) / det;
    }
    return m;
}

//! warp_affine's loop: out[y, x, k] = the bilinear value at the source coordinates (a00 x + a01 y
//! + b0, a10 x + a11 y + b1) quantised to 1/32 pixel, reflect-101 border. One body, a plain and
//! an AVX-512 build (floor and rounding inline there).
SHIFTNORM_KERNEL_BODY void warp_affine_body(const double* px, int h, int w, int c, const double* a, double* o) {
    const double a00 = a[0], a01 = a[1], b0 = a[2], a10 = a[3], a11 = a[4], b1 = a[5];
    const std::size_t C = static_cast<std::size_t>(c);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x, o += C) {
            const double sx = std::nearbyint((a00 * x + a01 * y + b0) * 32.0) / 32.0;
            const double sy = std::nearbyint((a10 * x + a11 * y + b1) * 32.0) / 32.0;
            const double fx = std::floor(sx), fy = std::floor(sy);
            const double tx = sx - fx, ty = sy - fy, ux = 1 - tx, uy = 1 - ty;
            const std::size_t x0 = static_cast<std::size_t>(border_index(int(fx), w, border::mirror));
            const std::size_t x1 = static_cast<std::size_t>(border_index(int(fx) + 1, w, border::mirror));
            const std::size_t y0 = static_cast<std::size_t>(border_index(int(fy), h, border::mirror)) * w;
            const std::size_t y1 = static_cast<std::size_t>(border_index(int(fy) + 1, h, border::mirror)) * w;
            const double* p00 = px + (y0 + x0) * C;
            const double* p01 = px + (y0 + x1) * C;
            const double* p10 = px + (y1 + x0) * C;
            const double* p11 = px + (y1 + x1) * C;
            for (std::size_t k = 0; k < C; ++k)
                o[k] = (p00[k] * ux + p01[k] * tx) * uy + (p10[k] * ux + p11[k] * tx) * ty;
        }
}
SHIFTNORM_FP_EXACT inline void warp_affine_plain(const double* px, int h, int w, int c, const double* a, double* o) {
    warp_affine_body(px, h, w, c, a, o);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void warp_affine_avx512(const double* px, int h, int w,
                                                                                      int c, const double* a, double* o) {
    warp_affine_body(px, h, w, c, a, o);
}
#endif

//! cv2.warpAffine(img, M, (w, h), INTER_LINEAR, BORDER_REFLECT_101): dst(x, y) = src(M^-1 (x, y)),
//! source coordinates quantised to 1/32 pixel like OpenCV's INTER_TAB_SIZE.
SHIFTNORM_FP_EXACT inline fimage warp_affine(const fimage& f, const std::array<double, 6>& m) {
    const double det = m[0] * m[4] - m[1] * m[3];
    const double d = det != 0.0 ? 1.0 / det : 0.0;
    const double a00 = m[4] * d, a01 = -m[1] * d, a10 = -m[3] * d, a11 = m[0] * d;
    const double b0 = -a00 * m[2] - a01 * m[5], b1 = -a10 * m[2] - a11 * m[5];
    const double a[6] = {a00, a01, b0, a10, a11, b1};
    fimage out(f.h, f.w, f.c);
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) {
        warp_affine_avx512(f.px.data(), f.h, f.w, f.c, a, out.px.data());
        return out;
    }
#endif
    warp_affine_plain(f.px.data(), f.h, f.w, f.c, a, out.px.data());
    return out;
}

//! Pillow's Resample.c coefficients for one axis with the BOX filter (support 0.5), converted to
//! Pillow's 8-bit fixed point (22 fractional bits).
struct pil_axis {
    int ksize = 0;
    std::vector<int> xmin, xcount;
    std::vector<std::int32_t> k;  // outSize * ksize
    //! When every output has one coefficient, 1 << 22, and the others 0 (an upscale): its input
    //! index per output (the 8-bit result is then that input byte exactly); else empty.
    std::vector<int> single;
};
SHIFTNORM_FP_EXACT inline pil_axis pil_box_coeffs(int in_size, int out_size) {
    constexpr int precision_bits = 32 - 8 - 2;
    pil_axis a;
    const double scale = static_cast<double>(in_size) / out_size;
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 0.5 * filterscale;
    a.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
    a.xmin.resize(out_size), a.xcount.resize(out_size), a.k.assign(static_cast<std::size_t>(out_size) * a.ksize, 0);
    std::vector<double> kk(a.ksize);
    for (int xx = 0; xx < out_size; ++xx) {
        const double center = (xx + 0.5) * scale;
        const double ss = 1.0 / filterscale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            const double arg = (x + xmin - center + 0.5) * ss;
            const double wv = (arg > -0.5 && arg <= 0.5) ? 1.0 : 0.0;
            kk[x] = wv;
            ww += wv;
        }
        for (int x = 0; x < xmax; ++x) {
            const double v = ww != 0.0 ? kk[x] / ww : kk[x];
            a.k[static_cast<std::size_t>(xx) * a.ksize + x] =
                v < 0 ? static_cast<std::int32_t>(-0.5 + v * (1 << precision_bits))
                      : static_cast<std::int32_t>(0.5 + v * (1 << precision_bits));
        }
        a.xmin[xx] = xmin;
        a.xcount[xx] = xmax;
    }
    // a copy axis: every output takes one input with weight 1 (an upscale: BOX at scale < 1)
    const std::int32_t one = std::int32_t(1) << precision_bits;
    a.single.resize(static_cast<std::size_t>(out_size));
    for (int xx = 0; xx < out_size && !a.single.empty(); ++xx) {
        int src = -1, nonzero = 0;
        for (int x = 0; x < a.xcount[xx]; ++x) {
            const std::int32_t v = a.k[static_cast<std::size_t>(xx) * a.ksize + x];
            if (v != 0) ++nonzero, src = v == one ? a.xmin[xx] + x : -1;
        }
        if (nonzero == 1 && src >= 0) a.single[static_cast<std::size_t>(xx)] = src;
        else a.single.clear();
    }
    return a;
}

SHIFTNORM_FP_EXACT inline std::uint8_t pil_clip8(std::int64_t v) {
    constexpr int precision_bits = 32 - 8 - 2;
    if (v >= (std::int64_t(1) << precision_bits) * 256) return 255;
    if (v <= 0) return 0;
    return static_cast<std::uint8_t>(v >> precision_bits);
}

//! The axes of pil_box_coeffs a thread used last (pixelate asks for the same four per image
//! size), with the horizontal pass's tap tables for c channels (c > 0): for tap i and output
//! byte j, the input byte index and weight at [i * out * c + j]. Up to 8 kept; a reference
//! stays valid until this thread's 8th later call.
struct pil_cached_axis {
    int in = -1, out = -1, c = 0;
    pil_axis a;
    std::vector<std::int32_t> bidx, bk;
    //! Byte-permute plan (pil_box_rows_vbmi): output bytes in blocks of `block` (64, 32 or 16;
    //! 0: none fits), block b's taps all inside the 128 input bytes from base[b]; rel[i][j] the
    //! index of tap i of output byte j from its block's base, each block padded to 64 bytes.
    int block = 0;
    std::vector<int> base;
    std::vector<std::uint8_t> rel;
};

//! The byte-permute plan of an axis's tap tables: the largest block whose taps span at most 128 bytes.
inline void pil_plan_byte_permutes(pil_cached_axis& e, int in_bytes) {
    const int n = e.out * e.c, ks = e.a.ksize;
    e.block = 0;
    for (int block : {64, 32, 16}) {
        const int nb = (n + block - 1) / block;
        std::vector<int> base(static_cast<std::size_t>(nb));
        bool fits = true;
        for (int b = 0; b < nb && fits; ++b) {
            int lo = in_bytes, hi = -1;
            for (int i = 0; i < ks; ++i)
                for (int j = b * block; j < std::min(n, (b + 1) * block); ++j) {
                    lo = std::min(lo, e.bidx[static_cast<std::size_t>(i) * n + j]);
                    hi = std::max(hi, e.bidx[static_cast<std::size_t>(i) * n + j]);
                }
            base[static_cast<std::size_t>(b)] = lo;
            fits = hi - lo < 128;
        }
        if (!fits) continue;
        e.block = block;
        e.base = std::move(base);
        e.rel.assign(static_cast<std::size_t>(ks) * nb * 64, 0);
        for (int i = 0; i < ks; ++i)
            for (int j = 0; j < n; ++j)
                e.rel[(static_cast<std::size_t>(i) * nb + j / block) * 64 + j % block] =
                    static_cast<std::uint8_t>(e.bidx[static_cast<std::size_t>(i) * n + j] - e.base[static_cast<std::size_t>(j / block)]);
        return;
    }
}
inline const pil_cached_axis& pil_box_axis(int in_size, int out_size, int c) {
    thread_local std::array<pil_cached_axis, 8> cache;
    thread_local std::size_t next = 0;
    for (const auto& e : cache)
        if (e.in == in_size && e.out == out_size && e.c == c) return e;
    pil_cached_axis& e = cache[next];
    next = (next + 1) % cache.size();
    e.in = -1;  // not valid until complete (an exception below leaves no half entry)
    e.a = pil_box_coeffs(in_size, out_size);
    const std::size_t n = static_cast<std::size_t>(out_size) * c;
    e.bidx.assign(static_cast<std::size_t>(e.a.ksize) * n, 0);
    e.bk.assign(e.bidx.size(), 0);
    for (int i = 0; i < e.a.ksize; ++i)
        for (int x = 0; x < out_size; ++x)
            for (int k = 0; k < c; ++k) {
                // the coefficients past xcount are 0, their index clamped into the row
                const std::size_t j = static_cast<std::size_t>(i) * n + static_cast<std::size_t>(x) * c + k;
                e.bidx[j] = std::min(e.a.xmin[static_cast<std::size_t>(x)] + i, in_size - 1) * c + k;
                e.bk[j] = e.a.k[static_cast<std::size_t>(x) * e.a.ksize + i];
            }
    e.c = c;
    e.out = out_size;
    if (c > 0) pil_plan_byte_permutes(e, in_size * c);
    e.in = in_size;
    return e;
}

//! Pillow's horizontal pass over h rows (in_bytes bytes each in, n bytes each out): every
//! output byte the clipped (2^21 + sum of input byte x weight) >> 22 over the taps, tap-major
//! with the row widened to int32 first (an indexed load per tap and byte: gathers in the AVX-512
//! build). row: in_bytes ints; acc: n ints.
SHIFTNORM_KERNEL_BODY void pil_box_rows_body(const std::uint8_t* src, int h, int in_bytes, const std::int32_t* bidx,
                                             const std::int32_t* bk, int ksize, int n, std::int32_t* row, std::int32_t* acc,
                                             std::uint8_t* dst) {
    constexpr int precision_bits = 32 - 8 - 2;
    for (int y = 0; y < h; ++y) {
        const std::uint8_t* in = src + static_cast<std::size_t>(y) * in_bytes;
        for (int j = 0; j < in_bytes; ++j) row[j] = in[j];
        for (int j = 0; j < n; ++j) acc[j] = std::int32_t(1) << (precision_bits - 1);
        for (int i = 0; i < ksize; ++i) {
            const std::int32_t* ix = bidx + static_cast<std::size_t>(i) * n;
            const std::int32_t* kv = bk + static_cast<std::size_t>(i) * n;
            for (int j = 0; j < n; ++j) acc[j] += row[ix[j]] * kv[j];
        }
        std::uint8_t* o = dst + static_cast<std::size_t>(y) * n;
        for (int j = 0; j < n; ++j) {
            const std::int32_t v = acc[j] >> precision_bits;  // pil_clip8 of the int32 sum
            o[j] = static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
    }
}

//! Pillow's vertical pass: output row y the clipped weighted sum of input rows xmin[y] ..
//! xmin[y] + xcount[y] - 1 (n bytes each), whole rows at a time. acc: n ints.
SHIFTNORM_KERNEL_BODY void pil_box_cols_body(const std::uint8_t* src, std::size_t n, const pil_axis& a, int oh, std::int32_t* acc,
                                             std::uint8_t* dst) {
    constexpr int precision_bits = 32 - 8 - 2;
    for (int y = 0; y < oh; ++y) {
        for (std::size_t j = 0; j < n; ++j) acc[j] = std::int32_t(1) << (precision_bits - 1);
        const std::int32_t* kk = &a.k[static_cast<std::size_t>(y) * a.ksize];
        for (int i = 0; i < a.xcount[static_cast<std::size_t>(y)]; ++i) {
            const std::uint8_t* in = src + static_cast<std::size_t>(a.xmin[static_cast<std::size_t>(y)] + i) * n;
            const std::int32_t kv = kk[i];
            for (std::size_t j = 0; j < n; ++j) acc[j] += std::int32_t(in[j]) * kv;
        }
        std::uint8_t* o = dst + static_cast<std::size_t>(y) * n;
        for (std::size_t j = 0; j < n; ++j) {
            const std::int32_t v = acc[j] >> precision_bits;
            o[j] = static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
    }
}

SHIFTNORM_FP_EXACT inline void pil_box_rows_plain(const std::uint8_t* src, int h, int in_bytes, const std::int32_t* bidx,
                                                  const std::int32_t* bk, int ksize, int n, std::int32_t* row, std::int32_t* acc,
                                                  std::uint8_t* dst) {
    pil_box_rows_body(src, h, in_bytes, bidx, bk, ksize, n, row, acc, dst);
}
SHIFTNORM_FP_EXACT inline void pil_box_cols_plain(const std::uint8_t* src, std::size_t n, const pil_axis& a, int oh, std::int32_t* acc,
                                                  std::uint8_t* dst) {
    pil_box_cols_body(src, n, a, oh, acc, dst);
}
#if defined(SHIFTNORM_CORRUPT_AVX2)
// AVX2 twins: the fallback on AVX2-only CPUs
SHIFTNORM_FP_EXACT_TARGET("avx2")
inline void pil_box_rows_avx2(const std::uint8_t* src, int h, int in_bytes, const std::int32_t* bidx, const std::int32_t* bk, int ksize,
                              int n, std::int32_t* row, std::int32_t* acc, std::uint8_t* dst) {
    pil_box_rows_body(src, h, in_bytes, bidx, bk, ksize, n, row, acc, dst);
}
SHIFTNORM_FP_EXACT_TARGET("avx2")
inline void pil_box_cols_avx2(const std::uint8_t* src, std::size_t n, const pil_axis& a, int oh, std::int32_t* acc, std::uint8_t* dst) {
    pil_box_cols_body(src, n, a, oh, acc, dst);
}
#endif
#if defined(SHIFTNORM_CORRUPT_AVX512)
//! pil_box_rows_body with 16 output bytes at a time in a register over all taps, the indexed
//! loads as gathers (GCC 12 does not vectorize the plain loop's indexed loads). acc unused.
SHIFTNORM_SIMD_WARNINGS_OFF
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA)
inline void pil_box_rows_avx512(const std::uint8_t* src, int h, int in_bytes, const std::int32_t* bidx, const std::int32_t* bk, int ksize,
                                int n, std::int32_t* row, std::int32_t*, std::uint8_t* dst) {
    constexpr int precision_bits = 32 - 8 - 2;
    const __m512i half = _mm512_set1_epi32(std::int32_t(1) << (precision_bits - 1)), lo = _mm512_setzero_si512(),
                  hi = _mm512_set1_epi32(255);
    for (int y = 0; y < h; ++y) {
        const std::uint8_t* in = src + static_cast<std::size_t>(y) * in_bytes;
        for (int j = 0; j < in_bytes; ++j) row[j] = in[j];
        std::uint8_t* o = dst + static_cast<std::size_t>(y) * n;
        for (int j = 0; j < n; j += 16) {
            const __mmask16 m = n - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - j)) - 1);
            __m512i a = half;
            for (int i = 0; i < ksize; ++i) {
                const std::size_t at = static_cast<std::size_t>(i) * n + j;
                const __m512i ix = _mm512_maskz_loadu_epi32(m, bidx + at);
                const __m512i g = _mm512_mask_i32gather_epi32(lo, m, ix, row, 4);
                a = _mm512_add_epi32(a, _mm512_mullo_epi32(g, _mm512_maskz_loadu_epi32(m, bk + at)));
            }
            const __m512i v = _mm512_min_epi32(_mm512_max_epi32(_mm512_srai_epi32(a, precision_bits), lo), hi);
            _mm_mask_storeu_epi8(o + j, m, _mm512_cvtepi32_epi8(v));
        }
    }
}
SHIFTNORM_SIMD_WARNINGS_ON
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA)
inline void pil_box_cols_avx512(const std::uint8_t* src, std::size_t n, const pil_axis& a, int oh, std::int32_t* acc, std::uint8_t* dst) {
    pil_box_cols_body(src, n, a, oh, acc, dst);
}

//! pil_box_rows_body with byte permutes (VBMI): for each block of output bytes and tap, the
//! input bytes picked from the 128 bytes at the block's base by one vpermi2b, widened to int32
//! and weighed; the block's sums in registers over all taps.
SHIFTNORM_SIMD_WARNINGS_OFF
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA ",avx512vbmi")
inline void pil_box_rows_vbmi(const std::uint8_t* src, int h, int in_bytes, const pil_cached_axis& e, std::uint8_t* dst) {
    constexpr int precision_bits = 32 - 8 - 2;
    const __m512i half = _mm512_set1_epi32(std::int32_t(1) << (precision_bits - 1)), zero = _mm512_setzero_si512(),
                  top = _mm512_set1_epi32(255);
    const int n = e.out * e.c, ks = e.a.ksize, block = e.block, nb = (n + block - 1) / block;
    auto bytes_mask = [](long k) { return k >= 64 ? ~__mmask64(0) : (k <= 0 ? __mmask64(0) : (__mmask64(1) << k) - 1); };
    auto lanes_mask = [](int k) { return k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << k) - 1); };
    for (int y = 0; y < h; ++y) {
        const std::uint8_t* in = src + static_cast<std::size_t>(y) * in_bytes;
        std::uint8_t* o = dst + static_cast<std::size_t>(y) * n;
        for (int b = 0; b < nb; ++b) {
            const int j0 = b * block, cnt = std::min(block, n - j0), base = e.base[static_cast<std::size_t>(b)];
            const __m512i lo = _mm512_maskz_loadu_epi8(bytes_mask(in_bytes - base), in + base);
            const __m512i hi = _mm512_maskz_loadu_epi8(bytes_mask(in_bytes - base - 64), in + base + 64);
            __m512i acc[4] = {half, half, half, half};
            for (int i = 0; i < ks; ++i) {
                const __m512i idx = _mm512_loadu_si512(e.rel.data() + (static_cast<std::size_t>(i) * nb + b) * 64);
                const __m512i v = _mm512_permutex2var_epi8(lo, idx, hi);
                const std::int32_t* w = e.bk.data() + static_cast<std::size_t>(i) * n + j0;
                const __m128i part[4] = {_mm512_extracti32x4_epi32(v, 0), _mm512_extracti32x4_epi32(v, 1),
                                         _mm512_extracti32x4_epi32(v, 2), _mm512_extracti32x4_epi32(v, 3)};
                for (int q = 0; q * 16 < cnt; ++q)
                    acc[q] = _mm512_add_epi32(acc[q], _mm512_mullo_epi32(_mm512_cvtepu8_epi32(part[q]),
                                                                         _mm512_maskz_loadu_epi32(lanes_mask(cnt - q * 16), w + q * 16)));
            }
            for (int q = 0; q * 16 < cnt; ++q) {
                const __m512i r = _mm512_min_epi32(_mm512_max_epi32(_mm512_srai_epi32(acc[q], precision_bits), zero), top);
                _mm_mask_storeu_epi8(o + j0 + q * 16, lanes_mask(cnt - q * 16), _mm512_cvtepi32_epi8(r));
            }
        }
    }
}
SHIFTNORM_SIMD_WARNINGS_ON
#endif

//! Pillow's horizontal pass of h rows of e.in pixels into e.out pixels (dst: h rows of e.out * e.c
//! bytes): byte permutes where the CPU and the plan allow, else the widest twin the CPU runs.
inline void pil_box_rows(const std::uint8_t* src, int h, const pil_cached_axis& e, std::uint8_t* dst) {
    const int in_bytes = e.in * e.c, n = e.out * e.c;
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (e.block > 0 && avx512_vbmi_available()) return pil_box_rows_vbmi(src, h, in_bytes, e, dst);
#endif
    scratch_vector<std::int32_t> work(static_cast<std::size_t>(in_bytes) + static_cast<std::size_t>(n));
    std::int32_t *row = work.data(), *acc = work.data() + in_bytes;
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available())
        return pil_box_rows_avx512(src, h, in_bytes, e.bidx.data(), e.bk.data(), e.a.ksize, n, row, acc, dst);
#endif
#if defined(SHIFTNORM_CORRUPT_AVX2)
    if (avx2_kernels_available()) return pil_box_rows_avx2(src, h, in_bytes, e.bidx.data(), e.bk.data(), e.a.ksize, n, row, acc, dst);
#endif
    pil_box_rows_plain(src, h, in_bytes, e.bidx.data(), e.bk.data(), e.a.ksize, n, row, acc, dst);
}

//! Pillow's vertical pass (rows of n bytes) with the widest twin the CPU runs.
inline void pil_box_cols(const std::uint8_t* src, std::size_t n, const pil_axis& a, int oh, std::uint8_t* dst) {
    scratch_vector<std::int32_t> acc(n);
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return pil_box_cols_avx512(src, n, a, oh, acc.data(), dst);
#endif
#if defined(SHIFTNORM_CORRUPT_AVX2)
    if (avx2_kernels_available()) return pil_box_cols_avx2(src, n, a, oh, acc.data(), dst);
#endif
    pil_box_cols_plain(src, n, a, oh, acc.data(), dst);
}

//! A copy axis across the columns: output pixel x of each of h rows is input pixel single[x]
//! (bytes copied in line: a std::copy_n of c bytes per pixel was a memmove call each).
inline void pil_copy_columns(const std::uint8_t* src, int h, int in_w, int c, const std::vector<int>& single, std::uint8_t* dst) {
    const int ow = static_cast<int>(single.size());
    auto copy_rows = [&](auto channels) {
        const int C = channels;
        for (int y = 0; y < h; ++y) {
            const std::uint8_t* in = src + static_cast<std::size_t>(y) * in_w * C;
            std::uint8_t* o = dst + static_cast<std::size_t>(y) * ow * C;
            for (int x = 0; x < ow; ++x) {
                const std::uint8_t* p = in + static_cast<std::size_t>(single[static_cast<std::size_t>(x)]) * C;
                for (int k = 0; k < C; ++k) o[static_cast<std::size_t>(x) * C + k] = p[k];
            }
        }
    };
    if (c == 3) copy_rows(std::integral_constant<int, 3>{});
    else copy_rows(c);
}

//! PIL Image.resize((dst.width, dst.height), Image.BOX) of a uint8 HWC image into dst (not src):
//! horizontal pass then vertical pass, each rounding to uint8 as Pillow's 8-bit path does.
//! Integer arithmetic, so the order of the sums does not matter. Every sum fits int32 (as in
//! Pillow): 255 * (2^22 + ksize) + 2^21 < 2^31. An axis whose every output takes one input with
//! weight 1 (an upscale) copies bytes.
SHIFTNORM_FP_EXACT inline void pil_box_resize_into(const_image_view src, image_view dst) {
    const int c = src.channels, ow = dst.width, oh = dst.height;
    const std::size_t row = static_cast<std::size_t>(ow) * c;
    // the horizontal pass into tmp (or straight into dst when the height stays)
    scratch_vector<std::uint8_t> tmp_store(oh == src.height ? 0 : static_cast<std::size_t>(src.height) * row);
    std::uint8_t* tmp = oh == src.height ? dst.data : tmp_store.data();
    if (ow == src.width) {
        std::copy_n(src.data, src.size(), tmp);
    } else {
        const pil_cached_axis& e = pil_box_axis(src.width, ow, c);
        if (!e.a.single.empty()) pil_copy_columns(src.data, src.height, src.width, c, e.a.single, tmp);
        else pil_box_rows(src.data, src.height, e, tmp);
    }
    if (oh == src.height) return;
    const pil_axis& a = pil_box_axis(src.height, oh, 0).a;  // after the horizontal pass: its entry may go
    if (a.single.empty()) return pil_box_cols(tmp, row, a, oh, dst.data);
    for (int y = 0; y < oh; ++y)  // a copy axis: each output row is its input row
        std::copy_n(tmp + static_cast<std::size_t>(a.single[static_cast<std::size_t>(y)]) * row, row, dst.data + static_cast<std::size_t>(y) * row);
}

//! pil_box_resize_into a new (oh x ow) image.
inline image pil_box_resize(const_image_view src, int ow, int oh) {
    image out(oh, ow, src.channels);
    pil_box_resize_into(src, out.view());
    return out;
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
