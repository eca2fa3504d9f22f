// SPDX-License-Identifier: MIT
// filter_arithmetic::fast: gaussian, defocus and motion blur in float32, 16 values per instruction on AVX-512.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "shiftnorm/corrupt/filters.hpp"
#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/scratch.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt {

//! How gaussian, defocus and motion blur (also snow's) compute their linear filters; both give the reference's bytes.
//!  - fast (the default): float32, 16 values per instruction on AVX-512 (the plain loops
//!    elsewhere, same bits). A float32 value within a band around an integer (where float32
//!    and float64 could truncate to different bytes) is computed again in float64 in the
//!    reference's order; the band is twice a bound on the float32 error, which each filter below
//!    derives, so every byte is the reference arithmetic's (docs/corruptions.md "Fast filters";
//!    tests/corrupt/test_fast_filters.cpp compares the two byte for byte). 2-3.6x faster on
//!    smooth images with noise; a row of mostly undecided values (flat regions) runs in float64 whole, at
//!    about the reference arithmetic's cost.
//!  - reference: float64 throughout, in the reference's rounding order (skimage / OpenCV:
//!    tests/corrupt/test_fixtures.cpp).
enum class filter_arithmetic { reference, fast };

namespace detail {

//! The float32 tap sums of the fast filters run in tap_lanes = 4 accumulators: tap k's product
//! goes to accumulator k mod 4 (each from 0.0f, the product rounded before its addition, never
//! fused), and out = (acc0 + acc1) + (acc2 + acc3). The AVX-512 kernel and the plain loops give
//! the same bits, and a term passes through at most tap_sum_additions(taps) roundings of
//! additions (against taps - 1 in one chain): the filters' error bounds, and so their bands of
//! undecided values, shrink up to fourfold, and four chains run side by side.
constexpr std::size_t tap_lanes = 4;
inline double tap_sum_additions(std::size_t taps) { return static_cast<double>((taps + tap_lanes - 1) / tap_lanes) + 2.0; }

//! The taps of a symmetric row sum: out[i] = sum over k of w[k] * (a[k][i] + b[k][i]), or
//! w[k] * a[k][i] where b[k] is null, summed as tap_lanes describes.
struct sym_taps {
    std::vector<const float*> a, b;
    std::vector<float> w;
    void clear() { a.clear(), b.clear(), w.clear(); }
    void reserve(std::size_t k) { a.reserve(k), b.reserve(k), w.reserve(k); }
    void add(float weight, const float* pa, const float* pb) {
        if (weight == 0.0f) return;
        a.push_back(pa), b.push_back(pb), w.push_back(weight);
    }
    std::size_t size() const { return w.size(); }
};

SHIFTNORM_FP_EXACT inline void sym_rows_plain(const sym_taps& t, float* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        float acc[tap_lanes] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (std::size_t k = 0; k < t.size(); ++k) {
            const float v = t.b[k] != nullptr ? t.a[k][i] + t.b[k][i] : t.a[k][i];
            const float p = t.w[k] * v;
            acc[k % tap_lanes] = acc[k % tap_lanes] + p;
        }
        const float lo = acc[0] + acc[1], hi = acc[2] + acc[3];
        out[i] = lo + hi;
    }
}

#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_SIMD_WARNINGS_OFF
//! R accumulator vectors, passed by value (so they stay in registers).
template <int R>
struct vec_set {
    __m512 v[R];
};

//! a.v[r] + tap k's weight times its 16 values at i + 16 r (the last vector under `last`).
template <int R, class Loader, class Taps>
SHIFTNORM_FP_EXACT_TARGET_INLINE(SHIFTNORM_AVX512_KERNEL_ISA) vec_set<R> tap_add_x16(const Taps& t, std::size_t k, std::size_t i,
                                                                                     __mmask16 last, vec_set<R> a) {
    const auto tap = Loader::tap(t, k);
    const __m512 w = _mm512_set1_ps(tap.w);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r)
        a.v[r] = _mm512_add_ps(a.v[r], _mm512_mul_ps(w, tap.load(i + 16 * static_cast<std::size_t>(r), r == R - 1 ? last : __mmask16(0xFFFF))));
    return a;
}

