// SPDX-License-Identifier: MIT
// CUDA spectrum features: cuFFT batched R2C (cached plans, caller's stream) + one feature kernel.
#pragma once

#include <cuda_runtime.h>
#include <cufft.h>

#include <climits>
#include <cstdint>
#include <map>
#include <tuple>
#include <utility>

#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/spectral/spectrum.hpp"

namespace shiftnorm::backend::cuda {

//! A cuFFT call failed. The message names the call, the file and line and the cufftResult.
class cufft_error : public error {
public:
    cufft_error(cufftResult code, const char* call, const char* file, int line)
        : error(shiftnorm::detail::concat(file, ':', line, ": cuFFT call '", call, "' failed: ", name(code), " (",
                                          static_cast<int>(code), ')')),
          code_(code) {}
    cufftResult code() const { return code_; }

    static const char* name(cufftResult r) {
        switch (r) {
            case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
            case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
            case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
            case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
            case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
            case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
            case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
            case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
            case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
            case CUFFT_UNALIGNED_DATA: return "CUFFT_UNALIGNED_DATA";
            case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
            case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
            case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
            case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
            default: return "unknown cufftResult";
        }
    }

private:
    cufftResult code_;
};

namespace detail {
inline void check_cufft(cufftResult code, const char* call, const char* file, int line) {
    if (code != CUFFT_SUCCESS) throw cufft_error(code, call, file, line);
}
}  // namespace detail

}  // namespace shiftnorm::backend::cuda

//! Evaluates a cufftResult expression and throws backend::cuda::cufft_error when it failed.
#define SHIFTNORM_CUFFT_CHECK(call) ::shiftnorm::backend::cuda::detail::check_cufft((call), #call, __FILE__, __LINE__)

namespace shiftnorm::backend::cuda {

//! cuFFT R2C plans of batched real 2-D transforms (h x w -> h x (w/2+1), the default packed
//! layout: plane b at b*h*w in, b*h*(w/2+1) out), created on first use and kept, keyed by
//! (h, w, batch). Plans belong to the device current at their creation. Move-only; not
//! thread-safe (one cache per thread or per stream of work).
class fft2_r2c_plan_cache {
public:
    fft2_r2c_plan_cache() = default;
    fft2_r2c_plan_cache(const fft2_r2c_plan_cache&) = delete;
    fft2_r2c_plan_cache& operator=(const fft2_r2c_plan_cache&) = delete;
    fft2_r2c_plan_cache(fft2_r2c_plan_cache&& o) noexcept : plans_(std::move(o.plans_)) { o.plans_.clear(); }
    fft2_r2c_plan_cache& operator=(fft2_r2c_plan_cache&& o) noexcept {
        if (this != &o) {
            clear();
            plans_ = std::move(o.plans_);
            o.plans_.clear();
        }
        return *this;
    }
    ~fft2_r2c_plan_cache() { clear(); }

    //! The plan of `batch` h x w transforms (cufftPlanMany, CUFFT_R2C). Throws shape_error when
    //! a size is < 1 or h*w*batch exceeds cuFFT's int range, cufft_error when planning fails.
    cufftHandle get(index_t h, index_t w, index_t batch) {
        const char* where = "cuda::fft2_r2c_plan_cache::get";
        if (h < 1 || w < 1 || batch < 1)
            shiftnorm::detail::fail<shape_error>(where, "h, w, batch", "values >= 1", concat(h, ", ", w, ", ", batch));
        if (h > INT_MAX / w || h * w > INT_MAX / batch)
            shiftnorm::detail::fail<shape_error>(where, "h * w * batch", concat("<= ", INT_MAX), concat(h, " x ", w, " x ", batch));
        const auto key = std::make_tuple(h, w, batch);
        const auto it = plans_.find(key);
        if (it != plans_.end()) return it->second;
        cufftHandle plan = 0;
        int n[2] = {static_cast<int>(h), static_cast<int>(w)};
        SHIFTNORM_CUFFT_CHECK(cufftPlanMany(&plan, 2, n, nullptr, 1, static_cast<int>(h * w), nullptr, 1,
                                            static_cast<int>(h * (w / 2 + 1)), CUFFT_R2C, static_cast<int>(batch)));
        plans_.emplace(key, plan);
        return plan;
    }

