// SPDX-License-Identifier: MIT
// The counter noise stream's AVX-512 and AVX2 kernels (chosen at run time) and the row dispatch.
#pragma once

#include <cstdint>
#include <cstring>

#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/noise_draws.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt::detail {

// ---- AVX-512 kernels (AVX-512F + DQ, chosen at run time) ----------------------------------------
inline bool avx512_noise_available() {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    return ok;
#else
    return false;
#endif
}

#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_SIMD_WARNINGS_OFF
#define SHIFTNORM_NOISE_AVX512_FN SHIFTNORM_FP_EXACT_TARGET("avx512f,avx512dq")

//! counter_word(key, i0 + l) in lane l of 8, from z0 = key + (i0 + 1) * gamma.
SHIFTNORM_NOISE_AVX512_FN inline __m512i counter_words8(__m512i z) {
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), _mm512_set1_epi64(0xBF58476D1CE4E5B9ll));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), _mm512_set1_epi64(0x94D049BB133111EBll));
    return _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
}

//! State z for word i: key + (i + 1) * gamma in lane l for word i + l.
SHIFTNORM_NOISE_AVX512_FN inline __m512i counter_state8(std::uint64_t key, std::uint64_t i) {
    const std::uint64_t g = 0x9E3779B97F4A7C15ull;
    alignas(64) std::uint64_t z[8];
    for (int l = 0; l < 8; ++l) z[l] = key + (i + 1 + l) * g;
    return _mm512_load_si512(z);
}

//! 16 Box-Muller pairs from the 16 words w0 (lanes 0-7) and w1 (lanes 8-15): box_muller, lane-wise.
SHIFTNORM_NOISE_AVX512_FN inline void box_muller16(__m512i w0, __m512i w1, __m512& zc, __m512& zs) {
    const __m512i top = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(_mm512_srli_epi64(w0, 40))),
                                           _mm512_cvtepi64_epi32(_mm512_srli_epi64(w1, 40)), 1);
    const __m512i low = _mm512_and_si512(
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(w0)), _mm512_cvtepi64_epi32(w1), 1),
        _mm512_set1_epi32(0xFFFFFF));
    // ln_unit24(top + 1)
    const __m512 x = _mm512_cvtepi32_ps(_mm512_add_epi32(top, _mm512_set1_epi32(1)));
    const __m512i bits = _mm512_castps_si512(x);
    __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(127));
    __m512 mant = _mm512_castsi512_ps(
        _mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x7FFFFF)), _mm512_set1_epi32(0x3F800000)));
    const __mmask16 big = _mm512_cmp_ps_mask(mant, _mm512_set1_ps(bm_sqrt2), _CMP_GT_OQ);
    mant = _mm512_mask_mul_ps(mant, big, mant, _mm512_set1_ps(0.5f));
    e = _mm512_mask_add_epi32(e, big, e, _mm512_set1_epi32(1));
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 t = _mm512_div_ps(_mm512_sub_ps(mant, one), _mm512_add_ps(mant, one));
    const __m512 t2 = _mm512_mul_ps(t, t);
    __m512 p = _mm512_mul_ps(t2, _mm512_set1_ps(1.0f / 9.0f));
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(1.0f / 7.0f)), t2);
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(1.0f / 5.0f)), t2);
    p = _mm512_mul_ps(_mm512_add_ps(p, _mm512_set1_ps(1.0f / 3.0f)), t2);
    p = _mm512_add_ps(p, one);
    const __m512 ln_mant = _mm512_mul_ps(_mm512_add_ps(t, t), p);
    const __m512 ef = _mm512_cvtepi32_ps(_mm512_sub_epi32(e, _mm512_set1_epi32(24)));
    const __m512 lnu = _mm512_add_ps(
        _mm512_add_ps(_mm512_mul_ps(ef, _mm512_set1_ps(bm_ln2_hi)), _mm512_mul_ps(ef, _mm512_set1_ps(bm_ln2_lo))),
        ln_mant);
    const __m512 r = _mm512_sqrt_ps(_mm512_mul_ps(lnu, _mm512_set1_ps(-2.0f)));
    // cos_sin_turn24(low)
    const __m512i q = _mm512_srli_epi32(low, 22);
    const __m512 f =
        _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_and_si512(low, _mm512_set1_epi32(0x3FFFFF))), _mm512_set1_ps(bm_two_pow_m22));
    const __m512 psi = _mm512_mul_ps(_mm512_sub_ps(f, _mm512_set1_ps(0.5f)), _mm512_set1_ps(bm_half_pi));
    const __m512 p2 = _mm512_mul_ps(psi, psi);
    __m512 s = _mm512_mul_ps(p2, _mm512_set1_ps(1.0f / 362880.0f));
    s = _mm512_mul_ps(_mm512_sub_ps(s, _mm512_set1_ps(1.0f / 5040.0f)), p2);
    s = _mm512_mul_ps(_mm512_add_ps(s, _mm512_set1_ps(1.0f / 120.0f)), p2);
    s = _mm512_mul_ps(_mm512_sub_ps(s, _mm512_set1_ps(1.0f / 6.0f)), p2);
    s = _mm512_add_ps(_mm512_mul_ps(s, psi), psi);
    __m512 c = _mm512_mul_ps(p2, _mm512_set1_ps(1.0f / 40320.0f));
    c = _mm512_mul_ps(_mm512_sub_ps(c, _mm512_set1_ps(1.0f / 720.0f)), p2);
    c = _mm512_mul_ps(_mm512_add_ps(c, _mm512_set1_ps(1.0f / 24.0f)), p2);
    c = _mm512_mul_ps(_mm512_sub_ps(c, _mm512_set1_ps(0.5f)), p2);
    c = _mm512_add_ps(c, one);
    const __m512 sphi = _mm512_mul_ps(_mm512_add_ps(s, c), _mm512_set1_ps(bm_inv_sqrt2));
    const __m512 cphi = _mm512_mul_ps(_mm512_sub_ps(c, s), _mm512_set1_ps(bm_inv_sqrt2));
    const __mmask16 odd = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
    __m512 a = _mm512_mask_blend_ps(odd, cphi, sphi);
    __m512 b = _mm512_mask_blend_ps(odd, sphi, cphi);
    const __m512 neg = _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(0x80000000u)));
    const __mmask16 neg_a = _mm512_cmpeq_epi32_mask(q, _mm512_set1_epi32(1)) | _mm512_cmpeq_epi32_mask(q, _mm512_set1_epi32(2));
    const __mmask16 neg_b = _mm512_cmpge_epu32_mask(q, _mm512_set1_epi32(2));
    a = _mm512_mask_xor_ps(a, neg_a, a, neg);
    b = _mm512_mask_xor_ps(b, neg_b, b, neg);
    zc = _mm512_mul_ps(r, a);
    zs = _mm512_mul_ps(r, b);
}

