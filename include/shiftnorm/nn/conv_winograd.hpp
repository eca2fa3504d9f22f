// SPDX-License-Identifier: MIT
// Winograd F(2x2, 3x3) for same/stride-1 3x3 convolutions with channel counts that are multiples of
// 16: 16 multiplications per 2x2 output tile and channel pair instead of 36 (Lavin & Gray 2016).
#pragma once

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "shiftnorm/config.hpp"
#include "shiftnorm/core/omp.hpp"
#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/nn/gemm.hpp"
#include "shiftnorm/nn/im2col.hpp"

namespace shiftnorm::nn::detail {

//! Tile geometry of one image's convolution in F(2x2, 3x3): C input and K output channels, an
//! H x W plane cut into th x tw tiles of 2x2 outputs (the last row / column of tiles half outside
//! when H or W is odd). Two data layouts:
//!  - pixel-major (planes narrower than 24 pixels): the input transposed to pixels x channels,
//!    with a zero border (Hp x Wp pixels, Hp = 2 th + 2, Wp = 2 tw + 2, pixel (h, w) at
//!    (h + 1, w + 1)), transforms on vectors of 16 channels, GEMMs [T x C] * [C x K];
//!  - planar (planes 24 to 32 pixels wide: one vector of tiles per tile row): transforms straight
//!    from and to the NCHW planes on vectors of the tiles of a tile row, GEMMs [K x C] * [C x T];
//!    no transposes (at 16 channels they cost as much as the GEMMs).
//! With m = 4, F(4x4, 3x3): 4x4 output tiles from 6x6 input tiles, 36 points, 36 products per 16
//! outputs and channel pair instead of 64 (Hp = 4 th + 2, Wp = 4 tw + 2); planar on planes 21-32
//! wide (6 to 8 tiles per tile row), the tiles of two tile rows sharing a vector.
struct winograd_geometry {
    index_t C = 0, K = 0, H = 0, W = 0, th = 0, tw = 0, T = 0, Hp = 0, Wp = 0;
    bool planar = false;
    int m = 2;  //!< output tile size: 2 (F(2x2, 3x3)) or 4 (F(4x4, 3x3))
    //! Images per GEMM (F(4x4, 3x3)): the tiles of nb images stacked in the rows (pixel-major) or
    //! the columns (planar) of each of the points() GEMMs (small planes have few tiles per image:
    //! 4 at 8x8, 16 at 16x16).
    index_t nb = 1;
    //! The transformed tile's side and its number of points (the GEMMs per image).
    int alpha() const { return m + 2; }
    int points() const { return (m + 2) * (m + 2); }
    //! Floats of each work buffer of one thread (see winograd_buffers).
    index_t pixels_in() const { return planar ? 0 : H * W * C; }
    index_t padded_in() const { return planar ? 0 : Hp * Wp * C; }
    index_t pixels_out() const { return planar ? 0 : H * W * K; }
    //! Planar rows of the nb T tiles of nb images: ld nb T + 16 (masked 16-lane stores of the last
    //! tile rows, and the GEMM's columns rounded up to whole vectors, stay inside).
    index_t ld() const { return nb * T + 16; }
    //! Distance between the 16 matrices of the transformed input and output: one cache line more
    //! than their size, so that the 16 streams of a transform do not fall into the same cache
    //! sets (power-of-two strides: 2x slower at 32x32 planes and 16 channels).
    index_t in_stride() const { return (planar ? C * ld() : nb * T * C) + 16; }
    index_t out_stride() const { return (planar ? K * ld() : nb * T * K) + 16; }
    index_t transformed_in() const { return points() * in_stride(); }
    index_t transformed_out() const { return points() * out_stride(); }
};

//! The geometry of F(2x2, 3x3) (m = 2) or F(4x4, 3x3) (m = 4): planar where its tile rows fill
//! vectors (F(2x2): planes 23-32 wide; F(4x4): 21-32 wide) unless `allow_planar` is
//! false (the weight gradient's transforms are pixel-major only), else pixel-major.
inline winograd_geometry make_winograd(index_t C, index_t K, index_t H, index_t W, int m = 2,
                                       bool allow_planar = true) {
    if (m != 2 && m != 4) throw std::invalid_argument("make_winograd: the output tile must be 2 or 4");
    winograd_geometry g;
    g.m = m;
    g.C = C, g.K = K, g.H = H, g.W = W, g.th = (H + m - 1) / m, g.tw = (W + m - 1) / m, g.T = g.th * g.tw;
    g.Hp = m * g.th + 2, g.Wp = m * g.tw + 2;
    // F(2x2): one tile row of 12-16 tiles per vector; F(4x4): two of 6-8 (planar_f4_lanes)
    g.planar = allow_planar && (m == 2 ? W >= 23 && W <= 32 : g.tw >= 6 && g.tw <= 8);
    // F(4x4, 3x3): at least 32 GEMM rows (pixel-major) or 64 GEMM columns (planar: the kernel's
    // tiles are 2 vectors wide) of the tiles of nb images where the plane has fewer
    if (m == 4) g.nb = std::max<index_t>(1, ((g.planar ? 64 : 32) + g.T - 1) / g.T);
    return g;
}

//! Whether the Winograd kernel can run a convolution of window g with Cg input and Og output
//! channels per group on an H x W plane: a 3x3, pad-1, stride-1, dilation-1 window, channel
//! counts multiples of 16 (whole vectors of channels), the AVX-512 kernel on this CPU.
inline bool winograd_eligible(const window2d& g, index_t Cg, index_t Og, index_t H, index_t W, index_t OH,
                              index_t OW) {
    return weight_grad_transposed() && same_stride1(g, H, W, OH, OW) && g.kh == 3 && g.kw == 3 && g.ph == 1 &&
           g.pw == 1 && Cg % 16 == 0 && Og % 16 == 0 && Cg > 0 && Og > 0;
}

//! The per-thread work rows of a weight transform (at least n doubles; grown once per thread, no
//! allocation per call), and tap[j * inner + b] = tap j of the 3x3 weights of pair (a, b): (k, c)
//! = (a, b) when `by_k`, else (b, a), for the `inner` values of b.
inline double* winograd_rows(index_t n) {
    thread_local std::vector<double> buf;
    if (buf.size() < std::size_t(n)) buf.resize(std::size_t(n));
    return buf.data();
}
inline void winograd_gather_taps(const float* w, index_t C, index_t a, index_t inner, bool by_k, double* tap) {
    for (index_t b = 0; b < inner; ++b) {
        const float* g = w + ((by_k ? a : b) * C + (by_k ? b : a)) * 9;
        for (int j = 0; j < 9; ++j) tap[j * inner + b] = g[j];
    }
}

//! u[xi][c][k] (xi = 4 r + s, the 16 points of the transformed 4x4 tile; u[xi][k][c] when
//! `planar`) = (G w[k][c] G^T)[r][s] for the K x C x 3 x 3 weights w (OIHW of one group),
//! G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]. In double, rounded once.
inline void winograd_weights(const float* w, index_t K, index_t C, float* u, bool planar = false) {
    // per index a of the slower dimension of u (c for [xi][c][k], k for [xi][k][c]): the 9 taps of
    // its row gathered, then the transform in loops over the faster index b that the compiler
    // vectorizes, each of the 16 rows of u written contiguously (the scalar form with scattered
    // writes: 36 ns per pair, 150 us per 64 x 64 layer call). OpenMP over a (called once per
    // layer call, outside the layers' image loops).
    const index_t outer = planar ? K : C, inner = planar ? C : K;
SHIFTNORM_OMP(omp parallel if (K * C >= 1024))
    {
        double* tap = winograd_rows(21 * inner);  // 9 taps, then the 12 values of G g (4 x 3)
        double* gg = tap + 9 * inner;
SHIFTNORM_OMP(omp for schedule(static))
        for (index_t a = 0; a < outer; ++a) {
            winograd_gather_taps(w, C, a, inner, planar, tap);
            for (int j = 0; j < 3; ++j) {  // G g: rows a, (a + b + d) / 2, (a - b + d) / 2, d of each column
                const double* p = tap + j * inner;
                const double* q = tap + (3 + j) * inner;
                const double* r = tap + (6 + j) * inner;
                double* o0 = gg + (0 * 3 + j) * inner;
                double* o1 = gg + (1 * 3 + j) * inner;
                double* o2 = gg + (2 * 3 + j) * inner;
                double* o3 = gg + (3 * 3 + j) * inner;
                for (index_t b = 0; b < inner; ++b) {
                    o0[b] = p[b], o1[b] = 0.5 * (p[b] + q[b] + r[b]), o2[b] = 0.5 * (p[b] - q[b] + r[b]), o3[b] = r[b];
                }
            }
            for (int r = 0; r < 4; ++r) {  // (G g) G^T: the same over each row's 3 entries
                const double* p = gg + (r * 3 + 0) * inner;
                const double* q = gg + (r * 3 + 1) * inner;
                const double* v = gg + (r * 3 + 2) * inner;
                float* u0 = u + (r * 4 + 0) * C * K + a * inner;
                float* u1 = u + (r * 4 + 1) * C * K + a * inner;
                float* u2 = u + (r * 4 + 2) * C * K + a * inner;
                float* u3 = u + (r * 4 + 3) * C * K + a * inner;
                for (index_t b = 0; b < inner; ++b) {
                    u0[b] = float(p[b]);
                    u1[b] = float(0.5 * (p[b] + q[b] + v[b]));
                    u2[b] = float(0.5 * (p[b] - q[b] + v[b]));
                    u3[b] = float(v[b]);
                }
            }
        }
    }
}

//! F(4x4, 3x3)'s G applied over K columns: for each k, the six entries of G (p, q, r)^T, p / 4,
//! -(p + q + r) / 6, -(p - q + r) / 6, p / 24 + q / 12 + r / 6, p / 24 - q / 12 + r / 6, r
//! (products with the double reciprocals: within an ulp of double of the quotients, far below the
//! float rounding that follows). Rows o0..o5 never alias the inputs (vectorized over k).
inline void winograd_g6(index_t K, const double* SHIFTNORM_RESTRICT p, const double* SHIFTNORM_RESTRICT q,
                        const double* SHIFTNORM_RESTRICT r, double* SHIFTNORM_RESTRICT o0, double* SHIFTNORM_RESTRICT o1,
                        double* SHIFTNORM_RESTRICT o2, double* SHIFTNORM_RESTRICT o3, double* SHIFTNORM_RESTRICT o4,
                        double* SHIFTNORM_RESTRICT o5) {
    constexpr double i6 = 1.0 / 6.0, i12 = 1.0 / 12.0, i24 = 1.0 / 24.0;
    for (index_t k = 0; k < K; ++k) {
        const double pr = p[k] + r[k], a = p[k] * i24 + r[k] * i6, b = q[k] * i12;
        o0[k] = p[k] * 0.25;
        o1[k] = -(pr + q[k]) * i6;
        o2[k] = -(pr - q[k]) * i6;
        o3[k] = a + b;
        o4[k] = a - b;
        o5[k] = r[k];
    }
}

//! F(4x4, 3x3): u[xi][c][k] (xi = 6 r + s, the 36 points of the transformed 6x6 tile; u[xi][k][c]
//! when `planar`) = (G w[k][c] G^T)[r][s], G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
//! 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1] (Lavin & Gray's points 0, 1, -1, 2, -2). In double,
//! rounded once. Per index a of u's slower dimension: the 9 taps of every b gathered, G over the
//! rows and over the columns in loops over b (winograd_g6), each of the 36 rows of u written
//! contiguously (as winograd_weights). OpenMP over a.
inline void winograd_weights_f4(const float* w, index_t K, index_t C, float* u, bool planar = false) {
    const index_t outer = planar ? K : C, inner = planar ? C : K;
SHIFTNORM_OMP(omp parallel if (K * C >= 1024))
    {
        double* tap = winograd_rows(63 * inner);  // 9 taps, the 18 values of G g (6 x 3), the 36 of G g G^T
        double* gg = tap + 9 * inner;
        double* out = gg + 18 * inner;
SHIFTNORM_OMP(omp for schedule(static))
        for (index_t a = 0; a < outer; ++a) {
            winograd_gather_taps(w, C, a, inner, planar, tap);
            for (int j = 0; j < 3; ++j)  // G g (over rows): column j of the taps -> gg[r][j]
                winograd_g6(inner, tap + j * inner, tap + (3 + j) * inner, tap + (6 + j) * inner, gg + (0 * 3 + j) * inner,
                            gg + (1 * 3 + j) * inner, gg + (2 * 3 + j) * inner, gg + (3 * 3 + j) * inner, gg + (4 * 3 + j) * inner,
                            gg + (5 * 3 + j) * inner);
            for (int r = 0; r < 6; ++r) {  // (G g) G^T (over columns): row r of gg -> out[6 r + s]
                double* o = out + r * 6 * inner;
                winograd_g6(inner, gg + (r * 3 + 0) * inner, gg + (r * 3 + 1) * inner, gg + (r * 3 + 2) * inner, o, o + inner, o + 2 * inner,
                            o + 3 * inner, o + 4 * inner, o + 5 * inner);
            }
            for (int xi = 0; xi < 36; ++xi) {
                float* dst = u + (xi * outer + a) * inner;
                const double* src = out + xi * inner;
                for (index_t k = 0; k < inner; ++k) dst[k] = float(src[k]);
            }
        }
    }
}

#if defined(SHIFTNORM_HAS_AVX512_GEMM)

//! v[xi][t][c] = (B^T d B)[r][s] for every tile t and channel c, d the 4x4 input patch of the tile
//! read from the zero-bordered pixel-major xp; B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1].
//! 16 channels per vector.
__attribute__((target("avx512f"))) inline void winograd_input(const float* xp, const winograd_geometry& g, float* v) {
    const index_t C = g.C, stride_xi = g.in_stride();
    for (index_t ti = 0; ti < g.th; ++ti)
        for (index_t tj = 0; tj < g.tw; ++tj) {
            const index_t t = ti * g.tw + tj;
            const float* base = xp + (2 * ti * g.Wp + 2 * tj) * C;
            float* vt = v + t * C;
            for (index_t c0 = 0; c0 < C; c0 += 16) {
                __m512 d[4][4];
                for (int r = 0; r < 4; ++r)
                    for (int s = 0; s < 4; ++s) d[r][s] = _mm512_loadu_ps(base + (r * g.Wp + s) * C + c0);
                __m512 e[4][4];  // B^T d (over rows)
                for (int s = 0; s < 4; ++s) {
                    e[0][s] = _mm512_sub_ps(d[0][s], d[2][s]);
                    e[1][s] = _mm512_add_ps(d[1][s], d[2][s]);
                    e[2][s] = _mm512_sub_ps(d[2][s], d[1][s]);
                    e[3][s] = _mm512_sub_ps(d[1][s], d[3][s]);
                }
                for (int r = 0; r < 4; ++r) {  // (B^T d) B (over columns)
                    float* o = vt + c0 + r * 4 * stride_xi;
                    _mm512_storeu_ps(o, _mm512_sub_ps(e[r][0], e[r][2]));
                    _mm512_storeu_ps(o + stride_xi, _mm512_add_ps(e[r][1], e[r][2]));
                    _mm512_storeu_ps(o + 2 * stride_xi, _mm512_sub_ps(e[r][2], e[r][1]));
                    _mm512_storeu_ps(o + 3 * stride_xi, _mm512_sub_ps(e[r][1], e[r][3]));
                }
            }
        }
}

//! yt[(h W + w) K + k] = (A^T m A)[i][j] for output pixel (h, w) = (2 ti + i, 2 tj + j) inside the
//! plane, m[xi][t][k] the products of tile t; A^T = [1 1 1 0; 0 1 -1 -1]. 16 channels per vector.
__attribute__((target("avx512f"))) inline void winograd_output(const float* m, const winograd_geometry& g, float* yt) {
    const index_t K = g.K, stride_xi = g.out_stride();
    for (index_t ti = 0; ti < g.th; ++ti)
        for (index_t tj = 0; tj < g.tw; ++tj) {
            const index_t t = ti * g.tw + tj;
            const bool full_h = 2 * ti + 1 < g.H, full_w = 2 * tj + 1 < g.W;
            const float* mt = m + t * K;
            for (index_t k0 = 0; k0 < K; k0 += 16) {
                __m512 a[2][4];  // A^T m (over rows)
                for (int s = 0; s < 4; ++s) {
                    const __m512 m0 = _mm512_loadu_ps(mt + k0 + (0 + s) * stride_xi);
                    const __m512 m1 = _mm512_loadu_ps(mt + k0 + (4 + s) * stride_xi);
                    const __m512 m2 = _mm512_loadu_ps(mt + k0 + (8 + s) * stride_xi);
                    const __m512 m3 = _mm512_loadu_ps(mt + k0 + (12 + s) * stride_xi);
                    a[0][s] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                    a[1][s] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
                }
                for (int i = 0; i < 2; ++i) {
                    if (i == 1 && !full_h) break;
                    float* o = yt + ((2 * ti + i) * g.W + 2 * tj) * K + k0;
                    _mm512_storeu_ps(o, _mm512_add_ps(_mm512_add_ps(a[i][0], a[i][1]), a[i][2]));
                    if (full_w) _mm512_storeu_ps(o + K, _mm512_sub_ps(_mm512_sub_ps(a[i][1], a[i][2]), a[i][3]));
                }
            }
        }
}

//! F(4x4, 3x3)'s B^T applied to six vectors d (one column or row of a 6x6 tile): B^T =
//! [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1].
__attribute__((target("avx512f"))) inline void winograd_bt6(const __m512* d, __m512* r) {
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f), two = _mm512_set1_ps(2.0f);
    const __m512 s12 = _mm512_add_ps(d[1], d[2]), s34 = _mm512_add_ps(d[3], d[4]);
    const __m512 d12 = _mm512_sub_ps(d[1], d[2]), d43 = _mm512_sub_ps(d[4], d[3]);
    const __m512 d42 = _mm512_sub_ps(d[4], d[2]), d31 = _mm512_sub_ps(d[3], d[1]);
    r[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    r[1] = _mm512_fnmadd_ps(four, s12, s34);
    r[2] = _mm512_fmadd_ps(four, d12, d43);
    r[3] = _mm512_fmadd_ps(two, d31, d42);
    r[4] = _mm512_fnmadd_ps(two, d31, d42);
    r[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
}

//! F(4x4, 3x3)'s A^T applied to six vectors m: A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0;
//! 0 1 -1 8 -8 1].
__attribute__((target("avx512f"))) inline void winograd_at6(const __m512* m, __m512* y) {
    const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
    const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
    y[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    y[1] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12);
    y[2] = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), s34, s12);
    y[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8.0f), d34, d12), m[5]);
}

