// SPDX-License-Identifier: MIT
// Group normalization (Wu & He 2018), with instance norm (G = C) and layer norm (G = 1).
#pragma once

#include <cmath>
#include <vector>

#include "shiftnorm/backend/cpu/stream.hpp"
#include "shiftnorm/core/omp.hpp"
#include "shiftnorm/backend/cpu/reduce.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/policy.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/core/checks.hpp"
#include "shiftnorm/norm/affine_params.hpp"
#include "shiftnorm/norm/layer_concept.hpp"

namespace shiftnorm {

//! Group normalization over NCHW: for each sample n and group g of C/G channels, statistics
//! over (C/G, H, W); y = gamma_c * (x - mean_ng) / sqrt(var_ng + eps) + beta_c, biased var.
//! The statistics come from each sample alone, so training and inference are the same call
//! (forward); there are no running buffers (the normalization seed 000's Table 9 contrasts
//! with BN). Instance norm: groups = C; layer norm (over C, H, W): groups = 1.
//! Saves mean and inv_std per (n, g) for backward; parameter gradients accumulate.
template <class Affine = affine, class Precision = fp32>
class group_norm : public affine_params<typename Precision::stat_type> {
    static_assert(is_affine_policy_v<Affine>, "group_norm<Affine>: use shiftnorm::affine or no_affine");
    static_assert(is_precision<Precision>::value, "group_norm<.., Precision>: use shiftnorm::precision<...>");

public:
    using T = typename Precision::src_type;
    using Stat = typename Precision::stat_type;

    struct options {
        double eps = 1e-5;
        nan_policy nan = nan_policy::propagate;
    };

    using params = affine_params<Stat>;  //!< scale, shift (gamma, beta), gradients
    using params::scale, params::shift, params::diff_scale, params::diff_shift, params::zero_grad;

    options opt;

    group_norm() = default;
    group_norm(index_t channels, index_t groups, options o = {}) : opt(o), channels_(channels), groups_(groups) {
        if (channels <= 0) detail::fail<shape_error>("group_norm", "channels", "> 0", channels);
        if (groups <= 0 || channels % groups != 0)
            detail::fail<shape_error>("group_norm", "groups", detail::concat("a divisor of channels=", channels), groups);
        if (!(o.eps >= 0.0)) detail::fail("group_norm", "eps", ">= 0", o.eps);
        this->init_affine(channels);
    }

    index_t channels() const { return channels_; }
    index_t groups() const { return groups_; }

    // The normalization-layer concept (norm/layer_concept.hpp): built from (channels, groups).
    static constexpr norm_interface kind = norm_interface::per_sample;
    static constexpr norm_modes modes{};
    static constexpr bool grouped = true;
    void configure(const norm_config& cfg) {
        check_norm_config(cfg);
        detail::reject_reference_bn(cfg, "group_norm");
        opt.eps = cfg.eps;
    }
    //! weight and bias (when the layer has them); no buffers.
    template <class V>
    void visit_state(V&& v) {
        this->visit_affine(v);
    }
    const std::vector<Stat>& saved_mean() const { return mean_; }       //!< size N*G
    const std::vector<Stat>& saved_inv_std() const { return inv_std_; }  //!< size N*G

    void forward(const tensor_view<const T>& src, const tensor_view<T>& dst) {
        const char* where = "group_norm::forward";
        detail::check_norm_io(where, src, dst, channels_);
        const auto& s = src.shape();
        const index_t cg = channels_ / groups_, hw = s.spatial(), block = cg * hw;
        mean_.resize(std::size_t(s.n * groups_));
        inv_std_.resize(mean_.size());
        // groups are independent: spread over the OpenMP threads (each (n, group) computed as on one
        // thread); a non-finite group under nan_policy::raise is reported after the loop
        std::vector<char> bad(mean_.size(), 0);
        SHIFTNORM_OMP(omp parallel for schedule(static) if (groups_ > 1 && backend::cpu::worth_parallel(s)))
        for (index_t g = 0; g < groups_; ++g)
            for (index_t n = 0; n < s.n; ++n) {
                const index_t c0 = g * cg;
                const auto m = backend::cpu::span_moments(src.plane(n, c0), block);
                const std::size_t k = std::size_t(n * groups_ + g);
                if (opt.nan == nan_policy::raise && !(std::isfinite(m.mean) && std::isfinite(m.m2))) {
                    bad[k] = 1;
                    continue;
                }
                mean_[k] = Stat(m.mean);
                inv_std_[k] = Stat(1.0 / std::sqrt(m.variance(variance_kind::biased) + opt.eps));
                for (index_t c = c0; c < c0 + cg; ++c) {
                    const T a = T((Affine::enabled ? double(scale[c]) : 1.0) * inv_std_[k]);
                    const T b = T(Affine::enabled ? double(shift[c]) : 0.0), mu = T(mean_[k]);
                    const T* SHIFTNORM_RESTRICT px = src.plane(n, c);
                    T* SHIFTNORM_RESTRICT py = dst.plane(n, c);
                    for (index_t i = 0; i < hw; ++i) py[i] = (px[i] - mu) * a + b;
                }
            }
        for (std::size_t k = 0; k < bad.size(); ++k)
            if (bad[k]) {
                mean_.clear();  // no valid saved state for backward
                detail::throw_non_finite(where, detail::concat("sample ", index_t(k) / groups_, " group ", index_t(k) % groups_));
            }
        saved_shape_ = s;
    }

