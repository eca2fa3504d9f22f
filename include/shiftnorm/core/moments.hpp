// SPDX-License-Identifier: MIT
// Moments accumulator (count, mean, M2, min, max): Welford update, Chan merge, finalize.
#pragma once

#include <cmath>

#include "shiftnorm/config.hpp"

namespace shiftnorm {

//! Which variance a finalize step returns: biased (divide by n, what normalization uses in
//! training) or unbiased (divide by n - 1, what running buffers and rectification store).
enum class variance_kind { biased, unbiased };

//! Running moments of a set of values: count, mean, sum of squared deviations (M2), min, max.
//! Acc is the accumulator type (double by default; fp32 partials are merged into it).
//! The same functions run on host and device (SHIFTNORM_HOST_DEVICE), so the CPU and CUDA
//! backends share this math and only schedule it differently.
template <class Acc = double>
struct moments {
    Acc count = 0;
    Acc mean = 0;
    Acc m2 = 0;
    Acc min = INFINITY;
    Acc max = -INFINITY;

    //! Variance of the accumulated values; 0 when count is too small to define it.
    SHIFTNORM_HOST_DEVICE Acc variance(variance_kind kind) const {
        const Acc d = kind == variance_kind::unbiased ? count - Acc(1) : count;
        return d > Acc(0) ? m2 / d : Acc(0);
    }
    SHIFTNORM_HOST_DEVICE Acc range() const { return max - min; }
};

//! The reduce / combine / finalize operations of the moments accumulator (ATen's
//! WelfordOps, Eigen's reducers): a CUB BlockReduce or a CPU loop schedules them.
template <class Acc = double>
struct welford_op {
    using acc_type = moments<Acc>;

    //! Welford's update with one value x (Welford 1962).
    SHIFTNORM_HOST_DEVICE static acc_type reduce(acc_type a, Acc x) {
        a.count += Acc(1);
        const Acc delta = x - a.mean;
        a.mean += delta / a.count;
        a.m2 += delta * (x - a.mean);
        a.min = x < a.min ? x : a.min;
        a.max = x > a.max ? x : a.max;
        return a;
    }

    //! Chan et al. (1979) parallel merge of two partial accumulators.
    SHIFTNORM_HOST_DEVICE static acc_type combine(const acc_type& a, const acc_type& b) {
        if (b.count == Acc(0)) return a;
        if (a.count == Acc(0)) return b;
        acc_type r;
        r.count = a.count + b.count;
        const Acc delta = b.mean - a.mean;
        const Acc wb = b.count / r.count;
        r.mean = a.mean + delta * wb;
        r.m2 = a.m2 + b.m2 + delta * delta * a.count * wb;
        r.min = b.min < a.min ? b.min : a.min;
        r.max = b.max > a.max ? b.max : a.max;
        // NaN propagation: comparisons with NaN are false, so min/max alone would hide it.
        if (r.mean != r.mean) r.min = r.max = r.mean;
        return r;
    }

    //! Builds a partial from shifted sums over `count` values d_i = x_i - shift:
    //! s1 = sum d_i, s2 = sum d_i^2 (fp32 tile sums promoted to Acc), plus the tile's min/max.
    //! With |shift - mean| small against the spread, M2 = s2 - s1^2/n has no cancellation.
    SHIFTNORM_HOST_DEVICE static acc_type from_shifted_sums(Acc count, Acc shift, Acc s1, Acc s2, Acc mn,
                                                            Acc mx) {
        acc_type r;
        if (count == Acc(0)) return r;
        r.count = count;
        const Acc m = s1 / count;
        r.mean = shift + m;
        Acc m2 = s2 - s1 * m;
        r.m2 = m2 > Acc(0) ? m2 : (m2 != m2 ? m2 : Acc(0));
        r.min = mn;
        r.max = mx;
        return r;
    }
};

}  // namespace shiftnorm
