// SPDX-License-Identifier: MIT
// Function attributes of the corruption kernels (rounding as written, x86 SIMD targets) and the AVX-512 check.
#pragma once

// SHIFTNORM_FP_EXACT: every floating-point operation of the function is rounded as written (no
// contraction of a multiply and an add into one FMA), so that a portable loop, its AVX2 / AVX-512
// twin and any -march give the same bits. GCC contracts across statements under its default
// -ffp-contract=fast and needs the attribute; Clang's default (-ffp-contract=on) contracts inside
// one expression, which SHIFTNORM_FP_EXACT_BEGIN / _END (below) switch off for the corruption
// headers' code.
// SHIFTNORM_FP_EXACT_NO_SLP: the same, and GCC's SLP vectorizer off: GCC 12.2 at -O3 drops the
// double -> float -> double conversions of `p[i] + static_cast<float>(u)` when it vectorizes
// straight-line code (elastic_transform's six jittered control points, a fully unrolled loop;
// found 2026-12-04: a portable build lost the float32 rounding of 2 of the 6 values, a
// -march=native build of the other 4, so the two wrote different bytes and neither the
// reference's float32 jitter; tests/corrupt/test_rounding.cpp). For the small helpers that round
// doubles through float and keep them as doubles; never inlined (inlined code would be compiled
// with its caller's options). Turning SLP off in every SHIFTNORM_FP_EXACT function instead costs
// 1.2-1.4x in fog, brightness, saturate and elastic, and off in all of elastic_transform 1.15-1.2x.
// SHIFTNORM_FP_EXACT_TARGET(isa): the same for a kernel compiled for an instruction set chosen
// at run time (__builtin_cpu_supports).
// SHIFTNORM_FP_EXACT_TARGET_INLINE(isa): the same, always inlined: for helpers of such kernels
// that pass or return vector registers (or aggregates of them) by value. Called out of line (an
// -O2 ASan build does not inline them), a struct of __m512 passed by value between GCC 12
// functions of an AVX-512 target in a TU without AVX-512 came back wrong (2026-12-05: lanes 4-15
// of a masked strip zero; tests/corrupt/test_fast_filters.cpp caught it under ASan only).
// SHIFTNORM_KERNEL_BODY: a loop written once and compiled into a plain function and its
// SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) twin (always inlined into both, so each is vectorized for
// its own instruction set; the body carries SHIFTNORM_FP_EXACT too).
// SHIFTNORM_SIMD_WARNINGS_OFF / _ON: GCC 12 reports its own intrinsics' undefined pass-through
// operands (_mm512_max_pd, _mm512_srli_epi64, ...) as uninitialized under -Wall; silenced around
// the SIMD kernels only.
#if defined(__GNUC__) && !defined(__clang__)
#define SHIFTNORM_FP_EXACT __attribute__((optimize("fp-contract=off")))
#define SHIFTNORM_FP_EXACT_NO_SLP __attribute__((noinline, optimize("fp-contract=off", "no-tree-slp-vectorize")))
#define SHIFTNORM_FP_EXACT_TARGET(isa) __attribute__((target(isa), optimize("fp-contract=off")))
#define SHIFTNORM_FP_EXACT_TARGET_INLINE(isa) __attribute__((always_inline, target(isa), optimize("fp-contract=off"))) inline
#define SHIFTNORM_KERNEL_BODY __attribute__((always_inline, optimize("fp-contract=off"))) inline
#define SHIFTNORM_SIMD_WARNINGS_OFF                                   \
    _Pragma("GCC diagnostic push") _Pragma("GCC diagnostic ignored \"-Wuninitialized\"") \
        _Pragma("GCC diagnostic ignored \"-Wmaybe-uninitialized\"")
#define SHIFTNORM_SIMD_WARNINGS_ON _Pragma("GCC diagnostic pop")
#elif defined(__clang__)
#define SHIFTNORM_FP_EXACT
#define SHIFTNORM_FP_EXACT_NO_SLP __attribute__((noinline))
#define SHIFTNORM_FP_EXACT_TARGET(isa) __attribute__((target(isa)))
#define SHIFTNORM_FP_EXACT_TARGET_INLINE(isa) __attribute__((always_inline, target(isa))) inline
#define SHIFTNORM_KERNEL_BODY __attribute__((always_inline)) inline
#define SHIFTNORM_SIMD_WARNINGS_OFF
#define SHIFTNORM_SIMD_WARNINGS_ON
#else
#define SHIFTNORM_FP_EXACT
#define SHIFTNORM_FP_EXACT_NO_SLP
#define SHIFTNORM_FP_EXACT_TARGET(isa)
#define SHIFTNORM_FP_EXACT_TARGET_INLINE(isa) inline
#define SHIFTNORM_KERNEL_BODY inline
#define SHIFTNORM_SIMD_WARNINGS_OFF
#define SHIFTNORM_SIMD_WARNINGS_ON
#endif

