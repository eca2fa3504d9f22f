// SPDX-License-Identifier: MIT
// Residual connections: dst = body(src) + shortcut(src), with identity, zero-pad and projection shortcuts.
#pragma once

#include <algorithm>
#include <string>
#include <utility>

#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/module.hpp"
#include "shiftnorm/nn/sequential.hpp"

namespace shiftnorm::nn::detail {
//! dst = a + b elementwise over n floats (OpenMP-parallel for large tensors).
inline void add_arrays(const float* a, const float* b, float* dst, index_t n) {
SHIFTNORM_OMP(omp parallel for simd schedule(static) if (nn::detail::worth_threads(n)))
    for (index_t i = 0; i < n; ++i) dst[i] = a[i] + b[i];
}
//! dst = relu(a + b) elementwise (the add and the ReLU of a residual block in one pass).
inline void add_relu_arrays(const float* a, const float* b, float* dst, index_t n) {
SHIFTNORM_OMP(omp parallel for simd schedule(static) if (nn::detail::worth_threads(n)))
    for (index_t i = 0; i < n; ++i) dst[i] = relu_value(a[i] + b[i]);
}
}  // namespace shiftnorm::nn::detail

namespace shiftnorm::nn {

//! He et al. 2016 "option A" shortcut: subsample by `stride` (x[:, :, ::s, ::s]) and zero-pad
//! the channels to `out_channels`, (out-in)/2 zero planes before and the rest after (the
//! akamaster CIFAR ResNets pad planes/4 on each side). No parameters.
class zero_pad_shortcut : public module {
public:
    zero_pad_shortcut(index_t out_channels, index_t stride) : out_c_(out_channels), stride_(stride) {
        if (out_channels <= 0) shiftnorm::detail::fail<shape_error>("zero_pad_shortcut", "out_channels", "> 0", out_channels);
        if (stride <= 0) shiftnorm::detail::fail("zero_pad_shortcut", "stride", "> 0", stride);
    }

    shape4 output_shape(const shape4& s) const override {
        if (s.c > out_c_)
            shiftnorm::detail::fail<shape_error>("zero_pad_shortcut", "src channels",
                                                 shiftnorm::detail::concat("<= ", out_c_), s.c);
        return {s.n, out_c_, (s.h + stride_ - 1) / stride_, (s.w + stride_ - 1) / stride_};
    }

    const tensor<float>& forward(const tensor<float>& src, mode) override {
        const shape4 is = src.shape(), os = output_shape(is);
        nn::detail::ensure_shape(dst_, os);
        src_shape_ = is;
        const index_t before = (os.c - is.c) / 2;
        const index_t plane = os.h * os.w;
SHIFTNORM_OMP(omp parallel for schedule(static) if (nn::detail::worth_threads(dst_.numel())))
        for (index_t n = 0; n < is.n; ++n) {
            float* yn = dst_.data() + n * os.c * plane;
            std::fill(yn, yn + before * plane, 0.0f);
            std::fill(yn + (before + is.c) * plane, yn + os.c * plane, 0.0f);
            for (index_t c = 0; c < is.c; ++c) {
                const float* x = src.data() + (n * is.c + c) * is.h * is.w;
                float* y = yn + (c + before) * plane;
                for (index_t h = 0; h < os.h; ++h)
                    for (index_t w = 0; w < os.w; ++w) y[h * os.w + w] = x[h * stride_ * is.w + w * stride_];
            }
        }
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        if (src_shape_.n == 0 && src_shape_.c == 0) throw state_error("zero_pad_shortcut::backward: before forward");
        nn::detail::check_diff_dst("zero_pad_shortcut::backward", dst_.shape(), diff_dst);
        const shape4 is = src_shape_, os = dst_.shape();
        nn::detail::ensure_shape(diff_src_, is);
        const index_t before = (os.c - is.c) / 2;
SHIFTNORM_OMP(omp parallel for schedule(static) if (nn::detail::worth_threads(diff_src_.numel())))
        for (index_t n = 0; n < is.n; ++n) {
            float* dxn = diff_src_.data() + n * is.c * is.h * is.w;
            if (stride_ != 1) std::fill(dxn, dxn + is.c * is.h * is.w, 0.0f);
            for (index_t c = 0; c < is.c; ++c) {
                float* dx = dxn + c * is.h * is.w;
                const float* dy = diff_dst.data() + (n * os.c + c + before) * os.h * os.w;
                for (index_t h = 0; h < os.h; ++h)
                    for (index_t w = 0; w < os.w; ++w) dx[h * stride_ * is.w + w * stride_] = dy[h * os.w + w];
            }
        }
        return diff_src_;
    }

