// SPDX-License-Identifier: MIT
// Compile-time configuration: host/device qualifiers, debug checks, version.
#pragma once

// The version is set once, in CMakeLists.txt (project VERSION), and generated into
// shiftnorm/version.hpp (build tree and installed tree). Headers used straight from a source
// checkout without CMake report 0.0.0 ("unknown").
#if defined(__has_include)
#if __has_include("shiftnorm/version.hpp")
#include "shiftnorm/version.hpp"
#endif
#endif
#if !defined(SHIFTNORM_VERSION_STRING)
#define SHIFTNORM_VERSION_MAJOR 0
#define SHIFTNORM_VERSION_MINOR 0
#define SHIFTNORM_VERSION_PATCH 0
#define SHIFTNORM_VERSION_STRING "unknown"
#endif

//! SHIFTNORM_HOST_DEVICE marks functions usable from both host and CUDA device code.
//! Under nvcc it expands to `__host__ __device__ inline`, elsewhere to plain `inline`.
#if defined(__CUDACC__)
#define SHIFTNORM_HOST_DEVICE __host__ __device__ inline
#define SHIFTNORM_IS_CUDA_COMPILER 1
#else
#define SHIFTNORM_HOST_DEVICE inline
#define SHIFTNORM_IS_CUDA_COMPILER 0
#endif

//! Checked element access (bounds checks in tensor_view::at and operator()) is on in debug
//! builds, or when SHIFTNORM_CHECKED is defined to 1 by the user.
#if !defined(SHIFTNORM_CHECKED)
#if defined(NDEBUG)
#define SHIFTNORM_CHECKED 0
#else
#define SHIFTNORM_CHECKED 1
#endif
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SHIFTNORM_RESTRICT __restrict__
#define SHIFTNORM_LIKELY(x) __builtin_expect(!!(x), 1)
#define SHIFTNORM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define SHIFTNORM_RESTRICT
#define SHIFTNORM_LIKELY(x) (x)
#define SHIFTNORM_UNLIKELY(x) (x)
#endif
