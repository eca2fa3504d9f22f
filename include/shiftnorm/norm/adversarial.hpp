// SPDX-License-Identifier: MIT
// Adversarial statistics: per-channel perturbation of feature mean and std for PGD (AdvBN).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

#include "shiftnorm/backend/cpu/reduce.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/core/checks.hpp"

namespace shiftnorm {

//! How the perturbation acts on the batch statistics of a feature map f with per-channel
//! batch mean mu and (biased) std sigma:
//!  multiplicative (AdvBN, seed 001 eq. 3): f_adv = d_sigma * (f - mu) + d_mu * mu, identity
//!    at d = 1, projected to [1 - eps, 1 + eps];
//!  additive (Table 10): f_adv = (f - mu) * (sigma + d_sigma) / sigma + mu + d_mu, identity at
//!    d = 0, projected to +-eps * max_c |mu_c| (for d_mu) and +-eps * max_c sigma_c (d_sigma).
enum class perturbation_kind { multiplicative, additive };

//! Adversarial statistics source for AdvBN: vectors d_mu, d_sigma of shape [C] shared by the
//! whole batch, the perturbed features, and the gradients with respect to d_mu, d_sigma (and
//! the input) that PGD needs. `clamp_relu` re-applies the ReLU that produced f (the reference
//! does this for ResNets). Gradients OVERWRITE diff_d_mu / diff_d_sigma on each backward.
class adversarial_stats {
public:
    perturbation_kind kind = perturbation_kind::multiplicative;
    bool clamp_relu = false;
    std::vector<float> d_mu, d_sigma, diff_d_mu, diff_d_sigma;

    adversarial_stats() = default;
    explicit adversarial_stats(index_t channels, perturbation_kind k = perturbation_kind::multiplicative,
                               bool clamp = false)
        : kind(k), clamp_relu(clamp) {
        if (channels <= 0) detail::fail<shape_error>("adversarial_stats", "channels", "> 0", channels);
        reset(channels);
    }

    index_t channels() const { return index_t(d_mu.size()); }
    //! Identity perturbation (1 for multiplicative, 0 for additive): AdvBN's start, no random start.
    void reset(index_t channels) {
        const float id = kind == perturbation_kind::multiplicative ? 1.f : 0.f;
        d_mu.assign(std::size_t(channels), id);
        d_sigma.assign(std::size_t(channels), id);
        diff_d_mu.assign(std::size_t(channels), 0.f);
        diff_d_sigma.assign(std::size_t(channels), 0.f);
    }

    //! dst = perturbed src. Saves the batch mean / std for backward and projection.
    void forward(const tensor_view<const float>& src, const tensor_view<float>& dst) {
        detail::check_norm_io("adversarial_stats::forward", src, dst, channels());
        const index_t C = channels();
        mean_.resize(std::size_t(C));
        std_.resize(std::size_t(C));
        for (index_t c = 0; c < C; ++c) {
            const auto m = backend::cpu::channel_moments<false>(src, c);
            mean_[c] = m.mean;
            std_[c] = std::sqrt(m.variance(variance_kind::biased));
            const auto [a, b] = coefficients(c);  // f_adv = a * (f - mu) + b
            // evaluated as a * f + (b - a * mu), the intercept in double: where the perturbation
            // leaves a zero feature at zero (multiplicative d_mu == d_sigma, or the identity), the
            // intercept is exactly 0, so f = 0 (every ReLU-dead input) gives exactly 0 and stays
            // masked, as in the reference's d_sigma * (f - mu) + d_mu * mu, whatever the rounding
            // of mu (before, (f - mu) * a + b in float left +-1 ulp there and the ReLU mask, so the
            // PGD sign, of a whole channel's dead pixels depended on mu's last bit)
            const index_t hw = src.shape().spatial();
            for (index_t n = 0; n < src.shape().n; ++n) {
                const float* px = src.plane(n, c);
                float* py = dst.plane(n, c);
                const float fa = float(a), fc = float(b - a * mean_[c]);
                for (index_t i = 0; i < hw; ++i) {
                    const float v = px[i] * fa + fc;
                    py[i] = clamp_relu ? std::max(v, 0.f) : v;
                }
            }
        }
        shape_ = src.shape();
    }

