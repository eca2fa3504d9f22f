// SPDX-License-Identifier: MIT
// The project's one random family: splitmix64 seeding and xoshiro256** with portable distributions.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__CUDACC__)
#include <immintrin.h>
#endif

// Under Clang, no contraction of a multiply and an add into an FMA in this header (its default
// fuses within an expression where the target has FMA: uniform(lo, hi), normal(loc, scale));
// GCC's functions carry optimize("fp-contract=off"). The including code's setting is restored.
#if defined(__clang__)
#pragma float_control(push)
#pragma clang fp contract(off)
#endif

namespace shiftnorm {

//! One step of splitmix64 (Steele, Lea, Flood 2014): a bijective 64-bit mixer. Used to derive
//! independent per-image seeds from (user seed, corruption, severity, image index), so that the
//! random stream of image i never depends on which thread or in which order it is processed.
inline std::uint64_t splitmix64(std::uint64_t& state) {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

//! Mixes any number of 64-bit words into one seed (order-sensitive).
template <class... Ws>
std::uint64_t mix_seed(std::uint64_t seed, Ws... words) {
    std::uint64_t s = seed;
    std::uint64_t out = splitmix64(s);
    ((s ^= static_cast<std::uint64_t>(words) * 0xD1B54A32D192ED03ull + out, out = splitmix64(s)), ...);
    return out;
}

namespace detail {
//! f[q] = sqrt(-2 f[q] / s[q]) for q < n (the polar method's factor from ln s). Division and sqrt
//! are correctly rounded, so the SSE2 and AVX-512 loops give the bits of the scalar expression;
//! intrinsics, because GCC keeps std::sqrt scalar (errno) without -fno-math-errno.
inline void polar_factors_scalar(double* f, const double* s, std::size_t n) {
    for (std::size_t q = 0; q < n; ++q) f[q] = std::sqrt(-2.0 * f[q] / s[q]);
}
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__CUDACC__)
inline void polar_factors_sse2(double* f, const double* s, std::size_t n) {
    const __m128d m2 = _mm_set1_pd(-2.0);
    std::size_t q = 0;
    for (; q + 2 <= n; q += 2)
        _mm_storeu_pd(f + q, _mm_sqrt_pd(_mm_div_pd(_mm_mul_pd(m2, _mm_loadu_pd(f + q)), _mm_loadu_pd(s + q))));
    polar_factors_scalar(f + q, s + q, n - q);
}
// GCC 12 reports _mm512_sqrt_pd's undefined pass-through operand as uninitialized under -Wall
#if !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
__attribute__((target("avx512f"))) inline void polar_factors_avx512(double* f, const double* s, std::size_t n) {
    const __m512d m2 = _mm512_set1_pd(-2.0);
    std::size_t q = 0;
    for (; q + 8 <= n; q += 8)
        _mm512_storeu_pd(f + q, _mm512_sqrt_pd(_mm512_div_pd(_mm512_mul_pd(m2, _mm512_loadu_pd(f + q)),
                                                             _mm512_loadu_pd(s + q))));
    polar_factors_scalar(f + q, s + q, n - q);
}
#if !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif
inline void polar_factors(double* f, const double* s, std::size_t n) {
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__CUDACC__)
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    if (avx512) return polar_factors_avx512(f, s, n);
    return polar_factors_sse2(f, s, n);
#else
    polar_factors_scalar(f, s, n);
#endif
}
}  // namespace detail

//! xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64, with the distributions the
//! corruption code and the samplers need. Every draw is a pure function of the seed and the
//! number of previous draws: same seed, same numbers, on every platform with IEEE double and a
//! correct libm (unlike std::uniform_int_distribution & co., whose output is
//! implementation-defined and differs between standard libraries).
class random_engine {
public:
    explicit random_engine(std::uint64_t seed = 0) {
        std::uint64_t s = seed;
        for (auto& w : s_) w = splitmix64(s);
    }

