// SPDX-License-Identifier: MIT
// fft2_plan: real-input 2-D forward DFT (R2C half spectrum) of any size, mixed radix, no dependency.
#pragma once

#include <complex>
#include <cstddef>
#include <vector>

#include <Eigen/Core>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/spectral/stockham.hpp"

namespace shiftnorm::spectral {

//! Real 2-D forward DFT of an h x w row-major image:
//!   dst[u][v] = sum_{y,x} src[y][x] exp(-2 pi i (u y / h + v x / w)),
//! stored as the half spectrum h x (w/2 + 1) (R2C, like numpy.fft.rfft2 / cuFFT / FFTW r2c);
//! the other half is the Hermitian mirror dst[u][v] = conj(dst[(h-u)%h][w-v]).
//!
//! Schedule (all in float, split re/im planes, every inner loop contiguous and vectorizable):
//!  1. even w: the row pairs (x = 2x', 2x'+1) are packed as one complex value z = src[2x'] +
//!     i src[2x'+1] and transposed to [x'][y] (w/2 complex FFTs of length w/2 then cost the
//!     same as one); odd w: the rows are transposed as complex values with zero imaginary part;
//!  2. a Stockham mixed-radix FFT along x' for all h rows at once (detail::vector_fft);
//!  3. even w: the packed spectra are split into the real rows' spectra
//!     R_v = (Z_k + conj Z_{-k})/2 - i/2 exp(-2 pi i v / w) (Z_k - conj Z_{-k}), v <= w/2,
//!     written transposed to [y][v];
//!  4. a Stockham FFT along y for all w/2+1 columns at once, then interleaved into dst.
//! The transform runs on x - c with c ~ mean(x) (computed in one extra pass) and adds c h w to
//! the DC bin afterwards: exact in real arithmetic, and in float it keeps every bin's error
//! proportional to the spread of x instead of its mean (images are all-positive: the DC
//! would otherwise leak ~1e-7 of itself into every bin, 2e-5 in a log feature of a CIFAR image).
//! Cost O(h w (sum of radices of h + of w/2)); radices 4, 2, 3, 5, 7 have dedicated
//! butterflies, a larger prime factor p costs a naive O(p^2) stage. Twiddles are computed in
//! double and rounded to float once per plan; the error is ~1e-7 * sqrt(log(h w)) relative to
//! the spectrum's L2 norm (measured <= 1e-7 of max |dst| for sizes 1..224;
//! tests/spectral asserts 1e-6).
class fft2_plan {
public:
    //! Precomputes the factorizations and twiddles. Throws shape_error when h < 1, w < 1 or
    //! h * w > 2^31.
    fft2_plan(index_t h, index_t w) : h_(h), w_(w) {
        const char* where = "spectral::fft2_plan";
        if (h < 1) shiftnorm::detail::fail<shape_error>(where, "h", ">= 1", h);
        if (w < 1) shiftnorm::detail::fail<shape_error>(where, "w", ">= 1", w);
        if (h > (index_t(1) << 31) / w)
            shiftnorm::detail::fail<shape_error>(where, "h * w", "<= 2^31", concat(h, " x ", w));
        even_ = w % 2 == 0;
        len_x_ = even_ ? w / 2 : w;
        rows_ = detail::vector_fft(len_x_);
        cols_ = detail::vector_fft(h);
        if (even_) {
            const double two_pi = 6.283185307179586476925286766559;
            post_re_.resize(static_cast<std::size_t>(half_width()));
            post_im_.resize(post_re_.size());
            for (index_t v = 0; v < half_width(); ++v) {
                const double a = -two_pi * static_cast<double>(v) / static_cast<double>(w);
                post_re_[static_cast<std::size_t>(v)] = static_cast<float>(std::cos(a));
                post_im_[static_cast<std::size_t>(v)] = static_cast<float>(std::sin(a));
            }
        }
    }

    index_t height() const { return h_; }
    index_t width() const { return w_; }
    //! w/2 + 1: the columns of the half spectrum.
    index_t half_width() const { return w_ / 2 + 1; }

    //! src: h*w floats (row-major); dst: h*(w/2+1) complex values (row-major). Thread-safe: the
    //! scratch (4 planes of h*max(w, w/2+1) floats) is thread_local, grown on first use.
    void forward(const float* src, std::complex<float>* dst) const {
        const index_t hw = half_width();
        const float* re = nullptr;
        const float* im = nullptr;
        forward_split(src, re, im);
        for (index_t i = 0; i < h_ * hw; ++i) dst[i] = std::complex<float>(re[i], im[i]);
    }