    std::size_t size() const { return plans_.size(); }
    //! Destroys every plan (cufftDestroy; errors at destruction are ignored).
    void clear() noexcept {
        for (auto& kv : plans_) (void)cufftDestroy(kv.second);
        plans_.clear();
    }

private:
    std::map<std::tuple<index_t, index_t, index_t>, cufftHandle> plans_;
};

namespace detail {

//! Input planes of the FFT: x * in_scale - centre per channel, or the luminance 0.299 R +
//! 0.587 G + 0.114 B of the scaled channels minus centre (gray with 3 channels). One thread per
//! output pixel.
template <class T>
__global__ void spectrum_planes_kernel(const T* __restrict__ src, float* __restrict__ dst, index_t images,
                                       index_t channels, index_t hw, bool luminance, float in_scale,
                                       float centre) {
    const index_t planes = luminance ? 1 : channels;
    const index_t total = images * planes * hw;
    for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
        if (luminance) {
            const index_t img = i / hw, p = i % hw;
            const T* s = src + img * 3 * hw + p;
            dst[i] = 0.299f * (static_cast<float>(s[0]) * in_scale) + 0.587f * (static_cast<float>(s[hw]) * in_scale) +
                     0.114f * (static_cast<float>(s[2 * hw]) * in_scale) - centre;
        } else {
            dst[i] = static_cast<float>(src[i]) * in_scale - centre;
        }
    }
}

//! Features from the half spectra (plane b at b*h*(w/2+1)), one thread per output feature:
//! the same layout, fftshift and Hermitian mirror as spectral::spectrum; dc_add (centre * h * w)
//! is added back to the DC bin.
template <class Complex>  // a template: one definition per program in a header-only library (ODR)
__global__ void spectrum_features_kernel(const Complex* __restrict__ spec, float* __restrict__ out, index_t planes,
                                         index_t h, index_t w, bool half, bool shift, bool raw, float inv_scale,
                                         float dc_add) {
    const index_t hw = w / 2 + 1, cols = half ? hw : w;
    const index_t per_plane = h * cols, total = planes * per_plane;
    const index_t du = shift ? h / 2 : 0, dv = (shift && !half) ? w / 2 : 0;
    for (index_t i = blockIdx.x * static_cast<index_t>(blockDim.x) + threadIdx.x; i < total;
         i += static_cast<index_t>(gridDim.x) * blockDim.x) {
        const index_t b = i / per_plane, r = i % per_plane;
        const index_t row = r / cols, col = r % cols;
        index_t u = row - du;
        if (u < 0) u += h;
        index_t v = col - dv;
        if (v < 0) v += w;
        if (v >= hw) {  // Hermitian mirror: |F(u, v)| = |F(-u, w - v)|
            u = (h - u) % h;
            v = w - v;
        }
        cufftComplex f = spec[b * h * hw + u * hw + v];
        if (u == 0 && v == 0) f.x += dc_add;
        const float mag = sqrtf(f.x * f.x + f.y * f.y);
        out[i] = raw ? mag : log1pf(mag * inv_scale);
    }
}

inline unsigned grid_for(index_t total, int block) {
    const index_t want = (total + block - 1) / block, cap = static_cast<index_t>(sm_count()) * 32;
    return static_cast<unsigned>(want < cap ? (want > 0 ? want : 1) : cap);
}

}  // namespace detail

//! spectral::spectrum on CUDA: the same features (definition, options, layout [image][plane]
//! [u][v], errors) from DEVICE images, computed as
//!   1. one kernel: uint8 (x / 255) or float images -> float planes (luminance when gray),
//!      minus 0.5 (the middle of [0, 1]; added back to the DC bin in 3.: exact in real
//!      arithmetic, and in float it keeps the DC from leaking ~1e-7 of itself into every bin,
//!      which log(|F| / (eps n) + 1) would amplify by 1 / (eps n); the CPU plan subtracts the
//!      exact mean for the same reason);
//!   2. cufftExecR2C of all n * planes transforms with one cached cufftPlanMany plan
//!      (fft2_r2c_plan_cache, keyed by (h, w, batch)), on the caller's stream (cufftSetStream);
//!   3. one kernel: |F| or log1p(|F| / (eps h w)), fftshift and the Hermitian mirror.
//! Batches whose h*w*planes exceed cuFFT's int range run in chunks. The workspace (planes and
//! half spectra of one batch) grows to the largest batch seen and is kept. Not thread-safe:
//! one object per stream of work; calls are asynchronous on `stream`.
class spectrum {
public:
    //! Throws like spectral::spectrum (shape_error / value_error naming the argument).
    spectrum(index_t channels, index_t h, index_t w, spectral::spectrum_options o = {})
        : channels_(channels), h_(h), w_(w), o_(o), size_(spectral::feature_size(channels, h, w, o)) {}

