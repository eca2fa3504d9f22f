// SPDX-License-Identifier: MIT
// Mixed-radix Stockham FFT of many signals at once ("vector FFT"): the engine of spectral/fft.hpp.
#pragma once

#include <cmath>
#include <utility>
#include <vector>

#include "shiftnorm/config.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/shape.hpp"

//! SHIFTNORM_IVDEP: the loop that follows carries no dependency between iterations (the input
//! and output planes of a Stockham stage never overlap), so the compiler may vectorize it
//! without run-time alias checks.
//! SHIFTNORM_UNROLL_SMALL: fully unroll the short constant loop that follows (the butterfly
//! of a small odd radix), so that its temporaries stay in registers.
#if !defined(SHIFTNORM_IVDEP)
#if defined(__CUDACC__)
#define SHIFTNORM_IVDEP
#define SHIFTNORM_UNROLL_SMALL
#elif defined(__clang__)
#define SHIFTNORM_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#define SHIFTNORM_UNROLL_SMALL _Pragma("unroll")
#elif defined(__GNUC__)
#define SHIFTNORM_IVDEP _Pragma("GCC ivdep")
#define SHIFTNORM_UNROLL_SMALL _Pragma("GCC unroll 8")
#else
#define SHIFTNORM_IVDEP
#define SHIFTNORM_UNROLL_SMALL
#endif
#endif