    //! Gradients with respect to d_mu, d_sigma (overwritten) and, if diff_src is non-empty, src
    //! (through the batch statistics too). `dst` is the output of forward (for the ReLU mask).
    void backward(const tensor_view<const float>& src, const tensor_view<const float>& dst,
                  const tensor_view<const float>& diff_dst, const tensor_view<float>& diff_src) {
        const char* where = "adversarial_stats::backward";
        if (mean_.empty()) throw state_error(std::string(where) + ": needs forward first");
        if (src.shape() != shape_) detail::fail<shape_error>(where, "src", shape_, src.shape());
        detail::check_same_shape(where, "dst", src, dst);
        detail::check_same_shape(where, "diff_dst", src, diff_dst);
        const bool want_src = !diff_src.empty();
        if (want_src) detail::check_same_shape(where, "diff_src", src, diff_src);
        const index_t hw = src.shape().spatial();
        const double M = double(src.shape().per_channel());
        for (index_t c = 0; c < channels(); ++c) {
            const double mu = mean_[c];
            double sg = 0, sgx = 0;  // masked sum dy, sum dy * (f - mu)
            for (index_t n = 0; n < src.shape().n; ++n) {
                const float *px = src.plane(n, c), *py = dst.plane(n, c), *pd = diff_dst.plane(n, c);
                for (index_t i = 0; i < hw; ++i) {
                    const double g = (clamp_relu && py[i] <= 0.f) ? 0.0 : double(pd[i]);
                    sg += g;
                    sgx += g * (double(px[i]) - mu);
                }
            }
            const double sigma = std_[c];
            double a;  // d f_adv / d (f - mu)
            if (kind == perturbation_kind::multiplicative) {
                diff_d_mu[c] = float(sg * mu);
                diff_d_sigma[c] = float(sgx);
                a = d_sigma[c];
            } else {
                diff_d_mu[c] = float(sg);
                diff_d_sigma[c] = float(sigma > 0 ? sgx / sigma : 0.0);
                a = sigma > 0 ? (sigma + d_sigma[c]) / sigma : 1.0;
            }
            if (!want_src) continue;
            // d f_adv_i / d f_j = a (delta_ij - 1/M) + b_mu / M (+ additive: sigma dependence),
            // with b_mu = d(b)/d(mu) = d_mu (multiplicative) or 1 (additive).
            const double bmu = kind == perturbation_kind::multiplicative ? double(d_mu[c]) : 1.0;
            const double k_sigma = (kind == perturbation_kind::additive && sigma > 0)
                                       ? -double(d_sigma[c]) / (sigma * sigma * sigma) * sgx / M
                                       : 0.0;
            for (index_t n = 0; n < src.shape().n; ++n) {
                const float *px = src.plane(n, c), *py = dst.plane(n, c), *pd = diff_dst.plane(n, c);
                float* po = diff_src.plane(n, c);
                for (index_t i = 0; i < hw; ++i) {
                    const double g = (clamp_relu && py[i] <= 0.f) ? 0.0 : double(pd[i]);
                    po[i] = float(a * (g - sg / M) + bmu * sg / M + k_sigma * (double(px[i]) - mu));
                }
            }
        }
    }

    //! One PGD ascent step d += tau * sign(grad), then projection (see perturbation_kind).
    void pgd_step(double tau, double eps) {
        if (!(tau >= 0)) detail::fail("adversarial_stats::pgd_step", "tau", ">= 0", tau);
        if (!(eps >= 0)) detail::fail("adversarial_stats::pgd_step", "eps", ">= 0", eps);
        double lim_mu = eps, lim_sigma = eps, centre = 1.0;
        if (kind == perturbation_kind::additive) {
            centre = 0.0;
            double mmax = 0, smax = 0;
            for (std::size_t c = 0; c < mean_.size(); ++c) {
                mmax = std::max(mmax, std::abs(mean_[c]));
                smax = std::max(smax, std_[c]);
            }
            lim_mu = eps * mmax;
            lim_sigma = eps * smax;
        }
        auto sgn = [](float g) { return g > 0 ? 1.0 : (g < 0 ? -1.0 : 0.0); };
        for (std::size_t c = 0; c < d_mu.size(); ++c) {
            d_mu[c] = float(std::clamp(d_mu[c] + tau * sgn(diff_d_mu[c]), centre - lim_mu, centre + lim_mu));
            d_sigma[c] = float(std::clamp(d_sigma[c] + tau * sgn(diff_d_sigma[c]), centre - lim_sigma, centre + lim_sigma));
        }
    }

    const std::vector<double>& batch_mean() const { return mean_; }
    const std::vector<double>& batch_std() const { return std_; }

private:
    //! f_adv = a * (f - mu) + b for channel c.
    std::pair<double, double> coefficients(index_t c) const {
        const double mu = mean_[c], sigma = std_[c];
        if (kind == perturbation_kind::multiplicative) return {double(d_sigma[c]), double(d_mu[c]) * mu};
        return {sigma > 0 ? (sigma + d_sigma[c]) / sigma : 1.0, mu + double(d_mu[c])};
    }

    std::vector<double> mean_, std_;
    shape4 shape_{};
};

}  // namespace shiftnorm