    //! dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)), g = gamma_c * dy, over each (n, group).
    void backward(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst, const tensor_view<T>& diff_src) {
        const char* where = "group_norm::backward";
        detail::check_backward_io(where, !mean_.empty(), saved_shape_, src, diff_dst, diff_src);
        const auto& s = src.shape();
        const index_t cg = channels_ / groups_, hw = s.spatial();
        const double count = double(cg * hw);
        // over groups in parallel (a group owns its channels' diff_scale / diff_shift), images in
        // order inside: every sum is accumulated as on one thread
        SHIFTNORM_OMP(omp parallel for schedule(static) if (groups_ > 1 && backend::cpu::worth_parallel(s)))
        for (index_t g = 0; g < groups_; ++g)
            for (index_t n = 0; n < s.n; ++n) {
                const std::size_t k = std::size_t(n * groups_ + g);
                const double mu = mean_[k], istd = inv_std_[k];
                double sg = 0, sgx = 0;  // sum gamma*dy, sum gamma*dy*(x - mu)
                for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
                    double sdy = 0, sdyx = 0;
                    channel_sums(src.plane(n, c), diff_dst.plane(n, c), hw, T(mu), sdy, sdyx);
                    const double gamma = Affine::enabled ? double(scale[c]) : 1.0;
                    sg += gamma * sdy;
                    sgx += gamma * sdyx;
                    if constexpr (Affine::enabled) {
                        diff_scale[c] += Stat(sdyx * istd);
                        diff_shift[c] += Stat(sdy);
                    }
                }
                const T m_g = T(sg / count), m_gx = T(sgx * istd * istd / count), mut = T(mu), it = T(istd);
                for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
                    const T gamma = T(Affine::enabled ? double(scale[c]) : 1.0);
                    const T* SHIFTNORM_RESTRICT px = src.plane(n, c);
                    const T* SHIFTNORM_RESTRICT pd = diff_dst.plane(n, c);
                    T* SHIFTNORM_RESTRICT po = diff_src.plane(n, c);
                    for (index_t i = 0; i < hw; ++i) po[i] = it * (gamma * pd[i] - m_g - (px[i] - mut) * m_gx);
                }
            }
    }

private:
    static void channel_sums(const T* px, const T* pd, index_t hw, T mu, double& sdy, double& sdyx) {
        const auto x = tensor_view<const T>(px, {1, 1, 1, hw});
        const auto d = tensor_view<const T>(pd, {1, 1, 1, hw});
        backend::cpu::channel_grad_sums(x, d, 0, mu, sdy, sdyx);
    }

    index_t channels_ = 0, groups_ = 1;
    std::vector<Stat> mean_, inv_std_;
    shape4 saved_shape_{};
};

//! Instance normalization: group_norm with one channel per group.
template <class Affine = affine, class Precision = fp32>
group_norm<Affine, Precision> make_instance_norm(index_t channels, typename group_norm<Affine, Precision>::options o = {}) {
    return group_norm<Affine, Precision>(channels, channels, o);
}
//! Layer normalization over (C, H, W): group_norm with a single group.
template <class Affine = affine, class Precision = fp32>
group_norm<Affine, Precision> make_layer_norm(index_t channels, typename group_norm<Affine, Precision>::options o = {}) {
    return group_norm<Affine, Precision>(channels, 1, o);
}

}  // namespace shiftnorm