    std::string describe() const override {
        return shiftnorm::detail::concat("zero_pad_shortcut(->", out_c_, ", s", stride_, ")");
    }

private:
    index_t out_c_, stride_;
    shape4 src_shape_{};
    tensor<float> dst_, diff_src_;
};

//! dst = body(src) + shortcut(src); an absent shortcut is the identity. The body's parameters
//! are named directly under this module's prefix (`layer1.0.conv1.weight`), the shortcut's
//! under `<prefix>.<shortcut_name>` ("shortcut" in akamaster's CIFAR ResNets, "downsample" in
//! torchvision). Backward: diff_src = body'(diff_dst) + shortcut'(diff_dst).
//! Cost: the branches plus one add pass forward and backward (none in training where the body's
//! last batch norm takes the add and its first convolution the backward's: see forward_epilogue
//! and backward).
class residual : public module {
public:
    residual(module_ptr body, module_ptr shortcut = nullptr, std::string shortcut_name = "shortcut")
        : body_(std::move(body)), shortcut_(std::move(shortcut)), shortcut_name_(std::move(shortcut_name)) {
        if (!body_) shiftnorm::detail::fail("residual", "body", "a non-null module", "nullptr");
    }
    template <class Body, class = std::enable_if_t<!std::is_same_v<std::decay_t<Body>, module_ptr>>>
    explicit residual(Body&& body) : residual(boxed(std::forward<Body>(body))) {}
    template <class Body, class Shortcut,
              class = std::enable_if_t<!std::is_same_v<std::decay_t<Body>, module_ptr> ||
                                       !std::is_same_v<std::decay_t<Shortcut>, module_ptr>>>
    residual(Body&& body, Shortcut&& shortcut, std::string shortcut_name = "shortcut")
        : residual(boxed(std::forward<Body>(body)), boxed(std::forward<Shortcut>(shortcut)),
                   std::move(shortcut_name)) {}

    module& body() { return *body_; }
    module* shortcut() { return shortcut_.get(); }

    shape4 output_shape(const shape4& s) const override {
        const shape4 a = body_->output_shape(s);
        const shape4 b = shortcut_ ? shortcut_->output_shape(s) : s;
        if (a != b) shiftnorm::detail::fail<shape_error>("residual", "shortcut output", a, b);
        return a;
    }

    const tensor<float>& forward(const tensor<float>& src, mode m) override { return forward_epilogue(src, m, {}); }

    //! A ReLU after the add (no folded normalization, no further add).
    bool takes_epilogue(const epilogue& e) const override { return !e.coef && !e.add; }
    //! dst = relu?(body(src) + shortcut(src)) in one pass (inference fusion). In eval mode with
    //! inference fusion on and a sequential body, the shortcut runs first and the add and ReLU go
    //! into the body's last layer (sequential::forward_tail: a convolution's epilogue), whose
    //! output is then returned. Same bits either way.
    //! In training, the ReLU after the add in the add's pass, that ReLU layer skipped by the
    //! container: with a sequential body whose last layer takes them (a batch norm on a CPU
    //! schedule: module::takes_train_add_relu) the shortcut runs first and the add and ReLU go
    //! into that layer's normalize pass (the layer's output is returned), else add_relu_arrays;
    //! backward then masks the ReLU's output gradient by dst > 0 itself. Same bits as the add and
    //! nn::relu one by one.
    bool takes_train_relu() const override { return true; }
    const tensor<float>& forward_train_relu(const tensor<float>& src) override {
        const tensor<float>& out = forward_epilogue(src, mode::train, epilogue{nullptr, 0, true});
        relu_ = true;
        return out;
    }

    const tensor<float>& forward_epilogue(const tensor<float>& src, mode m, const epilogue& e) override {
        relu_ = false;
        out_ = nullptr;
        if (e.coef || e.add) throw state_error("residual::forward_epilogue: a residual folds only a ReLU");
        auto* seq = dynamic_cast<sequential*>(body_.get());
        if (seq && e.relu && (m == mode::eval || m == mode::train)) {
            const tensor<float>& b = shortcut_ ? shortcut_->forward(src, m) : src;
            const shape4 as = body_->output_shape(src.shape());
            if (as != b.shape()) shiftnorm::detail::fail<shape_error>("residual", "shortcut output", as, b.shape());
            bool applied = false;
            const tensor<float>* a = nullptr;
            if (m == mode::eval) {
                epilogue tail;
                tail.add = b.data(), tail.add_shape = b.shape(), tail.relu = true;
                a = &seq->forward_tail(src, m, tail, applied);
            } else {
                a = &seq->forward_train_tail(src, b, applied);
            }
            src_shape_ = src.shape();
            out_ = applied ? a : &sum(*a, b, true);
            return *out_;
        }
        const tensor<float>& a = body_->forward(src, m);
        const tensor<float>& b = shortcut_ ? shortcut_->forward(src, m) : src;
        if (a.shape() != b.shape()) shiftnorm::detail::fail<shape_error>("residual", "shortcut output", a.shape(), b.shape());
        src_shape_ = src.shape();
        out_ = &sum(a, b, e.relu);
        return *out_;
    }

