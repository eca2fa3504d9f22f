// SPDX-License-Identifier: MIT
// SHIFTNORM_OMP: OpenMP pragmas that vanish when the consumer compiles without OpenMP.
#pragma once

#if defined(_OPENMP)
#include <omp.h>
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
