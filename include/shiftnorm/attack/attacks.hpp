// SPDX-License-Identifier: MIT
// Gradient attacks on a batch: FGSM, BIM, MIM, PGD (L-inf) and Carlini-Wagner L2, seeded.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "shiftnorm/attack/model.hpp"
#include "shiftnorm/core/random.hpp"

namespace shiftnorm::attack {

enum class attack_kind { fgsm, bim, mim, pgd, cw };

inline const char* to_string(attack_kind k) {
    switch (k) {
        case attack_kind::fgsm: return "fgsm";
        case attack_kind::bim: return "bim";
        case attack_kind::mim: return "mim";
        case attack_kind::pgd: return "pgd";
        case attack_kind::cw: return "cw";
    }
    return "?";
}

//! "fgsm" | "bim" | "mim" | "pgd" | "cw" (lower case); value_error naming the bad name otherwise.
inline attack_kind parse_attack(const std::string& s) {
    for (attack_kind k : {attack_kind::fgsm, attack_kind::bim, attack_kind::mim, attack_kind::pgd, attack_kind::cw})
        if (s == to_string(k)) return k;
    throw value_error("unknown attack '" + s + "': expected one of fgsm, bim, mim, pgd, cw");
}

//! Settings of one attack. Units are those of the model's input_space (pixel: [0, 1] scale).
struct attack_options {
    attack_kind kind = attack_kind::pgd;
    double eps = 8.0 / 255.0;  //!< L-inf budget (FGSM, BIM, MIM, PGD); CW-L2 has none
    double step = -1;          //!< step size of BIM / MIM / PGD; < 0: eps / 10 (the reference's eps_iter)
    int steps = 20;            //!< iterations of BIM / MIM / PGD
    double decay = 1.0;        //!< MIM's momentum decay mu (Dong et al. 2018)
    std::uint64_t seed = 0;    //!< PGD's uniform random start
    // Carlini & Wagner 2017, L2, untargeted, as advertorch's CarliniWagnerL2Attack (Adam in tanh space)
    double cw_c = 0.1;         //!< initial trade-off constant c (the reference: 0.1)
    int cw_binary_steps = 3;   //!< binary-search steps over c (the reference: 3)
    int cw_steps = 20;         //!< Adam iterations per binary-search step
    double cw_lr = 0.01;       //!< Adam learning rate
    double cw_kappa = 0.0;     //!< confidence margin