//! 16 bytes of normal noise: normal_noise_value, clipped and truncated, lane-wise.
SHIFTNORM_NOISE_AVX512_FN inline __m128i normal_noise16(normal_noise_kind kind, __m128i xb, __m512 a, __m512 z) {
    const __m512 x = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(xb));
    __m512 v;
    if (kind == normal_noise_kind::additive) {
        v = _mm512_add_ps(x, _mm512_mul_ps(a, z));
    } else {
        v = _mm512_add_ps(x, _mm512_mul_ps(_mm512_mul_ps(x, a), z));
    }
    v = _mm512_min_ps(_mm512_max_ps(v, _mm512_setzero_ps()), _mm512_set1_ps(255.0f));
    return _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v));
}

SHIFTNORM_NOISE_AVX512_FN inline void normal_noise_avx512(normal_noise_kind kind, const std::uint8_t* src,
                                                          std::uint8_t* dst, std::size_t n, float a,
                                                          std::uint64_t key) {
    const __m512 av = _mm512_set1_ps(a);
    const __m512i step8 = _mm512_set1_epi64(static_cast<long long>(8 * 0x9E3779B97F4A7C15ull));
    __m512i z0 = counter_state8(key, 0);
    __m512i z1 = _mm512_add_epi64(z0, step8);
    const __m512i step16 = _mm512_add_epi64(step8, step8);
    std::size_t base = 0;
    for (; base < n; base += 32) {
        __m512 zc, zs;
        box_muller16(counter_words8(z0), counter_words8(z1), zc, zs);
        z0 = _mm512_add_epi64(z0, step16);
        z1 = _mm512_add_epi64(z1, step16);
        if (base + 32 <= n) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + base),
                             normal_noise16(kind, _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + base)), av, zc));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + base + 16),
                             normal_noise16(kind, _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + base + 16)), av, zs));
        } else {  // the final partial block through a local copy
            alignas(16) std::uint8_t in[32] = {}, out[32];
            std::memcpy(in, src + base, n - base);
            _mm_store_si128(reinterpret_cast<__m128i*>(out),
                            normal_noise16(kind, _mm_load_si128(reinterpret_cast<const __m128i*>(in)), av, zc));
            _mm_store_si128(reinterpret_cast<__m128i*>(out + 16),
                            normal_noise16(kind, _mm_load_si128(reinterpret_cast<const __m128i*>(in + 16)), av, zs));
            std::memcpy(dst + base, out, n - base);
        }
    }
}

