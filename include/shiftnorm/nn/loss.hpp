// SPDX-License-Identifier: MIT
// Softmax cross-entropy loss over class logits, with its gradient and accuracy counting.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::nn {

//! Mean softmax cross-entropy (nn.CrossEntropyLoss, reduction='mean'):
//! L = -1/N sum_n log softmax(z_n)[y_n], logits z of shape [N, K, 1, 1] (or [N, K*H*W] read
//! as K = C*H*W classes). forward returns L (log-sum-exp shifted by the row max, in double);
//! backward returns diff_logits = (softmax(z) - onehot(y)) / N. Saves the probabilities.
class softmax_cross_entropy {
public:
    double forward(const tensor<float>& logits, const std::vector<std::int32_t>& labels) {
        const index_t N = logits.shape().n, K = logits.shape().c * logits.shape().h * logits.shape().w;
        if (N <= 0 || K <= 0) shiftnorm::detail::fail<shape_error>("softmax_cross_entropy", "logits", "non-empty", logits.shape());
        if (index_t(labels.size()) != N)
            shiftnorm::detail::fail<shape_error>("softmax_cross_entropy", "labels", shiftnorm::detail::concat(N, " labels"),
                                                 labels.size());
        prob_ = tensor<float>(logits.shape());
        labels_ = labels;
        double total = 0;
        for (index_t n = 0; n < N; ++n) {
            const std::int32_t y = labels[std::size_t(n)];
            if (y < 0 || y >= K)
                shiftnorm::detail::fail("softmax_cross_entropy", "label", shiftnorm::detail::concat("in [0, ", K, ")"), y);
            const float* z = logits.data() + n * K;
            float* p = prob_.data() + n * K;
            const double mx = *std::max_element(z, z + K);
            double s = 0;
            for (index_t k = 0; k < K; ++k) s += std::exp(double(z[k]) - mx);
            const double lse = mx + std::log(s);
            for (index_t k = 0; k < K; ++k) p[k] = float(std::exp(double(z[k]) - lse));
            total += lse - double(z[y]);
        }
        return total / double(N);
    }

    //! Gradient of the last forward's mean loss with respect to the logits.
    const tensor<float>& backward() {
        if (prob_.empty()) throw state_error("softmax_cross_entropy::backward: backward called before forward");
        diff_ = prob_;
        const index_t N = prob_.shape().n, K = prob_.numel() / N;
        const float inv = 1.0f / float(N);
        for (index_t n = 0; n < N; ++n) {
            float* d = diff_.data() + n * K;
            d[labels_[std::size_t(n)]] -= 1.0f;
            for (index_t k = 0; k < K; ++k) d[k] *= inv;
        }
        return diff_;
    }

    const tensor<float>& probabilities() const { return prob_; }

private:
    tensor<float> prob_, diff_;
    std::vector<std::int32_t> labels_;
};

//! Index of the largest logit of each row of [N, K, ...] logits (first one on ties).
inline std::vector<std::int32_t> argmax_rows(const tensor<float>& logits) {
    const index_t N = logits.shape().n, K = N ? logits.numel() / N : 0;
    std::vector<std::int32_t> out(std::size_t(N), 0);
    for (index_t n = 0; n < N; ++n) {
        const float* z = logits.data() + n * K;
        out[std::size_t(n)] = std::int32_t(std::max_element(z, z + K) - z);
    }
    return out;
}

//! Number of rows whose argmax equals the label.
inline index_t count_correct(const tensor<float>& logits, const std::vector<std::int32_t>& labels) {
    const auto pred = argmax_rows(logits);
    index_t c = 0;
    for (std::size_t i = 0; i < pred.size() && i < labels.size(); ++i) c += pred[i] == labels[i];
    return c;
}

}  // namespace shiftnorm::nn