//! F(4x4, 3x3) input transform: v[xi][t][c] = (B^T d B)[r][s] (xi = 6 r + s) for every tile t and
//! channel c, d the 6x6 input patch of the tile read from the zero-bordered pixel-major xp (Hp x Wp
//! pixels, pixel (h, w) at (h + 1, w + 1)). 16 channels per vector.
__attribute__((target("avx512f"))) inline void winograd_input_f4(const float* xp, const winograd_geometry& g,
                                                                 float* v) {
    const index_t C = g.C, stride_xi = g.in_stride();
    for (index_t ti = 0; ti < g.th; ++ti)
        for (index_t tj = 0; tj < g.tw; ++tj) {
            const index_t t = ti * g.tw + tj;
            const float* base = xp + (4 * ti * g.Wp + 4 * tj) * C;
            float* vt = v + t * C;
            for (index_t c0 = 0; c0 < C; c0 += 16) {
                __m512 e[6][6];  // B^T d (over rows), column by column
                for (int s = 0; s < 6; ++s) {
                    __m512 d[6], r[6];
                    for (int q = 0; q < 6; ++q) d[q] = _mm512_loadu_ps(base + (q * g.Wp + s) * C + c0);
                    winograd_bt6(d, r);
                    for (int q = 0; q < 6; ++q) e[q][s] = r[q];
                }
                for (int q = 0; q < 6; ++q) {  // (B^T d) B (over columns)
                    __m512 r[6];
                    winograd_bt6(e[q], r);
                    float* o = vt + c0 + q * 6 * stride_xi;
                    for (int s = 0; s < 6; ++s) _mm512_storeu_ps(o + s * stride_xi, r[s]);
                }
            }
        }
}

