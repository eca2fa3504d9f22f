// SPDX-License-Identifier: MIT
// Counter-based draws for the noise corruptions: value i's random bits are a hash of (image key, i).
// The definitions and portable kernels; noise_simd.hpp has the AVX-512 / AVX2 kernels and dispatch.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "shiftnorm/corrupt/kernel_attributes.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt {

//! Which random stream the noise corruptions (gaussian, shot, impulse, speckle) draw from.
//! - counter (default since 0.2): value i's bits are splitmix64's output function at (key, i),
//!   the key being the image generator's first word; every value is drawn independently, 16 at a
//!   time on AVX-512 (8 on AVX2), with float Box-Muller normals and alias-table Poisson draws
//!   (kernels in noise_simd.hpp). The bytes are the same on every CPU and for any thread count.
//! - v1: the sequential xoshiro256** stream of shiftnorm 0.1 (double precision, Marsaglia's polar
//!   method, PTRS Poisson); reproduces the noise cells of results made before 0.2 bit for bit.
enum class noise_stream { counter, v1 };

namespace detail {

//! Word i of the counter stream keyed by `key`: splitmix64 (Steele, Lea, Flood 2014) at state
//! key + (i + 1) * golden gamma, i.e. the i-th output of a splitmix64 generator seeded with key.
inline std::uint64_t counter_word(std::uint64_t key, std::uint64_t i) {
    std::uint64_t z = key + (i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline float bits_to_float(std::uint32_t b) {
    float f;
    std::memcpy(&f, &b, sizeof f);
    return f;
}
inline std::uint32_t float_to_bits(float f) {
    std::uint32_t b;
    std::memcpy(&b, &f, sizeof b);
    return b;
}

// Constants of the float Box-Muller transform (shared by the scalar and vector kernels).
inline constexpr float bm_sqrt2 = 1.41421356f;
inline constexpr float bm_ln2_hi = 0.693145751953125f;  // 11 significant bits: e * hi is exact
inline constexpr float bm_ln2_lo = 1.428606765330187e-06f;
inline constexpr float bm_half_pi = 1.57079632679489662f;
inline constexpr float bm_inv_sqrt2 = 0.707106781186547524f;
inline constexpr float bm_two_pow_m22 = 2.384185791015625e-07f;  // 2^-22

//! Box-Muller on 16 words: word j gives two independent standard normals zc[j] = r cos(theta),
//! zs[j] = r sin(theta), r = sqrt(-2 ln u1), u1 = (top 24 bits + 1) / 2^24 in (0, 1] (so
//! |z| <= 5.77: the tails beyond, mass 8e-9, are cut), theta = 2 pi (low 24 bits) / 2^24.
//! - ln(m 2^-24), m integer in [1, 2^24]: m = 2^e mant with mant in [sqrt(1/2), sqrt(2)),
//!   ln mant = 2 atanh(t), t = (mant - 1) / (mant + 1), |t| <= 0.172, by its series to t^9
//!   (truncation < 1e-9).
//! - (cos, sin): the top two bits of the angle pick the quadrant, the other 22 an angle
//!   phi = pi/4 + psi in [0, pi/2), |psi| <= pi/4, with Taylor series to psi^9 (sin) and psi^8
//!   (cos), accurate to ~3e-8.
//! Written as loops of single rounded operations over the 16 lanes, which the compiler may
//! vectorize for any target without changing a bit; the AVX-512 kernel box_muller16 performs the
//! same operations in the same order.
SHIFTNORM_FP_EXACT inline void box_muller_block16(const std::uint64_t* w, float* zc, float* zs) {
    float r[16], ca[16], sa[16];
    for (int j = 0; j < 16; ++j) {
        const float x = static_cast<float>(static_cast<std::uint32_t>(w[j] >> 40) + 1u);  // exact
        const std::uint32_t bits = float_to_bits(x);
        const std::uint32_t big = (bits & 0x7FFFFFu) > 0x3504F3u ? 1u : 0u;  // mant > sqrt(2) (as float)
        const float mant = bits_to_float((bits & 0x7FFFFFu) | (big ? 0x3F000000u : 0x3F800000u));
        const std::int32_t e = static_cast<std::int32_t>(bits >> 23) - 127 + static_cast<std::int32_t>(big);
        const float t = (mant - 1.0f) / (mant + 1.0f);
        const float t2 = t * t;
        float p = t2 * (1.0f / 9.0f);
        p = p + (1.0f / 7.0f);
        p = p * t2;
        p = p + (1.0f / 5.0f);
        p = p * t2;
        p = p + (1.0f / 3.0f);
        p = p * t2;
        p = p + 1.0f;
        const float ln_mant = (t + t) * p;
        const float ef = static_cast<float>(e - 24);
        const float hi = ef * bm_ln2_hi;
        const float lo = ef * bm_ln2_lo;
        const float l = (hi + lo) + ln_mant;
        r[j] = std::sqrt(l * -2.0f);
    }
    for (int j = 0; j < 16; ++j) {
        const std::uint32_t k = static_cast<std::uint32_t>(w[j]) & 0xFFFFFFu;
        const std::uint32_t q = k >> 22;
        const float f = static_cast<float>(static_cast<std::int32_t>(k & 0x3FFFFFu)) * bm_two_pow_m22;  // exact
        const float g = f - 0.5f;                                                                     // exact
        const float psi = g * bm_half_pi;
        const float p2 = psi * psi;
        float s = p2 * (1.0f / 362880.0f);
        s = s - (1.0f / 5040.0f);
        s = s * p2;
        s = s + (1.0f / 120.0f);
        s = s * p2;
        s = s - (1.0f / 6.0f);
        s = s * p2;
        s = s * psi;
        s = s + psi;
        float c = p2 * (1.0f / 40320.0f);
        c = c - (1.0f / 720.0f);
        c = c * p2;
        c = c + (1.0f / 24.0f);
        c = c * p2;
        c = c - 0.5f;
        c = c * p2;
        c = c + 1.0f;
        const float sphi = (s + c) * bm_inv_sqrt2;  // sin(pi/4 + psi)
        const float cphi = (c - s) * bm_inv_sqrt2;  // cos(pi/4 + psi)
        const bool odd = (q & 1u) != 0;
        // quadrant q: (cos, sin) = (cphi, sphi), (-sphi, cphi), (-cphi, -sphi), (sphi, -cphi); the
        // signs by flipping the sign bit (exact)
        const std::uint32_t sign_a = (q == 1u || q == 2u) ? 0x80000000u : 0u;
        const std::uint32_t sign_b = q >= 2u ? 0x80000000u : 0u;
        ca[j] = bits_to_float(float_to_bits(odd ? sphi : cphi) ^ sign_a);
        sa[j] = bits_to_float(float_to_bits(odd ? cphi : sphi) ^ sign_b);
    }
    for (int j = 0; j < 16; ++j) {
        zc[j] = r[j] * ca[j];
        zs[j] = r[j] * sa[j];
    }
}

//! The truncating byte of a value in 0-255 units (clip to [0, 255], then toward zero).
SHIFTNORM_FP_EXACT inline std::uint8_t clip_trunc_u8(float v) {
    v = std::min(std::max(v, 0.0f), 255.0f);
    return static_cast<std::uint8_t>(static_cast<std::int32_t>(v));
}

// ---- the normal-noise rows -------------------------------------------------------------------
// Values come in blocks of 32: block b draws words 16b .. 16b+15; value 32b + j takes word
// 16b + j's cosine normal, value 32b + 16 + j its sine normal (j < 16). A final partial block
// draws the same words and uses the values it has.

//! What a normal-noise row computes per value x (0-255) and standard normal z, in 0-255 units:
//! additive: x + a * z; multiplicative: x + (x * a) * z.
enum class normal_noise_kind { additive, multiplicative };

//! The portable kernel (n bytes, HWC order).
SHIFTNORM_FP_EXACT inline void normal_noise_plain(normal_noise_kind kind, const std::uint8_t* src, std::uint8_t* dst,
                                                     std::size_t n, float a, std::uint64_t key) {
    std::uint64_t w[16];
    float z[32], x[32], v[32];
    for (std::size_t base = 0, blk = 0; base < n; base += 32, ++blk) {
        for (std::size_t j = 0; j < 16; ++j) w[j] = counter_word(key, 16 * blk + j);
        box_muller_block16(w, z, z + 16);
        const std::size_t m = std::min<std::size_t>(32, n - base);
        for (std::size_t j = 0; j < 32; ++j) x[j] = j < m ? static_cast<float>(src[base + j]) : 0.0f;
        if (kind == normal_noise_kind::additive) {
            for (int j = 0; j < 32; ++j) {
                const float d = a * z[j];
                v[j] = x[j] + d;
            }
        } else {
            for (int j = 0; j < 32; ++j) {
                const float xa = x[j] * a;
                const float d = xa * z[j];
                v[j] = x[j] + d;
            }
        }
        for (std::size_t j = 0; j < m; ++j) dst[base + j] = clip_trunc_u8(v[j]);
    }
}

// ---- impulse rows ---------------------------------------------------------------------------------
// Values come in blocks of 16: value 16b + j takes the low half of word 8b + j (j < 8) or the high
// half of word 8b + j - 8. Half h flips the value iff (h >> 1) < threshold (P = threshold / 2^31)
// and salts it (255) iff h is odd, else peppers it (0).

//! The flip threshold for a probability `amount` in [0, 1].
inline std::uint32_t impulse_threshold(double amount) {
    const double t = std::floor(std::min(std::max(amount, 0.0), 1.0) * 2147483648.0);
    return static_cast<std::uint32_t>(t);
}

inline std::uint8_t impulse_value(std::uint8_t x, std::uint32_t h, std::uint32_t threshold) {
    if ((h >> 1) < threshold) return (h & 1u) ? 255 : 0;
    return x;
}

inline void impulse_noise_plain(const std::uint8_t* src, std::uint8_t* dst, std::size_t n, std::uint32_t threshold,
                                std::uint64_t key) {
    for (std::size_t base = 0, blk = 0; base < n; base += 16, ++blk) {
        for (std::size_t j = 0; j < 8; ++j) {
            const std::uint64_t w = counter_word(key, 8 * blk + j);
            if (base + j < n) dst[base + j] = impulse_value(src[base + j], static_cast<std::uint32_t>(w), threshold);
            if (base + 8 + j < n)
                dst[base + 8 + j] = impulse_value(src[base + 8 + j], static_cast<std::uint32_t>(w >> 32), threshold);
        }
    }
}

// ---- Poisson (shot noise) by alias tables ------------------------------------------------------------
//! For one photon rate c: for each input byte x, the distribution of the output byte
//! trunc(clip(K / c, 0, 1) * 255) with K ~ Poisson(x / 255 * c), as a Walker/Vose alias table over
//! the n output bytes that carry mass. Value i draws word i: idx = (high half * n) >> 32, and the
//! output is accept[idx] if the low half < thr[idx], else alias[idx]. The probabilities are those
//! of the Poisson law (pmf in double from lgamma, k up to lambda + 20 sqrt(lambda) + 30; bytes
//! under 2^-48 of the mass dropped), quantized to multiples of 2^-32 per table entry.
struct shot_table {
    struct entry {
        std::uint32_t thr;
        std::uint8_t accept;
        std::uint8_t alias;
    };
    std::uint32_t offset[256]{};
    std::uint32_t count[256]{};
    std::vector<entry> entries;
};

inline std::uint8_t shot_byte(std::int64_t k, double c) {
    double v = static_cast<double>(k) / c;
    v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
    const double y = v * 255.0;
    if (!(y > 0.0)) return 0;
    if (y >= 255.0) return 255;
    return static_cast<std::uint8_t>(y);
}

inline std::shared_ptr<const shot_table> make_shot_table(double c) {
    auto t = std::make_shared<shot_table>();
    std::vector<double> mass(256);
    for (int x = 0; x < 256; ++x) {
        const double lam = (static_cast<double>(x) / 255.0) * c;
        std::fill(mass.begin(), mass.end(), 0.0);
        if (lam > 0.0) {
            const double loglam = std::log(lam);
            const auto kmax = static_cast<std::int64_t>(std::ceil(lam + 20.0 * std::sqrt(lam) + 30.0));
            for (std::int64_t k = 0; k <= kmax; ++k)
                mass[shot_byte(k, c)] += std::exp(static_cast<double>(k) * loglam - lam - std::lgamma(static_cast<double>(k) + 1.0));
        } else {
            mass[0] = 1.0;
        }
        // the output bytes that carry mass (masses below 2^-48 of the total, far under the 2^-32
        // quantization of the thresholds, are dropped)
        double total = 0;
        for (double m : mass) total += m;
        std::vector<int> bytes;
        for (int b = 0; b < 256; ++b)
            if (mass[b] >= total * 0x1.0p-48) bytes.push_back(b);
        const int n = static_cast<int>(bytes.size());
        double kept = 0;
        for (int b : bytes) kept += mass[b];
        // Vose's alias method on scaled probabilities q = p * n.
        std::vector<double> q(n);
        std::vector<int> small, large, alias(n);
        for (int i = 0; i < n; ++i) {
            q[i] = mass[bytes[i]] / kept * n;
            alias[i] = i;
            (q[i] < 1.0 ? small : large).push_back(i);
        }
        while (!small.empty() && !large.empty()) {
            const int sm = small.back(), l = large.back();
            small.pop_back();
            alias[sm] = l;
            q[l] = (q[l] + q[sm]) - 1.0;
            if (q[l] < 1.0) {
                large.pop_back();
                small.push_back(l);
            }
        }
        for (int i : large) q[i] = 1.0, alias[i] = i;  // rounding leftovers: always accept
        for (int i : small) q[i] = 1.0, alias[i] = i;
        t->offset[x] = static_cast<std::uint32_t>(t->entries.size());
        t->count[x] = static_cast<std::uint32_t>(n);
        for (int i = 0; i < n; ++i) {
            const double scaled = std::floor(q[i] * 4294967296.0);
            const std::uint32_t thr = scaled >= 4294967295.0 ? 0xFFFFFFFFu : static_cast<std::uint32_t>(scaled);
            // q = 1 must always accept: its alias is itself, so either branch gives the same byte
            shot_table::entry e{};
            e.thr = thr;
            e.accept = static_cast<std::uint8_t>(bytes[i]);
            e.alias = static_cast<std::uint8_t>(bytes[alias[i]]);
            t->entries.push_back(e);
        }
    }
    return t;
}

//! The alias tables of rate c, built once per rate and process (thread-safe).
inline std::shared_ptr<const shot_table> shot_table_for(double c) {
    static std::mutex mu;
    static std::map<double, std::shared_ptr<const shot_table>> cache;
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = cache[c];
    if (!slot) slot = make_shot_table(c);
    return slot;
}

inline std::uint8_t shot_value(const shot_table& t, std::uint8_t x, std::uint64_t w) {
    const std::uint64_t idx = ((w >> 32) * t.count[x]) >> 32;
    const shot_table::entry& e = t.entries[t.offset[x] + idx];
    // branch-free select (the comparison is a coin flip for the predictor)
    const auto take = static_cast<std::uint8_t>(0u - static_cast<unsigned>(static_cast<std::uint32_t>(w) < e.thr));
    return static_cast<std::uint8_t>(e.alias ^ ((e.accept ^ e.alias) & take));
}

inline void shot_noise_plain(const shot_table& t, const std::uint8_t* src, std::uint8_t* dst, std::size_t n,
                             std::uint64_t key) {
    for (std::size_t i = 0; i < n; ++i) dst[i] = shot_value(t, src[i], counter_word(key, i));
}

}  // namespace detail
}  // namespace shiftnorm::corrupt

SHIFTNORM_FP_EXACT_END