//! One strip of R vectors (16 outputs each; the last under `last`) of tap_rows_x64: every tap's
//! pointers and weight are read once per strip (Loader::tap), its R products added to the
//! tap's accumulators (tap k to set k mod tap_lanes).
template <int R, class Loader, class Taps>
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void tap_strip_x16(const Taps& t, std::size_t taps, float* out,
                                                                                 std::size_t i, __mmask16 last) {
    static_assert(tap_lanes == 4, "four accumulator sets");
    vec_set<R> a0, a1, a2, a3;
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) a0.v[r] = a1.v[r] = a2.v[r] = a3.v[r] = _mm512_setzero_ps();
    std::size_t k = 0;
    for (; k + 4 <= taps; k += 4) {
        a0 = tap_add_x16<R, Loader>(t, k, i, last, a0), a1 = tap_add_x16<R, Loader>(t, k + 1, i, last, a1);
        a2 = tap_add_x16<R, Loader>(t, k + 2, i, last, a2), a3 = tap_add_x16<R, Loader>(t, k + 3, i, last, a3);
    }
    if (k < taps) a0 = tap_add_x16<R, Loader>(t, k, i, last, a0);
    if (k + 1 < taps) a1 = tap_add_x16<R, Loader>(t, k + 1, i, last, a1);
    if (k + 2 < taps) a2 = tap_add_x16<R, Loader>(t, k + 2, i, last, a2);
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) {
        const __m512 v = _mm512_add_ps(_mm512_add_ps(a0.v[r], a1.v[r]), _mm512_add_ps(a2.v[r], a3.v[r]));
        if (r < R - 1) _mm512_storeu_ps(out + i + 16 * static_cast<std::size_t>(r), v);
        else _mm512_mask_storeu_ps(out + i + 16 * static_cast<std::size_t>(r), last, v);
    }
}

//! out[i] = sum over the taps k of t of tap k's weight times its 16 values at i (Loader::tap(t, k):
//! .w and .load(i, mask), lanes outside the mask 0 and not read), summed as tap_lanes describes:
//! 64 outputs in four registers across all taps, the rest in one strip of 1-4 registers. Each
//! tap's values are read once per strip, the accumulators never.
template <class Loader, class Taps>
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void tap_rows_x64(const Taps& t, float* out, std::size_t n) {
    const std::size_t taps = Loader::size(t);
    const __mmask16 all = 0xFFFF;
    std::size_t i = 0;
    for (; i + 64 <= n; i += 64) tap_strip_x16<4, Loader>(t, taps, out, i, all);
    const std::size_t rest = n - i;
    if (rest == 0) return;
    const std::size_t tail = rest % 16;
    const __mmask16 last = tail == 0 ? all : __mmask16((1u << tail) - 1u);
    switch ((rest + 15) / 16) {
        case 1: return tap_strip_x16<1, Loader>(t, taps, out, i, last);
        case 2: return tap_strip_x16<2, Loader>(t, taps, out, i, last);
        case 3: return tap_strip_x16<3, Loader>(t, taps, out, i, last);
        default: return tap_strip_x16<4, Loader>(t, taps, out, i, last);
    }
}
//! sym_taps for tap_rows_x64: a[k] + b[k] (one rounding), or a[k] alone.
struct sym_taps_loader {
    struct tap_t {
        const float* a;
        const float* b;
        float w;
        SHIFTNORM_FP_EXACT_TARGET_INLINE(SHIFTNORM_AVX512_KERNEL_ISA) __m512 load(std::size_t i, __mmask16 m) const {
            const __m512 v = _mm512_maskz_loadu_ps(m, a + i);
            return b != nullptr ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + i)) : v;
        }
    };
    static std::size_t size(const sym_taps& t) { return t.size(); }
    static tap_t tap(const sym_taps& t, std::size_t k) { return {t.a[k], t.b[k], t.w[k]}; }
};
SHIFTNORM_SIMD_WARNINGS_ON
#endif

