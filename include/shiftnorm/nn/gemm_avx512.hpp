// SPDX-License-Identifier: MIT
// AVX-512 register-blocked sgemm for the convolution shapes: C = A * B (+ C), B row-major, no packing.
#pragma once

#include <algorithm>

#include "shiftnorm/core/shape.hpp"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__CUDACC__) && !defined(SHIFTNORM_NO_AVX512_GEMM)
#include <immintrin.h>
#define SHIFTNORM_HAS_AVX512_GEMM 1
#endif

namespace shiftnorm::nn::detail {

//! Whether this CPU runs the AVX-512 kernel below (checked once; false off x86 or when the build
//! defines SHIFTNORM_NO_AVX512_GEMM). The kernel is compiled for AVX-512 by function attributes,
//! so a portable build (no -march) uses it too on a CPU that has AVX-512F.
inline bool avx512_gemm_available() {
#if defined(SHIFTNORM_HAS_AVX512_GEMM)
    static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    return ok;
#else
    return false;
#endif
}

#if defined(SHIFTNORM_HAS_AVX512_GEMM)

//! Operand accessors of the kernel below. A(r, k) = a_strided{p, rs, cs}: p[r*rs + k*cs] (row-major
//! A: rs = lda, cs = 1; transposed: rs = 1, cs = lda). a_rows{p, off}: p[off[r] + k], every row of A
//! a window into one buffer (the implicit im2col of nn/conv_shifted.hpp). B row k: b_strided{p, ld}
//! starts at p + k*ld, b_rows{p, off} at p + off[k]. `at(r0, k0)` moves the origin to (r0, k0)
//! (A) or to row k0, column j (B).
struct a_strided {
    const float* p;
    index_t rs, cs;
    a_strided at(index_t r0, index_t k0) const { return {p + r0 * rs + k0 * cs, rs, cs}; }
    const float* col(index_t k) const { return p + k * cs; }
    float get(const float* ak, int r) const { return ak[r * rs]; }
};
struct a_rows {
    const float* p;
    const index_t* off;
    a_rows at(index_t r0, index_t k0) const { return {p + k0, off + r0}; }
    const float* col(index_t k) const { return p + k; }
    float get(const float* ak, int r) const { return ak[off[r]]; }
};
struct b_strided {
    const float* p;
    index_t ld;
    b_strided at(index_t k0, index_t j) const { return {p + k0 * ld + j, ld}; }
    const float* row(index_t k) const { return p + k * ld; }
};
struct b_rows {
    const float* p;
    const index_t* off;
    b_rows at(index_t k0, index_t j) const { return {p + j, off + k0}; }
    const float* row(index_t k) const { return p + off[k]; }
};

//! One MR x (16*NV) tile of C over k in [0, K): acc = (accumulate ? C : 0) + sum_k A(r, k) B(k, :).
//! The k loop runs in order for every element, so each C element is the same sequence of fused
//! multiply-adds whatever tile or strip it falls in, and whatever accessor delivers the operands.
template <int MR, int NV, class AA, class BB>
__attribute__((target("avx512f,fma"))) inline void avx512_tile(index_t K, AA a, BB b, float* c, index_t ldc,
                                                              bool accumulate) {
    __m512 acc[MR][NV];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (index_t k = 0; k < K; ++k) {
        __m512 bv[NV];
        const float* bk = b.row(k);
        for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(bk + 16 * v);
        const float* ak = a.col(k);
        for (int r = 0; r < MR; ++r) {
            const __m512 av = _mm512_set1_ps(a.get(ak, r));
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

//! The last (fewer than 16) columns of MR rows: one masked vector per row, the same k order.
template <int MR, class AA, class BB>
__attribute__((target("avx512f,fma"))) inline void avx512_tail(__mmask16 m, index_t K, AA a, BB b, float* c,
                                                              index_t ldc, bool accumulate) {
    __m512 acc[MR];
    for (int r = 0; r < MR; ++r) acc[r] = accumulate ? _mm512_maskz_loadu_ps(m, c + r * ldc) : _mm512_setzero_ps();
    for (index_t k = 0; k < K; ++k) {
        const __m512 bv = _mm512_maskz_loadu_ps(m, b.row(k));
        const float* ak = a.col(k);
        for (int r = 0; r < MR; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(a.get(ak, r)), bv, acc[r]);
    }
    for (int r = 0; r < MR; ++r) _mm512_mask_storeu_ps(c + r * ldc, m, acc[r]);
}

template <class AA, class BB>
__attribute__((target("avx512f,fma"))) inline void avx512_tail_rows(index_t mr, index_t cols, index_t K, AA a, BB b,
                                                                   float* c, index_t ldc, bool accumulate) {
    const __mmask16 m = __mmask16((1u << cols) - 1u);
    switch (mr) {
        case 8: avx512_tail<8>(m, K, a, b, c, ldc, accumulate); break;
        case 7: avx512_tail<7>(m, K, a, b, c, ldc, accumulate); break;
        case 6: avx512_tail<6>(m, K, a, b, c, ldc, accumulate); break;
        case 5: avx512_tail<5>(m, K, a, b, c, ldc, accumulate); break;
        case 4: avx512_tail<4>(m, K, a, b, c, ldc, accumulate); break;
        case 3: avx512_tail<3>(m, K, a, b, c, ldc, accumulate); break;
        case 2: avx512_tail<2>(m, K, a, b, c, ldc, accumulate); break;
        default: avx512_tail<1>(m, K, a, b, c, ldc, accumulate); break;
    }
}

template <int NV, class AA, class BB>
__attribute__((target("avx512f,fma"))) inline void avx512_rows(index_t mr, index_t K, AA a, BB b, float* c,
                                                              index_t ldc, bool accumulate) {
    switch (mr) {
        case 8: avx512_tile<8, NV>(K, a, b, c, ldc, accumulate); break;
        case 7: avx512_tile<7, NV>(K, a, b, c, ldc, accumulate); break;
        case 6: avx512_tile<6, NV>(K, a, b, c, ldc, accumulate); break;
        case 5: avx512_tile<5, NV>(K, a, b, c, ldc, accumulate); break;
        case 4: avx512_tile<4, NV>(K, a, b, c, ldc, accumulate); break;
        case 3: avx512_tile<3, NV>(K, a, b, c, ldc, accumulate); break;
        case 2: avx512_tile<2, NV>(K, a, b, c, ldc, accumulate); break;
        default: avx512_tile<1, NV>(K, a, b, c, ldc, accumulate); break;
    }
}

//! C[M x N] (ldc) = A[M x K] * B[K x N] (+ C when accumulate), operands through accessors
//! (a_strided / a_rows, b_strided / b_rows), C row-major. Single-threaded (called from the
//! layers' OpenMP loops). Tiles of 8 rows x 48 columns (24 accumulators), 32- and 16-column
//! strips at the right edge (the 16-column strip 16 rows at a time), one masked vector for the
//! last N % 16 columns; k blocks of 256 keep a B strip in L1/L2. Every C element is accumulated
//! over k in increasing order with FMAs.
template <class AA, class BB>
__attribute__((target("avx512f,fma"))) inline void gemm_avx512_op(index_t M, index_t N, index_t K, AA A, BB B,
                                                                 bool accumulate, float* C, index_t ldc) {
    constexpr index_t kb = 256;
    if (K == 0) {
        if (!accumulate)
            for (index_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
        return;
    }
    for (index_t k0 = 0; k0 < K; k0 += kb) {
        const index_t kk = std::min(kb, K - k0);
        const bool acc = accumulate || k0 > 0;
        index_t j = 0;
        for (; j + 48 <= N; j += 48)
            for (index_t i = 0; i < M; i += 8)
                avx512_rows<3>(std::min<index_t>(8, M - i), kk, A.at(i, k0), B.at(k0, j), C + i * ldc + j, ldc, acc);
        if (j + 32 <= N) {
            for (index_t i = 0; i < M; i += 8)
                avx512_rows<2>(std::min<index_t>(8, M - i), kk, A.at(i, k0), B.at(k0, j), C + i * ldc + j, ldc, acc);
            j += 32;
        }
        if (j + 16 <= N) {  // 16 rows at a time where they fill: 16 FMA chains instead of 8
            index_t i = 0;
            for (; i + 16 <= M; i += 16)
                avx512_tile<16, 1>(kk, A.at(i, k0), B.at(k0, j), C + i * ldc + j, ldc, acc);
            for (; i < M; i += 8)
                avx512_rows<1>(std::min<index_t>(8, M - i), kk, A.at(i, k0), B.at(k0, j), C + i * ldc + j, ldc, acc);
            j += 16;
        }
        if (j < N)
            for (index_t i = 0; i < M; i += 8)
                avx512_tail_rows(std::min<index_t>(8, M - i), N - j, kk, A.at(i, k0), B.at(k0, j), C + i * ldc + j,
                                 ldc, acc);
    }
}

//! out[c * ldo + r] = in[r * ldi + c] for one 16 x 16 block, in registers: 16 row loads, three
//! rounds of unpack / 128-bit lane shuffles, 16 row stores (pure data movement: exact).
__attribute__((target("avx512f"))) inline void transpose16x16_avx512(const float* in, index_t ldi, float* out,
                                                                    index_t ldo) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(in + i * ldi);
    // t[2i] lane l = (r2i[4l], r2i+1[4l], r2i[4l+1], r2i+1[4l+1]); t[2i+1] the same for 4l+2, 4l+3
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // r[4i + q] lane l = column 4l + q of rows 4i .. 4i + 3
    for (int i = 0; i < 4; ++i) {
        const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    // column 4l + q = lane l of r[q], r[4 + q], r[8 + q], r[12 + q]
    for (int q = 0; q < 4; ++q) {
        const __m512 x0 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0x44), x1 = _mm512_shuffle_f32x4(r[q], r[4 + q], 0xEE);
        const __m512 y0 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0x44);
        const __m512 y1 = _mm512_shuffle_f32x4(r[8 + q], r[12 + q], 0xEE);
        _mm512_storeu_ps(out + (0 + q) * ldo, _mm512_shuffle_f32x4(x0, y0, 0x88));
        _mm512_storeu_ps(out + (4 + q) * ldo, _mm512_shuffle_f32x4(x0, y0, 0xDD));
        _mm512_storeu_ps(out + (8 + q) * ldo, _mm512_shuffle_f32x4(x1, y1, 0x88));
        _mm512_storeu_ps(out + (12 + q) * ldo, _mm512_shuffle_f32x4(x1, y1, 0xDD));
    }
}

//! C[M x N] (ldc) = op(A)[M x K] * B[K x N] (+ C when accumulate), B and C row-major.
//! op(A) = A (row-major, lda) or A^T (A is K x M, lda) when trans_a.
__attribute__((target("avx512f,fma"))) inline void gemm_avx512(bool trans_a, index_t M, index_t N, index_t K,
                                                              const float* A, index_t lda, const float* B,
                                                              index_t ldb, bool accumulate, float* C, index_t ldc) {
    gemm_avx512_op(M, N, K, a_strided{A, trans_a ? 1 : lda, trans_a ? lda : 1}, b_strided{B, ldb}, accumulate, C,
                   ldc);
}

#endif

}  // namespace shiftnorm::nn::detail
