// SPDX-License-Identifier: MIT
// Seeded index sampling: K distinct samples (seed 000's representation samples) and random subsets.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/random.hpp"
#include "shiftnorm/data/dataset.hpp"

namespace shiftnorm::data {

//! min(k, n) distinct indices of [0, n), drawn by a partial Fisher-Yates shuffle driven by the
//! project's own generator: the same seed gives the same draw with every compiler and standard
//! library. The order is the draw order (not sorted). O(n) memory.
inline std::vector<index_t> draw_indices(index_t n, index_t k, std::uint64_t seed) {
    if (n < 0) shiftnorm::detail::fail("draw_indices", "n", ">= 0", n);
    if (k < 0) shiftnorm::detail::fail("draw_indices", "k", ">= 0", k);
    std::vector<index_t> idx(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) idx[std::size_t(i)] = i;
    random_engine g(seed);
    const index_t m = std::min(k, n);
    for (index_t i = 0; i < m; ++i)
        std::swap(idx[std::size_t(i)], idx[std::size_t(g.randint(i, n))]);
    idx.resize(std::size_t(m));
    return idx;
}

//! The images `idx` of `ds` (in that order) as a new dataset with the same classes.
inline image_dataset select(const image_dataset& ds, const std::vector<index_t>& idx) {
    image_dataset out;
    out.channels = ds.channels, out.height = ds.height, out.width = ds.width, out.classes = ds.classes;
    out.labels.resize(idx.size());
    out.pixels.resize(idx.size() * std::size_t(ds.image_size()));
    for (std::size_t j = 0; j < idx.size(); ++j) {
        if (idx[j] < 0 || idx[j] >= ds.size())
            shiftnorm::detail::fail<shape_error>("data::select", "index", shiftnorm::detail::concat("< ", ds.size()), idx[j]);
        out.labels[j] = ds.labels[std::size_t(idx[j])];
        std::copy_n(ds.image(idx[j]), ds.image_size(), out.pixels.data() + j * std::size_t(ds.image_size()));
    }
    return out;
}

//! A seeded random subset of n images, kept in dataset order (n <= 0 or n >= size(): all).
//! Image folders are sorted by class, so "the first n" would be one or two classes.
inline image_dataset random_subset(const image_dataset& ds, index_t n, std::uint64_t seed) {
    if (n <= 0 || n >= ds.size()) return ds;
    auto idx = draw_indices(ds.size(), n, seed);
    std::sort(idx.begin(), idx.end());
    return select(ds, idx);
}

}  // namespace shiftnorm::data