//! A row of taps on the fastest kernel this CPU has: tap_rows_x64 with Loader where the CPU has
//! the AVX-512 kernels, else the plain loop (the same bits on every CPU).
template <class Loader, class Taps>
void tap_rows(const Taps& t, float* out, std::size_t n, void (*plain)(const Taps&, float*, std::size_t)) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return tap_rows_x64<Loader>(t, out, n);
#endif
    plain(t, out, n);
}
struct sym_taps_loader;
inline void sym_rows(const sym_taps& t, float* out, std::size_t n) { tap_rows<sym_taps_loader>(t, out, n, sym_rows_plain); }

//! out[i] = a[i] + b[i] (one rounding: the same bits on every kernel).
SHIFTNORM_FP_EXACT inline void add_rows_plain(const float* a, const float* b, float* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

//! out[i] = float(u[i]) (exact).
inline void widen_row_plain(const std::uint8_t* u, float* out, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(u[i]);
}

#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_SIMD_WARNINGS_OFF
SHIFTNORM_FP_EXACT_TARGET("avx512f") inline void add_rows_avx512(const float* a, const float* b, float* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    add_rows_plain(a + i, b + i, out + i, n - i);
}
__attribute__((target("avx512f"))) inline void widen_row_avx512(const std::uint8_t* u, float* out, std::size_t n) {
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(u + i)))));
    widen_row_plain(u + i, out + i, n - i);
}
SHIFTNORM_SIMD_WARNINGS_ON
#endif

inline void add_rows(const float* a, const float* b, float* out, std::size_t n) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_rows_available()) return add_rows_avx512(a, b, out, n);
#endif
    add_rows_plain(a, b, out, n);
}

inline void widen_row(const std::uint8_t* u, float* out, std::size_t n) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_rows_available()) return widen_row_avx512(u, out, n);
#endif
    widen_row_plain(u, out, n);
}

//! The float32 filters' band, relative to the value: twice a bound on their float32 error for
//! `terms` roundings of at most u = 2^-24 relative each on a sum of non-negative terms (each
//! filter below derives its count). Every term of such a sum carries its own relative error, so
//! the sum's error is at most terms * u times the sum itself (not times the largest value the
//! filter could produce): a float32 value v farther than band * v from every integer truncates to
//! the byte its exact value does, and so to the reference's (whose float64 error is ~1e-12);
//! values within it are computed again in float64. Filters whose band would pass max_fast_band
//! at their largest value (fast_band_usable) run the reference arithmetic instead.
inline float fast_band_for(double terms) { return static_cast<float>(2.0 * terms * std::ldexp(1.0, -24)); }
constexpr float max_fast_band = 1.0f / 64.0f;
//! Whether a relative band stays under max_fast_band for values up to `magnitude`.
inline bool fast_band_usable(float band, double magnitude) { return band * magnitude < max_fast_band; }

//! double(b) / 255.0 for every byte (to_unit's values, without a division per use).
inline const double* unit_values() {
    static const std::array<double, 256> t = [] {
        std::array<double, 256> a{};
        for (int b = 0; b < 256; ++b) a[static_cast<std::size_t>(b)] = static_cast<double>(b) / 255.0;
        return a;
    }();
    return t.data();
}

//! store_unit's byte of a value in 0-1 units.
inline std::uint8_t unit_byte(double v) {
    v = v < 0.0 ? 0.0 : (v > 1.0 ? 1.0 : v);
    return trunc_u8(v * 255.0);
}

inline std::uint8_t trunc_clip_255(float v) {
    if (!(v > 0.0f)) return 0;
    return v >= 255.0f ? 255 : static_cast<std::uint8_t>(static_cast<int>(v));
}

//! Bytes of n float32 values in 0-255 units: dst[i] = trunc(clip(v[i], 0, 255)); the indices of
//! the values within band * |v[i]| of an integer (fast_band_for: a relative band) go to near[]
//! (in increasing order; their count is returned) for the caller to compute again. A value of
//! exactly 0 is final: the filters sum non-negative products that cannot underflow, so it means
//! every term, and the exact sum, is 0.
SHIFTNORM_FP_EXACT inline std::size_t fast_bytes_plain(const float* v, std::size_t n, float band, std::uint8_t* dst,
                                                       std::uint32_t* near, std::uint32_t first = 0) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i) {
        dst[i] = trunc_clip_255(v[i]);
        if (std::fabs(v[i] - std::nearbyint(v[i])) <= band * std::fabs(v[i]) && v[i] != 0.0f)
            near[count++] = first + static_cast<std::uint32_t>(i);
    }
    return count;
}

