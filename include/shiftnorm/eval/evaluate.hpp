// SPDX-License-Identifier: MIT
// Batched evaluation of a classifier on a dataset: accuracy and mean loss; one batch from indices.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/transforms.hpp"
#include "shiftnorm/nn/infer.hpp"
#include "shiftnorm/nn/loss.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::eval {

//! Accuracy and mean loss of a network on a dataset.
struct eval_result {
    double accuracy = 0, loss = 0;
    index_t images = 0;
    double seconds = 0;
    //! img/s after the first batch (which also allocates and first-touches the network's
    //! buffers): the steady-state rate; 0 when the data set is a single batch.
    double steady_images_per_second = 0;
};

//! Evaluates `net` in mode `m` (eval by default) on `ds`, in order, batch by batch. In eval mode
//! each batch runs depth-first in cache-sized chunks (nn::infer: same logits, bit for bit).
inline eval_result evaluate(nn::module& net, const data::image_dataset& ds, const data::normalization& norm,
                            index_t batch_size = 256, nn::mode m = nn::mode::eval,
                            const std::function<void(index_t done, index_t total)>& progress = {}) {
    if (ds.size() == 0) shiftnorm::detail::fail<shape_error>("evaluate", "dataset", "at least one image", 0);
    if (batch_size <= 0) shiftnorm::detail::fail("evaluate", "batch_size", "> 0", batch_size);
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<index_t> order(std::size_t(ds.size()));
    for (index_t i = 0; i < ds.size(); ++i) order[std::size_t(i)] = i;
    tensor<float> x, logits;
    std::vector<std::int32_t> y;
    nn::softmax_cross_entropy ce;
    eval_result r;
    double loss_sum = 0;
    index_t correct = 0;
    auto after_first = t0;
    for (index_t b = 0; b < ds.size(); b += batch_size) {
        const index_t n = std::min(batch_size, ds.size() - b);
        data::make_batch(ds, order, b, n, norm, {}, nullptr, x, y);
        nn::infer(net, x, m, logits);
        loss_sum += ce.forward(logits, y) * double(n);
        correct += nn::count_correct(logits, y);
        if (b == 0) after_first = std::chrono::steady_clock::now();
        if (progress) progress(b + n, ds.size());
    }
    const auto end = std::chrono::steady_clock::now();
    r.images = ds.size();
    r.accuracy = double(correct) / double(ds.size());
    r.loss = loss_sum / double(ds.size());
    r.seconds = std::chrono::duration<double>(end - t0).count();
    if (ds.size() > batch_size)
        r.steady_images_per_second = double(ds.size() - batch_size) /
                                     std::max(std::chrono::duration<double>(end - after_first).count(), 1e-9);
    return r;
}

//! Images `idx` of `ds` (in that order) as one normalized batch, and their labels if asked.
inline tensor<float> batch_of(const data::image_dataset& ds, const std::vector<index_t>& idx, const data::normalization& norm,
                              std::vector<std::int32_t>* labels = nullptr) {
    tensor<float> x;
    std::vector<std::int32_t> y;
    data::make_batch(ds, idx, 0, index_t(idx.size()), norm, {}, nullptr, x, y);
    if (labels) *labels = std::move(y);
    return x;
}

}  // namespace shiftnorm::eval