// SHIFTNORM_FP_EXACT_BEGIN / SHIFTNORM_FP_EXACT_END: around the code of each corruption header.
// Clang has no per-function form of SHIFTNORM_FP_EXACT, and its default -ffp-contract=on fuses a
// multiply and an add written in one expression wherever the target has FMA (an AVX-512 twin, a
// -march=native build), which changed snow's bytes against GCC's (found 2026-12-05: 118 of 800
// digest cases); so under Clang the headers switch contraction off between the two (saving and
// restoring the including code's setting). Nothing under GCC, whose attribute does it.
#if defined(__clang__)
#define SHIFTNORM_FP_EXACT_BEGIN _Pragma("float_control(push)") _Pragma("clang fp contract(off)")
#define SHIFTNORM_FP_EXACT_END _Pragma("float_control(pop)")
#else
#define SHIFTNORM_FP_EXACT_BEGIN
#define SHIFTNORM_FP_EXACT_END
#endif

// SHIFTNORM_CORRUPT_AVX512: the AVX-512 kernels are compiled (by function attributes, so a portable
// build has them too) and chosen at run time by avx512_rows_available(). Define
// SHIFTNORM_NO_AVX512 to leave them out.
// SHIFTNORM_CORRUPT_AVX2: the same for the AVX2 kernels (the noise stream's), SHIFTNORM_NO_AVX2.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__CUDACC__)
#include <immintrin.h>
#if !defined(SHIFTNORM_NO_AVX512)
#define SHIFTNORM_CORRUPT_AVX512 1
#endif
#if !defined(SHIFTNORM_NO_AVX2)
#define SHIFTNORM_CORRUPT_AVX2 1
#endif
#endif

namespace shiftnorm::corrupt::detail {

//! Whether this CPU runs the AVX-512F kernels (checked once).
inline bool avx512_rows_available() {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    static const bool ok = __builtin_cpu_supports("avx512f");
    return ok;
#else
    return false;
#endif
}

//! The instruction sets of the SHIFTNORM_KERNEL_BODY twins: AVX-512 F, BW, DQ and VL (every
//! AVX-512 CPU since Skylake-SP; GCC 12 vectorizes the byte conversions only with all four).
#define SHIFTNORM_AVX512_KERNEL_ISA "avx512f,avx512bw,avx512dq,avx512vl"
//! Whether this CPU runs the SHIFTNORM_AVX512_KERNEL_ISA twins (checked once).
inline bool avx512_kernels_available() {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    return ok;
#else
    return false;
#endif
}

//! Whether this CPU runs AVX2 twins (the fallback of the AVX-512 ones on AVX2-only CPUs; checked once).
inline bool avx2_kernels_available() {
#if defined(SHIFTNORM_CORRUPT_AVX2)
    static const bool ok = __builtin_cpu_supports("avx2");
    return ok;
#else
    return false;
#endif
}

//! Whether this CPU also has AVX-512 VBMI (byte permutes: 64 byte lookups per instruction).
inline bool avx512_vbmi_available() {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    static const bool ok = avx512_kernels_available() && __builtin_cpu_supports("avx512vbmi");
    return ok;
#else
    return false;
#endif
}

}  // namespace shiftnorm::corrupt::detail

// SHIFTNORM_KERNEL_TWINS(name, params, args): a kernel body `name_body` (SHIFTNORM_KERNEL_BODY)
// compiled into name_portable, an AVX2 twin and an AVX-512 twin (SHIFTNORM_AVX512_KERNEL_ISA),
// and `name`, which calls the widest twin this CPU runs. Every twin rounds as written
// (SHIFTNORM_FP_EXACT): elementwise loops give the same bits from each.
#define SHIFTNORM_KERNEL_TWINS(name, params, args)                                \
    SHIFTNORM_FP_EXACT inline void name##_portable params { name##_body args; } \
    SHIFTNORM_KERNEL_SIMD_TWINS_(name, params, args)                            \
    inline void name params {                                                   \
        SHIFTNORM_KERNEL_SIMD_CALLS_(name, args)                                \
        name##_portable args;                                                   \
    }
#define SHIFTNORM_KERNEL_SIMD_TWINS_(name, params, args) \
    SHIFTNORM_KERNEL_AVX512_TWIN_(name, params, args)    \
    SHIFTNORM_KERNEL_AVX2_TWIN_(name, params, args)
#define SHIFTNORM_KERNEL_SIMD_CALLS_(name, args) \
    SHIFTNORM_KERNEL_AVX512_CALL_(name, args)    \
    SHIFTNORM_KERNEL_AVX2_CALL_(name, args)
#if defined(SHIFTNORM_CORRUPT_AVX512)
#define SHIFTNORM_KERNEL_AVX512_TWIN_(name, params, args) \
    SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void name##_avx512 params { name##_body args; }
#define SHIFTNORM_KERNEL_AVX512_CALL_(name, args) \
    if (::shiftnorm::corrupt::detail::avx512_kernels_available()) return name##_avx512 args;
#else
#define SHIFTNORM_KERNEL_AVX512_TWIN_(name, params, args)
#define SHIFTNORM_KERNEL_AVX512_CALL_(name, args)
#endif
#if defined(SHIFTNORM_CORRUPT_AVX2)
#define SHIFTNORM_KERNEL_AVX2_TWIN_(name, params, args) \
    SHIFTNORM_FP_EXACT_TARGET("avx2") inline void name##_avx2 params { name##_body args; }
#define SHIFTNORM_KERNEL_AVX2_CALL_(name, args) \
    if (::shiftnorm::corrupt::detail::avx2_kernels_available()) return name##_avx2 args;
#else
#define SHIFTNORM_KERNEL_AVX2_TWIN_(name, params, args)
#define SHIFTNORM_KERNEL_AVX2_CALL_(name, args)
#endif