#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_SIMD_WARNINGS_OFF
//! fast_bytes_plain 16 values at a time.
SHIFTNORM_FP_EXACT_TARGET("avx512f") inline std::size_t fast_bytes_avx512(const float* v, std::size_t n, float band_width,
                                                                          std::uint8_t* dst, std::uint32_t* near) {
    const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(255.0f), band = _mm512_set1_ps(band_width);
    const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
    std::size_t i = 0, count = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 x = _mm512_loadu_ps(v + i);
        const __m512 k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512 d = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(x, k)), abs_mask));
        const __m512 bx = _mm512_mul_ps(band, _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), abs_mask)));
        const __mmask16 m_near = _mm512_cmp_ps_mask(d, bx, _CMP_LE_OQ) & _mm512_cmp_ps_mask(x, lo, _CMP_NEQ_UQ);
        const __m512i b = _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(x, lo), hi));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm512_cvtepi32_epi8(b));
        for (unsigned m = m_near; m != 0; m &= m - 1)
            near[count++] = static_cast<std::uint32_t>(i) + static_cast<std::uint32_t>(__builtin_ctz(m));
    }
    return count + fast_bytes_plain(v + i, n - i, band_width, dst + i, near + count, static_cast<std::uint32_t>(i));
}
SHIFTNORM_SIMD_WARNINGS_ON
#endif

inline std::size_t fast_bytes(const float* v, std::size_t n, float band, std::uint8_t* dst, std::uint32_t* near) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_rows_available()) return fast_bytes_avx512(v, n, band, dst, near);
#endif
    return fast_bytes_plain(v, n, band, dst, near);
}

//! A row with more than 1 / whole_row_fraction of its values near an integer (a flat region:
//! every window of a flat image sums to about an integer) runs the reference arithmetic over
//! the whole row, vectorized, rather than value by value.
constexpr std::size_t whole_row_fraction = 16;

//! The bytes of one output row from its float32 values v: fast_bytes, then the undecided values
//! in float64: whole_row(acc) fills acc[0, n) with the reference's row (when more than
//! 1 / whole_row_fraction are undecided), or values(near, m, acc) fills acc[0, m) with the
//! reference's values of outputs near[0, m). to_byte turns a float64 value into its byte.
template <class WholeRow, class Values, class ToByte>
void decide_row(const float* v, std::size_t n, float band, std::uint8_t* dst, std::uint32_t* near, double* acc,
                WholeRow whole_row, Values values, ToByte to_byte) {
    const std::size_t m = fast_bytes(v, n, band, dst, near);
    if (m == 0) return;
    if (m > n / whole_row_fraction) {
        whole_row(acc);
        for (std::size_t p = 0; p < m; ++p) dst[near[p]] = to_byte(acc[near[p]]);
        return;
    }
    values(static_cast<const std::uint32_t*>(near), m, acc);
    for (std::size_t p = 0; p < m; ++p) dst[near[p]] = to_byte(acc[p]);
}

//! acc[p] = sum over taps t of w[t] * x[p][t] for `count` outputs, taps in order from 0.0, each
//! product rounded before its addition: the reference's order per output (filter2d's
//! tap_sum_row, scipy's symmetric passes). Taps outermost, so the outputs' chains run side by
//! side; x(p, t) gives the float64 value of output p's tap t.
template <class Weight, class X>
SHIFTNORM_FP_EXACT void exact_tap_sums(std::size_t count, std::size_t taps, Weight weight, X x, double* acc) {
    for (std::size_t p = 0; p < count; ++p) acc[p] = 0.0;
    for (std::size_t t = 0; t < taps; ++t) {
        const double wt = weight(t);
        for (std::size_t p = 0; p < count; ++p) {
            const double prod = wt * x(p, t);
            acc[p] = acc[p] + prod;
        }
    }
}

