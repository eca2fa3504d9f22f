// SPDX-License-Identifier: MIT
// The input gradient of a stride-2 convolution (3x3 with padding 1, or 1x1 without) on even
// planes as four stride-1 convolutions of diff_dst, one per phase of the input gradient: no
// column matrix, no col2im, no zeroing; every input-gradient value is written once.
#pragma once

#include <algorithm>
#include <array>
#include <stdexcept>
#include <vector>

#include "shiftnorm/nn/conv_shifted.hpp"
#include "shiftnorm/nn/gemm.hpp"
#include "shiftnorm/nn/im2col.hpp"

namespace shiftnorm::nn::detail {

//! Phase (a, b) of an input gradient dx (H x W, both even) holds dx[2i + a][2j + b]. With
//! y[o] = sum_k w[k] x[2o + k - p] in each dimension, x[2i + a] receives tap k from y[i + d] with
//! d = (a + p - k) / 2 (k - p - a even): for 3x3 / padding 1 phase 0 takes tap 1 at d = 0, phase 1
//! taps 0 (d = 1) and 2 (d = 0); for 1x1 / padding 0 phase 0 takes tap 0 at d = 0 and phase 1 none.
//! So phase (a, b) is a stride-1 convolution of diff_dst with a kernel of at most 2 x 2 taps
//! reaching down and right only: for 3x3, diff_dst's planes padded by one zero row and column,
//! read as shifted windows (nn/conv_shifted.hpp) of Wp = OW + 1 wide rows, OH * Wp "wide"
//! columns each (the last of each row garbage); for 1x1, diff_dst's own planes (Wp = OW).
struct phase_geometry {
    index_t O = 0, C = 0, OH = 0, OW = 0, k = 0, Wp = 0, plane = 0, cols = 0;
    //! Per phase (2a + b): the kernel taps (ki, kj) and the b_rows offset of each GEMM row, rows
    //! ordered (output channel o, tap) with the taps in increasing (ki, kj).
    std::array<std::vector<std::array<index_t, 2>>, 4> taps;
    std::array<std::vector<index_t>, 4> off;
    index_t rows(int ph) const { return O * index_t(taps[std::size_t(ph)].size()); }
    //! Whether the GEMMs read a padded copy of diff_dst (3x3) or diff_dst itself (1x1).
    bool padded() const { return k == 3; }
    //! Floats of the padded diff_dst buffer: the planes plus slack that only garbage columns and
    //! full-vector loads read (none for 1x1).
    index_t pad_size() const { return padded() ? O * plane + Wp + 16 : 0; }
    //! Floats of the four phases' wide GEMM outputs (C x cols each) plus slack for vector loads.
    index_t wide_size() const { return 4 * C * cols + 16; }
};

//! Whether the input gradient of window g (O planes of diff_dst into C input planes) runs on the
//! phases: 3x3 / padding 1 or 1x1 / padding 0, stride 2, dilation 1, an even input plane
//! (OH = H / 2, OW = W / 2) and the AVX-512 kernel.
inline bool use_phase_dgrad(const window2d& g, index_t H, index_t W, index_t OH, index_t OW) {
    const bool k3 = g.kh == 3 && g.kw == 3 && g.ph == 1 && g.pw == 1;
    const bool k1 = g.kh == 1 && g.kw == 1 && g.ph == 0 && g.pw == 0;
    return (k3 || k1) && g.sh == 2 && g.sw == 2 && g.dh == 1 && g.dw == 1 && H > 0 && W > 0 && H % 2 == 0 &&
           W % 2 == 0 && OH * 2 == H && OW * 2 == W && weight_grad_transposed();
}

inline phase_geometry make_phase_geometry(index_t O, index_t C, index_t OH, index_t OW, const window2d& g) {
    phase_geometry s;
    const index_t pad = g.kh == 3 ? 1 : 0;
    s.O = O, s.C = C, s.OH = OH, s.OW = OW, s.k = g.kh, s.Wp = OW + pad, s.plane = (OH + pad) * s.Wp;
    s.cols = OH * s.Wp;
    const index_t p = g.ph;
    for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b) {
            auto& taps = s.taps[std::size_t(2 * a + b)];
            for (index_t ki = 0; ki < s.k; ++ki)
                for (index_t kj = 0; kj < s.k; ++kj)
                    if ((ki - p - a) % 2 == 0 && (kj - p - b) % 2 == 0) taps.push_back({ki, kj});
            auto& off = s.off[std::size_t(2 * a + b)];
            off.clear();
            for (index_t o = 0; o < O; ++o)
                for (const auto& t : taps) {
                    const index_t di = (a + p - t[0]) / 2, dj = (b + p - t[1]) / 2;  // 0 or 1
                    off.push_back(o * s.plane + di * s.Wp + dj);
                }
        }
    return s;
}

