// SPDX-License-Identifier: MIT
// AdvBN fine-tuning of a split network's head (clean + adversarial loss), and the plain control.
#pragma once

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/advbn/perturb.hpp"
#include "shiftnorm/core/denormals.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/transforms.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/train/checkpoint.hpp"
#include "shiftnorm/train/schedule.hpp"
#include "shiftnorm/train/sgd.hpp"
#include "shiftnorm/train/trainer.hpp"

namespace shiftnorm::advbn {

//! Options of fine_tune(). Defaults are the paper's (seed 001 sec. 4): SGD lr 1e-3, momentum
//! 0.9, weight decay 1e-4, lr x0.1 at half the epochs (20 epochs, step at 10 in the paper).
struct fine_tune_options {
    int epochs = 20;
    index_t batch_size = 128;
    index_t eval_batch_size = 500;
    double lr = 1e-3;
    std::vector<int> milestones{};  //!< epochs where lr *= gamma; empty: {epochs / 2}
    double gamma = 0.1;
    train::sgd_options optimizer{0.9, 1e-4};
    //! false: AdvBN (loss = CE(clean) + CE(adversarial), auxiliary BNs); true: the plain control
    //! with the same data, schedule and head (loss = CE(clean) only, no adversary).
    bool control = false;
    attack_options attack{};
    std::uint64_t seed = 0;
    data::augmentation augment{};
    data::normalization norm{};
    std::string checkpoint;       //!< written after every epoch when non-empty (crash-consistent pair)
    bool resume = false;          //!< continue from `checkpoint` when it exists
    int stop_after_epoch = 0;     //!< end after this epoch (1-based; 0: all)
    double progress_seconds = 10;
    std::map<std::string, std::string> metadata{};
    std::ostream* log = &std::cout;
    bool flush_denormals = true;
};

//! One epoch of fine_tune(): losses, accuracies and where the time went.
struct fine_tune_record {
    int epoch = 0;
    double loss_clean = 0, loss_adv = 0, acc_clean = 0, acc_adv = 0;
    double test_accuracy = -1, test_loss = 0;
    double seconds = 0, attack_seconds = 0, images_per_second = 0;
    double mean_abs_dmu = 0, mean_abs_dsigma = 0;  //!< mean |d - identity| of the final perturbations
};

//! The checkpoint metadata that ties a checkpoint to its split and variant.
inline std::map<std::string, std::string> run_identity(const std::string& split_at, const fine_tune_options& o) {
    std::ostringstream eps;
    eps << o.attack.eps;
    return {{"advbn_split_at", split_at},
            {"advbn_mode", o.control ? "control" : "advbn"},
            {"advbn_variant", o.attack.kind == perturbation_kind::multiplicative ? "multiplicative" : "additive"},
            {"advbn_eps", eps.str()},
            {"advbn_steps", std::to_string(o.attack.steps)}};
}

//! value_error when the checkpoint at `path` was written by a run with another split, mode
//! (AdvBN / control) or perturbation variant: resuming it would mix two experiments. Reads
//! only the header; nothing is written.
inline void check_resumable(const std::string& path, const std::map<std::string, std::string>& identity) {
    const auto f = data::read_safetensors(path);
    for (const auto& kv : identity) {
        const auto it = f.metadata.find(kv.first);
        const std::string got = it == f.metadata.end() ? "(none: not an AdvBN checkpoint)" : it->second;
        if (got != kv.second)
            throw value_error("advbn: checkpoint '" + path + "' has " + kv.first + " = " + got + ", this run has " + kv.second +
                              "; use another --out or the same settings");
    }
}

//! What accumulate_step() computed for one batch.
struct step_result {
    double loss_clean = 0, loss_adv = 0, attack_seconds = 0;
    index_t correct_clean = 0, correct_adv = 0;
};

//! The gradients of one AdvBN training step on features `f` (the front's output) with labels
//! `y`: the adversary (perturb), then zero_grad, the head in training mode with the clean BNs
//! on f and, unless `control`, with the auxiliary BNs on the perturbed features f_adv; both
//! backward passes accumulate into the shared head parameters (loss = CE(clean) + CE(adv)).
//! The caller applies the optimizer. `f_adv` and `adv` hold the final perturbation.
template <class Norm>
step_result accumulate_step(split_network<Norm>& net, adversarial_stats& adv, const tensor<float>& f,
                            const std::vector<std::int32_t>& y, bool control, const attack_options& attack,
                            tensor<float>& f_adv, nn::softmax_cross_entropy& ce) {
    step_result r;
    if (!control) {  // the adversary first: zero_grad below drops what its backward passes accumulated
        const auto ta = std::chrono::steady_clock::now();
        perturb(net, adv, f, y, attack, f_adv);
        r.attack_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - ta).count();
    }
    net.zero_grad();
    const tensor<float>& logits = net.head(f, nn::mode::train);
    r.loss_clean = ce.forward(logits, y);
    r.correct_clean = nn::count_correct(logits, y);
    net.head_backward(ce.backward());
    if (!control) {
        routed<Norm> aux(net, bn_route::auxiliary);
        const tensor<float>& la_logits = net.head(f_adv, nn::mode::train);
        r.loss_adv = ce.forward(la_logits, y);
        r.correct_adv = nn::count_correct(la_logits, y);
        net.head_backward(ce.backward());
    }
    return r;
}