    double step_size() const { return step < 0 ? eps / 10.0 : step; }
};

//! Checks every field (value_error naming the field, the expected and the actual value).
inline void validate(const attack_options& o) {
    const char* w = "attack_options";
    if (!(o.eps >= 0.0) || !std::isfinite(o.eps)) shiftnorm::detail::fail(w, "eps", "finite and >= 0", o.eps);
    if (!std::isfinite(o.step)) shiftnorm::detail::fail(w, "step", "finite (< 0: eps/10)", o.step);
    if (o.steps < 1) shiftnorm::detail::fail(w, "steps", ">= 1", o.steps);
    if (!(o.decay >= 0.0) || !std::isfinite(o.decay)) shiftnorm::detail::fail(w, "decay", "finite and >= 0", o.decay);
    if (!(o.cw_c > 0.0) || !std::isfinite(o.cw_c)) shiftnorm::detail::fail(w, "cw_c", "finite and > 0", o.cw_c);
    if (o.cw_binary_steps < 1) shiftnorm::detail::fail(w, "cw_binary_steps", ">= 1", o.cw_binary_steps);
    if (o.cw_steps < 1) shiftnorm::detail::fail(w, "cw_steps", ">= 1", o.cw_steps);
    if (!(o.cw_lr > 0.0) || !std::isfinite(o.cw_lr)) shiftnorm::detail::fail(w, "cw_lr", "finite and > 0", o.cw_lr);
    if (!(o.cw_kappa >= 0.0) || !std::isfinite(o.cw_kappa)) shiftnorm::detail::fail(w, "cw_kappa", "finite and >= 0", o.cw_kappa);
}

namespace detail {

inline float sign(float g) { return g > 0.0f ? 1.0f : g < 0.0f ? -1.0f : 0.0f; }

inline void check_gradient(const char* where, const tensor<float>& g, int iteration) {
    for (index_t i = 0; i < g.numel(); ++i)
        if (!std::isfinite(g[i]))
            throw numeric_error(shiftnorm::detail::concat(where, ": the input gradient has the non-finite value ", g[i],
                                                          " at element ", i, " (iteration ", iteration, ")"));
}

//! x_adv <- clip_box(x + clamp(x_adv + a * d - x, -eps, eps)): one L-inf step, projected onto the
//! eps-ball around x and into the box (advertorch's order: ball first, then box).
inline void linf_step(tensor<float>& x_adv, const tensor<float>& x, const tensor<float>& d, float a, float eps, clip_box box) {
    for (index_t i = 0; i < x.numel(); ++i) {
        const float delta = std::clamp(x_adv[i] + a * sign(d[i]) - x[i], -eps, eps);
        x_adv[i] = std::clamp(x[i] + delta, box.lo, box.hi);
    }
}

inline void check_inputs(const char* where, const tensor<float>& x, const std::vector<std::int32_t>& labels, clip_box box) {
    if (x.numel() == 0) shiftnorm::detail::fail<shape_error>(where, "x", "a non-empty batch", x.shape());
    if (index_t(labels.size()) != x.shape().n)
        shiftnorm::detail::fail<shape_error>(where, "labels", shiftnorm::detail::concat(x.shape().n, " labels"), labels.size());
    if (!(box.lo < box.hi)) shiftnorm::detail::fail(where, "clip box", "lo < hi", shiftnorm::detail::concat("[", box.lo, ", ", box.hi, "]"));
    for (index_t i = 0; i < x.numel(); ++i)
        if (!(x[i] >= box.lo && x[i] <= box.hi))
            throw value_error(shiftnorm::detail::concat(where, ": x[", i, "] = ", x[i], " lies outside the clip box [", box.lo,
                                                        ", ", box.hi, "]"));
}

}  // namespace detail

//! FGSM (Goodfellow et al. 2014): x_adv = clip(x + eps * sign(grad_x L(x, y))).
inline tensor<float> fgsm(model& m, const tensor<float>& x, const std::vector<std::int32_t>& y, const attack_options& o,
                          clip_box box) {
    validate(o);
    detail::check_inputs("attack::fgsm", x, y, box);
    tensor<float> g, x_adv = x;
    m.loss_gradient(x, y, g);
    detail::check_gradient("attack::fgsm", g, 0);
    detail::linf_step(x_adv, x, g, float(o.eps), float(o.eps), box);
    return x_adv;
}

namespace detail {
//! The shared loop of BIM / MIM / PGD from x_adv (x itself, or PGD's random start).
inline tensor<float> iterate(const char* where, model& m, const tensor<float>& x, tensor<float> x_adv,
                             const std::vector<std::int32_t>& y, const attack_options& o, clip_box box, bool momentum) {
    const float a = float(o.step_size()), eps = float(o.eps), mu = float(o.decay);
    tensor<float> g, acc;
    if (momentum) acc = tensor<float>(x.shape(), 0.0f);
    const index_t per = x.numel() / x.shape().n;
    for (int t = 0; t < o.steps; ++t) {
        m.loss_gradient(x_adv, y, g);
        check_gradient(where, g, t);
        if (momentum) {  // acc = mu * acc + g / ||g||_1, per image (Dong et al. 2018, eq. 6)
            for (index_t n = 0; n < x.shape().n; ++n) {
                double l1 = 0;
                for (index_t i = n * per; i < (n + 1) * per; ++i) l1 += std::abs(double(g[i]));
                const float inv = l1 > 0 ? float(1.0 / l1) : 0.0f;
                for (index_t i = n * per; i < (n + 1) * per; ++i) acc[i] = mu * acc[i] + g[i] * inv;
            }
            linf_step(x_adv, x, acc, a, eps, box);
        } else {
            linf_step(x_adv, x, g, a, eps, box);
        }
    }
    return x_adv;
}
}  // namespace detail

//! BIM (Kurakin et al. 2016): `steps` signed-gradient steps of size `step` from x, each
//! projected onto the eps-ball and the box.
inline tensor<float> bim(model& m, const tensor<float>& x, const std::vector<std::int32_t>& y, const attack_options& o,
                         clip_box box) {
    validate(o);
    detail::check_inputs("attack::bim", x, y, box);
    return detail::iterate("attack::bim", m, x, x, y, o, box, false);
}

//! MIM (Dong et al. 2018): BIM on the accumulated, per-image L1-normalized gradient with decay mu.
inline tensor<float> mim(model& m, const tensor<float>& x, const std::vector<std::int32_t>& y, const attack_options& o,
                         clip_box box) {
    validate(o);
    detail::check_inputs("attack::mim", x, y, box);
    return detail::iterate("attack::mim", m, x, x, y, o, box, true);
}

//! PGD (Madry et al. 2017): BIM from a uniform random start x + U(-eps, eps) (clipped to the
//! box), drawn from random_engine(seed) element by element in NCHW order.
inline tensor<float> pgd(model& m, const tensor<float>& x, const std::vector<std::int32_t>& y, const attack_options& o,
                         clip_box box) {
    validate(o);
    detail::check_inputs("attack::pgd", x, y, box);
    random_engine rng(o.seed);
    tensor<float> start = x;
    for (index_t i = 0; i < x.numel(); ++i)
        start[i] = std::clamp(float(double(x[i]) + rng.uniform(-o.eps, o.eps)), box.lo, box.hi);
    return detail::iterate("attack::pgd", m, x, std::move(start), y, o, box, false);
}

//! Carlini & Wagner 2017, L2, untargeted: minimizes ||x_adv - x||_2^2 + c * max(Z_y - max_{k!=y} Z_k
//! + kappa, 0) over w, x_adv = lo + (hi - lo) (tanh(w) + 1) / 2, with Adam (cw_lr) for cw_steps
//! iterations, and a binary search over c per image (cw_binary_steps; c grows 10x while no
//! adversarial is found). Returns, per image, the misclassified iterate with the smallest L2
//! distance, or x when none was found. No L-inf budget. In batch mode the "misclassified" test
//! uses the batch of the iterate (the images are coupled by the statistics).
inline tensor<float> cw_l2(model& m, const tensor<float>& x, const std::vector<std::int32_t>& y, const attack_options& o,
                           clip_box box) {
    validate(o);
    detail::check_inputs("attack::cw_l2", x, y, box);
    const index_t N = x.shape().n, per = x.numel() / N;
    const double lo = box.lo, span = double(box.hi) - double(box.lo);
    std::vector<double> w0(std::size_t(x.numel()));
    for (index_t i = 0; i < x.numel(); ++i) {  // atanh of x mapped to (-1, 1), kept off the poles
        const double u = std::clamp((double(x[i]) - lo) / span * 2.0 - 1.0, -1.0, 1.0) * 0.999999;
        w0[std::size_t(i)] = std::atanh(u);
    }
    std::vector<double> c(std::size_t(N), o.cw_c), lower(std::size_t(N), 0.0), upper(std::size_t(N), 1e10);
    std::vector<double> best_l2(std::size_t(N), std::numeric_limits<double>::infinity());
    tensor<float> best = x, x_adv(x.shape()), diff_logits;
    std::vector<double> delta(std::size_t(x.numel())), m1(delta.size()), m2(delta.size());
    for (int b = 0; b < o.cw_binary_steps; ++b) {
        std::fill(delta.begin(), delta.end(), 0.0);
        std::fill(m1.begin(), m1.end(), 0.0);
        std::fill(m2.begin(), m2.end(), 0.0);
        std::vector<char> found(std::size_t(N), 0);
        for (int t = 0; t < o.cw_steps; ++t) {
            for (index_t i = 0; i < x.numel(); ++i)
                x_adv[i] = float(lo + span * (std::tanh(w0[std::size_t(i)] + delta[std::size_t(i)]) + 1.0) / 2.0);
            const tensor<float>& z = m.forward(x_adv);
            const index_t K = z.numel() / N;
            if (diff_logits.shape() != z.shape()) diff_logits = tensor<float>(z.shape());
            diff_logits.fill(0.0f);
            for (index_t n = 0; n < N; ++n) {
                const float* zn = z.data() + n * K;
                const std::int32_t yn = y[std::size_t(n)];
                if (yn < 0 || yn >= K) shiftnorm::detail::fail("attack::cw_l2", "label", shiftnorm::detail::concat("in [0, ", K, ")"), yn);
                index_t other = yn == 0 ? 1 : 0;
                for (index_t k = 0; k < K; ++k)
                    if (k != yn && zn[k] > zn[other]) other = k;
                const double margin = double(zn[yn]) - double(zn[other]);
                if (margin + o.cw_kappa > 0) {
                    diff_logits[n * K + yn] = float(c[std::size_t(n)]);
                    diff_logits[n * K + other] = float(-c[std::size_t(n)]);
                }
                // success: misclassified with the margin kappa (advertorch's untargeted test)
                if (margin + o.cw_kappa < 0) {
                    double l2 = 0;
                    for (index_t i = n * per; i < (n + 1) * per; ++i) l2 += double(x_adv[i] - x[i]) * double(x_adv[i] - x[i]);
                    found[std::size_t(n)] = 1;
                    if (l2 < best_l2[std::size_t(n)]) {
                        best_l2[std::size_t(n)] = l2;
                        std::copy_n(x_adv.data() + n * per, per, best.data() + n * per);
                    }
                }
            }
            const tensor<float>& g = m.backward(diff_logits);
            detail::check_gradient("attack::cw_l2", g, t);
            const double b1 = 0.9, b2 = 0.999, step = double(t + 1);
            const double corr1 = 1.0 - std::pow(b1, step), corr2 = 1.0 - std::pow(b2, step);
            for (index_t i = 0; i < x.numel(); ++i) {
                const auto k = std::size_t(i);
                const double th = std::tanh(w0[k] + delta[k]);
                const double dx = 2.0 * (double(x_adv[i]) - double(x[i])) + double(g[i]);  // d loss / d x_adv
                const double gd = dx * span * (1.0 - th * th) / 2.0;                        // chain through tanh
                m1[k] = b1 * m1[k] + (1 - b1) * gd;
                m2[k] = b2 * m2[k] + (1 - b2) * gd * gd;
                delta[k] -= o.cw_lr * (m1[k] / corr1) / (std::sqrt(m2[k] / corr2) + 1e-8);
            }
        }
        for (index_t n = 0; n < N; ++n) {  // binary search over c (Carlini & Wagner's schedule)
            const auto k = std::size_t(n);
            if (found[k]) {
                upper[k] = std::min(upper[k], c[k]);
                c[k] = (lower[k] + upper[k]) / 2;
            } else {
                lower[k] = std::max(lower[k], c[k]);
                c[k] = upper[k] < 1e9 ? (lower[k] + upper[k]) / 2 : c[k] * 10;
            }
        }
    }
    return best;
}

//! Runs the attack o.kind.
inline tensor<float> run(model& m, const tensor<float>& x, const std::vector<std::int32_t>& y, const attack_options& o,
                         clip_box box) {
    switch (o.kind) {
        case attack_kind::fgsm: return fgsm(m, x, y, o, box);
        case attack_kind::bim: return bim(m, x, y, o, box);
        case attack_kind::mim: return mim(m, x, y, o, box);
        case attack_kind::pgd: return pgd(m, x, y, o, box);
        case attack_kind::cw: return cw_l2(m, x, y, o, box);
    }
    throw value_error("attack::run: unknown attack kind");
}

}  // namespace shiftnorm::attack