SHIFTNORM_NOISE_AVX512_FN inline __m128i impulse16(__m128i xb, __m512i w, __m512i thr) {
    const __m512i h = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(w)),
                                         _mm512_cvtepi64_epi32(_mm512_srli_epi64(w, 32)), 1);
    const __mmask16 flip = _mm512_cmplt_epu32_mask(_mm512_srli_epi32(h, 1), thr);
    const __mmask16 salt = _mm512_test_epi32_mask(h, _mm512_set1_epi32(1));
    __m512i x = _mm512_cvtepu8_epi32(xb);
    x = _mm512_mask_mov_epi32(x, flip, _mm512_maskz_mov_epi32(salt, _mm512_set1_epi32(255)));
    return _mm512_cvtepi32_epi8(x);
}

SHIFTNORM_NOISE_AVX512_FN inline void impulse_noise_avx512(const std::uint8_t* src, std::uint8_t* dst, std::size_t n,
                                                           std::uint32_t threshold, std::uint64_t key) {
    const __m512i thr = _mm512_set1_epi32(static_cast<int>(threshold));
    const __m512i step8 = _mm512_set1_epi64(static_cast<long long>(8 * 0x9E3779B97F4A7C15ull));
    __m512i z = counter_state8(key, 0);
    for (std::size_t base = 0; base < n; base += 16) {
        const __m512i w = counter_words8(z);
        z = _mm512_add_epi64(z, step8);
        if (base + 16 <= n) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + base),
                             impulse16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + base)), w, thr));
        } else {
            alignas(16) std::uint8_t in[16] = {}, out[16];
            std::memcpy(in, src + base, n - base);
            _mm_store_si128(reinterpret_cast<__m128i*>(out), impulse16(_mm_load_si128(reinterpret_cast<const __m128i*>(in)), w, thr));
            std::memcpy(dst + base, out, n - base);
        }
    }
}

#undef SHIFTNORM_NOISE_AVX512_FN
SHIFTNORM_SIMD_WARNINGS_ON
#endif

// ---- AVX2 kernels (8 float lanes; the 64-bit multiplies from 32-bit halves) ---------------------
inline bool avx2_noise_available() { return avx2_kernels_available(); }

#if defined(SHIFTNORM_CORRUPT_AVX2)
SHIFTNORM_SIMD_WARNINGS_OFF
#define SHIFTNORM_NOISE_AVX2_FN SHIFTNORM_FP_EXACT_TARGET("avx2")

//! a * b mod 2^64 in each 64-bit lane: lo(a) lo(b) + (hi(a) lo(b) + lo(a) hi(b)) 2^32.
SHIFTNORM_NOISE_AVX2_FN inline __m256i mullo64_avx2(__m256i a, std::uint64_t b) {
    const __m256i bl = _mm256_set1_epi64x(static_cast<long long>(b & 0xFFFFFFFFull));
    const __m256i bh = _mm256_set1_epi64x(static_cast<long long>(b >> 32));
    const __m256i lo = _mm256_mul_epu32(a, bl);
    const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), bl), _mm256_mul_epu32(a, bh));
    return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

//! counter_word in each of 4 lanes from the states z (key + (i + 1) gamma).
SHIFTNORM_NOISE_AVX2_FN inline __m256i counter_words4(__m256i z) {
    z = mullo64_avx2(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), 0xBF58476D1CE4E5B9ull);
    z = mullo64_avx2(_mm256_xor_si256(z, _mm256_srli_epi64(z, 27)), 0x94D049BB133111EBull);
    return _mm256_xor_si256(z, _mm256_srli_epi64(z, 31));
}

SHIFTNORM_NOISE_AVX2_FN inline __m256i counter_state4(std::uint64_t key, std::uint64_t i) {
    const std::uint64_t g = 0x9E3779B97F4A7C15ull;
    return _mm256_set_epi64x(static_cast<long long>(key + (i + 4) * g), static_cast<long long>(key + (i + 3) * g),
                             static_cast<long long>(key + (i + 2) * g), static_cast<long long>(key + (i + 1) * g));
}