    //! Whether the last backward's add ran in the body's first layer (module::backward_fused).
    bool add_folded() const { return add_folded_; }

    //! Whether the last forward's add (and ReLU) ran inside the body's last layer.
    bool add_fused() const { return out_ != nullptr && out_ != &dst_; }

    //! The shortcut's gradient first; then the body's, whose first layer adds the shortcut's to
    //! its input gradient image by image where it can (module::takes_backward_fusion: a
    //! convolution), else the add as a pass of its own. Same bits either way.
    const tensor<float>& backward(const tensor<float>& diff_relu) override {
        if (!out_) throw state_error("residual::backward: before forward");
        nn::detail::check_diff_dst("residual::backward", out_->shape(), diff_relu);
        // after forward_train_relu: the fused ReLU's backward first (nn::relu's, value for value)
        const tensor<float>& diff_dst = relu_ ? mask_relu(diff_relu) : diff_relu;
        add_folded_ = false;
        if (!input_grad_) {
            if (shortcut_) shortcut_->backward(diff_dst);
            body_->backward(diff_dst);
            return diff_dst;
        }
        const tensor<float>& db = shortcut_ ? shortcut_->backward(diff_dst) : diff_dst;
        const backward_fusion add{&db};
        if (body_->takes_backward_fusion(add)) {
            add_folded_ = true;
            return body_->backward_fused(diff_dst, add);
        }
        const tensor<float>& da = body_->backward(diff_dst);
        nn::detail::ensure_shape(diff_src_, src_shape_);
        nn::detail::add_arrays(da.data(), db.data(), diff_src_.data(), diff_src_.numel());
        return diff_src_;
    }

    void collect(const std::string& prefix, param_set& out) override {
        body_->collect(prefix, out);
        if (shortcut_) shortcut_->collect(join_name(prefix, shortcut_name_), out);
    }
    void reset_parameters(rng_type& g) override {
        body_->reset_parameters(g);
        if (shortcut_) shortcut_->reset_parameters(g);
    }
    void set_input_grad(bool on) override {
        input_grad_ = on;
        body_->set_input_grad(on);
        if (shortcut_) shortcut_->set_input_grad(on);
    }

    std::string describe() const override {
        std::string s = "residual(body: " + body_->describe();
        if (shortcut_) s += ", " + shortcut_name_ + ": " + shortcut_->describe();
        return s + ")";
    }

private:
    //! masked_ = the ReLU's backward of d on the last forward's output (nn::relu's, value for value).
    const tensor<float>& mask_relu(const tensor<float>& d) {
        nn::detail::ensure_shape(masked_, d.shape());
        nn::detail::relu_grad(out_->data(), d.data(), masked_.data(), d.numel());
        return masked_;
    }

    //! dst = a + b, or relu(a + b), in one pass.
    const tensor<float>& sum(const tensor<float>& a, const tensor<float>& b, bool relu) {
        nn::detail::ensure_shape(dst_, a.shape());
        if (relu)
            nn::detail::add_relu_arrays(a.data(), b.data(), dst_.data(), dst_.numel());
        else
            nn::detail::add_arrays(a.data(), b.data(), dst_.data(), dst_.numel());
        return dst_;
    }

    module_ptr body_, shortcut_;

public:
    void for_each_child(const std::function<void(module&)>& f) override {
        f(*body_);
        if (shortcut_) f(*shortcut_);
    }

private:
    std::string shortcut_name_;
    shape4 src_shape_{};
    bool relu_ = false;  //!< the last forward was forward_train_relu
    bool add_folded_ = false;  //!< the last backward's add ran in the body's first layer
    tensor<float> dst_, diff_src_, masked_;
    //! What the last forward returned: dst_, or the body's last layer's output when the add ran
    //! there (null before a forward)
    const tensor<float>* out_ = nullptr;
};

}  // namespace shiftnorm::nn
