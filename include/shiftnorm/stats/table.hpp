// SPDX-License-Identifier: MIT
// Table source: BN statistics keyed by a domain id (dynamic BN, seed 002), chosen at run time.
#pragma once

#include <map>
#include <vector>

#include "shiftnorm/stats/rectified.hpp"

namespace shiftnorm {

//! Statistics table keyed by a domain id (e.g. the corruption a spectral detector names).
//! select(id) chooses the entry inference uses; an id with no entry, or `source_domain`
//! (-1), falls back to the source (running) statistics. forward_rectify fills the entry of the
//! selected id from a batch of that domain, with the same options as `rectified`.
struct stats_table {
    static constexpr bool uses_batch_at_inference = false;
    static constexpr bool rectifiable = true;
    static constexpr int source_domain = -1;

    running_stats<float> running;
    rectify_options options;
    std::map<int, channel_stats<float>> entries;
    int active = source_domain;

    void select(int domain) { active = domain; }
    bool contains(int domain) const { return entries.count(domain) != 0; }

    const channel_stats<float>& inference_stats(const channel_stats<float>*) const {
        const auto it = entries.find(active);
        return it == entries.end() ? running.stats : it->second;
    }
    //! Fills the selected domain's entry; returns what the pass normalizes with (see rectified).
    template <class Acc>
    channel_stats<float> rectify(const std::vector<moments<Acc>>& target, index_t samples) {
        if (!options.enabled) return inference_stats(nullptr);
        if (active == source_domain)
            detail::fail<state_error>("stats_table::rectify", "active domain", "an id >= 0 (select() one first)",
                                      active);
        entries[active] = detail::rectify_stats(running.stats, target, samples, options);
        if (options.pass == rectify_pass::batch) return channel_stats<float>::from_moments(target, variance_kind::biased);
        return detail::rectify_pass_stats(running.stats, target, samples, options);
    }
    //! Forgets every entry (the selection is kept; an absent entry means the source statistics).
    void reset() { entries.clear(); }
};

}  // namespace shiftnorm