//! The low 32 bits of the 64-bit lanes of a (lanes 0-3) and b (lanes 4-7).
SHIFTNORM_NOISE_AVX2_FN inline __m256i narrow64_avx2(__m256i a, __m256i b) {
    const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
    const __m128i la = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(a, idx));
    const __m128i lb = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, idx));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(la), lb, 1);
}

//! box_muller_block16's operations on 8 words (w0: words 0-3, w1: words 4-7).
SHIFTNORM_NOISE_AVX2_FN inline void box_muller8(__m256i w0, __m256i w1, __m256& zc, __m256& zs) {
    const __m256i top = narrow64_avx2(_mm256_srli_epi64(w0, 40), _mm256_srli_epi64(w1, 40));
    const __m256i low = _mm256_and_si256(narrow64_avx2(w0, w1), _mm256_set1_epi32(0xFFFFFF));
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 x = _mm256_cvtepi32_ps(_mm256_add_epi32(top, _mm256_set1_epi32(1)));
    const __m256i bits = _mm256_castps_si256(x);
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    __m256 mant = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFF)), _mm256_set1_epi32(0x3F800000)));
    const __m256 big = _mm256_cmp_ps(mant, _mm256_set1_ps(bm_sqrt2), _CMP_GT_OQ);
    mant = _mm256_blendv_ps(mant, _mm256_mul_ps(mant, _mm256_set1_ps(0.5f)), big);
    e = _mm256_sub_epi32(e, _mm256_castps_si256(big));  // the mask is -1 where mant was halved
    const __m256 t = _mm256_div_ps(_mm256_sub_ps(mant, one), _mm256_add_ps(mant, one));
    const __m256 t2 = _mm256_mul_ps(t, t);
    __m256 p = _mm256_mul_ps(t2, _mm256_set1_ps(1.0f / 9.0f));
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(1.0f / 7.0f)), t2);
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(1.0f / 5.0f)), t2);
    p = _mm256_mul_ps(_mm256_add_ps(p, _mm256_set1_ps(1.0f / 3.0f)), t2);
    p = _mm256_add_ps(p, one);
    const __m256 ln_mant = _mm256_mul_ps(_mm256_add_ps(t, t), p);
    const __m256 ef = _mm256_cvtepi32_ps(_mm256_sub_epi32(e, _mm256_set1_epi32(24)));
    const __m256 lnu = _mm256_add_ps(
        _mm256_add_ps(_mm256_mul_ps(ef, _mm256_set1_ps(bm_ln2_hi)), _mm256_mul_ps(ef, _mm256_set1_ps(bm_ln2_lo))),
        ln_mant);
    const __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(lnu, _mm256_set1_ps(-2.0f)));
    const __m256i q = _mm256_srli_epi32(low, 22);
    const __m256 f =
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(low, _mm256_set1_epi32(0x3FFFFF))), _mm256_set1_ps(bm_two_pow_m22));
    const __m256 psi = _mm256_mul_ps(_mm256_sub_ps(f, _mm256_set1_ps(0.5f)), _mm256_set1_ps(bm_half_pi));
    const __m256 p2 = _mm256_mul_ps(psi, psi);
    __m256 s = _mm256_mul_ps(p2, _mm256_set1_ps(1.0f / 362880.0f));
    s = _mm256_mul_ps(_mm256_sub_ps(s, _mm256_set1_ps(1.0f / 5040.0f)), p2);
    s = _mm256_mul_ps(_mm256_add_ps(s, _mm256_set1_ps(1.0f / 120.0f)), p2);
    s = _mm256_mul_ps(_mm256_sub_ps(s, _mm256_set1_ps(1.0f / 6.0f)), p2);
    s = _mm256_add_ps(_mm256_mul_ps(s, psi), psi);
    __m256 c = _mm256_mul_ps(p2, _mm256_set1_ps(1.0f / 40320.0f));
    c = _mm256_mul_ps(_mm256_sub_ps(c, _mm256_set1_ps(1.0f / 720.0f)), p2);
    c = _mm256_mul_ps(_mm256_add_ps(c, _mm256_set1_ps(1.0f / 24.0f)), p2);
    c = _mm256_mul_ps(_mm256_sub_ps(c, _mm256_set1_ps(0.5f)), p2);
    c = _mm256_add_ps(c, one);
    const __m256 sphi = _mm256_mul_ps(_mm256_add_ps(s, c), _mm256_set1_ps(bm_inv_sqrt2));
    const __m256 cphi = _mm256_mul_ps(_mm256_sub_ps(c, s), _mm256_set1_ps(bm_inv_sqrt2));
    const __m256 odd = _mm256_castsi256_ps(
        _mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
    __m256 a = _mm256_blendv_ps(cphi, sphi, odd);
    __m256 b = _mm256_blendv_ps(sphi, cphi, odd);
    const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
    const __m256i neg_a = _mm256_and_si256(
        _mm256_or_si256(_mm256_cmpeq_epi32(q, _mm256_set1_epi32(1)), _mm256_cmpeq_epi32(q, _mm256_set1_epi32(2))), sign);
    const __m256i neg_b = _mm256_and_si256(_mm256_cmpgt_epi32(q, _mm256_set1_epi32(1)), sign);
    a = _mm256_xor_ps(a, _mm256_castsi256_ps(neg_a));
    b = _mm256_xor_ps(b, _mm256_castsi256_ps(neg_b));
    zc = _mm256_mul_ps(r, a);
    zs = _mm256_mul_ps(r, b);
}

