// SPDX-License-Identifier: MIT
// SHIFTNORM_OMP: OpenMP pragmas that vanish when the consumer compiles without OpenMP.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
#if defined(__unix__)
#include <pthread.h>

#include <atomic>
#endif
#endif

//! SHIFTNORM_OMP(omp parallel for ...) expands to the OpenMP pragma when compiling with OpenMP
//! and to nothing otherwise (no -Wunknown-pragmas noise in consumers built without -fopenmp).
#if !defined(SHIFTNORM_OMP)
#if defined(_OPENMP)
#define SHIFTNORM_OMP_STR(x) #x
#define SHIFTNORM_OMP(x) _Pragma(SHIFTNORM_OMP_STR(x))
#else
#define SHIFTNORM_OMP(x)
#endif
#endif

#if defined(_OPENMP) && defined(__unix__)
namespace shiftnorm::detail {
//! True in the child of a fork (a PyTorch DataLoader worker, multiprocessing's default start on
//! Linux). GNU libgomp's thread team does not survive fork: in the child of a process that ran a
//! parallel region, the next region with more than one thread waits forever for the parent's
//! threads (measured 2026-12-05). So, as PyTorch does, the child handler registered below (when
//! the program or module loads) sets OpenMP's thread count to 1 there: the engine's loops run on
//! one thread in a forked child (nn::set_num_threads keeps them there), and corrupt_batch starts
//! threads of its own instead of using the team.
inline std::atomic<bool> forked_child{false};
inline const bool fork_guard_registered = [] {
    ::pthread_atfork(nullptr, nullptr, [] {
        forked_child.store(true, std::memory_order_relaxed);
        omp_set_num_threads(1);
    });
    return true;
}();
}  // namespace shiftnorm::detail
#endif
