// SPDX-License-Identifier: MIT
// Seed 003's protocol: clean and adversarial accuracy per normalization mode, batch size, attack and eps.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "shiftnorm/attack/attacks.hpp"
#include "shiftnorm/core/digest.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/transforms.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::eval {

//! One way of running a network: a name for the tables ("P", "B", "RN", ...), the network,
//! the mode it runs in (nn::mode::eval or nn::mode::batch), and an optional `prepare` called
//! before each use (e.g. selecting RobustNorm's inference variant on every layer).
struct attack_subject {
    std::string name;
    nn::module* net = nullptr;
    nn::mode mode = nn::mode::eval;
    std::function<void()> prepare;
};

struct attack_eval_options {
    std::vector<attack::attack_kind> attacks = {attack::attack_kind::fgsm, attack::attack_kind::bim, attack::attack_kind::mim,
                                                attack::attack_kind::cw, attack::attack_kind::pgd};
    std::vector<double> eps = {8.0 / 255.0};   //!< L-inf budgets (CW-L2 runs once, without one)
    std::vector<index_t> batch_sizes = {128};  //!< inference (and attack) batch sizes
    attack::attack_options base;               //!< steps, step (< 0: eps/10 for each eps), decay, seed, CW knobs
    attack::input_space space = attack::input_space::pixel;
    data::normalization norm;                  //!< the network's input normalization
    //! Progress lines (subject, batch size, images done, ...); may be empty.
    std::function<void(const std::string&)> progress;
};

//! One cell: accuracy of `subject` at batch size `batch` under `attack` ("clean" for none) with
//! budget eps (NaN for clean and CW). Distances are in the attack space's units, per image.
struct attack_row {
    std::string subject, attack;
    index_t batch = 0;
    double eps = std::numeric_limits<double>::quiet_NaN();
    index_t images = 0, correct = 0;
    double accuracy = 0;
    double mean_linf = 0, max_linf = 0, mean_l2 = 0;
    double seconds = 0;
};

struct attack_eval_result {
    std::vector<attack_row> rows;
    index_t images = 0;
    std::string dataset_digest;
};

namespace detail {
//! Digest of every buffer (running statistics) of a network: attacks must leave it unchanged.
inline std::uint64_t buffer_digest(nn::module& net) {
    std::uint64_t h = fnv1a_offset;
    const auto ps = net.parameters();
    for (const auto& p : ps.params)
        if (p.kind == nn::param_kind::buffer) fnv1a(h, p.value, std::size_t(p.size) * sizeof(float));
    for (const auto& c : ps.counters) fnv1a(h, c.value, sizeof(long long));
    return h;
}

inline void validate(const attack_eval_options& o, const std::vector<attack_subject>& subjects, const data::image_dataset& ds) {
    const char* w = "run_attack_eval";
    if (ds.size() == 0) shiftnorm::detail::fail<shape_error>(w, "dataset", "at least one image", 0);
    if (subjects.empty()) shiftnorm::detail::fail(w, "subjects", "at least one", 0);
    for (const auto& s : subjects)
        if (!s.net) shiftnorm::detail::fail(w, "subject network", "non-null", "nullptr");
    if (o.attacks.empty() && o.eps.empty()) shiftnorm::detail::fail(w, "attacks", "at least one", 0);
    if (o.batch_sizes.empty()) shiftnorm::detail::fail(w, "batch_sizes", "at least one", 0);
    for (index_t b : o.batch_sizes)
        if (b < 1) shiftnorm::detail::fail(w, "batch size", ">= 1", b);
    for (double e : o.eps) {
        auto a = o.base;
        a.eps = e;
        attack::validate(a);
    }
    attack::validate(o.base);
}
}  // namespace detail