//! 8 bytes of normal noise (the low 8 bytes of the result), lane-wise as normal_noise_plain.
SHIFTNORM_NOISE_AVX2_FN inline __m128i normal_noise8(normal_noise_kind kind, const std::uint8_t* xb, __m256 a, __m256 z) {
    std::int64_t raw;
    std::memcpy(&raw, xb, 8);
    const __m256 x = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(raw)));
    __m256 v;
    if (kind == normal_noise_kind::additive) v = _mm256_add_ps(x, _mm256_mul_ps(a, z));
    else v = _mm256_add_ps(x, _mm256_mul_ps(_mm256_mul_ps(x, a), z));
    v = _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), _mm256_set1_ps(255.0f));
    const __m256i i32 = _mm256_cvttps_epi32(v);
    const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
    return _mm_packus_epi16(p16, p16);
}

SHIFTNORM_NOISE_AVX2_FN inline void normal_noise_avx2(normal_noise_kind kind, const std::uint8_t* src, std::uint8_t* dst,
                                                      std::size_t n, float a, std::uint64_t key) {
    const __m256 av = _mm256_set1_ps(a);
    const __m256i step4 = _mm256_set1_epi64x(static_cast<long long>(4 * 0x9E3779B97F4A7C15ull));
    const __m256i step16 = _mm256_set1_epi64x(static_cast<long long>(16 * 0x9E3779B97F4A7C15ull));
    __m256i z0 = counter_state4(key, 0);
    __m256i z1 = _mm256_add_epi64(z0, step4), z2 = _mm256_add_epi64(z1, step4), z3 = _mm256_add_epi64(z2, step4);
    alignas(16) std::uint8_t in[32], out[32];
    for (std::size_t base = 0; base < n; base += 32) {
        __m256 c0, s0, c1, s1;
        box_muller8(counter_words4(z0), counter_words4(z1), c0, s0);  // words 0-7: values 0-7, 16-23
        box_muller8(counter_words4(z2), counter_words4(z3), c1, s1);  // words 8-15: values 8-15, 24-31
        z0 = _mm256_add_epi64(z0, step16), z1 = _mm256_add_epi64(z1, step16);
        z2 = _mm256_add_epi64(z2, step16), z3 = _mm256_add_epi64(z3, step16);
        const bool full = base + 32 <= n;
        const std::uint8_t* s = src + base;
        std::uint8_t* d = full ? dst + base : out;
        if (!full) {
            std::memset(in, 0, sizeof in);
            std::memcpy(in, src + base, n - base);
            s = in;
        }
        _mm_storel_epi64(reinterpret_cast<__m128i*>(d), normal_noise8(kind, s, av, c0));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 8), normal_noise8(kind, s + 8, av, c1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 16), normal_noise8(kind, s + 16, av, s0));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(d + 24), normal_noise8(kind, s + 24, av, s1));
        if (!full) std::memcpy(dst + base, out, n - base);
    }
}

