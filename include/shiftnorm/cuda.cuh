// SPDX-License-Identifier: MIT
// CUDA umbrella header of shiftnorm: the CPU library plus the backend::cuda kernels and layers.
#pragma once

#if !defined(__CUDACC__)
#error "shiftnorm/cuda.cuh must be compiled by a CUDA compiler (nvcc); include shiftnorm/shiftnorm.hpp for the CPU library"
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
