// SPDX-License-Identifier: MIT
// Elementwise activations: ReLU (forward and backward), and the identity.
#pragma once

#include <string>

#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! max(x, 0) with NaN kept: backend::relu_value, the ReLU of every kernel (relu, the fused
//! epilogues of conv2d and residual, batch norm's training fusion).
inline float relu_value(float x) { return backend::relu_value(x); }

namespace detail {
//! dx = the ReLU's gradient of dy from its output y (backend::relu_grad_value), n values
//! (OpenMP-parallel for large tensors): relu::backward and a residual's fused ReLU.
inline void relu_grad(const float* SHIFTNORM_RESTRICT y, const float* SHIFTNORM_RESTRICT dy, float* SHIFTNORM_RESTRICT dx,
                      index_t n) {
SHIFTNORM_OMP(omp parallel for simd schedule(static) if (nn::detail::worth_threads(n)))
    for (index_t i = 0; i < n; ++i) dx[i] = backend::relu_grad_value(y[i], dy[i]);
}
}  // namespace detail

//! dst = max(src, 0), NaN stays NaN (as torch.relu: a NaN must not turn into a silent 0). Backward: diff_src = diff_dst where dst > 0, else 0 (PyTorch's choice of
//! subgradient 0 at 0). Saves nothing beyond its own dst. Cost: 2 T forward, 3 T backward.
class relu : public module {
public:
    shape4 output_shape(const shape4& s) const override { return s; }

    const tensor<float>& forward(const tensor<float>& src, mode) override {
        nn::detail::ensure_shape(dst_, src.shape());
        const float* x = src.data();
        float* y = dst_.data();
        const index_t n = src.numel();
SHIFTNORM_OMP(omp parallel for simd schedule(static) if (nn::detail::worth_threads(n)))
        for (index_t i = 0; i < n; ++i) y[i] = relu_value(x[i]);  // NaN propagates (PyTorch)
        forwarded_ = true;
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        if (!forwarded_) throw state_error("relu::backward: backward called before forward");
        nn::detail::check_diff_dst("relu::backward", dst_.shape(), diff_dst);
        nn::detail::ensure_shape(diff_src_, dst_.shape());
        nn::detail::relu_grad(dst_.data(), diff_dst.data(), diff_src_.data(), dst_.numel());
        return diff_src_;
    }

    std::string describe() const override { return "relu"; }

private:
    bool forwarded_ = false;
    tensor<float> dst_, diff_src_;
};

//! dst = src (a named placeholder, e.g. an identity shortcut that a checkpoint never names).
class identity : public module {
public:
    shape4 output_shape(const shape4& s) const override { return s; }
    const tensor<float>& forward(const tensor<float>& src, mode) override { return src; }
    const tensor<float>& backward(const tensor<float>& diff_dst) override { return diff_dst; }
    std::string describe() const override { return "identity"; }
};

}  // namespace shiftnorm::nn
