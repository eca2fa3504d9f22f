// SPDX-License-Identifier: MIT
// The network as an attack sees it: logits and input gradients of a batch, in pixel or normalized space.
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/nn/loss.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::attack {

//! Where an attack works (docs/attacks.md):
//!  - pixel: x in [0, 1]; the model normalizes inside ((x - mean_c) / std_c, then the network);
//!    eps and the step are in pixel units (8/255 = eight grey levels); x_adv is clipped to [0, 1].
//!    The default, and what RobustBench and most papers after 2018 report.
//!  - normalized: x is the normalized batch the network reads; eps is in normalized units and
//!    x_adv is clipped to the [min, max] of the clean normalized batch (one pair for the whole
//!    batch): the convention of seed 003's reference code, whose eps = 0.02 is ~0.0046 in pixel
//!    units for CIFAR's std 0.229.
enum class input_space { pixel, normalized };

inline const char* to_string(input_space s) { return s == input_space::pixel ? "pixel" : "normalized"; }

//! The box x_adv must stay in.
struct clip_box {
    float lo = 0.0f, hi = 1.0f;
};

//! [min, max] of a batch (the normalized-space box of the reference).
inline clip_box batch_range(const tensor<float>& x) {
    if (x.numel() == 0) shiftnorm::detail::fail<shape_error>("attack::batch_range", "x", "a non-empty batch", x.shape());
    const auto mm = std::minmax_element(x.begin(), x.end());
    return {*mm.first, *mm.second};
}

//! A network under attack: `net` run in `mode` (nn::mode::eval: stored statistics, e.g. BN's
//! population statistics or RobustNorm's configured variant; nn::mode::batch: the statistics of
//! the batch being classified, differentiated through), preceded in pixel space by the input
//! normalization (mean, std per channel, or one value for all channels).
//!
//! Neither mode changes the network's stored statistics (nn::mode::train is refused). The
//! constructor switches the input gradient on for the whole network (set_input_grad(true)) and
//! the parameter gradients of convolutions and linear layers off (set_param_grad(false): an
//! attack needs only the input gradient); before training the network again, call
//! net.set_param_grad(true) and net.zero_grad(). Cost of gradient(): one forward and one
//! input-only backward of the network.
class model {
public:
    model(nn::module& net, nn::mode m, input_space space, std::vector<float> mean = {0.0f}, std::vector<float> std = {1.0f})
        : net_(&net), mode_(m), space_(space), mean_(std::move(mean)), std_(std::move(std)) {
        if (m == nn::mode::train || m == nn::mode::rectify)
            throw value_error(shiftnorm::detail::concat("attack::model: mode '", nn::to_string(m),
                                                        "' would change the network's stored statistics; use eval or batch"));
        if (space_ == input_space::normalized) mean_ = {0.0f}, std_ = {1.0f};
        if (mean_.empty() || std_.empty() || (mean_.size() != std_.size() && mean_.size() != 1 && std_.size() != 1))
            shiftnorm::detail::fail("attack::model", "mean/std", "1 or C values each", mean_.size());
        for (float s : std_)
            if (!(s > 0.0f) || !std::isfinite(s)) shiftnorm::detail::fail("attack::model", "std", "finite and > 0", s);
        net.set_input_grad(true);
        net.set_param_grad(false);
    }

    nn::mode mode() const { return mode_; }
    input_space space() const { return space_; }
    nn::module& network() { return *net_; }

    //! Logits of the batch x (attack space, NCHW). Valid until the next call.
    const tensor<float>& forward(const tensor<float>& x) {
        const index_t C = x.shape().c;
        check_channels(C);
        if (space_ == input_space::normalized) return net_->forward(x, mode_);
        if (xn_.shape() != x.shape()) xn_ = tensor<float>(x.shape());
        const index_t hw = x.shape().h * x.shape().w;
        for (index_t n = 0; n < x.shape().n; ++n)
            for (index_t c = 0; c < C; ++c) {
                const float m = mean_of(c), inv = 1.0f / std_of(c);
                const float* s = x.data() + (n * C + c) * hw;
                float* d = xn_.data() + (n * C + c) * hw;
                for (index_t i = 0; i < hw; ++i) d[i] = (s[i] - m) * inv;
            }
        return net_->forward(xn_, mode_);
    }

    //! Gradient with respect to x (attack space) of sum_k diff_logits_k * logits_k of the last
    //! forward call.
    const tensor<float>& backward(const tensor<float>& diff_logits) {
        const tensor<float>& g = net_->backward(diff_logits);
        if (space_ == input_space::normalized) return g;
        if (grad_.shape() != g.shape()) grad_ = tensor<float>(g.shape());
        const index_t C = g.shape().c, hw = g.shape().h * g.shape().w;
        for (index_t n = 0; n < g.shape().n; ++n)
            for (index_t c = 0; c < C; ++c) {
                const float inv = 1.0f / std_of(c);
                const float* s = g.data() + (n * C + c) * hw;
                float* d = grad_.data() + (n * C + c) * hw;
                for (index_t i = 0; i < hw; ++i) d[i] = s[i] * inv;
            }
        return grad_;
    }

    //! Mean cross-entropy of the batch and its gradient with respect to x (copied into `grad`).
    //! The mean's 1/N does not change a sign step; in batch mode the loss couples the images
    //! through the statistics, as in the reference (a batch is attacked as a whole).
    double loss_gradient(const tensor<float>& x, const std::vector<std::int32_t>& labels, tensor<float>& grad) {
        const double loss = ce_.forward(forward(x), labels);
        grad = backward(ce_.backward());
        return loss;
    }

    //! Predicted classes of x.
    std::vector<std::int32_t> predict(const tensor<float>& x) { return nn::argmax_rows(forward(x)); }

private:
    float mean_of(index_t c) const { return mean_.size() == 1 ? mean_[0] : mean_[std::size_t(c)]; }
    float std_of(index_t c) const { return std_.size() == 1 ? std_[0] : std_[std::size_t(c)]; }
    void check_channels(index_t C) const {
        if ((mean_.size() != 1 && index_t(mean_.size()) != C) || (std_.size() != 1 && index_t(std_.size()) != C))
            shiftnorm::detail::fail<shape_error>("attack::model", "x channels",
                                                 shiftnorm::detail::concat(std::max(mean_.size(), std_.size()), " (mean/std)"), C);
    }

    nn::module* net_;
    nn::mode mode_;
    input_space space_;
    std::vector<float> mean_, std_;
    tensor<float> xn_, grad_;
    nn::softmax_cross_entropy ce_;
};

}  // namespace shiftnorm::attack