//! impulse_noise_plain on 16 values from 8 words (w0: words 0-3, w1: words 4-7).
SHIFTNORM_NOISE_AVX2_FN inline void impulse16_avx2(const std::uint8_t* xb, std::uint8_t* out, __m256i w0, __m256i w1,
                                                   __m256i thr_m1) {
    const __m256i lo = narrow64_avx2(w0, w1);                                            // values 0-7
    const __m256i hi = narrow64_avx2(_mm256_srli_epi64(w0, 32), _mm256_srli_epi64(w1, 32));  // values 8-15
    for (int half = 0; half < 2; ++half) {
        const __m256i h = half ? hi : lo;
        // keep x iff (h >> 1) > thr - 1, signed: h >> 1 < 2^31 and thr - 1 in [-1, 2^31 - 1]
        const __m256i keep = _mm256_cmpgt_epi32(_mm256_srli_epi32(h, 1), thr_m1);
        const __m256i salt = _mm256_cmpeq_epi32(_mm256_and_si256(h, _mm256_set1_epi32(1)), _mm256_set1_epi32(1));
        std::int64_t raw;
        std::memcpy(&raw, xb + 8 * half, 8);
        __m256i x = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(raw));
        x = _mm256_blendv_epi8(_mm256_and_si256(salt, _mm256_set1_epi32(255)), x, keep);
        const __m128i p16 = _mm_packus_epi32(_mm256_castsi256_si128(x), _mm256_extracti128_si256(x, 1));
        _mm_storel_epi64(reinterpret_cast<__m128i*>(out + 8 * half), _mm_packus_epi16(p16, p16));
    }
}

SHIFTNORM_NOISE_AVX2_FN inline void impulse_noise_avx2(const std::uint8_t* src, std::uint8_t* dst, std::size_t n,
                                                       std::uint32_t threshold, std::uint64_t key) {
    const __m256i thr_m1 = _mm256_set1_epi32(static_cast<int>(static_cast<std::int64_t>(threshold) - 1));
    const __m256i step4 = _mm256_set1_epi64x(static_cast<long long>(4 * 0x9E3779B97F4A7C15ull));
    const __m256i step8 = _mm256_set1_epi64x(static_cast<long long>(8 * 0x9E3779B97F4A7C15ull));
    __m256i z0 = counter_state4(key, 0), z1 = _mm256_add_epi64(z0, step4);
    alignas(16) std::uint8_t in[16], out[16];
    for (std::size_t base = 0; base < n; base += 16) {
        const __m256i w0 = counter_words4(z0), w1 = counter_words4(z1);
        z0 = _mm256_add_epi64(z0, step8), z1 = _mm256_add_epi64(z1, step8);
        if (base + 16 <= n) {
            impulse16_avx2(src + base, dst + base, w0, w1, thr_m1);
        } else {
            std::memset(in, 0, sizeof in);
            std::memcpy(in, src + base, n - base);
            impulse16_avx2(in, out, w0, w1, thr_m1);
            std::memcpy(dst + base, out, n - base);
        }
    }
}
#undef SHIFTNORM_NOISE_AVX2_FN
SHIFTNORM_SIMD_WARNINGS_ON
#endif

// ---- dispatch ---------------------------------------------------------------------------------------
//! Normal noise on n bytes (HWC order) with the image key: the AVX-512 kernel when the CPU has it,
//! else the AVX2 one, else the portable loops; the same bytes either way.
inline void normal_noise_row(normal_noise_kind kind, const std::uint8_t* src, std::uint8_t* dst, std::size_t n,
                             float a, std::uint64_t key) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_noise_available()) return normal_noise_avx512(kind, src, dst, n, a, key);
#endif
#if defined(SHIFTNORM_CORRUPT_AVX2)
    if (avx2_noise_available()) return normal_noise_avx2(kind, src, dst, n, a, key);
#endif
    normal_noise_plain(kind, src, dst, n, a, key);
}

inline void impulse_noise_row(const std::uint8_t* src, std::uint8_t* dst, std::size_t n, std::uint32_t threshold,
                              std::uint64_t key) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_noise_available()) return impulse_noise_avx512(src, dst, n, threshold, key);
#endif
#if defined(SHIFTNORM_CORRUPT_AVX2)
    if (avx2_noise_available()) return impulse_noise_avx2(src, dst, n, threshold, key);
#endif
    impulse_noise_plain(src, dst, n, threshold, key);
}

//! Shot noise on n bytes (HWC order) with the image key. Scalar on every CPU: an AVX-512 version
//! with gathers measured no faster (0.33 vs 0.30-0.34 ms on a 224x224x3 image).
inline void shot_noise_row(const shot_table& t, const std::uint8_t* src, std::uint8_t* dst, std::size_t n,
                           std::uint64_t key) {
    shot_noise_plain(t, src, dst, n, key);
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
