// SPDX-License-Identifier: MIT
// Inverted dropout (Srivastava et al. 2014) with a seeded, reproducible mask.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "shiftnorm/nn/init.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! In mode::train each element is zeroed with probability p and the rest are scaled by
//! 1/(1-p) (so eval is the identity). The mask comes from the layer's own engine, seeded at
//! construction or by reset_parameters: runs are reproducible. Saves the mask for backward.
class dropout : public module {
public:
    explicit dropout(double p = 0.5, std::uint64_t seed = 0) : p_(p), gen_(seed) {
        if (!(p >= 0.0 && p < 1.0)) shiftnorm::detail::fail("dropout", "p", "a probability in [0, 1)", p);
    }

    double p() const { return p_; }
    shape4 output_shape(const shape4& s) const override { return s; }
    void reset_parameters(rng_type& g) override { gen_.seed(g()); }

    const tensor<float>& forward(const tensor<float>& src, mode m) override {
        nn::detail::ensure_shape(dst_, src.shape());
        active_ = m == mode::train && p_ > 0.0;
        const index_t n = src.numel();
        if (!active_) {
            std::copy_n(src.data(), n, dst_.data());
        } else {
            mask_.resize(std::size_t(n));
            std::bernoulli_distribution keep(1.0 - p_);
            const float scale = float(1.0 / (1.0 - p_));
            for (index_t i = 0; i < n; ++i) {
                mask_[std::size_t(i)] = keep(gen_) ? scale : 0.0f;
                dst_[i] = src[i] * mask_[std::size_t(i)];
            }
        }
        forwarded_ = true;
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        if (!forwarded_) throw state_error("dropout::backward: backward called before forward");
        nn::detail::check_diff_dst("dropout::backward", dst_.shape(), diff_dst);
        if (!active_) return diff_dst;
        nn::detail::ensure_shape(diff_src_, dst_.shape());
        for (index_t i = 0; i < diff_dst.numel(); ++i) diff_src_[i] = diff_dst[i] * mask_[std::size_t(i)];
        return diff_src_;
    }

    std::string describe() const override { return shiftnorm::detail::concat("dropout(", p_, ")"); }

private:
    double p_;
    rng_type gen_;
    bool active_ = false, forwarded_ = false;
    std::vector<float> mask_;
    tensor<float> dst_, diff_src_;
};

}  // namespace shiftnorm::nn