//! F(4x4, 3x3) output transform: yt[(h W + w) K + k] = (A^T m A)[i][j] for output pixel (h, w) =
//! (4 ti + i, 4 tj + j) inside the plane (the parts of the last tiles outside it are dropped), m
//! the products of tile t. 16 channels per vector.
__attribute__((target("avx512f"))) inline void winograd_output_f4(const float* m, const winograd_geometry& g,
                                                                  float* yt) {
    const index_t K = g.K, stride_xi = g.out_stride();
    for (index_t ti = 0; ti < g.th; ++ti)
        for (index_t tj = 0; tj < g.tw; ++tj) {
            const index_t t = ti * g.tw + tj;
            const int rows = int(std::min<index_t>(4, g.H - 4 * ti)), cols = int(std::min<index_t>(4, g.W - 4 * tj));
            const float* mt = m + t * K;
            for (index_t k0 = 0; k0 < K; k0 += 16) {
                __m512 a[4][6];  // A^T m (over rows), column by column
                for (int s = 0; s < 6; ++s) {
                    __m512 col[6], r[4];
                    for (int q = 0; q < 6; ++q) col[q] = _mm512_loadu_ps(mt + k0 + (q * 6 + s) * stride_xi);
                    winograd_at6(col, r);
                    for (int i = 0; i < 4; ++i) a[i][s] = r[i];
                }
                for (int i = 0; i < rows; ++i) {  // (A^T m) A (over columns)
                    __m512 y[4];
                    winograd_at6(a[i], y);
                    float* o = yt + ((4 * ti + i) * g.W + 4 * tj) * K + k0;
                    for (int j = 0; j < cols; ++j) _mm512_storeu_ps(o + j * K, y[j]);
                }
            }
        }
}