//! Fine-tunes the head of `net` on `train_set` with AdvBN (or the plain control), evaluating
//! the clean-BN network on `test_set` (may be null) after every epoch. Epoch e sees
//! shuffled_indices(n, seed, e) and augmentation seeded from (seed, e), like train::fit, so a
//! resumed run replays the next epoch identically. Only head parameters (and the auxiliary
//! BNs) train; the front runs in inference mode and never changes.
template <class Norm>
std::vector<fine_tune_record> fine_tune(split_network<Norm>& net, const data::image_dataset& train_set,
                                        const data::image_dataset* test_set, fine_tune_options opt) {
    std::ostream& log = *opt.log;
    const char* where = "advbn::fine_tune";
    if (train_set.size() < 2) shiftnorm::detail::fail<shape_error>(where, "train_set", "at least 2 images", train_set.size());
    if (opt.batch_size < 2) shiftnorm::detail::fail(where, "batch_size", ">= 2", opt.batch_size);
    if (opt.epochs < 1) shiftnorm::detail::fail(where, "epochs", ">= 1", opt.epochs);
    if (!(opt.lr > 0) || !std::isfinite(opt.lr)) shiftnorm::detail::fail(where, "lr", "finite and > 0", opt.lr);
    if (!opt.control) opt.attack.validate();
    const index_t n = train_set.size();
    const index_t steps_per_epoch = n / opt.batch_size + ((n % opt.batch_size) >= 2 ? 1 : 0);
    train::lr_schedule sched;
    sched.kind = train::schedule_kind::step;
    sched.lr = opt.lr;
    sched.gamma = opt.gamma;
    sched.milestones = opt.milestones.empty() ? std::vector<int>{std::max(1, opt.epochs / 2)} : opt.milestones;
    sched.steps_per_epoch = steps_per_epoch;
    sched.total_steps = steps_per_epoch * opt.epochs;

    const auto identity = run_identity(net.split_at(), opt);
    if (opt.flush_denormals) set_flush_denormals_all_threads(true);
    net.set_input_grad(false);
    // the control never uses the auxiliary BNs: they stay out of its optimizer (weight decay
    // would otherwise shrink them)
    train::sgd optimizer(net.head_parameters(!opt.control), opt.optimizer);
    int first_epoch = 0;
    if (opt.resume && !opt.checkpoint.empty())
        first_epoch = train::resume_checkpoint(opt.checkpoint, net, optimizer, log,
                                               [&](const std::string& path) { check_resumable(path, identity); });

    std::vector<fine_tune_record> history;
    nn::softmax_cross_entropy ce;
    adversarial_stats adv;
    tensor<float> x, f_adv;
    std::vector<std::int32_t> y;
    const auto run_start = std::chrono::steady_clock::now();
    for (int epoch = first_epoch; epoch < opt.epochs; ++epoch) {
        const auto order = data::shuffled_indices(n, opt.seed, std::uint64_t(epoch));
        auto aug_rng = train::epoch_augmentation_rng(opt.seed, epoch);
        const auto t0 = std::chrono::steady_clock::now();
        auto last_print = t0;
        fine_tune_record rec;
        rec.epoch = epoch + 1;
        double sum_clean = 0, sum_adv = 0, sum_dmu = 0, sum_dsig = 0;
        index_t correct_clean = 0, correct_adv = 0, seen = 0, batches = 0;
        for (index_t s = 0; s < steps_per_epoch; ++s) {
            const index_t begin = s * opt.batch_size, count = std::min(opt.batch_size, n - begin);
            data::make_batch(train_set, order, begin, count, opt.norm, opt.augment, &aug_rng, x, y);
            const tensor<float>& f = net.front(x);
            const step_result r = accumulate_step(net, adv, f, y, opt.control, opt.attack, f_adv, ce);
            rec.attack_seconds += r.attack_seconds;
            if (!opt.control) {
                const double id = opt.attack.kind == perturbation_kind::multiplicative ? 1.0 : 0.0;
                for (index_t c = 0; c < adv.channels(); ++c) {
                    sum_dmu += std::abs(adv.d_mu[c] - id) / double(adv.channels());
                    sum_dsig += std::abs(adv.d_sigma[c] - id) / double(adv.channels());
                }
            }
            const double lc = r.loss_clean, la = r.loss_adv;
            correct_clean += r.correct_clean;
            correct_adv += r.correct_adv;
            if (!std::isfinite(lc) || !std::isfinite(la))
                throw numeric_error(shiftnorm::detail::concat(where, ": the loss became ", lc + la, " at epoch ", epoch + 1,
                                                              " step ", s, " (learning rate too high?)"));
            const long long global = (long long)epoch * steps_per_epoch + s;
            optimizer.step(sched.at(global));
            sum_clean += lc * double(count);
            sum_adv += la * double(count);
            seen += count;
            ++batches;
            const auto now = std::chrono::steady_clock::now();
            if (std::chrono::duration<double>(now - last_print).count() >= opt.progress_seconds || s + 1 == steps_per_epoch) {
                last_print = now;
                const double el = std::chrono::duration<double>(now - t0).count();
                const double ips = double(seen) / std::max(el, 1e-9);
                const double left = double(n - seen) / ips + double(opt.epochs - epoch - 1) * double(n) / ips;
                log << (opt.control ? "control" : "advbn") << " epoch " << epoch + 1 << "/" << opt.epochs << " ["
                    << std::setw(6) << seen << "/" << n << "] " << std::fixed << std::setprecision(1) << ips
                    << " img/s  loss clean " << std::setprecision(4) << sum_clean / double(seen);
                if (!opt.control)
                    log << " adv " << sum_adv / double(seen)
                        << (opt.attack.kind == perturbation_kind::multiplicative ? "  |d_mu-1| " : "  |d_mu| ")
                        << std::setprecision(3) << sum_dmu / double(batches)
                        << (opt.attack.kind == perturbation_kind::multiplicative ? " |d_sigma-1| " : " |d_sigma| ")
                        << sum_dsig / double(batches);
                log << "  acc " << std::setprecision(2) << 100.0 * double(correct_clean) / double(seen) << "%  lr "
                    << std::setprecision(6) << sched.at(global) << "  ETA " << train::format_duration(left)
                    << std::defaultfloat << "\n";
                log.flush();
            }
        }
        rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rec.loss_clean = sum_clean / double(seen);
        rec.loss_adv = sum_adv / double(seen);
        rec.acc_clean = double(correct_clean) / double(seen);
        rec.acc_adv = double(correct_adv) / double(seen);
        rec.images_per_second = double(seen) / rec.seconds;
        rec.mean_abs_dmu = sum_dmu / double(std::max<index_t>(batches, 1));
        rec.mean_abs_dsigma = sum_dsig / double(std::max<index_t>(batches, 1));
        if (test_set) {
            const auto r = eval::evaluate(net.network(), *test_set, opt.norm, opt.eval_batch_size);
            rec.test_accuracy = r.accuracy;
            rec.test_loss = r.loss;
        }
        log << "== " << (opt.control ? "control" : "advbn") << " epoch " << rec.epoch << "/" << opt.epochs
            << ": train loss clean " << std::fixed << std::setprecision(4) << rec.loss_clean;
        if (!opt.control) log << ", adv " << rec.loss_adv << " (acc " << std::setprecision(2) << 100 * rec.acc_adv << "%)";
        log << ", train acc " << std::setprecision(2) << 100 * rec.acc_clean << "%";
        if (test_set) log << ", test acc " << 100 * rec.test_accuracy << "%";
        log << ", " << std::setprecision(1) << rec.seconds << " s";
        if (!opt.control) log << " (adversary " << rec.attack_seconds << " s)";
        log << ", elapsed "
            << train::format_duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count())
            << std::defaultfloat << "\n";
        log.flush();
        history.push_back(rec);
        if (!opt.checkpoint.empty()) {
            auto meta = opt.metadata;
            for (const auto& kv : identity) meta[kv.first] = kv.second;
            train::save_epoch_checkpoint(opt.checkpoint, net, optimizer, meta, epoch + 1, opt.epochs, opt.seed,
                                         test_set ? rec.test_accuracy : -1.0);
        }
        if (opt.stop_after_epoch > 0 && epoch + 1 >= opt.stop_after_epoch) break;
    }
    return history;
}

}  // namespace shiftnorm::advbn
