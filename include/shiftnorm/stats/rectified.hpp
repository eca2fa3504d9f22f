// SPDX-License-Identifier: MIT
// Rectified statistics source: re-estimate BN statistics from k unlabeled target samples.
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/stats/channel_stats.hpp"

namespace shiftnorm {

//! Which statistics rectification replaces (seed 000, Table 6).
enum class adapt_what { both, mean_only, var_only };

//! "both", "mean" or "var" (the names the CLI, the eval part and the Python package use);
//! value_error naming `context` otherwise.
inline adapt_what parse_adapt_what(const std::string& s, const std::string& context = "what") {
    if (s == "both") return adapt_what::both;
    if (s == "mean") return adapt_what::mean_only;
    if (s == "var") return adapt_what::var_only;
    throw value_error(context + ": the statistics adapted must be both, mean or var, got '" + s + "'");
}

//! Which third of a network's BN layers layer i of L belongs to (seed 000, Table 7: front = 0,
//! middle = 1, end = 2): min(2, 3i / L), in BN-layer order.
inline int rectify_third(std::size_t i, std::size_t layers) {
    return int(std::min<std::size_t>(2, i * 3 / std::max<std::size_t>(layers, 1)));
}

//! What each rectified layer normalizes with DURING the rectification pass, i.e. what the
//! following layers see while their own statistics are estimated. What is STORED is decided by
//! `what`, `prior` and `variance` either way.
enum class rectify_pass {
    //! The batch mean and biased batch variance, whatever is kept afterwards: one PyTorch
    //! train-mode forward, then only the chosen statistic replaces the source one. This is the
    //! paper's procedure (seed 000, Tables 6 and 7) and the default.
    batch,
    //! The statistics being stored (mean-only: batch mean with the source variance; var-only:
    //! source mean with the batch variance; prior > 0: the mixture), the batch part biased.
    //! Schneider et al. (2020) normalize with the mixture in every layer, so this is their
    //! procedure for prior > 0; for `both` with prior 0 it equals `batch`.
    adapted,
};

//! Options of BN-statistics rectification (Benz et al., "Revisiting Batch Normalization for
//! Improving Corruption Robustness", seed 000; prior mixing from Schneider et al. 2020).
struct rectify_options {
    adapt_what what = adapt_what::both;
    //! Prior strength N: adapted = N/(N+n) * source + n/(N+n) * target, n = samples in the
    //! rectification batch. 0 (default, the paper's procedure) replaces the source statistics.
    double prior = 0.0;
    //! Variance stored from the target batch: unbiased (n/(n-1), the reference's choice) or biased.
    variance_kind variance = variance_kind::unbiased;
    //! Whether this layer takes part (Table 7 adapts the front, middle or end third only). A
    //! disabled layer normalizes with its source statistics in the pass (PyTorch: left in eval
    //! mode) and keeps them.
    bool enabled = true;
    //! What the pass normalizes with (see rectify_pass).
    rectify_pass pass = rectify_pass::batch;
};

namespace detail {
//! The rectified statistics of one layer from a target batch's per-channel moments.
//! `samples` is the number of images n in the batch (used by prior mixing only).
template <class Acc>
channel_stats<float> rectify_stats(const channel_stats<float>& source, const std::vector<moments<Acc>>& target,
                                   index_t samples, const rectify_options& o) {
    if (o.prior < 0.0) fail("rectify", "prior", "N >= 0", o.prior);
    if (index_t(target.size()) != source.channels())
        fail<shape_error>("rectify", "channels", source.channels(), target.size());
    channel_stats<float> r = source;
    const double wt = o.prior == 0.0 ? 1.0 : double(samples) / (o.prior + double(samples));
    for (std::size_t c = 0; c < target.size(); ++c) {
        if (target[c].count < 2 && o.variance == variance_kind::unbiased && o.what != adapt_what::mean_only)
            throw value_error(concat("rectify: channel ", c, " has ", target[c].count,
                                     " value(s); the unbiased variance needs at least 2 (use more samples "
                                     "or variance_kind::biased)"));
        if (o.what != adapt_what::var_only)
            r.mean[c] = float((1.0 - wt) * double(source.mean[c]) + wt * double(target[c].mean));
        if (o.what != adapt_what::mean_only)
            r.var[c] = float((1.0 - wt) * double(source.var[c]) + wt * double(target[c].variance(o.variance)));
    }
    return r;
}
//! What the rectification pass normalizes with: rectify_stats with a biased batch variance.
template <class Acc>
channel_stats<float> rectify_pass_stats(const channel_stats<float>& source, const std::vector<moments<Acc>>& target,
                                        index_t samples, rectify_options o) {
    o.variance = variance_kind::biased;
    return rectify_stats(source, target, samples, o);
}
}  // namespace detail

//! Rectified source: inference uses statistics re-estimated from a batch of k target samples
//! by batch_norm::forward_rectify (in which each layer already normalizes with the pass
//! statistics, so later layers see rectified activations), then frozen. Before rectification, or
//! after reset(), it behaves like `population`.
struct rectified {
    static constexpr bool uses_batch_at_inference = false;
    static constexpr bool rectifiable = true;
    running_stats<float> running;
    rectify_options options;
    channel_stats<float> adapted;
    bool has_adapted = false;

    const channel_stats<float>& inference_stats(const channel_stats<float>*) const {
        return has_adapted ? adapted : running.stats;
    }
    //! Stores the adapted statistics from a target batch (variance per options.variance,
    //! unbiased by default) and returns what the rectification pass normalizes with
    //! (options.pass): by default the batch mean and BIASED variance, exactly PyTorch's
    //! train-mode forward of the reference implementation (normalize with batch mean / biased
    //! var, store unbiased var), whatever `what` keeps.
    template <class Acc>
    channel_stats<float> rectify(const std::vector<moments<Acc>>& target, index_t samples) {
        if (!options.enabled) return inference_stats(nullptr);
        adapted = detail::rectify_stats(running.stats, target, samples, options);
        has_adapted = true;
        if (options.pass == rectify_pass::batch) return channel_stats<float>::from_moments(target, variance_kind::biased);
        return detail::rectify_pass_stats(running.stats, target, samples, options);
    }
    //! Forgets the adapted statistics (back to the source statistics).
    void reset() { has_adapted = false; }
};

}  // namespace shiftnorm
