// SPDX-License-Identifier: MIT
// AdvBN's inner maximization: PGD on the per-channel mean/std multipliers of the split features.
#pragma once

#include <cmath>
#include <string>
#include <vector>

#include "shiftnorm/advbn/network.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/nn/loss.hpp"
#include "shiftnorm/norm/adversarial.hpp"

namespace shiftnorm::advbn {

//! The adversary of AdvBN (seed 001 eq. 3-4; defaults from the paper): `steps` PGD steps of
//! d += tau * sign(grad_d CE) on d_mu, d_sigma (shared by the batch, started at the identity),
//! projected to [1 - eps, 1 + eps] (multiplicative) or +-eps * max channel mean / std (additive,
//! Table 10). `clamp_relu` re-applies the ReLU that produced the features (ResNets).
struct attack_options {
    int steps = 6;
    double tau = 0.2;
    double eps = 1.1;
    perturbation_kind kind = perturbation_kind::multiplicative;
    bool clamp_relu = true;
    //! The BNs the head uses while the adversary searches (the adversarial branch's own BNs by
    //! default, as in AdvProp-style training); always in inference mode.
    bn_route attack_route = bn_route::auxiliary;

    void validate() const {
        if (steps < 0 || steps > 1000) shiftnorm::detail::fail("advbn attack", "steps", "in [0, 1000]", steps);
        if (!(tau > 0) || !std::isfinite(tau)) shiftnorm::detail::fail("advbn attack", "tau", "finite and > 0", tau);
        if (!(eps > 0) || !std::isfinite(eps)) shiftnorm::detail::fail("advbn attack", "eps", "finite and > 0", eps);
    }
};

//! Table 4's rule for the number of PGD steps at bound eps: ceil(eps / 0.2) + 1.
inline int steps_for_eps(double eps) { return int(std::ceil(eps / 0.2 - 1e-9)) + 1; }

//! What perturb() saw: the head's loss before each ascent step and after the last one.
struct attack_trace {
    std::vector<double> loss;  //!< steps + 1 values
};

//! Runs the adversary on features `f` (a split_network's front output) with labels `y`:
//! adv.d_mu / adv.d_sigma end at the final perturbation and `f_adv` holds the perturbed
//! features. The head runs in inference mode under opt.attack_route and is routed back to the
//! clean BNs on return; its backward passes skip the convolution / linear parameter gradients
//! (set_param_grad(false); normalization layers still accumulate theirs: clear them with
//! zero_grad). Cost: steps + 1 head forwards and steps input-only head backwards.
template <class Norm>
attack_trace perturb(split_network<Norm>& net, adversarial_stats& adv, const tensor<float>& f,
                     const std::vector<std::int32_t>& y, const attack_options& opt, tensor<float>& f_adv) {
    opt.validate();
    if (adv.kind != opt.kind || adv.clamp_relu != opt.clamp_relu || adv.channels() != f.shape().c)
        adv = adversarial_stats(f.shape().c, opt.kind, opt.clamp_relu);
    adv.reset(f.shape().c);
    if (f_adv.shape() != f.shape()) f_adv = tensor<float>(f.shape());
    attack_trace tr;
    nn::softmax_cross_entropy ce;
    routed<Norm> guard(net, opt.attack_route);
    // only d(loss)/d(features) is needed: no parameter gradients (restored on every exit)
    struct grads_restore {
        split_network<Norm>& n;
        ~grads_restore() {
            n.head_input_grad(false);
            n.head_param_grad(true);
        }
    } restore{net};
    net.head_input_grad(true);
    net.head_param_grad(false);
    for (int s = 0; s <= opt.steps; ++s) {
        adv.forward(f.view(), f_adv.view());
        const tensor<float>& logits = net.head(f_adv, nn::mode::eval);
        const double loss = ce.forward(logits, y);
        tr.loss.push_back(loss);
        if (s == opt.steps) break;
        const tensor<float>& diff = net.head_backward(ce.backward());
        adv.backward(f.view(), f_adv.view(), diff.view(), tensor_view<float>());
        adv.pgd_step(opt.tau, opt.eps);
    }
    return tr;
}

}  // namespace shiftnorm::advbn
