// SPDX-License-Identifier: MIT
// Channel concatenation dst = cat(src, body(src)) along C: the DenseNet connectivity pattern.
#pragma once

#include <cstring>
#include <string>
#include <utility>

#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! DenseNet layer wrapper (Huang et al. 2017, eq. 2): dst = [src, body(src)] along channels, so
//! a chain of dense_concat modules forms a dense block (each layer sees all earlier features).
//! body must keep N, H, W. Its parameters are named directly under this module's prefix.
//! Backward: diff_src = diff_dst[:, :C] + body'(diff_dst[:, C:]).
class dense_concat : public module {
public:
    explicit dense_concat(module_ptr body) : body_(std::move(body)) {
        if (!body_) shiftnorm::detail::fail("dense_concat", "body", "a non-null module", "nullptr");
    }
    template <class Body, class = std::enable_if_t<!std::is_same_v<std::decay_t<Body>, module_ptr>>>
    explicit dense_concat(Body&& body) : dense_concat(boxed(std::forward<Body>(body))) {}

    shape4 output_shape(const shape4& s) const override {
        const shape4 b = body_->output_shape(s);
        if (b.n != s.n || b.h != s.h || b.w != s.w)
            shiftnorm::detail::fail<shape_error>("dense_concat", "body output (same N, H, W)", s, b);
        return {s.n, s.c + b.c, s.h, s.w};
    }

    const tensor<float>& forward(const tensor<float>& src, mode m) override {
        const tensor<float>& b = body_->forward(src, m);
        const shape4 is = src.shape(), bs = b.shape();
        if (bs.n != is.n || bs.h != is.h || bs.w != is.w)
            shiftnorm::detail::fail<shape_error>("dense_concat", "body output (same N, H, W)", is, bs);
        const shape4 os{is.n, is.c + bs.c, is.h, is.w};
        nn::detail::ensure_shape(dst_, os);
        const index_t a_len = is.c * is.h * is.w, b_len = bs.c * bs.h * bs.w;
        for (index_t n = 0; n < is.n; ++n) {
            std::memcpy(dst_.data() + n * (a_len + b_len), src.data() + n * a_len, std::size_t(a_len) * sizeof(float));
            std::memcpy(dst_.data() + n * (a_len + b_len) + a_len, b.data() + n * b_len,
                        std::size_t(b_len) * sizeof(float));
        }
        src_shape_ = is;
        body_shape_ = bs;
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        nn::detail::check_diff_dst("dense_concat::backward", dst_.shape(), diff_dst);
        const shape4 is = src_shape_, bs = body_shape_;
        const index_t a_len = is.c * is.h * is.w, b_len = bs.c * bs.h * bs.w;
        nn::detail::ensure_shape(diff_body_, bs);
        for (index_t n = 0; n < is.n; ++n)
            std::memcpy(diff_body_.data() + n * b_len, diff_dst.data() + n * (a_len + b_len) + a_len,
                        std::size_t(b_len) * sizeof(float));
        const tensor<float>& db = body_->backward(diff_body_);
        nn::detail::ensure_shape(diff_src_, is);
        for (index_t n = 0; n < is.n; ++n) {
            const float* dy = diff_dst.data() + n * (a_len + b_len);
            const float* dbn = db.data() + n * a_len;
            float* dx = diff_src_.data() + n * a_len;
            for (index_t i = 0; i < a_len; ++i) dx[i] = dy[i] + dbn[i];
        }
        return diff_src_;
    }

    void collect(const std::string& prefix, param_set& out) override { body_->collect(prefix, out); }
    void reset_parameters(rng_type& g) override { body_->reset_parameters(g); }
    std::string describe() const override { return "dense_concat(" + body_->describe() + ")"; }

private:
    module_ptr body_;

public:
    void for_each_child(const std::function<void(module&)>& f) override { f(*body_); }

private:
    shape4 src_shape_{}, body_shape_{};
    tensor<float> dst_, diff_src_, diff_body_;
};

}  // namespace shiftnorm::nn