//! The masks of a planar plane row: its first 16 and its next up to 16 pixels (W <= 32), and the
//! lanes of a tile row's tiles.
struct planar_masks {
    __mmask16 lo, hi, tiles;
    explicit planar_masks(const winograd_geometry& g)
        : lo(g.W >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << g.W) - 1u)),
          hi(g.W > 16 ? __mmask16((1u << (g.W - 16)) - 1u) : __mmask16(0)),
          tiles(__mmask16((1u << g.tw) - 1u)) {}
};

//! The planar input transform: v[xi][c][t] (rows of ld() floats) for every channel and tile, the
//! tiles of a tile row in the lanes of one vector. Row h of a plane gives, for tile column j,
//! x[2j - 1], x[2j], x[2j + 1], x[2j + 2] (zero outside the plane) by permutes of two masked
//! loads. Only for planar geometries (tw <= 16, W <= 32).
__attribute__((target("avx512f"))) inline void winograd_input_planar(const float* x, const winograd_geometry& g,
                                                                     float* v) {
    const index_t H = g.H, W = g.W, ld = g.ld(), sx = g.in_stride();
    const planar_masks pm(g);
    const __mmask16 lo_mask = pm.lo, hi_mask = pm.hi, tiles = pm.tiles;
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    const __m512i up = _mm512_set_epi32(14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0);       // lane j <- j - 1
    const __m512i down = _mm512_set_epi32(15, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);  // lane j <- j + 1
    for (index_t c = 0; c < g.C; ++c) {
        const float* xc = x + c * H * W;
        for (index_t ti = 0; ti < g.th; ++ti) {
            __m512 d[4][4];
            for (int r = 0; r < 4; ++r) {
                const index_t h = 2 * ti - 1 + r;
                if (h < 0 || h >= H) {
                    for (int s = 0; s < 4; ++s) d[r][s] = _mm512_setzero_ps();
                    continue;
                }
                const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, xc + h * W);
                const __m512 hi = _mm512_maskz_loadu_ps(hi_mask, xc + h * W + 16);
                const __m512 e = _mm512_permutex2var_ps(lo, even, hi), o = _mm512_permutex2var_ps(lo, odd, hi);
                d[r][0] = _mm512_maskz_permutexvar_ps(__mmask16(0xFFFE), up, o);    // x[2j - 1]
                d[r][1] = e;                                                        // x[2j]
                d[r][2] = o;                                                        // x[2j + 1]
                d[r][3] = _mm512_maskz_permutexvar_ps(__mmask16(0x7FFF), down, e);  // x[2j + 2]
            }
            __m512 b[4][4];  // B^T d (over rows)
            for (int s = 0; s < 4; ++s) {
                b[0][s] = _mm512_sub_ps(d[0][s], d[2][s]);
                b[1][s] = _mm512_add_ps(d[1][s], d[2][s]);
                b[2][s] = _mm512_sub_ps(d[2][s], d[1][s]);
                b[3][s] = _mm512_sub_ps(d[1][s], d[3][s]);
            }
            float* vt = v + c * ld + ti * g.tw;
            for (int r = 0; r < 4; ++r) {  // (B^T d) B (over columns)
                float* o = vt + r * 4 * sx;
                _mm512_mask_storeu_ps(o, tiles, _mm512_sub_ps(b[r][0], b[r][2]));
                _mm512_mask_storeu_ps(o + sx, tiles, _mm512_add_ps(b[r][1], b[r][2]));
                _mm512_mask_storeu_ps(o + 2 * sx, tiles, _mm512_sub_ps(b[r][2], b[r][1]));
                _mm512_mask_storeu_ps(o + 3 * sx, tiles, _mm512_sub_ps(b[r][1], b[r][3]));
            }
        }
    }
}

//! The planar output transform: y[k][h][w] from m[xi][k][t], the 2x2 outputs of the tiles of a
//! tile row interleaved back into two plane rows (permutes), stored with masks (rows and columns
//! past an odd plane's edge are dropped).
__attribute__((target("avx512f"))) inline void winograd_output_planar(const float* m, const winograd_geometry& g,
                                                                      float* y) {
    const index_t H = g.H, W = g.W, ld = g.ld(), sm = g.out_stride();
    const planar_masks pm(g);
    const __mmask16 lo_mask = pm.lo, hi_mask = pm.hi, tiles = pm.tiles;
    const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (index_t k = 0; k < g.K; ++k) {
        float* yk = y + k * H * W;
        for (index_t ti = 0; ti < g.th; ++ti) {
            const float* mt = m + k * ld + ti * g.tw;
            __m512 a[2][4];  // A^T m (over rows)
            for (int s = 0; s < 4; ++s) {
                const __m512 m0 = _mm512_maskz_loadu_ps(tiles, mt + (0 + s) * sm);
                const __m512 m1 = _mm512_maskz_loadu_ps(tiles, mt + (4 + s) * sm);
                const __m512 m2 = _mm512_maskz_loadu_ps(tiles, mt + (8 + s) * sm);
                const __m512 m3 = _mm512_maskz_loadu_ps(tiles, mt + (12 + s) * sm);
                a[0][s] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                a[1][s] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
            for (int i = 0; i < 2; ++i) {
                const index_t h = 2 * ti + i;
                if (h >= H) break;
                const __m512 y0 = _mm512_add_ps(_mm512_add_ps(a[i][0], a[i][1]), a[i][2]);  // column 2j
                const __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(a[i][1], a[i][2]), a[i][3]);  // column 2j + 1
                _mm512_mask_storeu_ps(yk + h * W, lo_mask, _mm512_permutex2var_ps(y0, lo_idx, y1));
                if (hi_mask) _mm512_mask_storeu_ps(yk + h * W + 16, hi_mask, _mm512_permutex2var_ps(y0, hi_idx, y1));
            }
        }
    }
}

//! F(4x4, 3x3) on planar planes (21 to 32 pixels wide: 6 to 8 tiles per tile row): the tiles of
//! two tile rows in the lanes of one vector (tile row ti in lanes 0..tw-1, ti + 1 in tw..2 tw-1:
//! the order of the tiles in v and m, so one masked store writes both). Gather indices and masks:
//! lane L of column s of the patch reads pixel 4 j - 1 + s of its plane row, j = L mod tw (zero
//! outside the plane); `first` / `second` the lanes of each tile row that read a pixel.
//! (Four tile rows of 4 tiles per vector on 13-16-pixel planes ran at 0.98-1.05x of pixel-major
//! F(4x4) per layer and 0.96-0.98x in ResNet-20 inference: not kept.)
struct planar_f4_lanes {
    alignas(64) int idx[6][16];
    __mmask16 first[6], second[6], pair, single;
    explicit planar_f4_lanes(const winograd_geometry& g) {
        const int tw = int(g.tw), W = int(g.W);
        pair = __mmask16(2 * tw >= 16 ? 0xFFFFu : (1u << (2 * tw)) - 1u), single = __mmask16((1u << tw) - 1u);
        for (int s = 0; s < 6; ++s) {
            unsigned a = 0, b = 0;
            for (int L = 0; L < 16; ++L) {
                const int col = 4 * (L % tw) - 1 + s;
                const bool in = L < 2 * tw && col >= 0 && col < W;
                idx[s][L] = in ? col : 0;
                if (in) (L < tw ? a : b) |= 1u << L;
            }
            first[s] = __mmask16(a), second[s] = __mmask16(b);
        }
    }
};