//! For every subject and batch size: the images of `ds` in order, in consecutive batches of
//! that size (the last one may be smaller), are classified clean and under every attack x eps;
//! each batch is attacked and classified as a whole in the subject's mode (in batch mode the
//! statistics are those of the adversarial batch). PGD's random start of the batch starting at
//! image i is seeded with mix_seed(base.seed, i, eps index). Throws state_error if a
//! subject's stored statistics changed (they never should).
//! Cost: per subject and batch size, images x (1 + sum over attacks of forward+backward passes:
//! FGSM 1, BIM/MIM/PGD steps, CW binary_steps x cw_steps) network passes, plus one forward each.
inline attack_eval_result run_attack_eval(const std::vector<attack_subject>& subjects, const data::image_dataset& ds,
                                          const attack_eval_options& o) {
    detail::validate(o, subjects, ds);
    attack_eval_result res;
    res.images = ds.size();
    const bool pixel = o.space == attack::input_space::pixel;
    const data::normalization identity{{0.0f}, {1.0f}};
    std::vector<index_t> order(std::size_t(ds.size()));
    for (index_t i = 0; i < ds.size(); ++i) order[std::size_t(i)] = i;
    using clock = std::chrono::steady_clock;
    for (const auto& s : subjects) {
        if (s.prepare) s.prepare();
        const std::uint64_t before = detail::buffer_digest(*s.net);
        attack::model m(*s.net, s.mode, o.space, o.norm.mean, o.norm.std);
        for (index_t B : o.batch_sizes) {
            // rows of this (subject, batch): clean, then attack x eps (CW once)
            std::vector<attack_row> rows;
            struct job {
                attack::attack_options a;
                std::size_t eps_index;
            };
            std::vector<job> jobs;
            for (auto k : o.attacks) {
                if (k == attack::attack_kind::cw) {
                    auto a = o.base;
                    a.kind = k;
                    jobs.push_back({a, 0});
                    continue;
                }
                for (std::size_t e = 0; e < o.eps.size(); ++e) {
                    auto a = o.base;
                    a.kind = k, a.eps = o.eps[e];
                    jobs.push_back({a, e});
                }
            }
            rows.resize(jobs.size() + 1);
            for (std::size_t j = 0; j < rows.size(); ++j) {
                rows[j].subject = s.name, rows[j].batch = B;
                if (j == 0) rows[j].attack = "clean";
                else {
                    rows[j].attack = attack::to_string(jobs[j - 1].a.kind);
                    if (jobs[j - 1].a.kind != attack::attack_kind::cw) rows[j].eps = jobs[j - 1].a.eps;
                }
            }
            tensor<float> x;
            std::vector<std::int32_t> y;
            const auto t_start = clock::now();
            for (index_t b0 = 0; b0 < ds.size(); b0 += B) {
                const index_t n = std::min(B, ds.size() - b0);
                data::make_batch(ds, order, b0, n, pixel ? identity : o.norm, {}, nullptr, x, y);
                const attack::clip_box box = pixel ? attack::clip_box{0.0f, 1.0f} : attack::batch_range(x);
                auto t0 = clock::now();
                rows[0].correct += nn::count_correct(m.forward(x), y);
                rows[0].images += n;
                rows[0].seconds += std::chrono::duration<double>(clock::now() - t0).count();
                for (std::size_t j = 0; j < jobs.size(); ++j) {
                    auto a = jobs[j].a;
                    a.seed = mix_seed(o.base.seed, std::uint64_t(b0), jobs[j].eps_index);
                    t0 = clock::now();
                    const tensor<float> xa = attack::run(m, x, y, a, box);
                    auto& r = rows[j + 1];
                    r.correct += nn::count_correct(m.forward(xa), y);
                    r.images += n;
                    const index_t per = x.numel() / n;
                    for (index_t i = 0; i < n; ++i) {
                        double linf = 0, l2 = 0;
                        for (index_t k = i * per; k < (i + 1) * per; ++k) {
                            const double d = double(xa[k]) - double(x[k]);
                            linf = std::max(linf, std::abs(d));
                            l2 += d * d;
                        }
                        r.mean_linf += linf, r.mean_l2 += std::sqrt(l2);
                        r.max_linf = std::max(r.max_linf, linf);
                    }
                    r.seconds += std::chrono::duration<double>(clock::now() - t0).count();
                }
                if (o.progress)
                    o.progress(shiftnorm::detail::concat(s.name, " batch ", B, ": ", b0 + n, "/", ds.size(), " images, clean ",
                                                         rows[0].correct, "/", rows[0].images, ", ",
                                                         std::chrono::duration<double>(clock::now() - t_start).count(), " s"));
            }
            for (auto& r : rows) {
                r.accuracy = r.images ? double(r.correct) / double(r.images) : 0.0;
                if (r.images) r.mean_linf /= double(r.images), r.mean_l2 /= double(r.images);
                res.rows.push_back(r);
            }
        }
        if (detail::buffer_digest(*s.net) != before)
            throw state_error("run_attack_eval: the stored statistics of subject '" + s.name +
                              "' changed during the attacks (a layer updated its running buffers outside training)");
    }
    return res;
}

}  // namespace shiftnorm::eval