//! The symmetric form (correlate1d_symmetric): acc[p] = c(p) * w[0], then
//! acc[p] += (a(p, j) + b(p, j)) * w[j] for j = r, r - 1, ..., 1.
template <class Centre, class Pair>
SHIFTNORM_FP_EXACT void exact_sym_sums(std::size_t count, int r, const double* w, Centre c, Pair pair, double* acc) {
    for (std::size_t p = 0; p < count; ++p) acc[p] = c(p) * w[0];
    for (int j = r; j >= 1; --j)
        for (std::size_t p = 0; p < count; ++p) {
            const double s = pair(p, j);
            const double prod = s * w[j];
            acc[p] = acc[p] + prod;
        }
}

//! Repeats a row's first and last pixel (C values each) outside it: row[-p C + c] = row[c] and
//! row[n - C + p C + c] = row[n - C + c] for p = 1..r (scipy's 'nearest').
template <class T>
void pad_edges(T* row, std::size_t n, int C, int r) {
    for (int c = 0; c < C; ++c) {
        const T first = row[c], last = row[n - static_cast<std::size_t>(C - c)];
        T* left = row + c;
        T* right = row + n - static_cast<std::size_t>(C - c);
        for (int p = 1; p <= r; ++p) left[-static_cast<std::ptrdiff_t>(p) * C] = first, right[static_cast<std::size_t>(p) * C] = last;
    }
}

