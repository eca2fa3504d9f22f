// SPDX-License-Identifier: MIT
// CUDA umbrella header of shiftnorm: the CPU library plus the backend::cuda kernels and layers.
#pragma once

#if !defined(__CUDACC__)
#error "shiftnorm/cuda.cuh must be compiled by a CUDA compiler (nvcc); include shiftnorm/shiftnorm.hpp for the CPU library"
#endif

// The CUDA backend never runs Eigen on the device (Eigen serves the CPU library: GEMM, FFT).
// Without EIGEN_NO_CUDA, nvcc compiles Eigen's functions as __host__ __device__ and warns
// (#20012-#20015, about 170 lines per translation unit). Define SHIFTNORM_KEEP_EIGEN_CUDA
// before this header to keep Eigen's device annotations (a translation unit that also calls
// Eigen in its own kernels); nothing is changed either when Eigen was included first.
#if !defined(SHIFTNORM_KEEP_EIGEN_CUDA) && !defined(EIGEN_WORLD_VERSION) && !defined(EIGEN_NO_CUDA)
#define EIGEN_NO_CUDA
#endif

#include "shiftnorm/shiftnorm.hpp"

#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/backend/cuda/schedule.cuh"
#include "shiftnorm/backend/cuda/channel_moments.cuh"
#include "shiftnorm/backend/cuda/normalize.cuh"
#include "shiftnorm/backend/cuda/bn_backward.cuh"
#include "shiftnorm/backend/cuda/batch_norm.cuh"
#include "shiftnorm/backend/cuda/range.cuh"
#include "shiftnorm/backend/cuda/robust_norm.cuh"
#include "shiftnorm/backend/cuda/group_norm.cuh"
#include "shiftnorm/backend/cuda/spectrum.cuh"
#include "shiftnorm/backend/cuda/detector.cuh"
