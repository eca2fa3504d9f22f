// SPDX-License-Identifier: MIT
// Flush-to-zero / denormals-are-zero: subnormal floats cost ~100x a normal operation on x86.
#pragma once

#if defined(__SSE__) || defined(_M_X64)
#include <xmmintrin.h>
#define SHIFTNORM_DENORMALS_X86 1
#endif
#if defined(_OPENMP)
#include <omp.h>
#endif

namespace shiftnorm {

//! Whether the calling thread flushes subnormal results to zero (FTZ) and reads subnormal inputs
//! as zero (DAZ). Always false where the architecture offers no such mode to this code.
inline bool flush_denormals_enabled() {
#if defined(SHIFTNORM_DENORMALS_X86)
    return (_mm_getcsr() & 0x8040u) == 0x8040u;
#elif defined(__aarch64__)
    unsigned long fpcr = 0;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    return (fpcr >> 24) & 1u;
#else
    return false;
#endif
}

//! Sets FTZ and DAZ (x86: MXCSR bits 15 and 6; AArch64: FPCR.FZ) for the calling thread only.
//! Returns the previous setting. Results differ from IEEE only where a value would be smaller
//! than 1.2e-38 in magnitude: it becomes 0 (oneDNN, and so PyTorch's CPU kernels, run this way).
inline bool set_flush_denormals(bool on) {
    const bool before = flush_denormals_enabled();
#if defined(SHIFTNORM_DENORMALS_X86)
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(on ? (csr | 0x8040u) : (csr & ~0x8040u));
#elif defined(__aarch64__)
    unsigned long fpcr = 0;
    __asm__ __volatile__("mrs %0, fpcr" : "=r"(fpcr));
    fpcr = on ? (fpcr | (1ul << 24)) : (fpcr & ~(1ul << 24));
    __asm__ __volatile__("msr fpcr, %0" : : "r"(fpcr));
#else
    (void)on;
#endif
    return before;
}

//! FTZ/DAZ on the calling thread and on every thread of the OpenMP pool (threads created later
//! inherit the creating thread's setting on Linux). The engine's entry points (training, batched
//! evaluation, the CLI) call it with `true`: the default is flushing; call it with `false` after
//! them for strict IEEE subnormals.
inline void set_flush_denormals_all_threads(bool on) {
    set_flush_denormals(on);
#if defined(_OPENMP)
#pragma omp parallel
    set_flush_denormals(on);
#endif
}

}  // namespace shiftnorm