//! gaussian_blur's filter in float32 (scipy gaussian_filter's kernel and 'nearest' border,
//! truncate 4; the vertical pass, then the horizontal one, one row at a time). The values within
//! the band of an integer are computed again as the reference computes them (float64, scipy's
//! symmetric order: filters.hpp correlate1d_symmetric) from the float64 vertical pass of the
//! columns they need, each computed once per row.
//! The error bound (relative: fast_band_for): the vertical pass adds two integers (exact),
//! multiplies by a float32 weight (the weight's rounding and the product's) and sums r + 1
//! non-negative terms (tap_sum_additions): at most (a + 2) u V with u = 2^-24 and
//! a = tap_sum_additions(r + 1) for a vertical value V; the horizontal pass carries that and adds
//! (a + 3) u H (its pair sums round too): (2a + 5) u H in all for an output H. Returns false,
//! having written nothing, for a kernel whose band would pass max_fast_band.
SHIFTNORM_FP_EXACT inline bool fast_gaussian_u8(const_image_view src, image_view dst, double sigma) {
    const int H = src.height, W = src.width, C = src.channels;
    const std::size_t n = static_cast<std::size_t>(W) * C;
    if (!(sigma > 1e-15)) {  // gaussian_filter returns its input
        std::copy(src.data, src.data + n * H, dst.data);
        return true;
    }
    const std::vector<double> half = gaussian_half_kernel(sigma);
    const int r = static_cast<int>(half.size()) - 1;
    const float band = fast_band_for(2.0 * tap_sum_additions(static_cast<std::size_t>(r) + 1) + 5.0);
    if (!fast_band_usable(band, 255.0)) return false;
    std::vector<float> w(half.begin(), half.end());
    scratch_buffer<float> img(n * H), row((static_cast<std::size_t>(W) + 2 * r) * C), out(n);
    widen_row(src.data, img.data(), img.size());
    float* mid = row.data() + static_cast<std::size_t>(r) * C;
    const double* unit = unit_values();
    // work memory from the thread's scratch cache (a 32x32 image's buffers are small blocks that
    // glibc's general bins served slowly); each is written before it is read, but v64_row
    scratch_buffer<std::uint32_t> near(n), cols(n);
    scratch_buffer<double> v64(n), acc(n);
    scratch_vector<int> v64_row(n, -1);  // the row whose vertical pass v64[i] holds
    scratch_buffer<int> vx(n), vc(n);    // each undecided value's column and channel
    std::vector<const std::uint8_t*> lo(static_cast<std::size_t>(r) + 1), hi(lo.size());
    scratch_vector<double> img64;     // the whole image in float64 units, made when a row needs it
    scratch_buffer<double> row64((static_cast<std::size_t>(W) + 2 * r) * C);
    std::vector<const double*> a64(static_cast<std::size_t>(r)), b64(static_cast<std::size_t>(r));
    // the taps, centre first, then outer to inner (the reference's order): the horizontal pass's
    // read the padded row `mid` (the same for every row), the vertical pass's rows change per row
    sym_taps t, th;
    t.reserve(static_cast<std::size_t>(r) + 1), th.reserve(static_cast<std::size_t>(r) + 1);
    th.add(w[0], mid, nullptr);
    t.add(w[0], img.data(), nullptr);
    for (int k = r; k >= 1; --k) {
        th.add(w[static_cast<std::size_t>(k)], mid - static_cast<std::ptrdiff_t>(k) * C, mid + static_cast<std::ptrdiff_t>(k) * C);
        t.add(w[static_cast<std::size_t>(k)], img.data(), img.data());
    }
    for (int y = 0; y < H; ++y) {
        for (std::size_t k = 0; k < t.size(); ++k) {  // tap k: distance r + 1 - k (k >= 1)
            const int d = k == 0 ? 0 : r + 1 - static_cast<int>(k);
            t.a[k] = &img[static_cast<std::size_t>(std::max(y - d, 0)) * n];
            if (k > 0) t.b[k] = &img[static_cast<std::size_t>(std::min(y + d, H - 1)) * n];
        }
        sym_rows(t, mid, n);
        pad_edges(mid, n, C, r);
        sym_rows(th, out.data(), n);
        const auto whole_row = [&](double* acc_row) {  // the reference's two passes over row y
            if (img64.empty()) {
                img64.resize(img.size());
                for (std::size_t i = 0; i < img64.size(); ++i) img64[i] = unit[src.data[i]];
            }
            for (int j = 1; j <= r; ++j) {
                a64[static_cast<std::size_t>(j - 1)] = &img64[static_cast<std::size_t>(std::max(y - j, 0)) * n];
                b64[static_cast<std::size_t>(j - 1)] = &img64[static_cast<std::size_t>(std::min(y + j, H - 1)) * n];
            }
            double* mid64 = row64.data() + static_cast<std::size_t>(r) * C;
            sym_tap_row(&img64[static_cast<std::size_t>(y) * n], a64.data(), b64.data(), half.data(), r, mid64, n);
            pad_edges(mid64, n, C, r);
            for (int j = 1; j <= r; ++j) a64[static_cast<std::size_t>(j - 1)] = mid64 - static_cast<std::ptrdiff_t>(j) * C,
                                         b64[static_cast<std::size_t>(j - 1)] = mid64 + static_cast<std::ptrdiff_t>(j) * C;
            sym_tap_row(mid64, a64.data(), b64.data(), half.data(), r, acc_row, n);
        };
        const auto values = [&](const std::uint32_t* idx, std::size_t m, double* acc_out) {
            // the float64 vertical pass of every column the values read (x - r .. x + r, clamped)
            std::size_t nc = 0;
            for (std::size_t q = 0; q < m; ++q) {
                const int x = static_cast<int>(idx[q] / C), c = static_cast<int>(idx[q] % C);
                vx[q] = x, vc[q] = c;
                for (int xx = std::max(x - r, 0); xx <= std::min(x + r, W - 1); ++xx) {
                    const std::size_t i = static_cast<std::size_t>(xx) * C + c;
                    if (v64_row[i] != y) v64_row[i] = y, cols[nc++] = static_cast<std::uint32_t>(i);
                }
            }
            for (int j = 0; j <= r; ++j)  // the rows y - j and y + j, clamped
                lo[static_cast<std::size_t>(j)] = src.data + static_cast<std::size_t>(std::max(y - j, 0)) * n,
                hi[static_cast<std::size_t>(j)] = src.data + static_cast<std::size_t>(std::min(y + j, H - 1)) * n;
            exact_sym_sums(
                nc, r, half.data(), [&](std::size_t p) { return unit[lo[0][cols[p]]]; },
                [&](std::size_t p, int j) {
                    const std::size_t i = cols[p];
                    return unit[lo[static_cast<std::size_t>(j)][i]] + unit[hi[static_cast<std::size_t>(j)][i]];
                },
                acc_out);
            for (std::size_t p = 0; p < nc; ++p) v64[cols[p]] = acc_out[p];
            const auto v = [&](std::size_t p, int dx) {  // the vertical pass at value p's column x + dx
                return v64[static_cast<std::size_t>(std::clamp(vx[p] + dx, 0, W - 1)) * C + static_cast<std::size_t>(vc[p])];
            };
            exact_sym_sums(
                m, r, half.data(), [&](std::size_t p) { return v64[idx[p]]; },
                [&](std::size_t p, int j) { return v(p, -j) + v(p, j); }, acc_out);
        };
        decide_row(out.data(), n, band, dst.data + static_cast<std::size_t>(y) * n, near.data(), acc.data(), whole_row,
                   values, unit_byte);
    }
    return true;
}