//! The planar F(4x4, 3x3) input transform: v[xi][c][t] (rows of ld() floats). B^T over the six
//! plane rows of each of two tile rows first (on whole rows: two vectors of 16 pixels each), then
//! the patch columns gathered from the results (permutes of two vectors per tile row, merged),
//! then B^T over the columns. Only for planar geometries with m = 4.
__attribute__((target("avx512f"))) inline void winograd_input_planar_f4(const float* x, const winograd_geometry& g,
                                                                        float* v) {
    const index_t H = g.H, W = g.W, ld = g.ld(), sx = g.in_stride();
    const planar_masks pm(g);
    const planar_f4_lanes pl(g);
    __m512i idx[6];
    for (int s = 0; s < 6; ++s) idx[s] = _mm512_load_si512(pl.idx[s]);
    for (index_t c = 0; c < g.C; ++c) {
        const float* xc = x + c * H * W;
        for (index_t ti = 0; ti < g.th; ti += 2) {
            const bool two = ti + 1 < g.th;
            if (c + 1 < g.C)  // the next channel's rows of these tile rows (the input streams from L3)
                for (index_t h = 4 * ti; h < std::min<index_t>(4 * ti + 8, H); ++h) {
                    _mm_prefetch(reinterpret_cast<const char*>(xc + H * W + h * W), _MM_HINT_T0);
                    if (W > 16) _mm_prefetch(reinterpret_cast<const char*>(xc + H * W + h * W + 16), _MM_HINT_T0);
                }
            __m512 e[4][6];  // B^T d over rows: [lo, hi of tile row ti; lo, hi of ti + 1][q]
            for (int half = 0; half < 2; ++half) {
                __m512 lo[6], hi[6];
                for (int r = 0; r < 6; ++r) {
                    const index_t h = 4 * (ti + half) - 1 + r;
                    const bool in = h >= 0 && h < H && (half == 0 || two);
                    lo[r] = in ? _mm512_maskz_loadu_ps(pm.lo, xc + h * W) : _mm512_setzero_ps();
                    hi[r] = in ? _mm512_maskz_loadu_ps(pm.hi, xc + h * W + 16) : _mm512_setzero_ps();
                }
                winograd_bt6(lo, e[2 * half]);
                winograd_bt6(hi, e[2 * half + 1]);
            }
            float* vt = v + c * ld + ti * g.tw;
            const __mmask16 store = two ? pl.pair : pl.single;
            for (int q = 0; q < 6; ++q) {  // (B^T d) B (over columns)
                __m512 d[6], r[6];
                for (int s = 0; s < 6; ++s)
                    d[s] = _mm512_mask_blend_ps(__mmask16(~pl.single),
                                                _mm512_maskz_permutex2var_ps(pl.first[s], e[0][q], idx[s], e[1][q]),
                                                _mm512_maskz_permutex2var_ps(pl.second[s], e[2][q], idx[s], e[3][q]));
                winograd_bt6(d, r);
                float* o = vt + q * 6 * sx;
                if (store == 0xFFFF)  // 8 tiles per tile row: whole vectors
                    for (int s = 0; s < 6; ++s) _mm512_storeu_ps(o + s * sx, r[s]);
                else
                    for (int s = 0; s < 6; ++s) _mm512_mask_storeu_ps(o + s * sx, store, r[s]);
            }
        }
    }
}

//! The planar F(4x4, 3x3) output transform: y[k][h][w] from m[xi][k][t], A^T over rows and
//! columns on the tiles of two tile rows at once, each output row's 4 x tw pixels interleaved
//! from the four result vectors (two levels of permutes), stored with the plane's masks.
__attribute__((target("avx512f"))) inline void winograd_output_planar_f4(const float* m, const winograd_geometry& g,
                                                                         float* y) {
    const index_t H = g.H, W = g.W, ld = g.ld(), sm = g.out_stride(), tw = g.tw;
    const planar_masks pm(g);
    const planar_f4_lanes pl(g);
    __m512i pair_idx[2], lo_idx, hi_idx;  // lane 2 L + j <- y_j[half tw + L] (j = 0, 1); then pixel 4 L + j
    {
        alignas(64) int p[2][16], lo[16], hi[16];
        for (int half = 0; half < 2; ++half)
            for (int L = 0; L < 8; ++L)
                for (int j = 0; j < 2; ++j) p[half][2 * L + j] = 16 * j + half * int(tw) + L;
        for (int L = 0; L < 4; ++L)
            for (int j = 0; j < 4; ++j) {
                lo[4 * L + j] = (j < 2 ? 0 : 16) + 2 * L + (j & 1);
                hi[4 * L + j] = (j < 2 ? 0 : 16) + 2 * (L + 4) + (j & 1);
            }
        pair_idx[0] = _mm512_load_si512(p[0]), pair_idx[1] = _mm512_load_si512(p[1]);
        lo_idx = _mm512_load_si512(lo), hi_idx = _mm512_load_si512(hi);
    }
    for (index_t k = 0; k < g.K; ++k) {
        float* yk = y + k * H * W;
        for (index_t ti = 0; ti < g.th; ti += 2) {
            const bool two = ti + 1 < g.th;
            const __mmask16 tiles = two ? pl.pair : pl.single;
            const float* mt = m + k * ld + ti * tw;
            if (k + 1 < g.K)  // the next channel's output rows of these tile rows, for writing
                for (index_t h = 4 * ti; h < std::min<index_t>(4 * ti + 8, H); ++h) {
                    __builtin_prefetch(yk + H * W + h * W, 1, 3);
                    if (W > 16) __builtin_prefetch(yk + H * W + h * W + 16, 1, 3);
                }
            __m512 a[4][6];  // A^T m (over rows), column by column
            for (int s = 0; s < 6; ++s) {
                __m512 col[6], r[4];
                for (int q = 0; q < 6; ++q) col[q] = _mm512_maskz_loadu_ps(tiles, mt + (q * 6 + s) * sm);
                winograd_at6(col, r);
                for (int i = 0; i < 4; ++i) a[i][s] = r[i];
            }
            for (int i = 0; i < 4; ++i) {  // (A^T m) A (over columns), then rows 4 ti + i, 4 (ti + 1) + i
                __m512 yv[4];
                winograd_at6(a[i], yv);
                for (int half = 0; half < 2; ++half) {
                    const index_t h = 4 * (ti + half) + i;
                    if ((half == 1 && !two) || h >= H) continue;
                    const __m512 p01 = _mm512_permutex2var_ps(yv[0], pair_idx[half], yv[1]);
                    const __m512 p23 = _mm512_permutex2var_ps(yv[2], pair_idx[half], yv[3]);
                    _mm512_mask_storeu_ps(yk + h * W, pm.lo, _mm512_permutex2var_ps(p01, lo_idx, p23));
                    if (pm.hi) _mm512_mask_storeu_ps(yk + h * W + 16, pm.hi, _mm512_permutex2var_ps(p01, hi_idx, p23));
                }
            }
        }
    }
}

//! m[T x K] (ldm K) = v[T x 16] * u[16 x K] for 16 input channels: the 16 rows of u of each block
//! of 16 output channels stay in registers, the tiles stream by in groups of R (R accumulators),
//! each product summed over c in increasing order. The generic kernel reloads and stores its
//! accumulators every 16 products here (measured 110 of ~250 GFLOP/s at 32x32x16).
template <int R>
__attribute__((target("avx512f,fma"))) inline void winograd_gemm16_rows(const float* v, const __m512* u, float* m,
                                                                       index_t K) {
    __m512 acc[R];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = _mm512_mul_ps(_mm512_set1_ps(v[r * 16]), u[0]);
#pragma GCC unroll 16
    for (int c = 1; c < 16; ++c)
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(v[r * 16 + c]), u[c], acc[r]);
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(m + r * K, acc[r]);
}