    index_t channels() const { return channels_; }
    index_t height() const { return h_; }
    index_t width() const { return w_; }
    const spectral::spectrum_options& options() const { return o_; }
    //! Floats per image: spectral::feature_size(channels(), height(), width(), options()).
    index_t size() const { return size_; }
    const fft2_r2c_plan_cache& plans() const { return plans_; }

    //! n uint8 NCHW images (device, n*channels*h*w bytes) -> n * size() floats (device).
    void batch(const std::uint8_t* images, index_t n, float* out, cudaStream_t stream = nullptr) {
        run(images, n, out, 1.0f / 255.0f, stream);
    }
    //! The same from float images already in [0, 1] (device).
    void batch(const float* images, index_t n, float* out, cudaStream_t stream = nullptr) {
        run(images, n, out, 1.0f, stream);
    }

private:
    template <class T>
    void run(const T* images, index_t n, float* out, float in_scale, cudaStream_t stream) {
        const char* where = "cuda::spectrum::batch";
        if (n < 0) shiftnorm::detail::fail<shape_error>(where, "n", ">= 0", n);
        if (n == 0) return;
        if (images == nullptr) shiftnorm::detail::fail(where, "images", "a non-null pointer", "nullptr");
        if (out == nullptr) shiftnorm::detail::fail(where, "out", "a non-null pointer", "nullptr");
        detail::check_device_pointer(where, "images", images);
        detail::check_device_pointer(where, "out", out);
        const auto& o = o_;
        const index_t c = channels(), h = height(), w = width(), hw = w / 2 + 1, pix = h * w;
        const bool luminance = o.gray && c == 3;
        const index_t planes = luminance ? 1 : c;
        // images per cuFFT call: the plan's h*w*batch (and h*(w/2+1)*batch) must fit an int
        const index_t max_planes = INT_MAX / pix;
        if (max_planes < planes)
            shiftnorm::detail::fail<shape_error>(where, "h * w * planes", concat("<= ", INT_MAX), pix * planes);
        const index_t chunk = n < max_planes / planes ? n : max_planes / planes;
        planes_.reserve_discard(static_cast<std::size_t>(chunk * planes * pix));
        spec_.reserve_discard(static_cast<std::size_t>(chunk * planes * h * hw));
        const float inv_scale = static_cast<float>(1.0 / (o.eps * static_cast<double>(pix)));
        constexpr int block = 256;
        constexpr float centre = 0.5f;
        for (index_t first = 0; first < n; first += chunk) {
            const index_t count = n - first < chunk ? n - first : chunk;
            const index_t total_in = count * planes * pix, total_out = count * size_;
            detail::spectrum_planes_kernel<T><<<detail::grid_for(total_in, block), block, 0, stream>>>(
                images + first * c * pix, planes_.data(), count, c, pix, luminance, in_scale, centre);
            SHIFTNORM_CUDA_CHECK(cudaGetLastError());
            const cufftHandle plan = plans_.get(h, w, count * planes);
            SHIFTNORM_CUFFT_CHECK(cufftSetStream(plan, stream));
            SHIFTNORM_CUFFT_CHECK(cufftExecR2C(plan, planes_.data(), spec_.data()));
            detail::spectrum_features_kernel<cufftComplex><<<detail::grid_for(total_out, block), block, 0, stream>>>(
                spec_.data(), out + first * size_, count * planes, h, w, o.half, o.shift,
                o.scale == spectral::scaling::raw, inv_scale, static_cast<float>(centre * static_cast<double>(pix)));
            SHIFTNORM_CUDA_CHECK(cudaGetLastError());
        }
    }

    index_t channels_, h_, w_;
    spectral::spectrum_options o_;
    index_t size_;
    fft2_r2c_plan_cache plans_;
    device_buffer<float> planes_;
    device_buffer<cufftComplex> spec_;
};

}  // namespace shiftnorm::backend::cuda
