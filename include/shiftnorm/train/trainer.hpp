// SPDX-License-Identifier: MIT
// The training loop: seeded epochs of SGD with augmentation, progress lines, evaluation, checkpoints.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/core/memory.hpp"
#include "shiftnorm/core/denormals.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/transforms.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/nn/loss.hpp"
#include "shiftnorm/nn/module.hpp"
#include "shiftnorm/train/checkpoint.hpp"
#include "shiftnorm/train/schedule.hpp"
#include "shiftnorm/train/sgd.hpp"

namespace shiftnorm::train {

// Evaluation is the eval part's job (eval/evaluate.hpp); the trainer reports with it.
using eval::eval_result;
using eval::evaluate;

//! Options of fit().
struct fit_options {
    int epochs = 10;
    index_t batch_size = 128;
    index_t eval_batch_size = 500;
    lr_schedule schedule{};  //!< total/steps_per_epoch are filled in by fit()
    sgd_options optimizer{};
    std::uint64_t seed = 0;
    data::augmentation augment{};
    data::normalization norm{};
    std::string checkpoint;      //!< written after every epoch when non-empty (save_checkpoint: crash-consistent)
    bool resume = false;         //!< continue from `checkpoint` when it exists (after recover_checkpoint)
    int stop_after_epoch = 0;    //!< end the run after this epoch (1-based; 0: run all), e.g. time-boxing
    double progress_seconds = 10;  //!< interval of progress lines
    std::map<std::string, std::string> metadata{};  //!< stored in every checkpoint
    std::ostream* log = &std::cout;
    //! Flush subnormal floats to zero on every compute thread (set_flush_denormals_all_threads)
    //! for the run: a converged network's tiny gradients are otherwise subnormal and ~10x slower
    //! on x86 (oneDNN, and so PyTorch, flush too). The threads keep the setting after fit().
    bool flush_denormals = true;
};

//! One line of the training history.
struct epoch_record {
    int epoch = 0;
    double train_loss = 0, train_accuracy = 0, test_accuracy = -1, test_loss = 0;
    double seconds = 0, images_per_second = 0;
    //! img/s after the epoch's first step (which also allocates and first-touches the network's
    //! buffers): the steady-state rate, what a peer timed after a warm-up step reports; 0 when the
    //! epoch has a single step.
    double steady_images_per_second = 0;
};

namespace detail {
inline std::string format_duration(double s) {
    if (!(s >= 0) || s > 1e7) return "?";
    std::ostringstream os;
    const long long t = (long long)(s + 0.5);
    if (t >= 3600) os << t / 3600 << "h" << std::setw(2) << std::setfill('0') << (t / 60) % 60 << "m";
    else if (t >= 60) os << t / 60 << "m" << std::setw(2) << std::setfill('0') << t % 60 << "s";
    else os << t << "s";
    return os.str();
}
}  // namespace detail
//! "1h02m03s" / "4m05s" / "7s" ("?" when unknown): ETAs and elapsed times of progress lines.
using detail::format_duration;

//! The augmentation engine of epoch `epoch` of a seeded run (fit, advbn::fine_tune): drawn from
//! (seed, epoch) only, so a run resumed after epoch e-1 replays epoch e identically.
inline std::mt19937_64 epoch_augmentation_rng(std::uint64_t seed, int epoch) {
    return std::mt19937_64(seed * 1000003ull + std::uint64_t(epoch) * 7919ull + 17ull);
}

//! Saves the end-of-epoch checkpoint of a seeded run: `metadata` plus epochs_done, epochs, seed
//! and (test_accuracy >= 0) test_accuracy, crash-consistently (save_checkpoint).
inline void save_epoch_checkpoint(const std::string& path, nn::module& net, sgd& opt,
                                  std::map<std::string, std::string> metadata, int epochs_done, int epochs,
                                  std::uint64_t seed, double test_accuracy) {
    metadata["epochs_done"] = std::to_string(epochs_done);
    metadata["epochs"] = std::to_string(epochs);
    metadata["seed"] = std::to_string(seed);
    if (test_accuracy >= 0) metadata["test_accuracy"] = std::to_string(test_accuracy);
    save_checkpoint(path, net, opt, metadata);
}

//! Trains `net` with SGD for opt.epochs on `train_set`, evaluating on `test_set` (may be null)
//! after every epoch. Epoch e sees the permutation shuffled_indices(n, seed, e) and an
//! augmentation engine seeded from (seed, e), so a run resumed from the checkpoint of epoch
//! e-1 (weights, running statistics, momentum buffers) replays epoch e identically (up to
//! floating-point summation order with a different thread count). The last partial batch of an
//! epoch is dropped when smaller than 2 (batch statistics need 2 values).
inline std::vector<epoch_record> fit(nn::module& net, const data::image_dataset& train_set,
                                     const data::image_dataset* test_set, fit_options opt) {
    std::ostream& log = *opt.log;
    if (train_set.size() < 2) shiftnorm::detail::fail<shape_error>("fit", "train_set", "at least 2 images", train_set.size());
    if (opt.batch_size < 2) shiftnorm::detail::fail("fit", "batch_size", ">= 2", opt.batch_size);
    if (opt.epochs < 1) shiftnorm::detail::fail("fit", "epochs", ">= 1", opt.epochs);
    const index_t n = train_set.size();
    index_t steps_per_epoch = n / opt.batch_size + ((n % opt.batch_size) >= 2 ? 1 : 0);
    opt.schedule.steps_per_epoch = steps_per_epoch;
    opt.schedule.total_steps = steps_per_epoch * opt.epochs;

    if (opt.flush_denormals) set_flush_denormals_all_threads(true);
    net.set_input_grad(false);
    sgd optimizer(net.parameters(), opt.optimizer);
    int first_epoch = 0;
    if (opt.resume && !opt.checkpoint.empty()) first_epoch = resume_checkpoint(opt.checkpoint, net, optimizer, log);

    std::vector<epoch_record> history;
    nn::softmax_cross_entropy ce;
    tensor<float> x;
    std::vector<std::int32_t> y;
    const auto run_start = std::chrono::steady_clock::now();
    for (int epoch = first_epoch; epoch < opt.epochs; ++epoch) {
        const auto order = data::shuffled_indices(n, opt.seed, std::uint64_t(epoch));
        auto aug_rng = epoch_augmentation_rng(opt.seed, epoch);
        const auto t0 = std::chrono::steady_clock::now();
        auto last_print = t0;
        double loss_sum = 0;
        index_t correct = 0, seen = 0, first_step_images = 0;
        auto after_first_step = t0;
        for (index_t s = 0; s < steps_per_epoch; ++s) {
            const index_t begin = s * opt.batch_size, count = std::min(opt.batch_size, n - begin);
            data::make_batch(train_set, order, begin, count, opt.norm, opt.augment, &aug_rng, x, y);
            net.zero_grad();
            const tensor<float>& logits = net.forward(x, nn::mode::train);
            const double loss = ce.forward(logits, y);
            if (!std::isfinite(loss))
                throw numeric_error("fit: the training loss became " + std::to_string(loss) + " at epoch " +
                                    std::to_string(epoch + 1) + " step " + std::to_string(s) + " (learning rate too high?)");
            correct += nn::count_correct(logits, y);
            net.backward(ce.backward());
            const long long global = (long long)epoch * steps_per_epoch + s;
            optimizer.step(opt.schedule.at(global));
            loss_sum += loss * double(count);
            seen += count;
            const auto now = std::chrono::steady_clock::now();
            if (s == 0) after_first_step = now, first_step_images = count;
            if (std::chrono::duration<double>(now - last_print).count() >= opt.progress_seconds || s + 1 == steps_per_epoch) {
                last_print = now;
                const double el = std::chrono::duration<double>(now - t0).count();
                const double ips = double(seen) / std::max(el, 1e-9);
                const double left = double(n - seen) / ips + double(opt.epochs - epoch - 1) * double(n) / ips;
                log << "epoch " << epoch + 1 << "/" << opt.epochs << " [" << std::setw(6) << seen << "/" << n << "] "
                    << std::fixed << std::setprecision(1) << ips << " img/s  loss " << std::setprecision(4)
                    << loss_sum / double(seen) << "  acc " << std::setprecision(2) << 100.0 * double(correct) / double(seen)
                    << "%  lr " << std::setprecision(5) << opt.schedule.at(global) << "  ETA "
                    << detail::format_duration(left) << std::defaultfloat << "\n";
                log.flush();
            }
        }
        epoch_record rec;
        rec.epoch = epoch + 1;
        rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rec.train_loss = loss_sum / double(seen);
        rec.train_accuracy = double(correct) / double(seen);
        rec.images_per_second = double(seen) / rec.seconds;
        if (steps_per_epoch > 1) {
            const double steady_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - after_first_step).count();
            rec.steady_images_per_second = double(seen - first_step_images) / std::max(steady_s, 1e-9);
        }
        if (test_set) {
            const auto r = evaluate(net, *test_set, opt.norm, opt.eval_batch_size);
            rec.test_accuracy = r.accuracy;
            rec.test_loss = r.loss;
        }
        log << "== epoch " << rec.epoch << "/" << opt.epochs << ": train loss " << std::fixed << std::setprecision(4)
            << rec.train_loss << ", train acc " << std::setprecision(2) << 100 * rec.train_accuracy << "%";
        if (test_set) log << ", test loss " << std::setprecision(4) << rec.test_loss << ", test acc " << std::setprecision(2)
                          << 100 * rec.test_accuracy << "%";
        log << ", " << std::setprecision(1) << rec.seconds << " s (" << rec.images_per_second << " img/s";
        if (rec.steady_images_per_second > 0) log << "; " << rec.steady_images_per_second << " img/s after the first step";
        log << "), elapsed "
            << detail::format_duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count())
            << ", peak memory " << peak_memory_mib() << " MiB" << std::defaultfloat << "\n";
        log.flush();
        history.push_back(rec);
        if (!opt.checkpoint.empty()) {
            save_epoch_checkpoint(opt.checkpoint, net, optimizer, opt.metadata, epoch + 1, opt.epochs, opt.seed,
                                  test_set ? rec.test_accuracy : -1.0);
        }
        if (opt.stop_after_epoch > 0 && epoch + 1 >= opt.stop_after_epoch) break;
    }
    return history;
}

}  // namespace shiftnorm::train