__attribute__((target("avx512f,fma"))) inline void winograd_gemm16(index_t T, index_t K, const float* v,
                                                                  const float* u, float* m) {
    constexpr index_t R = 8;  // 8 accumulators + 16 rows of u: 24 of 32 registers (12 spilled)
    for (index_t k0 = 0; k0 < K; k0 += 16) {
        __m512 uk[16];
        for (int c = 0; c < 16; ++c) uk[c] = _mm512_loadu_ps(u + c * K + k0);
        index_t t = 0;
        for (; t + R <= T; t += R) winograd_gemm16_rows<R>(v + t * 16, uk, m + t * K + k0, K);
        for (; t + 4 <= T; t += 4) winograd_gemm16_rows<4>(v + t * 16, uk, m + t * K + k0, K);
        for (; t < T; ++t) winograd_gemm16_rows<1>(v + t * 16, uk, m + t * K + k0, K);
    }
}

//! The planar GEMMs: m[K x N] (ld) = u[K x C] * v[C x N] (ld), N the tiles rounded up to whole
//! vectors (columns past the tiles are computed from whatever the buffer holds there and never
//! read back; ld >= N), C and K multiples of 16 (winograd_eligible). Tiles of 8 rows x NV vectors,
//! 16 channels per pass with the broadcast of u shared by the NV vectors; each element summed
//! over c in increasing order from zero (the FMA sequence of gemm_avx512_op: the same bits).
//! 1.15x the generic kernel on the 64 columns of F(4x4, 3x3) at 32x32 (its 48 + 16 split).
template <int NV>
__attribute__((target("avx512f,fma"))) inline void winograd_gemm_planar_strip(index_t K, index_t C, const float* u,
                                                                             const float* v, float* m, index_t ld) {
    for (index_t k0 = 0; k0 < K; k0 += 8)
        for (index_t c0 = 0; c0 < C; c0 += 16) {
            __m512 acc[8][NV];
            for (int r = 0; r < 8; ++r)
                for (int q = 0; q < NV; ++q)
                    acc[r][q] = c0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(m + (k0 + r) * ld + 16 * q);
#pragma GCC unroll 4
            for (index_t c = c0; c < c0 + 16; ++c) {
                __m512 vc[NV];
                for (int q = 0; q < NV; ++q) vc[q] = _mm512_loadu_ps(v + c * ld + 16 * q);
#pragma GCC unroll 8
                for (int r = 0; r < 8; ++r) {
                    const __m512 b = _mm512_set1_ps(u[(k0 + r) * C + c]);
                    for (int q = 0; q < NV; ++q) acc[r][q] = _mm512_fmadd_ps(b, vc[q], acc[r][q]);
                }
            }
            for (int r = 0; r < 8; ++r)
                for (int q = 0; q < NV; ++q) _mm512_storeu_ps(m + (k0 + r) * ld + 16 * q, acc[r][q]);
        }
}
__attribute__((target("avx512f,fma"))) inline void winograd_gemm_planar(index_t K, index_t N, index_t C,
                                                                       const float* u, const float* v, float* m,
                                                                       index_t ld) {
    const index_t n = (N + 15) / 16 * 16;
    index_t j = 0;
    for (; j + 32 <= n; j += 32) winograd_gemm_planar_strip<2>(K, C, u, v + j, m + j, ld);
    if (j < n) winograd_gemm_planar_strip<1>(K, C, u, v + j, m + j, ld);
}

//! The transposed output transform (the weight gradient's): dm[xi][t][k] = (A dy A^T)[r][s] for
//! the 2x2 output gradients dy of tile t (zero outside the plane), read from pixel-major
//! dyt[(h W + w) K + k]; A = [1 0; 1 1; 1 -1; 0 -1]. 16 channels per vector. Pixel-major only.
__attribute__((target("avx512f"))) inline void winograd_output_grad(const float* dyt, const winograd_geometry& g,
                                                                    float* dm) {
    const index_t K = g.K, stride_xi = g.out_stride();
    for (index_t ti = 0; ti < g.th; ++ti)
        for (index_t tj = 0; tj < g.tw; ++tj) {
            const index_t t = ti * g.tw + tj;
            const bool full_h = 2 * ti + 1 < g.H, full_w = 2 * tj + 1 < g.W;
            const float* row0 = dyt + (2 * ti * g.W + 2 * tj) * K;
            const float* row1 = row0 + g.W * K;
            float* mt = dm + t * K;
            for (index_t k0 = 0; k0 < K; k0 += 16) {
                const __m512 z = _mm512_setzero_ps();
                const __m512 y00 = _mm512_loadu_ps(row0 + k0);
                const __m512 y01 = full_w ? _mm512_loadu_ps(row0 + K + k0) : z;
                const __m512 y10 = full_h ? _mm512_loadu_ps(row1 + k0) : z;
                const __m512 y11 = full_h && full_w ? _mm512_loadu_ps(row1 + K + k0) : z;
                __m512 e[4][2];  // A dy (over rows)
                e[0][0] = y00, e[0][1] = y01;
                e[1][0] = _mm512_add_ps(y00, y10), e[1][1] = _mm512_add_ps(y01, y11);
                e[2][0] = _mm512_sub_ps(y00, y10), e[2][1] = _mm512_sub_ps(y01, y11);
                e[3][0] = _mm512_sub_ps(z, y10), e[3][1] = _mm512_sub_ps(z, y11);
                for (int r = 0; r < 4; ++r) {  // (A dy) A^T (over columns)
                    float* o = mt + k0 + r * 4 * stride_xi;
                    _mm512_storeu_ps(o, e[r][0]);
                    _mm512_storeu_ps(o + stride_xi, _mm512_add_ps(e[r][0], e[r][1]));
                    _mm512_storeu_ps(o + 2 * stride_xi, _mm512_sub_ps(e[r][0], e[r][1]));
                    _mm512_storeu_ps(o + 3 * stride_xi, _mm512_sub_ps(z, e[r][1]));
                }
            }
        }
}

//! F(4x4, 3x3)'s transposed output transform (the weight gradient's): dm[xi][t][k] = (A dy A^T)[r][s]
//! for the 4x4 output gradients dy of tile t (zero outside the plane), read from pixel-major
//! dyt[(h W + w) K + k]; A = (A^T)^T = [1 0 0 0; 1 1 1 1; 1 -1 1 -1; 1 2 4 8; 1 -2 4 -8; 0 0 0 1].
//! 16 channels per vector.
__attribute__((target("avx512f"))) inline void winograd_a6(const __m512* y, __m512* r) {
    const __m512 e = _mm512_add_ps(y[0], y[2]), o = _mm512_add_ps(y[1], y[3]);
    const __m512 e4 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), y[2], y[0]);
    const __m512 o4 = _mm512_fmadd_ps(_mm512_set1_ps(4.0f), y[3], y[1]);
    r[0] = y[0];
    r[1] = _mm512_add_ps(e, o);
    r[2] = _mm512_sub_ps(e, o);
    r[3] = _mm512_fmadd_ps(_mm512_set1_ps(2.0f), o4, e4);
    r[4] = _mm512_fnmadd_ps(_mm512_set1_ps(2.0f), o4, e4);
    r[5] = y[3];
}

