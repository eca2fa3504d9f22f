// SPDX-License-Identifier: MIT
// Seed 000's feature-shift analysis: BN-statistic differences (Fig. 2), feature cosine similarity (Fig. 3).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/random.hpp"
#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/corrupt/dataset.hpp"
#include "shiftnorm/data/layout.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/eval/analysis.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/eval/rectification.hpp"

namespace shiftnorm::eval {

//! Records, for every rectifiable BN layer of a network, the input (keep_inputs) or output of its
//! last forward pass: copies made by the layers' observer taps, removed again on destruction.
class feature_tap {
public:
    using layer_type = nn::norm_layer<rectifiable_bn>;
    feature_tap(nn::module& net, bool keep_inputs) : layers_(nn::find_all<layer_type>(net)) {
        features.resize(layers_.size());
        for (std::size_t i = 0; i < layers_.size(); ++i)
            layers_[i]->observer = [this, i, keep_inputs](const tensor<float>& src, const tensor<float>& dst, nn::mode) {
                features[i] = keep_inputs ? src : dst;
            };
    }
    ~feature_tap() {
        for (auto* l : layers_) l->observer = nullptr;
    }
    feature_tap(const feature_tap&) = delete;
    feature_tap& operator=(const feature_tap&) = delete;
    std::size_t size() const { return layers_.size(); }
    const layer_type& layer(std::size_t i) const { return *layers_[i]; }