    //! The same transform, leaving the spectrum in split planes (re[u*(w/2+1)+v], im[...]) of
    //! this thread's scratch; valid until the next call on this thread. For fused consumers
    //! (spectral::spectrum) that need no interleaved copy.
    void forward_split(const float* src, const float*& re, const float*& im) const {
        const index_t hw = half_width();
        const std::size_t plane = static_cast<std::size_t>(h_ * (len_x_ > hw ? len_x_ : hw));
        thread_local std::vector<float> scratch;
        if (scratch.size() < 4 * plane) scratch.resize(4 * plane);
        float* ar = scratch.data();
        float* ai = ar + plane;
        float* br = ai + plane;
        float* bi = br + plane;
        const index_t h = h_, w = w_, lx = len_x_;
        // 0. the shift c (~ the mean): F = DFT(x - c) + c h w at [0][0] exactly, and transforming
        //    x - c keeps the rounding error of every bin proportional to the spread of x, not
        //    to its mean (an image of mean 0.5 otherwise leaks ~1e-7 * DC into every bin)
        //    (any c is exact; Eigen's vectorized sum: a serial float loop cost 30% of a 224^2 FFT)
        const float c = Eigen::Map<const Eigen::ArrayXf>(src, h * w).sum() / static_cast<float>(h * w);
        // 1. pack and transpose: [y][x] -> [x'][y]
        if (even_) {
            for (index_t y = 0; y < h; ++y) {
                const float* row = src + y * w;
                for (index_t x = 0; x < lx; ++x) {
                    ar[x * h + y] = row[2 * x] - c;
                    ai[x * h + y] = row[2 * x + 1] - c;
                }
            }
        } else {
            for (index_t y = 0; y < h; ++y) {
                const float* row = src + y * w;
                for (index_t x = 0; x < lx; ++x) {
                    ar[x * h + y] = row[x] - c;
                    ai[x * h + y] = 0.0f;
                }
            }
        }
        // 2. FFT along x for all rows
        const float* zr = ar;
        const float* zi = ai;
        float* gr = br;
        float* gi = bi;
        float* fr = ar;
        float* fi = ai;
        if (rows_.run(ar, ai, br, bi, h)) {
            zr = br;
            zi = bi;
            gr = ar;
            gi = ai;
            fr = br;
            fi = bi;
        }
        // 3. real rows' spectra, transposed to [y][v] into the free pair (g)
        if (even_) {
            for (index_t v = 0; v < hw; ++v) {
                const index_t k = v % lx, k2 = (lx - k) % lx;
                const float twr = 0.5f * post_re_[static_cast<std::size_t>(v)];
                const float twi = 0.5f * post_im_[static_cast<std::size_t>(v)];
                const float* SHIFTNORM_RESTRICT pr = zr + k * h;
                const float* SHIFTNORM_RESTRICT pi = zi + k * h;
                const float* SHIFTNORM_RESTRICT qr = zr + k2 * h;
                const float* SHIFTNORM_RESTRICT qi = zi + k2 * h;
                for (index_t y = 0; y < h; ++y) {
                    // E = (Z_k + conj Z_k2)/2, O = -i/2 (Z_k - conj Z_k2) = ((b+d)/2, (c-a)/2)
                    const float er = 0.5f * (pr[y] + qr[y]), ei = 0.5f * (pi[y] - qi[y]);
                    const float o2r = pi[y] + qi[y], o2i = qr[y] - pr[y];  // 2 O
                    gr[y * hw + v] = er + (o2r * twr - o2i * twi);
                    gi[y * hw + v] = ei + (o2r * twi + o2i * twr);
                }
            }
        } else {
            for (index_t v = 0; v < hw; ++v)
                for (index_t y = 0; y < h; ++y) {
                    gr[y * hw + v] = zr[v * h + y];
                    gi[y * hw + v] = zi[v * h + y];
                }
        }
        // 4. FFT along y for all w/2+1 columns; (f) is free scratch
        float* out_re = gr;
        if (cols_.run(gr, gi, fr, fi, hw)) {
            out_re = fr;
            re = fr;
            im = fi;
        } else {
            re = gr;
            im = gi;
        }
        out_re[0] += static_cast<float>(static_cast<double>(c) * static_cast<double>(h * w));
    }

private:
    index_t h_ = 1, w_ = 1;
    bool even_ = false;
    index_t len_x_ = 1;  //!< length of the FFT along x: w/2 (even w) or w
    detail::vector_fft rows_, cols_;
    std::vector<float> post_re_, post_im_;  //!< exp(-2 pi i v / w), v <= w/2 (even w)
};

}  // namespace shiftnorm::spectral