__attribute__((target("avx512f"))) inline void winograd_output_grad_f4(const float* dyt, const winograd_geometry& g,
                                                                       float* dm) {
    const index_t K = g.K, stride_xi = g.out_stride();
    for (index_t ti = 0; ti < g.th; ++ti)
        for (index_t tj = 0; tj < g.tw; ++tj) {
            const index_t t = ti * g.tw + tj;
            const int rows = int(std::min<index_t>(4, g.H - 4 * ti)), cols = int(std::min<index_t>(4, g.W - 4 * tj));
            float* mt = dm + t * K;
            for (index_t k0 = 0; k0 < K; k0 += 16) {
                __m512 e[6][4];  // A dy (over rows), column by column
                for (int j = 0; j < 4; ++j) {
                    __m512 col[4], r[6];
                    for (int i = 0; i < 4; ++i)
                        col[i] = i < rows && j < cols ? _mm512_loadu_ps(dyt + ((4 * ti + i) * g.W + 4 * tj + j) * K + k0)
                                                      : _mm512_setzero_ps();
                    winograd_a6(col, r);
                    for (int q = 0; q < 6; ++q) e[q][j] = r[q];
                }
                for (int q = 0; q < 6; ++q) {  // (A dy) A^T (over columns)
                    __m512 r[6];
                    winograd_a6(e[q], r);
                    float* o = mt + k0 + q * 6 * stride_xi;
                    for (int s = 0; s < 6; ++s) _mm512_storeu_ps(o + s * stride_xi, r[s]);
                }
            }
        }
}

//! Per-thread work buffers of winograd_conv, grown to a geometry, never shrunk. `padded` holds
//! zeros outside the image's pixels: zeroed whenever it is (re)sized or the geometry changes.
struct winograd_buffers {
    std::vector<float> pixels, padded, v, m, yt;
    index_t Hp = -1, Wp = -1, C = -1;
    void prepare(const winograd_geometry& g) {
        auto grow = [](std::vector<float>& b, index_t n) {
            if (index_t(b.size()) < n) b.resize(std::size_t(n));
        };
        grow(pixels, g.pixels_in());
        grow(v, g.transformed_in());
        grow(m, g.transformed_out());
        grow(yt, g.planar ? g.H * g.W * g.K : g.pixels_out());  // planar: the weight gradient's dy
        if (g.planar) return;
        if (Hp != g.Hp || Wp != g.Wp || C != g.C || index_t(padded.size()) < g.padded_in()) {
            padded.assign(std::size_t(std::max<index_t>(g.padded_in(), index_t(padded.size()))), 0.0f);
            Hp = g.Hp, Wp = g.Wp, C = g.C;
        }
    }
};

//! b.v = the pixel-major input transform of x[C x H x W]: x transposed to pixels x channels,
//! copied into the interior of the zero-bordered b.padded, transformed.
inline void transform_input_pixel_major(const float* x, const winograd_geometry& g, winograd_buffers& b, float* v) {
    const index_t P = g.H * g.W, C = g.C;
    transpose(x, C, P, P, b.pixels.data(), C);  // pixels[p][c]
    for (index_t h = 0; h < g.H; ++h)
        std::memcpy(b.padded.data() + ((h + 1) * g.Wp + 1) * C, b.pixels.data() + h * g.W * C,
                    std::size_t(g.W * C) * sizeof(float));
    if (g.m == 4)
        winograd_input_f4(b.padded.data(), g, v);
    else
        winograd_input(b.padded.data(), g, v);
}

//! winograd_conv for `count` <= g.nb images at once: image i's planes at x + i * xs, its result at
//! y + i * ys. The tiles of the images are stacked in the rows (pixel-major) or the columns
//! (planar) of each GEMM; every row or column is computed alone (each image's bits do not depend
//! on the others).
inline void winograd_conv_images(const float* x, index_t xs, index_t count, const float* u, const winograd_geometry& g,
                                 winograd_buffers& b, float* y, index_t ys) {
    const index_t P = g.H * g.W, C = g.C, K = g.K, rows = count * g.T;
    if (count < 1 || count > g.nb) throw std::logic_error("winograd_conv_images: 1..nb images");
    if (g.planar) {
        for (index_t i = 0; i < count; ++i)
            if (g.m == 4)
                winograd_input_planar_f4(x + i * xs, g, b.v.data() + i * g.T);
            else
                winograd_input_planar(x + i * xs, g, b.v.data() + i * g.T);
        for (index_t xi = 0; xi < g.points(); ++xi)
            winograd_gemm_planar(K, rows, C, u + xi * K * C, b.v.data() + xi * g.in_stride(),
                                 b.m.data() + xi * g.out_stride(), g.ld());
        for (index_t i = 0; i < count; ++i)
            if (g.m == 4)
                winograd_output_planar_f4(b.m.data() + i * g.T, g, y + i * ys);
            else
                winograd_output_planar(b.m.data() + i * g.T, g, y + i * ys);
        return;
    }
    for (index_t i = 0; i < count; ++i) transform_input_pixel_major(x + i * xs, g, b, b.v.data() + i * g.T * C);
    for (index_t xi = 0; xi < g.points(); ++xi)
        if (C == 16)
            winograd_gemm16(rows, K, b.v.data() + xi * g.in_stride(), u + xi * C * K, b.m.data() + xi * g.out_stride());
        else
            gemm_avx512_op(rows, K, C, a_strided{b.v.data() + xi * g.in_stride(), C, 1}, b_strided{u + xi * C * K, K},
                           false, b.m.data() + xi * g.out_stride(), K);
    for (index_t i = 0; i < count; ++i) {
        if (g.m == 4)
            winograd_output_f4(b.m.data() + i * g.T * K, g, b.yt.data());
        else
            winograd_output(b.m.data() + i * g.T * K, g, b.yt.data());
        transpose(b.yt.data(), P, K, K, y + i * ys, P);  // y[k][p]
    }
}