    std::vector<tensor<float>> features;

private:
    std::vector<layer_type*> layers_;
};

//! Fig. 2's four comparisons of two batches, in this order.
inline constexpr std::array<const char*, 4> stat_shift_comparisons = {
    "clean/clean, different content", "corrupted/corrupted, different content", "clean/corrupted, same content",
    "clean/corrupted, different content"};

struct stat_shift_options {
    corrupt::corruption corruption = corrupt::corruption::gaussian_noise;
    int severity = 3;
    index_t measurements = 100;  //!< pairs of disjoint batches averaged (the paper: 100)
    index_t batch_size = 32;     //!< images per batch (>= 2: unbiased variance)
    std::uint64_t seed = 0, sample_seed = 1;
    corrupt::corrupt_options corrupt;
    data::normalization norm;
};

struct stat_shift_result {
    std::vector<index_t> channels;  //!< per BN layer
    //! per BN layer, per comparison: mean over channels of |d mu| and |d var| (unbiased batch
    //! statistics of the layer's INPUT), averaged over the measurements
    std::vector<std::array<stat_difference, 4>> diff;
};

//! Fig. 2 (seed 000): at every BN layer's input, how far the batch statistics of two batches are
//! apart for same / different content and same / different domain.
inline stat_shift_result measure_bn_stat_shift(nn::module& net, const data::image_dataset& ds, const stat_shift_options& o) {
    if (o.measurements < 1) shiftnorm::detail::fail("measure_bn_stat_shift", "measurements", ">= 1", o.measurements);
    if (o.batch_size < 2) shiftnorm::detail::fail("measure_bn_stat_shift", "batch_size", ">= 2", o.batch_size);
    if (2 * o.batch_size > ds.size())
        shiftnorm::detail::fail("measure_bn_stat_shift", "batch_size", shiftnorm::detail::concat("<= ", ds.size() / 2), o.batch_size);
    const auto cds = corrupt::corrupted_copy(ds, o.corruption, o.severity, o.seed, o.corrupt);
    feature_tap tap(net, true);
    const std::size_t L = tap.size();
    std::vector<std::array<stat_difference_average, 4>> avg(L);
    random_engine g(o.sample_seed ^ 0xf162);
    auto stats_of = [&](const data::image_dataset& d, const std::vector<index_t>& idx) {
        net.forward(batch_of(d, idx, o.norm), nn::mode::eval);
        std::vector<channel_stats<double>> st;
        for (std::size_t l = 0; l < L; ++l) st.push_back(batch_channel_stats(tap.features[l], variance_kind::unbiased));
        return st;
    };
    const auto B = std::ptrdiff_t(o.batch_size);
    for (index_t m = 0; m < o.measurements; ++m) {
        const auto both = data::draw_indices(ds.size(), 2 * o.batch_size, g.next());
        const std::vector<index_t> a(both.begin(), both.begin() + B), b(both.begin() + B, both.end());
        const auto ca = stats_of(ds, a), cb = stats_of(ds, b), xa = stats_of(cds, a), xb = stats_of(cds, b);
        for (std::size_t l = 0; l < L; ++l) {
            avg[l][0].add(bn_stat_difference(ca[l], cb[l]));
            avg[l][1].add(bn_stat_difference(xa[l], xb[l]));
            avg[l][2].add(bn_stat_difference(ca[l], xa[l]));
            avg[l][3].add(bn_stat_difference(ca[l], xb[l]));
        }
    }
    stat_shift_result r;
    for (std::size_t l = 0; l < L; ++l) {
        r.channels.push_back(tap.layer(l).channels());
        r.diff.push_back({avg[l][0].mean(), avg[l][1].mean(), avg[l][2].mean(), avg[l][3].mean()});
    }
    return r;
}

struct feature_cosine_options {
    corrupt::corruption corruption = corrupt::corruption::gaussian_noise;
    std::vector<int> severities{1, 2, 3, 4, 5};
    index_t k = 32;  //!< representation samples of the rectification
    std::uint64_t seed = 0, sample_seed = 1;
    corrupt::corrupt_options corrupt;
    data::normalization norm;
    index_t batch = 100;
};

struct feature_cosine_row {
    int severity = 0;
    std::vector<double> before, after;  //!< per BN layer: mean over images of cos(clean, corrupted)
    double acc_before = 0, acc_after = 0;  //!< on the corrupted split, fractions
};

//! Fig. 3 (seed 000): per severity, the cosine similarity of each image's BN-layer outputs on clean
//! vs corrupted input, with the source statistics (`net`) and with statistics rectified from K
//! corrupted images (`rect`: a second copy of the same network, rectified per severity).
inline std::vector<feature_cosine_row> measure_feature_cosine(nn::module& net, nn::module& rect, const data::image_dataset& ds,
                                                              const feature_cosine_options& o) {
    if (o.k < 1 || o.k > ds.size())
        shiftnorm::detail::fail("measure_feature_cosine", "k", shiftnorm::detail::concat("in [1, ", ds.size(), "]"), o.k);
    if (o.batch < 1) shiftnorm::detail::fail("measure_feature_cosine", "batch", ">= 1", o.batch);
    const std::size_t L = nn::find_all<feature_tap::layer_type>(net).size();
    std::vector<feature_cosine_row> rows;
    for (int s : o.severities) {
        const auto cds = corrupt::corrupted_copy(ds, o.corruption, s, o.seed, o.corrupt);
        configure_rectification(rect, rectify_variant{});  // both statistics, every layer: the paper's setting
        rectify_from(rect, cds, data::draw_indices(cds.size(), o.k, o.sample_seed ^ (std::uint64_t(s) << 20) ^ std::uint64_t(o.k)),
                     o.norm);
        feature_cosine_row row;
        row.severity = s;
        row.before.assign(L, 0.0), row.after.assign(L, 0.0);
        index_t correct_b = 0, correct_a = 0;
        for (index_t i0 = 0; i0 < ds.size(); i0 += o.batch) {
            std::vector<index_t> idx;
            for (index_t i = i0; i < std::min(ds.size(), i0 + o.batch); ++i) idx.push_back(i);
            std::vector<tensor<float>> clean_f;
            {
                feature_tap tap(net, false);
                net.forward(batch_of(ds, idx, o.norm), nn::mode::eval);
                clean_f = std::move(tap.features);
            }
            auto add = [&](nn::module& model, std::vector<double>& acc, index_t& correct) {
                feature_tap tap(model, false);
                std::vector<std::int32_t> labels;
                const auto& logits = model.forward(batch_of(cds, idx, o.norm, &labels), nn::mode::eval);
                for (std::size_t l = 0; l < L; ++l)
                    for (double c : cosine_similarity_per_sample(clean_f[l], tap.features[l])) acc[l] += c;
                correct += index_t(nn::count_correct(logits, labels));
            };
            add(net, row.before, correct_b);
            add(rect, row.after, correct_a);
        }
        for (std::size_t l = 0; l < L; ++l) row.before[l] /= double(ds.size()), row.after[l] /= double(ds.size());
        row.acc_before = double(correct_b) / double(ds.size());
        row.acc_after = double(correct_a) / double(ds.size());
        rows.push_back(std::move(row));
    }
    return rows;
}

}  // namespace shiftnorm::eval
