// SPDX-License-Identifier: MIT
// Implicit im2col for "same" stride-1 convolutions: the GEMM reads shifted windows of zero-padded
// planes instead of a k*k-times larger column matrix (the forward and the weight gradient).
#pragma once

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "shiftnorm/nn/gemm.hpp"
#include "shiftnorm/nn/im2col.hpp"

namespace shiftnorm::nn::detail {

//! Padded-plane geometry of one image's C channels for a same/stride-1 window (kernel 2p+1):
//! each channel becomes an Hp x Wp plane (Hp = H + 2ph, Wp = W + 2pw) with zero borders. Output
//! pixel (h, w) is computed at "wide" column h*Wp + w of `cols` = H*Wp columns; the Wp - W
//! columns past each output row are garbage (computed, then dropped). The im2col row of tap (i, j)
//! of channel c is then the contiguous window starting at c*plane + i*Wp + j: every product of the
//! real columns is the same as with the materialized im2col, padding zeros included.
struct shifted_geometry {
    index_t C = 0, H = 0, W = 0, kh = 1, kw = 1, ph = 0, pw = 0, Hp = 0, Wp = 0, plane = 0, cols = 0;
    //! Floats of the padded buffer: the planes plus slack read only by garbage columns (and the
    //! unmasked loads of the kernel's full vectors) past the last plane.
    index_t buffer_size() const { return C * plane + kw + 16; }
};

inline shifted_geometry make_shifted(index_t C, index_t H, index_t W, const window2d& g) {
    shifted_geometry s;
    s.C = C, s.H = H, s.W = W, s.kh = g.kh, s.kw = g.kw, s.ph = g.ph, s.pw = g.pw;
    s.Hp = H + 2 * g.ph, s.Wp = W + 2 * g.pw, s.plane = s.Hp * s.Wp, s.cols = H * s.Wp;
    return s;
}

//! Whether a convolution runs on the shifted windows: a same/stride-1/dilation-1 window larger
//! than 1x1, and the AVX-512 kernel (with its transposed weight gradient) is in use.
inline bool use_shifted(const window2d& g, index_t H, index_t W, index_t OH, index_t OW) {
    return weight_grad_transposed() && same_stride1(g, H, W, OH, OW) && !g.identity_1x1();
}

//! Narrowest plane whose weight gradient runs on the shifted windows: below it the Wp - W garbage
//! columns (25 % at 8x8) cost more than the im2col they save (bench_conv_wgrad: 0.93-0.94x at 8x8
//! and 7x7, 1.03-1.17x from 14x14 up).
constexpr index_t shifted_wgrad_min_width = 12;

//! wf[g][c][(o*kh + i)*kw + j] = w[g*O + o][c][kh-1-i][kw-1-j] for O = Og outputs and C = Cg inputs
//! per group: the weights of the input gradient of a same/stride-1 convolution written as a
//! forward convolution of diff_dst (Cg x Og*kh*kw per group).
inline void flip_transpose_weights(const float* w, index_t G, index_t Og, index_t Cg, index_t kh, index_t kw,
                                   float* wf) {
    const index_t kk = kh * kw;
    for (index_t g = 0; g < G; ++g)
        for (index_t o = 0; o < Og; ++o)
            for (index_t c = 0; c < Cg; ++c)
                for (index_t i = 0; i < kh; ++i)
                    for (index_t j = 0; j < kw; ++j)
                        wf[g * Og * Cg * kk + c * Og * kk + o * kk + i * kw + j] =
                            w[((g * Og + o) * Cg + c) * kk + (kh - 1 - i) * kw + (kw - 1 - j)];
}

//! off[(c*kh + i)*kw + j] = c*plane + i*Wp + j: where each implicit im2col row starts.
inline void shifted_offsets(const shifted_geometry& s, std::vector<index_t>& off) {
    off.resize(std::size_t(s.C * s.kh * s.kw));
    for (index_t c = 0; c < s.C; ++c)
        for (index_t i = 0; i < s.kh; ++i)
            for (index_t j = 0; j < s.kw; ++j) off[std::size_t((c * s.kh + i) * s.kw + j)] = c * s.plane + i * s.Wp + j;
}

//! Copies the C planes of x (C x H x W) into the interiors of xpad's planes; borders and slack are
//! left as they are (a layer zeroes its buffers once per geometry, then copies only interiors).
inline void copy_planes(const float* x, const shifted_geometry& s, float* xpad) {
    for (index_t c = 0; c < s.C; ++c) {
        float* p = xpad + c * s.plane + s.ph * s.Wp + s.pw;
        const float* xc = x + c * s.H * s.W;
        for (index_t h = 0; h < s.H; ++h)  // memcpy: GCC left the short rows' loop scalar
            std::memcpy(p + h * s.Wp, xc + h * s.W, std::size_t(s.W) * sizeof(float));
    }
}

//! xpad = the C planes of x (C x H x W) with zero borders, slack zeroed.
inline void pad_planes(const float* x, const shifted_geometry& s, float* xpad) {
    std::fill(xpad, xpad + s.buffer_size(), 0.0f);
    copy_planes(x, s, xpad);
}

#if defined(SHIFTNORM_HAS_AVX512_GEMM)
//! y[M x H*W] = w[M x K] * im2col(x): the GEMM over the shifted windows of xpad into `wide`
//! [M x cols], then the real columns copied out. Same products in the same order as the GEMM on
//! the materialized im2col (bit-identical). Only when use_shifted().
inline void conv_forward_shifted(index_t M, index_t K, const float* w, const float* xpad, const index_t* off,
                                 const shifted_geometry& s, float* wide, float* y) {
    gemm_avx512_op(M, s.cols, K, a_strided{w, K, 1}, b_rows{xpad, off}, false, wide, s.cols);
    const index_t P = s.H * s.W;
    for (index_t m = 0; m < M; ++m)
        for (index_t h = 0; h < s.H; ++h) {
            const float* src = wide + m * s.cols + h * s.Wp;
            float* dst = y + m * P + h * s.W;
            for (index_t x = 0; x < s.W; ++x) dst[x] = src[x];
        }
}

//! wt[K x M] += im2col(x)[K x P] * dy[M x P]^T: the transposed weight gradient of one image and
//! group (as weight_grad_t) with the im2col rows read from xpad. dy^T is written to `dyt`
//! [cols x M] with zero rows at the garbage columns (written here unless `garbage_rows_zeroed`:
//! the caller keeps them zero), so they add 0 * x: each wt element is the
//! same sum over the real columns in increasing order as weight_grad_t's (bit-identical unless
//! the input holds Inf/NaN, where 0 * Inf poisons what a materialized im2col would skip).
inline void weight_grad_shifted(index_t M, index_t K, const float* dy, const float* xpad, const index_t* off,
                                const shifted_geometry& s, float* dyt, float* wt, bool garbage_rows_zeroed = false) {
    const index_t P = s.H * s.W;
    for (index_t h = 0; h < s.H; ++h) {
        transpose(dy + h * s.W, M, s.W, P, dyt + h * s.Wp * M, M);
        if (!garbage_rows_zeroed) std::fill(dyt + (h * s.Wp + s.W) * M, dyt + (h + 1) * s.Wp * M, 0.0f);
    }
    gemm_avx512_op(K, M, s.cols, a_rows{xpad, off}, b_strided{dyt, M}, true, wt, M);
}
#else
inline void conv_forward_shifted(index_t, index_t, const float*, const float*, const index_t*,
                                 const shifted_geometry&, float*, float*) {
    throw std::logic_error("conv_forward_shifted: no AVX-512 kernel in this build");
}
inline void weight_grad_shifted(index_t, index_t, const float*, const float*, const index_t*,
                                const shifted_geometry&, float*, float*, bool = false) {
    throw std::logic_error("weight_grad_shifted: no AVX-512 kernel in this build");
}
#endif

}  // namespace shiftnorm::nn::detail
