// SPDX-License-Identifier: MIT
// Group normalization (Wu & He 2018), with instance norm (G = C) and layer norm (G = 1).
#pragma once

#include <cmath>
#include <vector>

#include "shiftnorm/backend/cpu/schedule.hpp"
#include "shiftnorm/backend/group_pass.hpp"
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
//! Backend (backend/group_pass.hpp) runs the data passes: a CPU schedule (every (n, g) block
//! on one thread, the blocks spread over the threads) or the naive double-precision reference
//! (backend/reference/kernels.hpp, the tests' oracle).
template <class Affine = affine, class Precision = fp32, class Backend = backend::cpu::auto_schedule>
class group_norm : public affine_params<typename Precision::stat_type> {
    static_assert(is_affine_policy_v<Affine>, "group_norm<Affine>: use shiftnorm::affine or no_affine");
    static_assert(is_precision<Precision>::value, "group_norm<.., Precision>: use shiftnorm::precision<...>");
    static_assert(backend::is_group_backend_v<Backend>,
                  "group_norm<.., Backend>: use a CPU schedule (backend::cpu::auto_schedule, ...) or "
                  "backend::reference::kernels");

public:
    using backend_type = Backend;
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
        const index_t cg = channels_ / groups_;
        mean_.resize(std::size_t(s.n * groups_));
        inv_std_.resize(mean_.size());
        std::vector<moments<double>> m;
        // a non-finite group under nan_policy::raise is refused (its planes are left unwritten)
        // and reported after the pass
        const bool ok = Backend::group_forward(
            src, dst, groups_, m, [&](index_t n, index_t g, const moments<double>& mg, backend::channel_coef<T>* k) {
                if (opt.nan == nan_policy::raise && !(std::isfinite(mg.mean) && std::isfinite(mg.m2))) return false;
                const std::size_t b = std::size_t(n * groups_ + g);
                mean_[b] = Stat(mg.mean);
                inv_std_[b] = Stat(1.0 / std::sqrt(mg.variance(variance_kind::biased) + opt.eps));
                for (index_t c = g * cg; c < (g + 1) * cg; ++c)
                    k[c - g * cg] = {T(mean_[b]), T((Affine::enabled ? double(scale[c]) : 1.0) * inv_std_[b]),
                                     T(Affine::enabled ? double(shift[c]) : 0.0)};
                return true;
            });
        if (!ok)
            for (std::size_t b = 0; b < m.size(); ++b)
                if (!(std::isfinite(m[b].mean) && std::isfinite(m[b].m2))) {
                    mean_.clear();  // no valid saved state for backward
                    detail::throw_non_finite(where, detail::concat("sample ", index_t(b) / groups_, " group ",
                                                                   index_t(b) % groups_));
                }
        saved_shape_ = s;
    }

    //! dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)), g = gamma_c * dy, over each (n, group).
    //! Parameter gradients are summed over the samples in order, whatever the thread count.
    void backward(const tensor_view<const T>& src, const tensor_view<const T>& diff_dst, const tensor_view<T>& diff_src) {
        const char* where = "group_norm::backward";
        detail::check_backward_io(where, !mean_.empty(), saved_shape_, src, diff_dst, diff_src);
        const auto& s = src.shape();
        const index_t cg = channels_ / groups_, C = channels_;
        const double count = double(cg * s.spatial());
        const std::vector<T> mean(mean_.begin(), mean_.end());
        std::vector<T> gamma(static_cast<std::size_t>(C));
        for (index_t c = 0; c < C; ++c) gamma[c] = T(Affine::enabled ? double(scale[c]) : 1.0);
        // per (n, c): this sample's share of diff_scale / diff_shift, added in sample order below
        grad_parts_.resize(Affine::enabled ? std::size_t(2 * s.n * C) : 0);  // kept: no allocation per batch
        Stat* dscale = grad_parts_.data();
        Stat* dshift = dscale + (Affine::enabled ? s.n * C : 0);
        Backend::group_backward(
            src, diff_dst, diff_src, groups_, mean.data(), gamma.data(),
            [&](index_t n, index_t g, const double* sdy, const double* sdyx) {
                const std::size_t b = std::size_t(n * groups_ + g);
                const double mu = mean_[b], istd = inv_std_[b];
                double sg = 0, sgx = 0;  // sum gamma*dy, sum gamma*dy*(x - mu)
                for (index_t j = 0; j < cg; ++j) {
                    const index_t c = g * cg + j;
                    const double gm = Affine::enabled ? double(scale[c]) : 1.0;
                    sg += gm * sdy[j];
                    sgx += gm * sdyx[j];
                    if constexpr (Affine::enabled) {
                        dscale[n * C + c] = Stat(sdyx[j] * istd);
                        dshift[n * C + c] = Stat(sdy[j]);
                    }
                }
                return backend::group_backward_coef<T>{T(mu), T(istd), T(sg / count), T(sgx * istd * istd / count)};
            });
        if constexpr (Affine::enabled)
            for (index_t n = 0; n < s.n; ++n)
                for (index_t c = 0; c < C; ++c) {
                    diff_scale[c] += dscale[n * C + c];
                    diff_shift[c] += dshift[n * C + c];
                }
    }

private:
    index_t channels_ = 0, groups_ = 1;
    std::vector<Stat> mean_, inv_std_;
    std::vector<Stat> grad_parts_;  //!< backward's per-(n, c) parameter gradients, summed in sample order
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
