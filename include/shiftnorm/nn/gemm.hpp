// SPDX-License-Identifier: MIT
// Row-major single-precision GEMM used by the layers: Eigen by default, oneDNN's sgemm when enabled.
#pragma once

#include <algorithm>
#include <stdexcept>

#include <Eigen/Core>

#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/nn/gemm_avx512.hpp"

#if defined(SHIFTNORM_USE_DNNL)
#include <dnnl.h>
#endif

namespace shiftnorm::nn::detail {

//! C = alpha * op(A) * op(B) + beta * C, all row-major: op(A) is M x K (A is K x M when
//! trans_a, leading dimension lda), op(B) is K x N, C is M x N (ldc). beta is 0 or 1.
//! Backend: Eigen's blocked GEMM on Maps (default, header-only), or oneDNN's JIT sgemm
//! (`dnnl_sgemm`, Apache-2.0) when SHIFTNORM_USE_DNNL is defined and libdnnl is linked; it is
//! 1.3-2.8x faster on the small-M shapes of CIFAR convolutions (measured: docs/engine.md).
//! On a CPU with AVX-512F, op(B) = B (B row-major, the convolution's forward and input-gradient
//! products) with alpha 1 runs our register-blocked kernel instead (nn/gemm_avx512.hpp: no packing,
//! no zeroing pass; docs/engine.md), in every build but the oneDNN one. The weight gradient
//! (op(B) = B^T) is computed transposed instead where that kernel runs (weight_grad_transposed).
//! Called from inside the layers' OpenMP loops, so all backends run single-threaded there.
inline void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, float alpha, const float* A, index_t lda,
                 const float* B, index_t ldb, float beta, float* C, index_t ldc) {
#if defined(SHIFTNORM_HAS_AVX512_GEMM) && !defined(SHIFTNORM_USE_DNNL)
    if (!trans_b && alpha == 1.0f && avx512_gemm_available()) {
        gemm_avx512(trans_a, M, N, K, A, lda, B, ldb, beta != 0.0f, C, ldc);
        return;
    }
#endif
#if defined(SHIFTNORM_USE_DNNL)
    dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    using stride = Eigen::OuterStride<>;
    using cmap = Eigen::Map<const mat, 0, stride>;
    Eigen::Map<mat, 0, stride> c(C, M, N, stride(ldc));
    auto run = [&](const auto& a, const auto& b) {
        if (beta == 0.0f) {
            if (alpha == 1.0f) c.noalias() = a * b;
            else c.noalias() = alpha * (a * b);
        } else {
            if (alpha == 1.0f) c.noalias() += a * b;
            else c.noalias() += alpha * (a * b);
        }
    };
    if (!trans_a && !trans_b) run(cmap(A, M, K, stride(lda)), cmap(B, K, N, stride(ldb)));
    else if (trans_a && !trans_b) run(cmap(A, K, M, stride(lda)).transpose(), cmap(B, K, N, stride(ldb)));
    else if (!trans_a && trans_b) run(cmap(A, M, K, stride(lda)), cmap(B, N, K, stride(ldb)).transpose());
    else run(cmap(A, K, M, stride(lda)).transpose(), cmap(B, N, K, stride(ldb)).transpose());
#endif
}

//! out[c * ldo + r] = in[r * ldi + c] for an R x C block (16 x 16 tiles, reads contiguous; full
//! tiles transposed in AVX-512 registers where the kernel runs).
inline void transpose(const float* in, index_t R, index_t C, index_t ldi, float* out, index_t ldo) {
    constexpr index_t B = 16;
#if defined(SHIFTNORM_HAS_AVX512_GEMM)
    const bool fast = avx512_gemm_available();
#endif
    for (index_t r0 = 0; r0 < R; r0 += B)
        for (index_t c0 = 0; c0 < C; c0 += B) {
            const index_t r1 = std::min(R, r0 + B), c1 = std::min(C, c0 + B);
#if defined(SHIFTNORM_HAS_AVX512_GEMM)
            if (fast && r1 - r0 == B && c1 - c0 == B) {
                if (c1 + B <= C)  // the 16 rows' next block (16 streams: more than the hardware follows)
                    for (index_t r = r0; r < r1; ++r)
                        _mm_prefetch(reinterpret_cast<const char*>(in + r * ldi + c1), _MM_HINT_T0);
                transpose16x16_avx512(in + r0 * ldi + c0, ldi, out + c0 * ldo + r0, ldo);
                continue;
            }
#endif
            for (index_t r = r0; r < r1; ++r)
                for (index_t c = c0; c < c1; ++c) out[c * ldo + r] = in[r * ldi + c];
        }
}

//! Whether weight_grad_t runs (the AVX-512 kernel is available and oneDNN is not the backend).
//! Then a convolution accumulates its weight gradient TRANSPOSED, Wt[N x M] (N = in/g*k*k,
//! M = out/g), and transposes once when it sums the per-thread partials.
inline bool weight_grad_transposed() {
#if defined(SHIFTNORM_HAS_AVX512_GEMM) && !defined(SHIFTNORM_USE_DNNL)
    return avx512_gemm_available();
#else
    return false;
#endif
}

//! Wt[N x M] += col[N x P] * dY[M x P]^T (row-major; ldw = M): the transposed weight gradient of
//! one image and group, as col * (dY^T) with dY^T [P x M] written to `scratch` first, so that the
//! AVX-512 kernel (B row-major) runs it: 1.2-1.7x Eigen's dY * col^T on the CIFAR ResNet shapes
//! including the transpose (docs/engine.md). Each Wt element is summed over p in increasing order.
//! Only when weight_grad_transposed().
inline void weight_grad_t(index_t M, index_t N, index_t P, const float* dy, index_t lddy, const float* col,
                          index_t ldcol, float* scratch, float* wt) {
#if defined(SHIFTNORM_HAS_AVX512_GEMM) && !defined(SHIFTNORM_USE_DNNL)
    transpose(dy, M, P, lddy, scratch, M);
    gemm_avx512(false, N, M, P, col, ldcol, scratch, M, true, wt, M);
#else
    (void)M, (void)N, (void)P, (void)dy, (void)lddy, (void)col, (void)ldcol, (void)scratch, (void)wt;
    throw std::logic_error("weight_grad_t: no AVX-512 kernel in this build");
#endif
}

}  // namespace shiftnorm::nn::detail
