// SPDX-License-Identifier: MIT
// Window geometry (window2d) and the materialized im2col / col2im of the convolution layer.
#pragma once

#include <algorithm>

#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/nn/gemm_avx512.hpp"

namespace shiftnorm::nn {

//! Geometry of a 2-D convolution or pooling window (PyTorch semantics: floor division).
struct window2d {
    index_t kh = 1, kw = 1;  //!< kernel extent
    index_t sh = 1, sw = 1;  //!< stride
    index_t ph = 0, pw = 0;  //!< zero padding on each side
    index_t dh = 1, dw = 1;  //!< dilation

    index_t out_h(index_t h) const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
    index_t out_w(index_t w) const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
    bool identity_1x1() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

namespace detail {

//! Output columns [lo, hi) of one kernel tap whose input column lies inside [0, W).
inline void valid_range(index_t W, index_t OW, index_t s, index_t p, index_t off, index_t& lo, index_t& hi) {
    const index_t a = p - off;  // ow * s >= a
    lo = a <= 0 ? 0 : (a + s - 1) / s;
    const index_t b = W - 1 + p - off;  // ow * s <= b
    hi = b < 0 ? 0 : std::min(OW, b / s + 1);
    if (hi < lo) hi = lo;
}

//! True for stride-1, dilation-1 "same" windows (OH = H, OW = W: kernel 2p+1), where every
//! im2col row is the input plane shifted by one flat offset: one contiguous copy per row plus
//! zeroed borders, instead of one short copy per output row (3-4x faster on 8x8-32x32 planes).
inline bool same_stride1(const window2d& g, index_t H, index_t W, index_t OH, index_t OW) {
    return g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && OH == H && OW == W;
}

//! Valid flat range [lo, hi) of tap (i, j) in a same/stride-1 row, and its flat offset d.
inline void same_tap_range(const window2d& g, index_t H, index_t W, index_t i, index_t j, index_t& lo, index_t& hi,
                           index_t& d) {
    const index_t di = i - g.ph, dj = j - g.pw;
    d = di * W + dj;
    lo = std::max<index_t>(0, -di) * W;
    hi = std::min<index_t>(H, H - di) * W;
    lo = std::max(lo, -d);
    hi = std::min(hi, H * W - d);
    if (hi < lo) hi = lo;
}

//! Zeroes, in a same/stride-1 row of tap column offset dj, the columns whose input is padding.
inline void zero_border_columns(float* row, index_t H, index_t W, index_t dj) {
    if (dj < 0)
        for (index_t h = 0; h < H; ++h)
            for (index_t w = 0; w < -dj && w < W; ++w) row[h * W + w] = 0.0f;
    else if (dj > 0)
        for (index_t h = 0; h < H; ++h)
            for (index_t w = std::max<index_t>(0, W - dj); w < W; ++w) row[h * W + w] = 0.0f;
}

//! Whether im2col / col2im run the AVX-512 rows below for window g: stride 2 across, dilation 1
//! across, output rows of at most 16 columns and kernels at most 16 wide (every CIFAR /
//! Fashion-MNIST stride-2 layer), on a CPU with AVX-512F.
inline bool stride2_rows(const window2d& g, index_t OW) {
    return g.sw == 2 && g.dw == 1 && OW <= 16 && g.kw <= 16 && avx512_gemm_available();
}

#if defined(SHIFTNORM_HAS_AVX512_GEMM)
//! The 32 input columns b0 .. b0 + 31 of a row that lie inside [0, W), as two 16-lane masks.
inline void window_masks(index_t b0, index_t W, __mmask16& lo, __mmask16& hi) {
    unsigned m = 0;
    for (index_t q = 0; q < 32; ++q)
        if (b0 + q >= 0 && b0 + q < W) m |= 1u << q;
    lo = __mmask16(m & 0xFFFFu), hi = __mmask16(m >> 16);
}

//! im2col for stride2_rows windows: each output row r[ow] = xr[2 ow] (zero outside the plane)
//! from two masked loads of 32 columns and one even-lane permute; the same values as the scalar loops.
//! Loops c, i, oh, then the kernel columns j innermost: the kw loads of an input row after the
//! first hit L1 (j outermost read every plane kw times from L2 / L3).
__attribute__((target("avx512f"))) inline void im2col_stride2(const float* x, index_t C, index_t H, index_t W,
                                                              const window2d& g, index_t OH, index_t OW, float* col) {
    const index_t P = OH * OW;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __mmask16 out = __mmask16((1u << OW) - 1u);
    __mmask16 lo[16], hi[16];  // kw <= 16 (stride2_rows)
    for (index_t j = 0; j < g.kw; ++j) window_masks(j - g.pw, W, lo[j], hi[j]);
    const index_t plane_lines = (H * W * index_t(sizeof(float)) + 63) / 64;
    for (index_t c = 0; c < C; ++c) {
        const float* xc = x + c * H * W;
        // The next channel's plane (after the last one: what follows, usually the next image, which
        // this thread converts next): its lines from L3 while this plane's rows are copied.
        const char* next = reinterpret_cast<const char*>(xc + H * W);
        index_t fetched = 0;
        for (index_t i = 0; i < g.kh; ++i) {
            float* rows = col + (c * g.kh + i) * g.kw * P;  // row of tap (i, j) at rows + j P
            for (index_t oh = 0; oh < OH; ++oh) {
                for (int q = 0; q < 2 && fetched < plane_lines; ++q, ++fetched)
                    _mm_prefetch(next + 64 * fetched, _MM_HINT_T0);
                const index_t ih = oh * g.sh - g.ph + i * g.dh;
                float* r = rows + oh * OW;
                if (ih < 0 || ih >= H) {
                    for (index_t j = 0; j < g.kw; ++j) _mm512_mask_storeu_ps(r + j * P, out, _mm512_setzero_ps());
                    continue;
                }
                const float* xr = xc + ih * W - g.pw;  // input column of (ow, j) = 2 ow + j - pw; masked lanes never read
                for (index_t j = 0; j < g.kw; ++j)
                    _mm512_mask_storeu_ps(r + j * P, out,
                                          _mm512_permutex2var_ps(_mm512_maskz_loadu_ps(lo[j], xr + j), even,
                                                                 _mm512_maskz_loadu_ps(hi[j], xr + j + 16)));
            }
        }
    }
}

//! col2im for stride2_rows windows, one plane row at a time: the row's window of up to 48 columns
//! (from column -pw) is loaded once, every kernel column j of tap row i adds its output row
//! spread over lanes j + 2 ow (permute, masked add), and the window is stored once (the columns
//! inside the plane). Each element gets its taps in the scalar loops' order (i, then j): the same
//! sums, bit for bit.
__attribute__((target("avx512f"))) inline void col2im_stride2(const float* col, index_t C, index_t H, index_t W,
                                                              const window2d& g, index_t OH, index_t OW, float* x) {
    const index_t P = OH * OW, span = g.kw + 2 * OW - 1;  // window columns any tap reaches
    const int nv = int((span + 15) / 16);                  // <= 3 vectors (kw, OW <= 16)
    __m512i idx[16][3];
    __mmask16 add[16][3], plane[3];
    for (int v = 0; v < 3; ++v) {
        unsigned m = 0;
        for (int l = 0; l < 16; ++l) {
            const index_t q = 16 * v + l, c = q - g.pw;
            if (q < span && c >= 0 && c < W) m |= 1u << l;
        }
        plane[v] = __mmask16(m);
    }
    for (index_t j = 0; j < g.kw; ++j)
        for (int v = 0; v < 3; ++v) {
            alignas(64) int id[16];
            unsigned m = 0;
            for (int l = 0; l < 16; ++l) {
                const index_t q = 16 * v + l, t = q - j;
                id[l] = t >= 0 && t % 2 == 0 && t / 2 < OW ? int(t / 2) : 0;
                if (t >= 0 && t % 2 == 0 && t / 2 < OW) m |= 1u << l;
            }
            idx[j][v] = _mm512_load_si512(id);
            add[j][v] = __mmask16(m & plane[v]);
        }
    const __mmask16 out = __mmask16((1u << OW) - 1u);
    const index_t plane_lines = (H * W * index_t(sizeof(float)) + 63) / 64;
    for (index_t c = 0; c < C; ++c) {
        float* xc = x + c * H * W;
        const char* next = reinterpret_cast<const char*>(xc + H * W);  // as in im2col_stride2
        index_t fetched = c + 1 < C ? 0 : plane_lines;
        for (index_t i = 0; i < g.kh; ++i) {
            const float* rows = col + (c * g.kh + i) * g.kw * P;
            for (index_t oh = 0; oh < OH; ++oh) {
                for (int q = 0; q < 2 && fetched < plane_lines; ++q, ++fetched)
                    _mm_prefetch(next + 64 * fetched, _MM_HINT_T0);
                const index_t ih = oh * g.sh - g.ph + i * g.dh;
                if (ih < 0 || ih >= H) continue;
                float* xb = xc + ih * W - g.pw;  // window column 0; lanes outside the plane are never touched
                __m512 acc[3];
                for (int v = 0; v < nv; ++v) acc[v] = _mm512_maskz_loadu_ps(plane[v], xb + 16 * v);
                for (index_t j = 0; j < g.kw; ++j) {
                    const __m512 r = _mm512_maskz_loadu_ps(out, rows + j * P + oh * OW);
                    for (int v = 0; v < nv; ++v)
                        acc[v] = _mm512_mask_add_ps(acc[v], add[j][v], acc[v], _mm512_permutexvar_ps(idx[j][v], r));
                }
                for (int v = 0; v < nv; ++v) _mm512_mask_storeu_ps(xb + 16 * v, plane[v], acc[v]);
            }
        }
    }
}
#endif

//! im2col of one image's C channels (caffe layout): col is [C*kh*kw, OH*OW] row-major, row
//! (c*kh + i)*kw + j holds the input under tap (i, j) of channel c, zero where it is padding.
inline void im2col(const float* x, index_t C, index_t H, index_t W, const window2d& g, index_t OH, index_t OW,
                   float* col) {
    const index_t P = OH * OW;
    if (same_stride1(g, H, W, OH, OW)) {
        for (index_t c = 0; c < C; ++c)
            for (index_t i = 0; i < g.kh; ++i)
                for (index_t j = 0; j < g.kw; ++j) {
                    float* row = col + ((c * g.kh + i) * g.kw + j) * P;
                    const float* xs = x + c * H * W;
                    index_t lo, hi, d;
                    same_tap_range(g, H, W, i, j, lo, hi, d);
                    for (index_t f = 0; f < lo; ++f) row[f] = 0.0f;
                    for (index_t f = lo; f < hi; ++f) row[f] = xs[f + d];
                    for (index_t f = hi; f < P; ++f) row[f] = 0.0f;
                    zero_border_columns(row, H, W, j - g.pw);
                }
        return;
    }
#if defined(SHIFTNORM_HAS_AVX512_GEMM)
    if (stride2_rows(g, OW)) return im2col_stride2(x, C, H, W, g, OH, OW, col);
#endif
    for (index_t c = 0; c < C; ++c) {
        const float* xc = x + c * H * W;
        for (index_t i = 0; i < g.kh; ++i)
            for (index_t j = 0; j < g.kw; ++j) {
                float* row = col + ((c * g.kh + i) * g.kw + j) * P;
                index_t lo, hi;
                valid_range(W, OW, g.sw, g.pw, j * g.dw, lo, hi);
                for (index_t oh = 0; oh < OH; ++oh) {
                    float* r = row + oh * OW;
                    const index_t ih = oh * g.sh - g.ph + i * g.dh;
                    // Plain loops, not memset/memcpy: rows are short (8-32 floats) on CIFAR shapes.
                    if (ih < 0 || ih >= H) {
                        for (index_t ow = 0; ow < OW; ++ow) r[ow] = 0.0f;
                        continue;
                    }
                    const float* xr = xc + ih * W - g.pw + j * g.dw;
                    for (index_t ow = 0; ow < lo; ++ow) r[ow] = 0.0f;
                    if (g.sw == 1)
                        for (index_t ow = lo; ow < hi; ++ow) r[ow] = xr[ow];
                    else
                        for (index_t ow = lo; ow < hi; ++ow) r[ow] = xr[ow * g.sw];
                    for (index_t ow = hi; ow < OW; ++ow) r[ow] = 0.0f;
                }
            }
    }
}

//! Adjoint of im2col: x = col2im(col). In the same/stride-1 case x is overwritten (the
//! centre tap covers every pixel and is stored first; `col` is scratch: its padding columns
//! are zeroed); otherwise col is accumulated into x, which the caller zeroes.
inline void col2im(float* col, index_t C, index_t H, index_t W, const window2d& g, index_t OH, index_t OW,
                   float* x) {
    const index_t P = OH * OW;
    if (same_stride1(g, H, W, OH, OW)) {
        for (index_t c = 0; c < C; ++c) {
            float* xs = x + c * H * W;
            const float* centre = col + ((c * g.kh + g.ph) * g.kw + g.pw) * P;
            for (index_t f = 0; f < P; ++f) xs[f] = centre[f];
            for (index_t i = 0; i < g.kh; ++i)
                for (index_t j = 0; j < g.kw; ++j) {
                    if (i == g.ph && j == g.pw) continue;
                    float* row = col + ((c * g.kh + i) * g.kw + j) * P;
                    index_t lo, hi, d;
                    same_tap_range(g, H, W, i, j, lo, hi, d);
                    zero_border_columns(row, H, W, j - g.pw);
                    for (index_t f = lo; f < hi; ++f) xs[f + d] += row[f];
                }
        }
        return;
    }
#if defined(SHIFTNORM_HAS_AVX512_GEMM)
    if (stride2_rows(g, OW)) return col2im_stride2(col, C, H, W, g, OH, OW, x);
#endif
    for (index_t c = 0; c < C; ++c) {
        float* xc = x + c * H * W;
        for (index_t i = 0; i < g.kh; ++i)
            for (index_t j = 0; j < g.kw; ++j) {
                const float* row = col + ((c * g.kh + i) * g.kw + j) * P;
                index_t lo, hi;
                valid_range(W, OW, g.sw, g.pw, j * g.dw, lo, hi);
                for (index_t oh = 0; oh < OH; ++oh) {
                    const index_t ih = oh * g.sh - g.ph + i * g.dh;
                    if (ih < 0 || ih >= H) continue;
                    const float* r = row + oh * OW;
                    float* xr = xc + ih * W - g.pw + j * g.dw;
                    if (g.sw == 1)
                        for (index_t ow = lo; ow < hi; ++ow) xr[ow] += r[ow];
                    else
                        for (index_t ow = lo; ow < hi; ++ow) xr[ow * g.sw] += r[ow];
                }
            }
    }
}

}  // namespace detail

}  // namespace shiftnorm::nn
