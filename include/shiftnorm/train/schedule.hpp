// SPDX-License-Identifier: MIT
// Learning-rate schedules: constant, step decay, cosine annealing, one-cycle (per iteration).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"

namespace shiftnorm::train {

enum class schedule_kind { constant, step, cosine, one_cycle };

inline schedule_kind parse_schedule(const std::string& s) {
    if (s == "constant") return schedule_kind::constant;
    if (s == "step") return schedule_kind::step;
    if (s == "cosine") return schedule_kind::cosine;
    if (s == "onecycle" || s == "one-cycle" || s == "one_cycle") return schedule_kind::one_cycle;
    throw value_error("schedule: argument 'name' expected constant|step|cosine|onecycle, got '" + s + "'");
}

//! The learning rate as a function of the global iteration t in [0, total_steps):
//!  - constant: lr;
//!  - step: lr * gamma^k, k = number of milestones (in epochs) <= the current epoch
//!    (torch MultiStepLR stepped per epoch);
//!  - cosine: lr * (1 + cos(pi t / T)) / 2 (CosineAnnealingLR, eta_min 0, per iteration);
//!  - one_cycle: torch OneCycleLR with cosine annealing: from lr/div_factor up to lr over the
//!    first pct_start of the steps, then down to lr/(div_factor*final_div_factor).
struct lr_schedule {
    schedule_kind kind = schedule_kind::cosine;
    double lr = 0.1;
    long long total_steps = 1, steps_per_epoch = 1;
    std::vector<int> milestones{};  //!< epochs, for step
    double gamma = 0.1;
    double pct_start = 0.3, div_factor = 25.0, final_div_factor = 1e4;

    double at(long long t) const {
        if (total_steps <= 0 || steps_per_epoch <= 0)
            shiftnorm::detail::fail("lr_schedule", "total_steps/steps_per_epoch", "> 0", total_steps);
        t = std::clamp(t, 0LL, total_steps - 1);
        const double pi = 3.14159265358979323846;
        switch (kind) {
            case schedule_kind::constant: return lr;
            case schedule_kind::step: {
                const long long epoch = t / steps_per_epoch;
                int k = 0;
                for (int m : milestones) k += epoch >= m;
                return lr * std::pow(gamma, k);
            }
            case schedule_kind::cosine: return lr * 0.5 * (1.0 + std::cos(pi * double(t) / double(total_steps)));
            case schedule_kind::one_cycle: {
                const double initial = lr / div_factor, final_lr = initial / final_div_factor;
                const double up = pct_start * double(total_steps) - 1.0;
                const double down = double(total_steps) - 1.0;
                auto cos_anneal = [&](double a, double b, double pct) { return b + (a - b) / 2.0 * (std::cos(pi * pct) + 1.0); };
                if (double(t) <= up) return cos_anneal(initial, lr, up > 0 ? double(t) / up : 1.0);
                return cos_anneal(lr, final_lr, (double(t) - up) / std::max(1.0, down - up));
            }
        }
        return lr;
    }
};

}  // namespace shiftnorm::train