namespace shiftnorm::spectral::detail {

//! Radices of n in the order the stages use them: 4s (then one 2), then 3, 5, 7, then the
//! remaining prime factors ascending (each such prime is one naive O(p^2) stage). n >= 1;
//! n = 1 has no stage.
inline std::vector<index_t> factorize(index_t n) {
    std::vector<index_t> radices;
    while (n % 4 == 0) { radices.push_back(4); n /= 4; }
    if (n % 2 == 0) { radices.push_back(2); n /= 2; }
    for (index_t p = 3; p * p <= n; p += 2)
        while (n % p == 0) { radices.push_back(p); n /= p; }
    if (n > 1) radices.push_back(n);
    return radices;
}

//! One decimation-in-frequency Stockham stage of a length-n DFT. Before the stage the data hold
//! `s` interleaved sub-problems of length n_s = n / s (element p of sub-problem q at vector
//! q + s * p); the stage splits each into `radix` sub-problems of length m = n_s / radix.
struct fft_stage {
    index_t radix = 1;
    index_t m = 1;
    index_t s = 1;
    std::vector<float> tw_re, tw_im;  //!< m x (radix - 1): exp(-2 pi i p k / n_s), row p, column k - 1
    std::vector<float> cs, sn;        //!< radix values: cos / sin(2 pi j / radix)
};

//! The butterflies of one stage. Element e of vector v is at [v * batch + e]; `len` = s * batch
//! values of one sub-problem row are contiguous, which is the vectorized inner loop.
template <int R>
void stage_small(const fft_stage& st, const float* xr, const float* xi, float* yr, float* yi, index_t len);

//! Radix 2: y0 = a0 + a1, y1 = (a0 - a1) w.
template <>
inline void stage_small<2>(const fft_stage& st, const float* xr, const float* xi, float* yr, float* yi, index_t len) {
    const index_t m = st.m;
    for (index_t p = 0; p < m; ++p) {
        const float wr = st.tw_re[p], wi = st.tw_im[p];
        const float* SHIFTNORM_RESTRICT a0r = xr + p * len;
        const float* SHIFTNORM_RESTRICT a0i = xi + p * len;
        const float* SHIFTNORM_RESTRICT a1r = xr + (p + m) * len;
        const float* SHIFTNORM_RESTRICT a1i = xi + (p + m) * len;
        float* SHIFTNORM_RESTRICT b0r = yr + 2 * p * len;
        float* SHIFTNORM_RESTRICT b0i = yi + 2 * p * len;
        float* SHIFTNORM_RESTRICT b1r = b0r + len;
        float* SHIFTNORM_RESTRICT b1i = b0i + len;
        SHIFTNORM_IVDEP
        for (index_t q = 0; q < len; ++q) {
            const float dr = a0r[q] - a1r[q], di = a0i[q] - a1i[q];
            b0r[q] = a0r[q] + a1r[q];
            b0i[q] = a0i[q] + a1i[q];
            b1r[q] = dr * wr - di * wi;
            b1i[q] = dr * wi + di * wr;
        }
    }
}

//! Radix 4: X_k = sum_t a_t (-i)^{t k}, then X_k *= w_k.
template <>
inline void stage_small<4>(const fft_stage& st, const float* xr, const float* xi, float* yr, float* yi, index_t len) {
    const index_t m = st.m;
    for (index_t p = 0; p < m; ++p) {
        const float w1r = st.tw_re[3 * p], w1i = st.tw_im[3 * p];
        const float w2r = st.tw_re[3 * p + 1], w2i = st.tw_im[3 * p + 1];
        const float w3r = st.tw_re[3 * p + 2], w3i = st.tw_im[3 * p + 2];
        const float* SHIFTNORM_RESTRICT a0r = xr + p * len;
        const float* SHIFTNORM_RESTRICT a0i = xi + p * len;
        const float* SHIFTNORM_RESTRICT a1r = xr + (p + m) * len;
        const float* SHIFTNORM_RESTRICT a1i = xi + (p + m) * len;
        const float* SHIFTNORM_RESTRICT a2r = xr + (p + 2 * m) * len;
        const float* SHIFTNORM_RESTRICT a2i = xi + (p + 2 * m) * len;
        const float* SHIFTNORM_RESTRICT a3r = xr + (p + 3 * m) * len;
        const float* SHIFTNORM_RESTRICT a3i = xi + (p + 3 * m) * len;
        float* SHIFTNORM_RESTRICT b0r = yr + 4 * p * len;
        float* SHIFTNORM_RESTRICT b0i = yi + 4 * p * len;
        float* SHIFTNORM_RESTRICT b1r = b0r + len;
        float* SHIFTNORM_RESTRICT b1i = b0i + len;
        float* SHIFTNORM_RESTRICT b2r = b1r + len;
        float* SHIFTNORM_RESTRICT b2i = b1i + len;
        float* SHIFTNORM_RESTRICT b3r = b2r + len;
        float* SHIFTNORM_RESTRICT b3i = b2i + len;
        SHIFTNORM_IVDEP
        for (index_t q = 0; q < len; ++q) {
            const float t0r = a0r[q] + a2r[q], t0i = a0i[q] + a2i[q];
            const float t1r = a0r[q] - a2r[q], t1i = a0i[q] - a2i[q];
            const float t2r = a1r[q] + a3r[q], t2i = a1i[q] + a3i[q];
            const float t3r = a1i[q] - a3i[q], t3i = a3r[q] - a1r[q];  // (a1 - a3) * (-i)
            const float x1r = t1r + t3r, x1i = t1i + t3i;
            const float x2r = t0r - t2r, x2i = t0i - t2i;
            const float x3r = t1r - t3r, x3i = t1i - t3i;
            b0r[q] = t0r + t2r;
            b0i[q] = t0i + t2i;
            b1r[q] = x1r * w1r - x1i * w1i;
            b1i[q] = x1r * w1i + x1i * w1r;
            b2r[q] = x2r * w2r - x2i * w2i;
            b2i[q] = x2r * w2i + x2i * w2r;
            b3r[q] = x3r * w3r - x3i * w3i;
            b3i[q] = x3r * w3i + x3i * w3r;
        }
    }
}

//! Odd radix R (3, 5, 7): pairs t, R - t share cos / sin; X_k = e_k - i r_k, X_{R-k} = e_k + i r_k
//! with e_k = a_0 + sum_t (a_t + a_{R-t}) cos(2 pi t k / R), r_k = sum_t (a_t - a_{R-t}) sin(...).
template <int R>
void stage_small(const fft_stage& st, const float* xr, const float* xi, float* yr, float* yi, index_t len) {
    static_assert(R % 2 == 1 && R >= 3, "stage_small<R>: R is 2, 4 or an odd radix");
    constexpr int H = (R - 1) / 2;
    float c[R], s[R];
    for (int j = 0; j < R; ++j) {
        c[j] = st.cs[j];
        s[j] = st.sn[j];
    }
    const index_t m = st.m;
    for (index_t p = 0; p < m; ++p) {
        float wr[R], wi[R];
        wr[0] = 1.0f;
        wi[0] = 0.0f;
        for (int k = 1; k < R; ++k) {
            wr[k] = st.tw_re[p * (R - 1) + k - 1];
            wi[k] = st.tw_im[p * (R - 1) + k - 1];
        }
        const float* ar[R];
        const float* ai[R];
        float* br[R];
        float* bi[R];
        for (int t = 0; t < R; ++t) {
            ar[t] = xr + (p + t * m) * len;
            ai[t] = xi + (p + t * m) * len;
            br[t] = yr + (R * p + t) * len;
            bi[t] = yi + (R * p + t) * len;
        }
        SHIFTNORM_IVDEP
        for (index_t q = 0; q < len; ++q) {
            const float x0r = ar[0][q], x0i = ai[0][q];
            float spr[H + 1], spi[H + 1], smr[H + 1], smi[H + 1];
            float sumr = x0r, sumi = x0i;
SHIFTNORM_UNROLL_SMALL
            for (int t = 1; t <= H; ++t) {
                spr[t] = ar[t][q] + ar[R - t][q];
                spi[t] = ai[t][q] + ai[R - t][q];
                smr[t] = ar[t][q] - ar[R - t][q];
                smi[t] = ai[t][q] - ai[R - t][q];
                sumr += spr[t];
                sumi += spi[t];
            }
            br[0][q] = sumr;
            bi[0][q] = sumi;
SHIFTNORM_UNROLL_SMALL
            for (int k = 1; k <= H; ++k) {
                float er = x0r, ei = x0i, rr = 0.0f, ri = 0.0f;
SHIFTNORM_UNROLL_SMALL
                for (int t = 1; t <= H; ++t) {
                    const int j = (t * k) % R;
                    er += spr[t] * c[j];
                    ei += spi[t] * c[j];
                    rr += smr[t] * s[j];
                    ri += smi[t] * s[j];
                }
                const float ukr = er + ri, uki = ei - rr;  // X_k
                const float vkr = er - ri, vki = ei + rr;  // X_{R-k}
                br[k][q] = ukr * wr[k] - uki * wi[k];
                bi[k][q] = ukr * wi[k] + uki * wr[k];
                br[R - k][q] = vkr * wr[R - k] - vki * wi[R - k];
                bi[R - k][q] = vkr * wi[R - k] + vki * wr[R - k];
            }
        }
    }
}

//! Any radix r (a prime factor > 7): the naive O(r^2) DFT per butterfly.
inline void stage_generic(const fft_stage& st, const float* xr, const float* xi, float* yr, float* yi, index_t len) {
    const index_t r = st.radix, m = st.m;
    for (index_t p = 0; p < m; ++p) {
        for (index_t k = 0; k < r; ++k) {
            float* SHIFTNORM_RESTRICT br = yr + (r * p + k) * len;
            float* SHIFTNORM_RESTRICT bi = yi + (r * p + k) * len;
            for (index_t q = 0; q < len; ++q) {
                br[q] = 0.0f;
                bi[q] = 0.0f;
            }
            index_t j = 0;  // (t * k) mod r
            for (index_t t = 0; t < r; ++t) {
                const float c = st.cs[j], s = st.sn[j];
                const float* SHIFTNORM_RESTRICT ar = xr + (p + t * m) * len;
                const float* SHIFTNORM_RESTRICT ai = xi + (p + t * m) * len;
                SHIFTNORM_IVDEP
                for (index_t q = 0; q < len; ++q) {  // a (c - i s)
                    br[q] += ar[q] * c + ai[q] * s;
                    bi[q] += ai[q] * c - ar[q] * s;
                }
                j += k;
                if (j >= r) j -= r;
            }
            if (k == 0) continue;
            const float wr = st.tw_re[p * (r - 1) + k - 1], wi = st.tw_im[p * (r - 1) + k - 1];
            SHIFTNORM_IVDEP
            for (index_t q = 0; q < len; ++q) {
                const float ur = br[q], ui = bi[q];
                br[q] = ur * wr - ui * wi;
                bi[q] = ur * wi + ui * wr;
            }
        }
    }
}

//! Forward complex DFT (sign -1, unnormalized) of length n applied to `batch` signals at once,
//! stored "as vectors" in split planes: element j of signal e is re[j * batch + e], im[...].
//! Twiddles are computed in double and rounded to float once, at construction.
class vector_fft {
public:
    vector_fft() = default;
    explicit vector_fft(index_t n) : n_(n) {
        if (n < 1) shiftnorm::detail::fail<shape_error>("spectral::vector_fft", "n", ">= 1", n);
        const double two_pi = 6.283185307179586476925286766559;
        index_t s = 1, ns = n;
        for (index_t r : factorize(n)) {
            fft_stage st;
            st.radix = r;
            st.m = ns / r;
            st.s = s;
            st.tw_re.resize(static_cast<std::size_t>(st.m * (r - 1)));
            st.tw_im.resize(st.tw_re.size());
            for (index_t p = 0; p < st.m; ++p)
                for (index_t k = 1; k < r; ++k) {
                    const double a = -two_pi * static_cast<double>((p * k) % ns) / static_cast<double>(ns);
                    st.tw_re[static_cast<std::size_t>(p * (r - 1) + k - 1)] = static_cast<float>(std::cos(a));
                    st.tw_im[static_cast<std::size_t>(p * (r - 1) + k - 1)] = static_cast<float>(std::sin(a));
                }
            st.cs.resize(static_cast<std::size_t>(r));
            st.sn.resize(static_cast<std::size_t>(r));
            for (index_t j = 0; j < r; ++j) {
                const double a = two_pi * static_cast<double>(j) / static_cast<double>(r);
                st.cs[static_cast<std::size_t>(j)] = static_cast<float>(std::cos(a));
                st.sn[static_cast<std::size_t>(j)] = static_cast<float>(std::sin(a));
            }
            stages_.push_back(std::move(st));
            s *= r;
            ns /= r;
        }
    }

