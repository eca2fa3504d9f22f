// SPDX-License-Identifier: MIT
// Seed 002's spectral corruption detector on CUDA: cuFFT spectrum features, standardization and
// the Linear-ReLU-Linear-ReLU-Linear MLP on the device, softmax on the host.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "shiftnorm/backend/cuda/device_buffer.cuh"
#include "shiftnorm/backend/cuda/spectrum.cuh"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/spectral/detector.hpp"

namespace shiftnorm::backend::cuda {

namespace detail {
//! y[i][o] = b[o] + sum_k x[i][k] * w[o][k] (PyTorch's Linear, row-major), ReLU when asked;
//! one thread per output, float accumulation in k order.
template <int = 0>
__global__ void linear_rows_kernel(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                                   float* __restrict__ y, index_t n, index_t in, index_t out, bool relu) {
    const index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= n * out) return;
    const index_t i = t / out, o = t % out;
    const float* xr = x + i * in;
    const float* wr = w + o * in;
    float acc = 0.0f;
    for (index_t k = 0; k < in; ++k) acc += xr[k] * wr[k];
    if (b) acc += b[o];
    y[t] = relu && acc < 0.0f ? 0.0f : acc;
}
//! y[i][j] = (x[i][j] - mean[j]) / std[j], as spectral::detector::standardize_rows.
template <int = 0>
__global__ void standardize_rows_kernel(const float* __restrict__ x, float* __restrict__ y, const float* __restrict__ mean,
                                        const float* __restrict__ sd, index_t n, index_t d) {
    const index_t t = index_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= n * d) return;
    const index_t j = t % d;
    y[t] = (x[t] - mean[j]) / sd[j];
}
}  // namespace detail

//! The inference side of a trained spectral::detector on the GPU: a copy of its spectrum
//! options, input standardization and MLP weights (taken at construction; retrain on the CPU
//! and construct again). probabilities() takes uint8 NCHW images in DEVICE memory and returns
//! host probabilities (n x num_classes(), softmax in double like the CPU detector), so
//! spectral::decide_batch / decide_images apply unchanged. Per call: the spectrum's launches and
//! cuFFT, one standardization launch, one launch per linear layer, one copy of n x K logits
//! and one stream synchronization. Not thread-safe (one object per stream of work).
class detector {
public:
    //! Throws value_error when `cpu` is not Linear-ReLU-Linear-ReLU-Linear.
    explicit detector(spectral::detector& cpu)
        : spec_(cpu.channels(), cpu.height(), cpu.width(), cpu.features().options()), classes_(cpu.classes()) {
        const auto linears = nn::find_all<nn::linear>(cpu.network());
        if (linears.size() != 3)
            shiftnorm::detail::fail("cuda::detector", "cpu network", "3 linear layers", linears.size());
        for (const nn::linear* l : linears) {
            layer L;
            L.in = l->in_features(), L.out = l->out_features();
            L.w.assign_sync(l->weight);
            if (!l->bias.empty()) L.b.assign_sync(l->bias);
            layers_.push_back(std::move(L));
        }
        if (layers_.front().in != spec_.size() || layers_.back().out != index_t(classes_.size()))
            shiftnorm::detail::fail("cuda::detector", "cpu network", "feature_size() inputs and num_classes() outputs",
                                    layers_.front().in);
        if (!cpu.input_mean().empty()) {
            mean_.assign_sync(cpu.input_mean());
            std_.assign_sync(cpu.input_std());
        }
    }

    index_t channels() const { return spec_.channels(); }
    index_t height() const { return spec_.height(); }
    index_t width() const { return spec_.width(); }
    index_t num_classes() const { return index_t(classes_.size()); }
    const std::vector<std::string>& classes() const { return classes_; }

    //! Class probabilities of n uint8 NCHW images (device memory, channels() x height() x
    //! width() bytes each), on the host; waits for `stream`.
    std::vector<float> probabilities(const std::uint8_t* images, index_t n, cudaStream_t stream = nullptr) {
        if (n < 0) shiftnorm::detail::fail<shape_error>("cuda::detector::probabilities", "n", ">= 0", n);
        if (n == 0) return {};
        features_.reserve_discard(std::size_t(n * spec_.size()));
        spec_.batch(images, n, features_.data(), stream);
        return probabilities_from_features(features_.data(), n, stream);
    }

    //! Class probabilities from n rows of spectrum features (device memory, feature_size()
    //! floats each; standardized here when the CPU detector was). Waits for `stream`.
    std::vector<float> probabilities_from_features(const float* features, index_t n, cudaStream_t stream = nullptr) {
        const char* where = "cuda::detector::probabilities_from_features";
        if (n < 0) shiftnorm::detail::fail<shape_error>(where, "n", ">= 0", n);
        if (n == 0) return {};
        if (features == nullptr) shiftnorm::detail::fail(where, "features", "a non-null pointer", "nullptr");
        detail::check_device_pointer(where, "features", features);
        constexpr int block = 256;
        const index_t D = spec_.size();
        const float* x = features;
        if (mean_.size() != 0) {
            work_in_.reserve_discard(std::size_t(n * D));
            detail::standardize_rows_kernel<<<detail::grid_for(n * D, block), block, 0, stream>>>(
                features, work_in_.data(), mean_.data(), std_.data(), n, D);
            SHIFTNORM_CUDA_CHECK(cudaGetLastError());
            x = work_in_.data();
        }
        for (std::size_t k = 0; k < layers_.size(); ++k) {
            const layer& L = layers_[k];
            device_buffer<float>& y = k % 2 == 0 ? work_a_ : work_b_;
            y.reserve_discard(std::size_t(n * L.out));
            detail::linear_rows_kernel<<<detail::grid_for(n * L.out, block), block, 0, stream>>>(
                x, L.w.data(), L.b.size() ? L.b.data() : nullptr, y.data(), n, L.in, L.out, k + 1 < layers_.size());
            SHIFTNORM_CUDA_CHECK(cudaGetLastError());
            x = y.data();
        }
        const index_t K = num_classes();
        std::vector<float> logits(std::size_t(n * K)), p(std::size_t(n * K));
        SHIFTNORM_CUDA_CHECK(cudaMemcpyAsync(logits.data(), x, logits.size() * sizeof(float), cudaMemcpyDeviceToHost, stream));
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
        spectral::detector::softmax_rows(logits.data(), n, K, p.data());
        return p;
    }

private:
    struct layer {
        device_buffer<float> w, b;
        index_t in = 0, out = 0;
    };
    spectrum spec_;
    std::vector<std::string> classes_;
    std::vector<layer> layers_;
    device_buffer<float> mean_, std_;
    device_buffer<float> features_, work_in_, work_a_, work_b_;
};

}  // namespace shiftnorm::backend::cuda