    //! Next raw 64-bit word.
    std::uint64_t next() {
        const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    //! Uniform double in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    //! Uniform double in [lo, hi): lo + (hi - lo) u rounded as written (NumPy's order), never
    //! contracted into an FMA, so a -march=native build draws the same values as a portable one.
#if defined(__GNUC__) && !defined(__clang__)
    __attribute__((optimize("fp-contract=off")))
#endif
    double uniform(double lo, double hi) {
        return lo + (hi - lo) * uniform();
    }

    //! Uniform integer in [lo, hi) (numpy randint convention: hi exclusive). Requires lo < hi.
    std::int64_t randint(std::int64_t lo, std::int64_t hi) {
        const std::uint64_t range = static_cast<std::uint64_t>(hi - lo);
        // Lemire's nearly-divisionless method with rejection: exact uniformity.
        __uint128_t m = static_cast<__uint128_t>(next()) * range;
        std::uint64_t low = static_cast<std::uint64_t>(m);
        if (low < range) {
            const std::uint64_t thresh = (0 - range) % range;
            while (low < thresh) {
                m = static_cast<__uint128_t>(next()) * range;
                low = static_cast<std::uint64_t>(m);
            }
        }
        return lo + static_cast<std::int64_t>(m >> 64);
    }

    //! Standard normal draw (Marsaglia polar method; the spare value is cached).
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u, v, s;
        do {
            u = 2.0 * uniform() - 1.0;
            v = 2.0 * uniform() - 1.0;
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        const double f = std::sqrt(-2.0 * std::log(s) / s);
        spare_ = v * f;
        has_spare_ = true;
        return u * f;
    }
    //! Normal draw with mean `loc` and standard deviation `scale`.
    double normal(double loc, double scale) { return loc + scale * normal(); }

    //! out[i] = normal(loc, scale) for i in [0, n): the same values, and the same state afterwards
    //! (the draws consumed, the spare value cached when n takes half a pair), as n calls, faster.
    //! Blocks of polar-method attempts: the uniforms drawn in one loop, s = u^2 + v^2 for every
    //! attempt (vectorizable), the accepted attempts listed without branches, then their values;
    //! when n is reached inside a block, the generator restarts from the block's state and
    //! redraws only the uniforms the attempts up to the last used one consumed.
#if defined(__GNUC__) && !defined(__clang__)
    __attribute__((optimize("fp-contract=off")))
#endif
    void normals(double* out, std::size_t n, double loc, double scale) {
        std::size_t i = 0;
        if (n > 0 && has_spare_) {
            has_spare_ = false;
            out[i++] = loc + scale * spare_;
        }
        constexpr std::size_t B = 128;  // attempts per block
        double u[B], v[B], s[B], f[B];
        std::uint32_t at[B];
        while (i < n) {
            const std::uint64_t saved[4] = {s_[0], s_[1], s_[2], s_[3]};
            for (std::size_t a = 0; a < B; ++a) {
                u[a] = 2.0 * uniform() - 1.0;
                v[a] = 2.0 * uniform() - 1.0;
            }
            // the accepted attempts, packed in order (branch-free), with their index in the block
            std::size_t m = 0;
            for (std::size_t a = 0; a < B; ++a) {
                const double ua = u[a], va = v[a], sa = ua * ua + va * va;
                u[m] = ua, v[m] = va, s[m] = sa, at[m] = static_cast<std::uint32_t>(a);
                m += (sa < 1.0) & (sa != 0.0);
            }
            // f = sqrt(-2 ln s / s): the logarithms first (independent calls), then the rest
            // (vectorizable), so that no division waits for the previous one
            const std::size_t need = n - i;
            const std::size_t pairs = need / 2 < m ? (need + 1) / 2 : m;  // pairs to compute
            for (std::size_t q = 0; q < pairs; ++q) f[q] = std::log(s[q]);
            detail::polar_factors(f, s, pairs);
            const std::size_t whole = need / 2 < pairs ? need / 2 : pairs;  // pairs written in full
            for (std::size_t q = 0; q < whole; ++q) {
                out[i + 2 * q] = loc + scale * (u[q] * f[q]);
                out[i + 2 * q + 1] = loc + scale * (v[q] * f[q]);
            }
            i += 2 * whole;
            if (whole < pairs) {  // n ends inside this pair: its second value is the spare
                out[i++] = loc + scale * (u[whole] * f[whole]);
                spare_ = v[whole] * f[whole];
                has_spare_ = true;
            }
            if (i == n && pairs > 0 && at[pairs - 1] + 1 < B) {
                // redraw from the block's start only what the attempts up to the last used one took
                for (int k = 0; k < 4; ++k) s_[k] = saved[k];
                for (std::size_t k = 0; k < 2 * (std::size_t(at[pairs - 1]) + 1); ++k) next();
            }
        }
    }

    //! Poisson draw with mean lam >= 0: multiplication method below 10, Hoermann's PTRS
    //! transformed rejection (the algorithm numpy uses) from 10 on. Exact distribution.
    std::int64_t poisson(double lam) {
        if (!(lam > 0.0)) return 0;
        if (lam < 10.0) {
            const double enlam = std::exp(-lam);
            std::int64_t x = 0;
            double prod = 1.0;
            for (;;) {
                prod *= uniform();
                if (prod > enlam) ++x;
                else return x;
            }
        }
        const double slam = std::sqrt(lam), loglam = std::log(lam);
        const double b = 0.931 + 2.53 * slam;
        const double a = -0.059 + 0.02483 * b;
        const double invalpha = 1.1239 + 1.1328 / (b - 3.4);
        const double vr = 0.9277 - 3.6224 / (b - 2);
        for (;;) {
            const double U = uniform() - 0.5;
            const double V = uniform();
            const double us = 0.5 - std::fabs(U);
            const double k = std::floor((2 * a / us + b) * U + lam + 0.43);
            if (us >= 0.07 && V <= vr) return static_cast<std::int64_t>(k);
            if (k < 0 || (us < 0.013 && V > us)) continue;
            if (std::log(V) + std::log(invalpha) - std::log(a / (us * us) + b) <=
                -lam + k * loglam - std::lgamma(k + 1))
                return static_cast<std::int64_t>(k);
        }
    }

private:
    static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4]{};
    double spare_ = 0.0;
    bool has_spare_ = false;
};

}  // namespace shiftnorm

#if defined(__clang__)
#pragma float_control(pop)
#endif