//! acc[j] = acc[j] + k * T(s[j]) for j in [0, n): the product rounded, then the addition (the
//! loop of motion blur's tap runs: float64 for the reference arithmetic, float32 for fast). One
//! body, a plain and an AVX-512 build (kernel_attributes.hpp): 8 or 16 values per instruction there.
template <class T>
SHIFTNORM_KERNEL_BODY void tap_run_body(T* acc, const std::uint8_t* s, std::ptrdiff_t n, T k) {
    for (std::ptrdiff_t j = 0; j < n; ++j) {
        const T t = k * static_cast<T>(s[j]);
        acc[j] = acc[j] + t;
    }
}
template <class T>
SHIFTNORM_FP_EXACT void tap_run_plain(T* acc, const std::uint8_t* s, std::ptrdiff_t n, T k) {
    tap_run_body(acc, s, n, k);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
template <class T>
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) void tap_run_avx512(T* acc, const std::uint8_t* s,
                                                                           std::ptrdiff_t n, T k) {
    tap_run_body(acc, s, n, k);
}
#endif

//! tap_run_plain on the fastest kernel this CPU has (the same bits on every CPU).
template <class T>
void tap_run(T* acc, const std::uint8_t* s, std::ptrdiff_t n, T k) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return tap_run_avx512(acc, s, n, k);
#endif
    tap_run_plain(acc, s, n, k);
}

//! The float32 taps of a row of byte runs: out[j] = sum over taps t of k[t] * float(s[t][j]),
//! summed as tap_lanes describes (fast motion blur's row).
struct byte_taps {
    std::vector<const std::uint8_t*> s;
    std::vector<float> k;
    void clear() { s.clear(), k.clear(); }
    void add(float weight, const std::uint8_t* run) { s.push_back(run), k.push_back(weight); }
};
SHIFTNORM_FP_EXACT inline void byte_tap_rows_plain(const byte_taps& t, float* out, std::size_t n) {
    // accumulator rows: tap k into row k mod 4 (tap_lanes), each a run of tap_run_plain
    std::vector<float> acc(tap_lanes * n, 0.0f);
    for (std::size_t i = 0; i < t.k.size(); ++i)
        tap_run_plain<float>(&acc[(i % tap_lanes) * n], t.s[i], static_cast<std::ptrdiff_t>(n), t.k[i]);
    for (std::size_t j = 0; j < n; ++j) {
        const float lo = acc[j] + acc[n + j], hi = acc[2 * n + j] + acc[3 * n + j];
        out[j] = lo + hi;
    }
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_SIMD_WARNINGS_OFF
//! byte_taps for tap_rows_x64: 16 bytes as floats (masked byte loads: nothing read past a run).
struct byte_taps_loader {
    struct tap_t {
        const std::uint8_t* s;
        float w;
        SHIFTNORM_FP_EXACT_TARGET_INLINE(SHIFTNORM_AVX512_KERNEL_ISA) __m512 load(std::size_t i, __mmask16 m) const {
            return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, s + i)));
        }
    };
    static std::size_t size(const byte_taps& t) { return t.k.size(); }
    static tap_t tap(const byte_taps& t, std::size_t k) { return {t.s[k], t.k[k]}; }
};
SHIFTNORM_SIMD_WARNINGS_ON
#endif
struct byte_taps_loader;
inline void byte_tap_rows(const byte_taps& t, float* out, std::size_t n) {
    tap_rows<byte_taps_loader>(t, out, n, byte_tap_rows_plain);
}

}  // namespace detail
}  // namespace shiftnorm::corrupt

SHIFTNORM_FP_EXACT_END
