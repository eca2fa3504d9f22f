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

//! One MR x (16*NV) tile of C over k in [0, K): acc = (accumulate ? C : 0) + sum_k A(r, k) B(k, :).
//! A(r, k) = a[r*ars + k*acs] (row-major A: ars = lda, acs = 1; transposed: ars = 1, acs = lda);
//! B row k starts at b + k*ldb. The k loop runs in order for every element, so each C element is
//! the same sequence of fused multiply-adds whatever tile or strip it falls in.
template <int MR, int NV>
__attribute__((target("avx512f,fma"))) inline void avx512_tile(index_t K, const float* a, index_t ars, index_t acs,
                                                              const float* b, index_t ldb, float* c, index_t ldc,
                                                              bool accumulate) {
    __m512 acc[MR][NV];
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = accumulate ? _mm512_loadu_ps(c + r * ldc + 16 * v) : _mm512_setzero_ps();
    for (index_t k = 0; k < K; ++k) {
        __m512 bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + k * ldb + 16 * v);
        const float* ak = a + k * acs;
        for (int r = 0; r < MR; ++r) {
            const __m512 av = _mm512_set1_ps(ak[r * ars]);
            for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(c + r * ldc + 16 * v, acc[r][v]);
}

//! The last (fewer than 16) columns of MR rows: one masked vector per row, the same k order.
template <int MR>
__attribute__((target("avx512f,fma"))) inline void avx512_tail(__mmask16 m, index_t K, const float* a, index_t ars,
                                                              index_t acs, const float* b, index_t ldb, float* c,
                                                              index_t ldc, bool accumulate) {
    __m512 acc[MR];
    for (int r = 0; r < MR; ++r) acc[r] = accumulate ? _mm512_maskz_loadu_ps(m, c + r * ldc) : _mm512_setzero_ps();
    for (index_t k = 0; k < K; ++k) {
        const __m512 bv = _mm512_maskz_loadu_ps(m, b + k * ldb);
        const float* ak = a + k * acs;
        for (int r = 0; r < MR; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(ak[r * ars]), bv, acc[r]);
    }
    for (int r = 0; r < MR; ++r) _mm512_mask_storeu_ps(c + r * ldc, m, acc[r]);
}

__attribute__((target("avx512f,fma"))) inline void avx512_tail_rows(index_t mr, index_t cols, index_t K,
                                                                   const float* a, index_t ars, index_t acs,
                                                                   const float* b, index_t ldb, float* c, index_t ldc,
                                                                   bool accumulate) {
    const __mmask16 m = __mmask16((1u << cols) - 1u);
    switch (mr) {
        case 8: avx512_tail<8>(m, K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 7: avx512_tail<7>(m, K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 6: avx512_tail<6>(m, K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 5: avx512_tail<5>(m, K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 4: avx512_tail<4>(m, K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 3: avx512_tail<3>(m, K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 2: avx512_tail<2>(m, K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        default: avx512_tail<1>(m, K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
    }
}

template <int NV>
__attribute__((target("avx512f,fma"))) inline void avx512_rows(index_t mr, index_t K, const float* a, index_t ars,
                                                              index_t acs, const float* b, index_t ldb, float* c,
                                                              index_t ldc, bool accumulate) {
    switch (mr) {
        case 8: avx512_tile<8, NV>(K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 7: avx512_tile<7, NV>(K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 6: avx512_tile<6, NV>(K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 5: avx512_tile<5, NV>(K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 4: avx512_tile<4, NV>(K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 3: avx512_tile<3, NV>(K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        case 2: avx512_tile<2, NV>(K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
        default: avx512_tile<1, NV>(K, a, ars, acs, b, ldb, c, ldc, accumulate); break;
    }
}

//! C[M x N] (ldc) = op(A)[M x K] * B[K x N] (+ C when accumulate), B and C row-major.
//! op(A) = A (row-major, lda) or A^T (A is K x M, lda) when trans_a. Single-threaded (called from
//! the layers' OpenMP loops). Tiles of 8 rows x 48 columns (24 accumulators), 32- and 16-column
//! strips at the right edge, one masked vector for the last N % 16 columns; k blocks of 256 keep a
//! B strip in L1/L2. Every C element is accumulated over k in increasing order with FMAs.
__attribute__((target("avx512f,fma"))) inline void gemm_avx512(bool trans_a, index_t M, index_t N, index_t K,
                                                              const float* A, index_t lda, const float* B,
                                                              index_t ldb, bool accumulate, float* C, index_t ldc) {
    const index_t ars = trans_a ? 1 : lda, acs = trans_a ? lda : 1;
    constexpr index_t kb = 256;
    if (K == 0) {
        if (!accumulate)
            for (index_t i = 0; i < M; ++i) std::fill(C + i * ldc, C + i * ldc + N, 0.0f);
        return;
    }
    for (index_t k0 = 0; k0 < K; k0 += kb) {
        const index_t kk = std::min(kb, K - k0);
        const bool acc = accumulate || k0 > 0;
        const float* a0 = A + k0 * acs;
        const float* b0 = B + k0 * ldb;
        index_t j = 0;
        for (; j + 48 <= N; j += 48)
            for (index_t i = 0; i < M; i += 8)
                avx512_rows<3>(std::min<index_t>(8, M - i), kk, a0 + i * ars, ars, acs, b0 + j, ldb, C + i * ldc + j,
                               ldc, acc);
        if (j + 32 <= N) {
            for (index_t i = 0; i < M; i += 8)
                avx512_rows<2>(std::min<index_t>(8, M - i), kk, a0 + i * ars, ars, acs, b0 + j, ldb, C + i * ldc + j,
                               ldc, acc);
            j += 32;
        }
        if (j + 16 <= N) {
            for (index_t i = 0; i < M; i += 8)
                avx512_rows<1>(std::min<index_t>(8, M - i), kk, a0 + i * ars, ars, acs, b0 + j, ldb, C + i * ldc + j,
                               ldc, acc);
            j += 16;
        }
        if (j < N)
            for (index_t i = 0; i < M; i += 8)
                avx512_tail_rows(std::min<index_t>(8, M - i), N - j, kk, a0 + i * ars, ars, acs, b0 + j, ldb,
                                 C + i * ldc + j, ldc, acc);
    }
}

#endif

}  // namespace shiftnorm::nn::detail
