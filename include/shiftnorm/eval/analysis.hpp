// SPDX-License-Identifier: MIT
// Feature-shift analysis of seed 000: cosine similarity of feature maps (Fig. 3), BN-statistic gaps (Fig. 2).
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/stats/channel_stats.hpp"

namespace shiftnorm::eval {

//! Cosine similarity of each sample's feature map: for n in [0, N), cos_n = <a_n, b_n> /
//! (|a_n| |b_n|) with a_n, b_n the sample's C*H*W values flattened (seed 000 sec. 3, Fig. 3:
//! "treat each feature output as a vector ... average over the batch size"). Dot products and
//! norms accumulate in double. Views may be strided.
//! Throws shape_error when the shapes differ or N = 0 or C*H*W = 0, numeric_error for a
//! non-finite value or a sample whose norm is 0 (cosine undefined). O(N*C*H*W).
template <class T>
std::vector<double> cosine_similarity_per_sample(const tensor_view<const T>& a, const tensor_view<const T>& b) {
    const char* where = "cosine_similarity";
    const shape4& s = a.shape();
    if (!(s == b.shape())) shiftnorm::detail::fail<shape_error>(where, "b", a.shape(), b.shape());
    if (s.n == 0 || s.c * s.h * s.w == 0) shiftnorm::detail::fail<shape_error>(where, "a", "a non-empty NCHW tensor", s);
    std::vector<double> out(std::size_t(s.n));
    for (index_t n = 0; n < s.n; ++n) {
        double dot = 0, na = 0, nb = 0;
        for (index_t c = 0; c < s.c; ++c)
            for (index_t h = 0; h < s.h; ++h)
                for (index_t w = 0; w < s.w; ++w) {
                    const double x = double(a(n, c, h, w)), y = double(b(n, c, h, w));
                    dot += x * y, na += x * x, nb += y * y;
                }
        if (!std::isfinite(dot) || !std::isfinite(na) || !std::isfinite(nb))
            shiftnorm::detail::fail<numeric_error>(where, "a, b", "finite feature values",
                                                   shiftnorm::detail::concat("a non-finite dot product or norm in sample ", n));
        if (na == 0 || nb == 0)
            shiftnorm::detail::fail<numeric_error>(where, na == 0 ? "a" : "b", "a non-zero feature vector per sample",
                                                   shiftnorm::detail::concat("an all-zero sample ", n));
        // Clamp rounding excursions (|cos| may exceed 1 by an ulp for parallel vectors).
        out[std::size_t(n)] = std::fmax(-1.0, std::fmin(1.0, dot / (std::sqrt(na) * std::sqrt(nb))));
    }
    return out;
}

template <class T>
std::vector<double> cosine_similarity_per_sample(const tensor<T>& a, const tensor<T>& b) {
    return cosine_similarity_per_sample(a.view(), b.view());
}

//! Mean over the batch of cosine_similarity_per_sample (the value plotted per severity in Fig. 3).
template <class T>
double cosine_similarity(const tensor_view<const T>& a, const tensor_view<const T>& b) {
    const auto v = cosine_similarity_per_sample(a, b);
    double s = 0;
    for (double x : v) s += x;
    return s / double(v.size());
}
template <class T>
double cosine_similarity(const tensor<T>& a, const tensor<T>& b) {
    return cosine_similarity(a.view(), b.view());
}

//! Per-channel absolute differences of two sets of BN statistics, |mu_a - mu_b| and
//! |var_a - var_b| (seed 000 Fig. 2), and their means over channels. Double precision.
struct stat_difference {
    std::vector<double> mean_abs;  //!< |mu_a[c] - mu_b[c]|, size C
    std::vector<double> var_abs;   //!< |var_a[c] - var_b[c]|, size C
    double mean_of_mean_abs = 0;   //!< mean over channels of mean_abs
    double mean_of_var_abs = 0;    //!< mean over channels of var_abs
};

//! Differences of two channel_stats of equal channel count (the variance convention is the
//! caller's; use the same for both). Throws shape_error for differing or zero channel counts or
//! a mean/var size mismatch inside one argument, numeric_error for non-finite statistics.
template <class Stat>
stat_difference bn_stat_difference(const channel_stats<Stat>& a, const channel_stats<Stat>& b) {
    const char* where = "bn_stat_difference";
    if (a.mean.size() != a.var.size()) shiftnorm::detail::fail<shape_error>(where, "a.var", a.mean.size(), a.var.size());
    if (b.mean.size() != b.var.size()) shiftnorm::detail::fail<shape_error>(where, "b.var", b.mean.size(), b.var.size());
    if (a.mean.size() != b.mean.size()) shiftnorm::detail::fail<shape_error>(where, "b.mean", a.mean.size(), b.mean.size());
    if (a.mean.empty()) shiftnorm::detail::fail<shape_error>(where, "a", "at least one channel", 0);
    stat_difference d;
    const std::size_t C = a.mean.size();
    d.mean_abs.resize(C), d.var_abs.resize(C);
    for (std::size_t c = 0; c < C; ++c) {
        const double am = double(a.mean[c]), bm = double(b.mean[c]), av = double(a.var[c]), bv = double(b.var[c]);
        if (!std::isfinite(am) || !std::isfinite(bm) || !std::isfinite(av) || !std::isfinite(bv))
            shiftnorm::detail::fail<numeric_error>(where, "a, b", "finite statistics", shiftnorm::detail::concat("a non-finite value in channel ", c));
        d.mean_abs[c] = std::abs(am - bm);
        d.var_abs[c] = std::abs(av - bv);
        d.mean_of_mean_abs += d.mean_abs[c];
        d.mean_of_var_abs += d.var_abs[c];
    }
    d.mean_of_mean_abs /= double(C);
    d.mean_of_var_abs /= double(C);
    return d;
}

//! Per-channel batch statistics of an NCHW feature map, over (N, H, W), in double: mean and the
//! requested variance (unbiased = what rectification stores, seed 000 / methods.md sec. 1).
//! Two passes (mean, then centred squares) so large offsets do not cancel. Throws shape_error
//! for an empty tensor, numeric_error for non-finite values.
template <class T>
channel_stats<double> batch_channel_stats(const tensor_view<const T>& x, variance_kind kind = variance_kind::unbiased) {
    const char* where = "batch_channel_stats";
    const shape4& s = x.shape();
    if (s.n * s.h * s.w == 0 || s.c == 0) shiftnorm::detail::fail<shape_error>(where, "x", "a non-empty NCHW tensor", s);
    const double count = double(s.n * s.h * s.w);
    if (kind == variance_kind::unbiased && count < 2)
        shiftnorm::detail::fail<shape_error>(where, "x", "N*H*W >= 2 values per channel for an unbiased variance", s);
    channel_stats<double> st(s.c, 0.0, 0.0);
    for (index_t c = 0; c < s.c; ++c) {
        double sum = 0;
        for (index_t n = 0; n < s.n; ++n)
            for (index_t h = 0; h < s.h; ++h)
                for (index_t w = 0; w < s.w; ++w) sum += double(x(n, c, h, w));
        const double mean = sum / count;
        double m2 = 0;
        for (index_t n = 0; n < s.n; ++n)
            for (index_t h = 0; h < s.h; ++h)
                for (index_t w = 0; w < s.w; ++w) {
                    const double d = double(x(n, c, h, w)) - mean;
                    m2 += d * d;
                }
        if (!std::isfinite(mean) || !std::isfinite(m2))
            shiftnorm::detail::fail<numeric_error>(where, "x", "finite values", shiftnorm::detail::concat("a non-finite value in channel ", c));
        st.mean[std::size_t(c)] = mean;
        st.var[std::size_t(c)] = m2 / (kind == variance_kind::unbiased ? count - 1 : count);
    }
    return st;
}
template <class T>
channel_stats<double> batch_channel_stats(const tensor<T>& x, variance_kind kind = variance_kind::unbiased) {
    return batch_channel_stats(x.view(), kind);
}

//! Averages stat_difference over repeated measurements (Fig. 2 averages 100 batch pairs).
class stat_difference_average {
public:
    //! Adds one measurement; throws shape_error if its channel count differs from the first.
    void add(const stat_difference& d) {
        if (count_ == 0) {
            sum_.mean_abs.assign(d.mean_abs.size(), 0.0);
            sum_.var_abs.assign(d.var_abs.size(), 0.0);
        } else if (d.mean_abs.size() != sum_.mean_abs.size()) {
            shiftnorm::detail::fail<shape_error>("stat_difference_average::add", "d.mean_abs", sum_.mean_abs.size(), d.mean_abs.size());
        }
        for (std::size_t c = 0; c < d.mean_abs.size(); ++c) sum_.mean_abs[c] += d.mean_abs[c], sum_.var_abs[c] += d.var_abs[c];
        sum_.mean_of_mean_abs += d.mean_of_mean_abs;
        sum_.mean_of_var_abs += d.mean_of_var_abs;
        ++count_;
    }
    long long count() const { return count_; }
    //! Element-wise mean of the measurements; throws state_error before the first add().
    stat_difference mean() const {
        if (count_ == 0) shiftnorm::detail::fail<state_error>("stat_difference_average::mean", "count", "at least one add()", 0);
        stat_difference m = sum_;
        for (auto& v : m.mean_abs) v /= double(count_);
        for (auto& v : m.var_abs) v /= double(count_);
        m.mean_of_mean_abs /= double(count_);
        m.mean_of_var_abs /= double(count_);
        return m;
    }

private:
    stat_difference sum_;
    long long count_ = 0;
};

}  // namespace shiftnorm::eval
