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

//! PIL Image.resize((ow, oh), Image.BOX) of a uint8 HWC image: horizontal pass then vertical
//! pass, each rounding to uint8 as Pillow's 8-bit path does. Integer arithmetic, so the order of
//! the sums does not matter: the vertical pass runs over whole rows (vectorizes). Every sum fits
//! int32 (as in Pillow): 255 * (2^22 + ksize) + 2^21 < 2^31.
SHIFTNORM_FP_EXACT inline image pil_box_resize(const_image_view src, int ow, int oh) {
    constexpr int precision_bits = 32 - 8 - 2;
    constexpr std::int32_t half = std::int32_t(1) << (precision_bits - 1);
    const int c = src.channels;
    image tmp(src.height, ow, c);
    const pil_axis ax = ow != src.width ? pil_box_coeffs(src.width, ow) : pil_axis{};
    if (ow != src.width && !ax.single.empty()) {
        // a copy axis: (in << 22 + 2^21) >> 22 = in, so each output pixel is its input pixel
        for (int y = 0; y < src.height; ++y) {
            const std::uint8_t* in = src.data + static_cast<std::size_t>(y) * src.width * c;
            std::uint8_t* o = tmp.data() + static_cast<std::size_t>(y) * ow * c;
            for (int x = 0; x < ow; ++x)
                std::copy_n(in + static_cast<std::size_t>(ax.single[static_cast<std::size_t>(x)]) * c, c,
                            o + static_cast<std::size_t>(x) * c);
        }
    } else if (ow != src.width) {
        const pil_axis& a = ax;
        // tap-major over a whole row: acc[x] += in[xmin[x] + i] * k[x][i] for i < ksize (the
        // coefficients past xcount are 0, their index clamped into the row), no variable-length
        // inner loop; C is a compile-time 3 for RGB (the channel loop unrolls), else run-time
        std::vector<std::int32_t> acc(static_cast<std::size_t>(ow) * c);
        std::vector<int> idx(static_cast<std::size_t>(ow) * a.ksize);
        for (int x = 0; x < ow; ++x)
            for (int i = 0; i < a.ksize; ++i) idx[std::size_t(x) * a.ksize + i] = std::min(a.xmin[x] + i, src.width - 1);
        auto pass = [&](auto channels) {
            const int C = channels;
            for (int y = 0; y < src.height; ++y) {
                const std::uint8_t* in = src.data + static_cast<std::size_t>(y) * src.width * C;
                std::fill(acc.begin(), acc.end(), half);
                for (int i = 0; i < a.ksize; ++i)
                    for (int x = 0; x < ow; ++x) {
                        const std::int32_t kv = a.k[std::size_t(x) * a.ksize + i];
                        const std::uint8_t* p = in + static_cast<std::size_t>(idx[std::size_t(x) * a.ksize + i]) * C;
                        for (int k = 0; k < C; ++k) acc[std::size_t(x) * C + k] += std::int32_t(p[k]) * kv;
                    }
                std::uint8_t* o = tmp.data() + static_cast<std::size_t>(y) * ow * C;
                for (std::size_t j = 0; j < acc.size(); ++j) {
                    const std::int32_t v = acc[j] >> precision_bits;
                    o[j] = static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
                }
            }
        };
        if (c == 3) pass(std::integral_constant<int, 3>{});
        else pass(c);
    } else {
        tmp = image(src);
    }
    if (oh == src.height) return tmp;
    image out(oh, ow, c);
    const pil_axis a = pil_box_coeffs(src.height, oh);
    const std::size_t row = static_cast<std::size_t>(ow) * c;
    if (!a.single.empty()) {  // a copy axis: each output row is its input row
        for (int y = 0; y < oh; ++y)
            std::copy_n(tmp.data() + static_cast<std::size_t>(a.single[static_cast<std::size_t>(y)]) * row, row,
                        out.data() + static_cast<std::size_t>(y) * row);
        return out;
    }
    std::vector<std::int32_t> acc(row);
    for (int y = 0; y < oh; ++y) {
        std::fill(acc.begin(), acc.end(), half);
        const std::int32_t* kk = &a.k[static_cast<std::size_t>(y) * a.ksize];
        for (int i = 0; i < a.xcount[y]; ++i) {
            const std::uint8_t* in = tmp.data() + static_cast<std::size_t>(a.xmin[y] + i) * row;
            const std::int32_t kv = kk[i];
            for (std::size_t j = 0; j < row; ++j) acc[j] += std::int32_t(in[j]) * kv;
        }
        std::uint8_t* o = out.data() + static_cast<std::size_t>(y) * row;
        // pil_clip8 as a clamp of the shifted sum (the same value for every int32 sum): vectorizes
        for (std::size_t j = 0; j < row; ++j) {
            const std::int32_t v = acc[j] >> precision_bits;
            o[j] = static_cast<std::uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
        }
    }
    return out;
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
