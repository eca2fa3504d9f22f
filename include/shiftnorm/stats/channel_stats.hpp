// SPDX-License-Identifier: MIT
// Per-channel mean/variance pairs and the running (population) buffers every source keeps.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/core/moments.hpp"

namespace shiftnorm {

//! Per-channel statistics: mean and variance (its convention is the owner's to state).
template <class Stat = float>
struct channel_stats {
    std::vector<Stat> mean, var;

    channel_stats() = default;
    explicit channel_stats(index_t channels, Stat m = Stat(0), Stat v = Stat(1))
        : mean(std::size_t(channels), m), var(std::size_t(channels), v) {}
    index_t channels() const { return index_t(mean.size()); }
    bool empty() const { return mean.empty(); }

    //! Statistics of a batch: means and the requested variance of per-channel moments.
    template <class Acc>
    static channel_stats from_moments(const std::vector<moments<Acc>>& m, variance_kind kind) {
        channel_stats s(index_t(m.size()));
        for (std::size_t c = 0; c < m.size(); ++c) {
            s.mean[c] = Stat(m[c].mean);
            s.var[c] = Stat(m[c].variance(kind));
        }
        return s;
    }
};

//! Source statistics learned in training: running mean and running (unbiased) variance,
//! updated by an exponential moving average (momentum, PyTorch convention: new = (1 - m) *
//! old + m * batch) or a cumulative average (momentum unset, PyTorch momentum=None).
template <class Stat = float>
struct running_stats {
    enum class update { ema, cumulative };

    channel_stats<Stat> stats;        //!< running_mean / running_var (unbiased variance).
    double momentum = 0.1;            //!< EMA weight of the new batch, in [0, 1].
    update mode = update::ema;
    long long num_batches_tracked = 0;
    //! Channel updates skipped because the batch's mean or variance was NaN/Inf (not saved).
    long long nonfinite_skipped = 0;

    void init(index_t channels) {
        stats = channel_stats<Stat>(channels, Stat(0), Stat(1));
        num_batches_tracked = 0;
    }

    //! Folds one training batch's moments into the running buffers (unbiased variance). A
    //! channel whose batch moments are not finite keeps its running statistics (one NaN in a
    //! batch must not make them NaN forever); nonfinite_skipped counts such updates.
    template <class Acc>
    void observe(const std::vector<moments<Acc>>& m) {
        if (m.size() != stats.mean.size())
            detail::fail<shape_error>("running_stats::observe", "moments", stats.mean.size(), m.size());
        if (!(momentum >= 0.0 && momentum <= 1.0))
            detail::fail("running_stats::observe", "momentum", "a value in [0, 1]", momentum);
        ++num_batches_tracked;
        const double w = mode == update::ema ? momentum : 1.0 / double(num_batches_tracked);
        for (std::size_t c = 0; c < m.size(); ++c) {
            const double bm = double(m[c].mean), bv = double(m[c].variance(variance_kind::unbiased));
            if (!std::isfinite(bm) || !std::isfinite(bv)) {  // never poison the stored statistics
                ++nonfinite_skipped;
                continue;
            }
            stats.mean[c] = Stat((1.0 - w) * double(stats.mean[c]) + w * bm);
            stats.var[c] = Stat((1.0 - w) * double(stats.var[c]) + w * bv);
        }
    }
};

}  // namespace shiftnorm