    index_t size() const { return n_; }
    const std::vector<fft_stage>& stages() const { return stages_; }

    //! Transforms (xr, xi) (n * batch floats each) using (yr, yi) as the other half of the
    //! ping-pong; both pairs are overwritten. Returns true when the result ended in (yr, yi),
    //! false when in (xr, xi) (even number of stages, n = 1 included). O(n batch sum(radices)).
    bool run(float* xr, float* xi, float* yr, float* yi, index_t batch) const {
        for (const fft_stage& st : stages_) {
            const index_t len = st.s * batch;
            switch (st.radix) {
                case 2: stage_small<2>(st, xr, xi, yr, yi, len); break;
                case 3: stage_small<3>(st, xr, xi, yr, yi, len); break;
                case 4: stage_small<4>(st, xr, xi, yr, yi, len); break;
                case 5: stage_small<5>(st, xr, xi, yr, yi, len); break;
                case 7: stage_small<7>(st, xr, xi, yr, yi, len); break;
                default: stage_generic(st, xr, xi, yr, yi, len); break;
            }
            std::swap(xr, yr);
            std::swap(xi, yi);
        }
        return stages_.size() % 2 == 1;
    }

private:
    index_t n_ = 1;
    std::vector<fft_stage> stages_;
};

}  // namespace shiftnorm::spectral::detail
