// SPDX-License-Identifier: MIT
// Fully connected layer over flattened NCHW activations (PyTorch nn.Linear after flatten).
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "shiftnorm/nn/gemm_avx512.hpp"
#include "shiftnorm/nn/init.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! dst[n, o] = sum_k weight[o, k] * src[n, k] + bias[o], src flattened to [N, C*H*W] (C order,
//! as torch.flatten(x, 1)); dst has shape [N, out, 1, 1]. weight is [out, in] as in PyTorch.
//! Cost: one GEMM of N x in x out forward, two backward. In a per-image mode (eval) an image's
//! logits are the same bits whatever batch it comes in (Eigen's GEMM kernels, and so its
//! rounding, depend on the batch size): the forward runs the AVX-512 kernel, which sums each
//! element in k order whatever its tile (on CPUs with AVX-512F), else one matrix-vector product
//! per image.
class linear : public module {
public:
    std::vector<float> weight, bias, diff_weight, diff_bias;

    linear(index_t in_features, index_t out_features, bool with_bias = true)
        : in_(in_features), out_(out_features), has_bias_(with_bias) {
        if (in_features <= 0) shiftnorm::detail::fail<shape_error>("linear", "in_features", "> 0", in_features);
        if (out_features <= 0) shiftnorm::detail::fail<shape_error>("linear", "out_features", "> 0", out_features);
        weight.assign(std::size_t(in_ * out_), 0.0f);
        diff_weight.assign(weight.size(), 0.0f);
        if (has_bias_) {
            bias.assign(std::size_t(out_), 0.0f);
            diff_bias.assign(bias.size(), 0.0f);
        }
    }

    index_t in_features() const { return in_; }
    index_t out_features() const { return out_; }

    shape4 output_shape(const shape4& s) const override {
        if (s.c * s.h * s.w != in_)
            shiftnorm::detail::fail<shape_error>("linear", "src features (C*H*W)", in_, s);
        return {s.n, out_, 1, 1};
    }

    //! PyTorch's default: weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)).
    void reset_parameters(rng_type& g) override {
        const double bound = 1.0 / std::sqrt(double(in_));
        uniform_init(weight, bound, g);
        if (has_bias_) uniform_init(bias, bound, g);
    }

    const tensor<float>& forward(const tensor<float>& src, mode m) override {
        const shape4 os = output_shape(src.shape());
        nn::detail::ensure_shape(dst_, os);
        src_ = &src;
        nn::detail::cmap_rm X(src.data(), os.n, in_);
        nn::detail::cmap_rm Wm(weight.data(), out_, in_);
        nn::detail::map_rm Y(dst_.data(), os.n, out_);
        if (per_image_mode(m) && nn::detail::avx512_gemm_available()) {
#if defined(SHIFTNORM_HAS_AVX512_GEMM)
            // Y^T [out x N] = W [out x in] * X^T [in x N] with the AVX-512 kernel, which sums every
            // element over k in order whatever its tile: each image's bits independent of the batch
            xt_.resize(std::size_t(in_ * os.n));
            yt_.resize(std::size_t(out_ * os.n));
            Eigen::Map<nn::detail::matrix_rm>(xt_.data(), in_, os.n) = X.transpose();
            nn::detail::gemm_avx512(false, out_, os.n, in_, weight.data(), in_, xt_.data(), os.n, false, yt_.data(),
                                    os.n);
            Y = Eigen::Map<const nn::detail::matrix_rm>(yt_.data(), out_, os.n).transpose();
#endif
        } else if (per_image_mode(m)) {
            for (index_t n = 0; n < os.n; ++n) {
                Eigen::Map<Eigen::VectorXf> y(dst_.data() + n * out_, out_);
                y.noalias() = Wm * Eigen::Map<const Eigen::VectorXf>(src.data() + n * in_, in_);
            }
        } else {
            Y.noalias() = X * Wm.transpose();
        }
        if (has_bias_) Y.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias.data(), out_);
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        nn::detail::check_forwarded("linear::backward", src_);
        nn::detail::check_diff_dst("linear::backward", dst_.shape(), diff_dst);
        const index_t N = dst_.shape().n;
        nn::detail::cmap_rm dY(diff_dst.data(), N, out_);
        nn::detail::cmap_rm X(src_->data(), N, in_);
        if (param_grad_) {
            nn::detail::map_rm dW(diff_weight.data(), out_, in_);
            dW.noalias() += dY.transpose() * X;
            if (has_bias_) Eigen::Map<Eigen::RowVectorXf>(diff_bias.data(), out_) += dY.colwise().sum();
        }
        if (!input_grad_) return diff_dst;
        nn::detail::ensure_shape(diff_src_, src_->shape());
        nn::detail::map_rm dX(diff_src_.data(), N, in_);
        nn::detail::cmap_rm Wm(weight.data(), out_, in_);
        dX.noalias() = dY * Wm;
        return diff_src_;
    }

    void collect(const std::string& prefix, param_set& out) override {
        out.params.push_back({join_name(prefix, "weight"), {out_, in_}, weight.data(), diff_weight.data(),
                              index_t(weight.size()), param_kind::weight});
        if (has_bias_)
            out.params.push_back({join_name(prefix, "bias"), {out_}, bias.data(), diff_bias.data(), out_,
                                  param_kind::bias});
    }

    std::string describe() const override {
        return shiftnorm::detail::concat("linear(", in_, "->", out_, has_bias_ ? ", bias)" : ")");
    }

private:
    index_t in_, out_;
    bool has_bias_;
    const tensor<float>* src_ = nullptr;
    tensor<float> dst_, diff_src_;
    std::vector<float> xt_, yt_;  // eval-mode transposes for the AVX-512 kernel
};

}  // namespace shiftnorm::nn
