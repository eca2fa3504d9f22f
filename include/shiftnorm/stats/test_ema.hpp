// SPDX-License-Identifier: MIT
// Test-EMA source: BN statistics tracked over a stream of test batches (an online baseline of seed 002).
#pragma once

#include <cmath>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/stats/channel_stats.hpp"
#include "shiftnorm/stats/rectified.hpp"

namespace shiftnorm {

//! Exponential moving average of test-batch statistics, started from the source statistics:
//! every adaptation pass (forward_rectify, i.e. nn::mode::rectify) folds the incoming batch in,
//!   current <- (1 - momentum) * current + momentum * batch   (mean and unbiased variance),
//! and normalizes that batch with the updated `current`. momentum = 1 is per-batch test
//! statistics (unbiased variance); momentum = 0 never leaves the source statistics. Inference
//! (forward_inference) uses `current` without updating it. reset() goes back to the source.
//! Seed 002 compares its dynamic table against such online updates on streams whose
//! corruption changes often.
struct test_ema {
    static constexpr bool uses_batch_at_inference = false;
    static constexpr bool rectifiable = true;
    running_stats<float> running;
    double momentum = 0.1;  //!< weight of each new test batch, in [0, 1]
    channel_stats<float> current;
    bool started = false;
    //! Only `enabled` applies (a disabled layer keeps normalizing with the source statistics).
    rectify_options options;

    const channel_stats<float>& inference_stats(const channel_stats<float>*) const {
        return started ? current : running.stats;
    }
    template <class Acc>
    channel_stats<float> rectify(const std::vector<moments<Acc>>& target, index_t) {
        if (!(momentum >= 0.0 && momentum <= 1.0)) detail::fail("test_ema", "momentum", "a value in [0, 1]", momentum);
        if (index_t(target.size()) != running.stats.channels())
            detail::fail<shape_error>("test_ema::rectify", "channels", running.stats.channels(), target.size());
        if (!started) current = running.stats;
        started = true;
        for (std::size_t c = 0; c < target.size(); ++c) {
            const double bm = double(target[c].mean);
            const double bv = target[c].count >= 2 ? double(target[c].variance(variance_kind::unbiased))
                                                   : double(target[c].variance(variance_kind::biased));
            if (!std::isfinite(bm) || !std::isfinite(bv)) continue;  // a NaN batch leaves the EMA as it was
            current.mean[c] = float((1.0 - momentum) * double(current.mean[c]) + momentum * bm);
            current.var[c] = float((1.0 - momentum) * double(current.var[c]) + momentum * bv);
        }
        return current;
    }
    void reset() { started = false; }
};

}  // namespace shiftnorm
