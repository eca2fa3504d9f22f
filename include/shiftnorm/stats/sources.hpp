// SPDX-License-Identifier: MIT
// Statistic-source policies of batch_norm: population, batch (and the source concept check).
#pragma once

#include <type_traits>
#include <vector>

#include "shiftnorm/stats/channel_stats.hpp"

namespace shiftnorm {

//! Every statistic source holds the population (running) statistics learned in training, so a
//! network can always fall back to them; sources differ in what inference normalizes with.
//! A source S provides:
//!   running_stats<float> running;                        training EMA buffers
//!   static constexpr bool uses_batch_at_inference;       inference needs src's moments
//!   static constexpr bool rectifiable;                   forward_rectify adapts it
//!   const channel_stats<float>& inference_stats(const channel_stats<float>* batch) const;
//! (variance in returned stats is what normalization divides by: sqrt(var + eps)).

//! Population statistics: inference uses the running EMA (or cumulative) mean and variance.
struct population {
    static constexpr bool uses_batch_at_inference = false;
    static constexpr bool rectifiable = false;
    running_stats<float> running;

    const channel_stats<float>& inference_stats(const channel_stats<float>*) const { return running.stats; }
};

//! Current-batch statistics at inference (test-time "norm" adaptation): every inference
//! batch is normalized with its own mean and biased variance, like training. Training still
//! updates the running buffers.
struct batch_stats {
    static constexpr bool uses_batch_at_inference = true;
    static constexpr bool rectifiable = false;
    running_stats<float> running;

    const channel_stats<float>& inference_stats(const channel_stats<float>* batch) const { return *batch; }
};

template <class S, class = void>
struct is_stat_source : std::false_type {};
template <class S>
struct is_stat_source<S, std::void_t<decltype(S::uses_batch_at_inference), decltype(S::rectifiable),
                                     decltype(std::declval<S&>().running),
                                     decltype(std::declval<const S&>().inference_stats(nullptr))>>
    : std::true_type {};
template <class S>
inline constexpr bool is_stat_source_v = is_stat_source<S>::value;

}  // namespace shiftnorm
