// SPDX-License-Identifier: MIT
// Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay (PyTorch semantics).
#pragma once

#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::train {

//! Knobs of sgd, named as torch.optim.SGD's arguments.
struct sgd_options {
    double momentum = 0.9;
    double weight_decay = 5e-4;
    double dampening = 0.0;
    bool nesterov = false;
    bool decay_norm_and_bias = true;  //!< false: no weight decay on norm parameters and biases
};

//! torch.optim.SGD, step for every trainable parameter p with gradient g:
//!   g <- g + wd * p;  buf <- momentum * buf + (1 - dampening) * g  (buf <- g on the first step);
//!   g <- g + momentum * buf (Nesterov) or g <- buf;  p <- p - lr * g.
//! Momentum buffers are named after their parameters so checkpoints can store them.
class sgd {
public:
    sgd(nn::param_set params, sgd_options o = {}) : opt_(o), params_(params.trainable()) {
        if (o.momentum < 0) shiftnorm::detail::fail("sgd", "momentum", ">= 0", o.momentum);
        if (o.weight_decay < 0) shiftnorm::detail::fail("sgd", "weight_decay", ">= 0", o.weight_decay);
        if (o.nesterov && (o.momentum <= 0 || o.dampening != 0))
            shiftnorm::detail::fail("sgd", "nesterov", "momentum > 0 and dampening = 0", o.momentum);
        buffers_.resize(params_.size());
        for (std::size_t i = 0; i < params_.size(); ++i) buffers_[i].assign(std::size_t(params_[i].size), 0.0f);
    }

    const sgd_options& options() const { return opt_; }
    long long steps() const { return steps_; }
    void set_steps(long long s) { steps_ = s; }

    //! One update with learning rate lr; gradients are left untouched (call zero_grad after).
    void step(double lr) {
        const bool first = steps_ == 0;
        const float m = float(opt_.momentum), damp = float(1.0 - opt_.dampening), flr = float(lr);
        for (std::size_t k = 0; k < params_.size(); ++k) {
            const auto& p = params_[k];
            const bool decay = opt_.decay_norm_and_bias ||
                               !(p.kind == nn::param_kind::bias || p.kind == nn::param_kind::norm_weight ||
                                 p.kind == nn::param_kind::norm_bias);
            const float wd = decay ? float(opt_.weight_decay) : 0.0f;
            float* w = p.value;
            const float* g = p.grad;
            float* buf = buffers_[k].data();
            for (index_t i = 0; i < p.size; ++i) {
                float d = g[i] + wd * w[i];
                if (m != 0.0f) {
                    buf[i] = first ? d : m * buf[i] + damp * d;
                    d = opt_.nesterov ? d + m * buf[i] : buf[i];
                }
                w[i] -= flr * d;
            }
        }
        ++steps_;
    }

    //! Parameter names and momentum buffers, for checkpoints.
    const std::vector<nn::param_ref>& params() const { return params_; }
    std::vector<std::vector<float>>& momentum_buffers() { return buffers_; }

private:
    sgd_options opt_;
    std::vector<nn::param_ref> params_;
    std::vector<std::vector<float>> buffers_;
    long long steps_ = 0;
};

}  // namespace shiftnorm::train