//! wp = the four phases' GEMM weights of each group, phase after phase: for phase ph a C x rows(ph)
//! matrix, row c, column (o, tap) = w[g*O + o][c][ki][kj] (w: G*O x C x k x k).
inline void phase_weights(const float* w, index_t G, const phase_geometry& s, std::vector<float>& wp) {
    const index_t kk = s.k * s.k;
    wp.resize(std::size_t(G * s.C * s.O * kk));
    float* out = wp.data();
    for (index_t g = 0; g < G; ++g)
        for (int ph = 0; ph < 4; ++ph) {
            const auto& taps = s.taps[std::size_t(ph)];
            const index_t nt = index_t(taps.size()), K = s.rows(ph);
            for (index_t c = 0; c < s.C; ++c)
                for (index_t o = 0; o < s.O; ++o)
                    for (index_t t = 0; t < nt; ++t)
                        out[c * K + o * nt + t] =
                            w[((g * s.O + o) * s.C + c) * kk + taps[std::size_t(t)][0] * s.k + taps[std::size_t(t)][1]];
            out += s.C * K;
        }
}

//! Copies diff_dst's O planes (OH x OW) into the top-left of dpad's (OH + 1) x Wp planes (3x3):
//! conv_shifted.hpp's copy_planes with no leading border; the last row and column (zeros) and the
//! slack are left as they are (zeroed once by the caller).
inline void phase_copy_planes(const float* dy, const phase_geometry& s, float* dpad) {
    shifted_geometry g;
    g.C = s.O, g.H = s.OH, g.W = s.OW, g.Hp = s.plane / s.Wp, g.Wp = s.Wp, g.plane = s.plane;
    copy_planes(dy, g, dpad);
}

#if defined(SHIFTNORM_HAS_AVX512_GEMM)
//! row[2j] = e[j], row[2j + 1] = o[j] (o null: 0) for j < n: two masked loads of 16 and two
//! lane permutes per 32 outputs.
__attribute__((target("avx512f"))) inline void phase_interleave_row(const float* e, const float* o, index_t n,
                                                                   float* row) {
    const __m512i lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (index_t j = 0; j < n; j += 16) {
        const index_t m = std::min<index_t>(16, n - j), out = 2 * m;
        const __mmask16 in = __mmask16((1u << m) - 1u);
        const __m512 ev = _mm512_maskz_loadu_ps(in, e + j);
        const __m512 ov = o ? _mm512_maskz_loadu_ps(in, o + j) : _mm512_setzero_ps();
        _mm512_mask_storeu_ps(row + 2 * j, __mmask16((1u << std::min<index_t>(out, 16)) - 1u),
                              _mm512_permutex2var_ps(ev, lo, ov));
        if (out > 16)
            _mm512_mask_storeu_ps(row + 2 * j + 16, __mmask16((1u << (out - 16)) - 1u),
                                  _mm512_permutex2var_ps(ev, hi, ov));
    }
}

//! dx (C x 2OH x 2OW) = the input gradient of one image and group from its diff_dst planes in
//! dpad (3x3: phase_copy_planes; 1x1: diff_dst itself) and the group's phase weights wp
//! (phase_weights): one GEMM per phase
//! into `wide` (wide_size floats), then each dx row interleaved from two phases' rows. Each value
//! is a sum over (o, tap) in that order with FMAs: the same for any batch and thread count.
inline void phase_input_grad(const phase_geometry& s, const float* wp, const float* dpad, float* wide, float* dx) {
    const float* wph = wp;
    for (int ph = 0; ph < 4; ++ph) {
        const index_t K = s.rows(ph);
        if (K > 0)
            gemm_avx512_op(s.C, s.cols, K, a_strided{wph, K, 1}, b_rows{dpad, s.off[std::size_t(ph)].data()}, false,
                           wide + ph * s.C * s.cols, s.cols);
        wph += s.C * K;
    }
    const index_t H = 2 * s.OH, W = 2 * s.OW;
    for (index_t c = 0; c < s.C; ++c)
        for (index_t i = 0; i < s.OH; ++i)
            for (int a = 0; a < 2; ++a) {
                float* row = dx + (c * H + 2 * i + a) * W;
                const float* e = wide + (2 * a * s.C + c) * s.cols + i * s.Wp;
                const float* o = wide + ((2 * a + 1) * s.C + c) * s.cols + i * s.Wp;
                if (s.rows(2 * a) > 0)
                    phase_interleave_row(e, s.rows(2 * a + 1) > 0 ? o : nullptr, s.OW, row);
                else
                    std::fill(row, row + W, 0.0f);  // 1x1: phases (1, 0) and (1, 1) receive nothing
            }
}
#else
inline void phase_input_grad(const phase_geometry&, const float*, const float*, float*, float*) {
    throw std::logic_error("phase_input_grad: no AVX-512 kernel in this build");
}
#endif

}  // namespace shiftnorm::nn::detail