//! y[K x H x W] = the same/stride-1 3x3 convolution (cross-correlation, zero padding 1) of the C
//! planes x[C x H x W] with the weights whose transform is u (winograd_weights, or
//! winograd_weights_f4 when g.m == 4), one image: planar geometries transform straight from the
//! planes; pixel-major ones transpose x to pixels x channels, copy it into the zero-bordered
//! buffer, transform, run g.points() GEMMs [T x C] * [C x K] (the AVX-512 kernel), transform
//! back and transpose to planes. Each image's result depends only on that image (any thread, any
//! batch). Only when winograd_eligible(); `b` prepared for g.
inline void winograd_conv(const float* x, const float* u, const winograd_geometry& g, winograd_buffers& b, float* y) {
    winograd_conv_images(x, 0, 1, u, g, b, y, 0);
}
//! du[xi][c][k] += sum over the tiles t of v[xi][t][c] * dm[xi][t][k]: the weight gradient in the
//! Winograd domain (dL/dU of M = U . V) of `count` <= g.nb images, image i's input x + i * xs
//! [C x H x W] and output gradient dy + i * dys [K x H x W]; the tiles of the images are stacked
//! along the inner dimension of one GEMM per point (summed in tile order). dm is pixel-major
//! (dy transposed to pixels x channels first); v is pixel-major too, or, for a planar F(4x4, 3x3)
//! geometry, planar (v[xi][c][t]: x needs no transpose; the GEMM reads v by rows). The caller
//! sums du over images (and threads, in a fixed order) and maps it back once:
//! winograd_weight_grad_finish (F(2x2, 3x3)) or winograd_weight_grad_finish_f4.
inline void winograd_weight_grad_images(const float* x, index_t xs, const float* dy, index_t dys, index_t count,
                                        const winograd_geometry& g, winograd_buffers& b, float* du) {
    if ((g.planar && g.m != 4) || count < 1 || count > g.nb)
        throw std::logic_error("winograd_weight_grad_images: F(4x4) if planar, 1..nb images");
    const index_t P = g.H * g.W, C = g.C, K = g.K;
    for (index_t i = 0; i < count; ++i) {
        if (g.planar)
            winograd_input_planar_f4(x + i * xs, g, b.v.data() + i * g.T);
        else
            transform_input_pixel_major(x + i * xs, g, b, b.v.data() + i * g.T * C);
        transpose(dy + i * dys, K, P, P, b.yt.data(), K);  // yt[p][k]
        if (g.m == 4)
            winograd_output_grad_f4(b.yt.data(), g, b.m.data() + i * g.T * K);
        else
            winograd_output_grad(b.yt.data(), g, b.m.data() + i * g.T * K);
    }
    // A(c, t) = v[xi][c][t] (planar, rows of ld) or v[xi][t][c] (pixel-major)
    const index_t rs = g.planar ? g.ld() : 1, cs = g.planar ? 1 : C;
    for (index_t xi = 0; xi < g.points(); ++xi)
        gemm_avx512_op(C, K, count * g.T, a_strided{b.v.data() + xi * g.in_stride(), rs, cs},
                       b_strided{b.m.data() + xi * g.out_stride(), K}, true, du + xi * C * K, K);
}
#else
struct winograd_buffers {
    void prepare(const winograd_geometry&) {}
};
inline void winograd_conv(const float*, const float*, const winograd_geometry&, winograd_buffers&, float*) {
    throw std::logic_error("winograd_conv: no AVX-512 kernel in this build");
}
inline void winograd_conv_images(const float*, index_t, index_t, const float*, const winograd_geometry&,
                                 winograd_buffers&, float*, index_t) {
    throw std::logic_error("winograd_conv_images: no AVX-512 kernel in this build");
}
inline void winograd_weight_grad_images(const float*, index_t, const float*, index_t, index_t, const winograd_geometry&,
                                        winograd_buffers&, float*) {
    throw std::logic_error("winograd_weight_grad_images: no AVX-512 kernel in this build");
}
#endif

//! dw[k][c][3 x 3] += G^T du G for the summed Winograd-domain gradient du[xi][c][k] (the adjoint
//! of winograd_weights' U = G w G^T), in double, rounded once.
inline void winograd_weight_grad_finish(const float* du, index_t K, index_t C, float* dw) {
    for (index_t k = 0; k < K; ++k)
        for (index_t c = 0; c < C; ++c) {
            double m[4][4];
            for (int xi = 0; xi < 16; ++xi) m[xi / 4][xi % 4] = du[(xi * C + c) * K + k];
            double t[3][4];  // G^T m (over rows): row 0 = m0 + (m1 + m2) / 2, 1 = (m1 - m2) / 2, 2 = (m1 + m2) / 2 + m3
            for (int s = 0; s < 4; ++s) {
                t[0][s] = m[0][s] + 0.5 * (m[1][s] + m[2][s]);
                t[1][s] = 0.5 * (m[1][s] - m[2][s]);
                t[2][s] = 0.5 * (m[1][s] + m[2][s]) + m[3][s];
            }
            float* o = dw + (k * C + c) * 9;
            for (int a = 0; a < 3; ++a) {  // (G^T m) G (over columns)
                o[a * 3 + 0] += float(t[a][0] + 0.5 * (t[a][1] + t[a][2]));
                o[a * 3 + 1] += float(0.5 * (t[a][1] - t[a][2]));
                o[a * 3 + 2] += float(0.5 * (t[a][1] + t[a][2]) + t[a][3]);
            }
        }
}

//! G^T of F(4x4, 3x3) applied over K columns: for six rows m0..m5, o0 = m0 / 4 - (m1 + m2) / 6 +
//! (m3 + m4) / 24, o1 = (m2 - m1) / 6 + (m3 - m4) / 12, o2 = (m3 + m4 - m1 - m2) / 6 + m5 (products
//! with the double reciprocals). Vectorized over k.
inline void winograd_gt6(index_t K, const double* SHIFTNORM_RESTRICT m0, const double* SHIFTNORM_RESTRICT m1,
                         const double* SHIFTNORM_RESTRICT m2, const double* SHIFTNORM_RESTRICT m3,
                         const double* SHIFTNORM_RESTRICT m4, const double* SHIFTNORM_RESTRICT m5,
                         double* SHIFTNORM_RESTRICT o0, double* SHIFTNORM_RESTRICT o1, double* SHIFTNORM_RESTRICT o2) {
    constexpr double i6 = 1.0 / 6.0, i12 = 1.0 / 12.0, i24 = 1.0 / 24.0;
    for (index_t k = 0; k < K; ++k) {
        const double s12 = m1[k] + m2[k], s34 = m3[k] + m4[k];
        o0[k] = m0[k] * 0.25 - s12 * i6 + s34 * i24;
        o1[k] = (m2[k] - m1[k]) * i6 + (m3[k] - m4[k]) * i12;
        o2[k] = (s34 - s12) * i6 + m5[k];
    }
}

//! dw[k][c][3 x 3] += G^T du G for the summed F(4x4, 3x3) Winograd-domain gradient du[xi][c][k]
//! (xi = 6 r + s; the adjoint of winograd_weights_f4's U = G w G^T), in double, rounded once.
//! G^T = [1/4 -1/6 -1/6 1/24 1/24 0; 0 -1/6 1/6 1/12 -1/12 0; 0 -1/6 -1/6 1/6 1/6 1]. Per input
//! channel c, vectorized over k (winograd_gt6).
inline void winograd_weight_grad_finish_f4(const float* du, index_t K, index_t C, float* dw) {
    double* m = winograd_rows(63 * K);  // [36][K], then t and o (serial: the calling thread's rows)
    double* t = m + 36 * K;         // G^T m over rows: [3][6][K]
    double* o = t + 18 * K;         // [3][3][K]
    for (index_t c = 0; c < C; ++c) {
        for (index_t xi = 0; xi < 36; ++xi) {
            const float* src = du + (xi * C + c) * K;
            for (index_t k = 0; k < K; ++k) m[xi * K + k] = src[k];
        }
        for (int sc = 0; sc < 6; ++sc)  // column sc: rows r of m[6 r + sc] -> t[a][sc]
            winograd_gt6(K, m + (0 * 6 + sc) * K, m + (1 * 6 + sc) * K, m + (2 * 6 + sc) * K, m + (3 * 6 + sc) * K,
                         m + (4 * 6 + sc) * K, m + (5 * 6 + sc) * K, t + (0 * 6 + sc) * K, t + (1 * 6 + sc) * K,
                         t + (2 * 6 + sc) * K);
        for (int a = 0; a < 3; ++a)  // (G^T m) G over columns: row a of t -> o[a][b]
            winograd_gt6(K, t + (a * 6 + 0) * K, t + (a * 6 + 1) * K, t + (a * 6 + 2) * K, t + (a * 6 + 3) * K,
                         t + (a * 6 + 4) * K, t + (a * 6 + 5) * K, o + (a * 3 + 0) * K, o + (a * 3 + 1) * K,
                         o + (a * 3 + 2) * K);
        for (index_t k = 0; k < K; ++k) {
            float* out = dw + (k * C + c) * 9;
            for (int j = 0; j < 9; ++j) out[j] += float(o[j * K + k]);
        }
    }
}

}  // namespace shiftnorm::nn::detail
