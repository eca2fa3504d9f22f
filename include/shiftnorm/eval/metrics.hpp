// SPDX-License-Identifier: MIT
// Corruption-benchmark metrics: results container, Acc, CE, mCE, relative mCE (methods.md section 6).
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/eval/baselines.hpp"

namespace shiftnorm::eval {

namespace detail {
inline constexpr double nan = std::numeric_limits<double>::quiet_NaN();

//! Validates a top-1 accuracy: finite (numeric_error) and in [0, 1] (value_error).
inline void check_accuracy(const char* where, double a) {
    if (!std::isfinite(a)) shiftnorm::detail::fail<numeric_error>(where, "accuracy", "a finite value in [0, 1]", a);
    if (a < 0.0 || a > 1.0) shiftnorm::detail::fail<value_error>(where, "accuracy", "a fraction in [0, 1]", a);
}
}  // namespace detail

//! Top-1 accuracies (fractions in [0, 1]) of ONE model under ONE condition (e.g. before or
//! after BN rectification): the clean test set and any subset of the 19 corruptions x 5
//! severities. Cells never set are "not evaluated" and are excluded from every mean.
class results {
public:
    results() { acc_.fill(filled_nan()); }
    explicit results(std::string name) : label(std::move(name)) { acc_.fill(filled_nan()); }

    std::string label;  //!< free text, e.g. "rectified k=32"; not used by the metrics

    //! Clean (uncorrupted) test accuracy. Throws numeric_error for NaN/inf, value_error outside [0, 1].
    void set_clean(double accuracy) {
        detail::check_accuracy("results::set_clean", accuracy);
        clean_ = accuracy;
    }
    //! Accuracy under `corruption` (one of corruption_names) at `severity` (1..5); overwrites.
    //! Throws value_error for an unknown name or severity, numeric_error for a non-finite value.
    void set(const std::string& corruption, int severity, double accuracy) {
        const int c = check_corruption("results::set", "corruption", corruption);
        const int s = check_severity("results::set", severity);
        detail::check_accuracy("results::set", accuracy);
        acc_[std::size_t(c)][std::size_t(s)] = accuracy;
    }
    //! Same as set(), from counts: correct / total (total > 0, 0 <= correct <= total).
    void set_counts(const std::string& corruption, int severity, long long correct, long long total) {
        if (total <= 0) shiftnorm::detail::fail<value_error>("results::set_counts", "total", "a positive count", total);
        if (correct < 0 || correct > total)
            shiftnorm::detail::fail<value_error>("results::set_counts", "correct",
                                                 shiftnorm::detail::concat("a count in [0, ", total, "]"), correct);
        set(corruption, severity, double(correct) / double(total));
    }

    std::optional<double> clean() const {
        return std::isnan(clean_) ? std::nullopt : std::optional<double>(clean_);
    }
    //! Accuracy of one cell, or nullopt if it was not evaluated. Throws for unknown names/severities.
    std::optional<double> get(const std::string& corruption, int severity) const {
        const int c = check_corruption("results::get", "corruption", corruption);
        const int s = check_severity("results::get", severity);
        const double a = acc_[std::size_t(c)][std::size_t(s)];
        return std::isnan(a) ? std::nullopt : std::optional<double>(a);
    }
    //! Number of evaluated severities of `corruption` (0..5).
    int severities_evaluated(const std::string& corruption) const {
        const int c = check_corruption("results::severities_evaluated", "corruption", corruption);
        int n = 0;
        for (double a : acc_[std::size_t(c)]) n += std::isnan(a) ? 0 : 1;
        return n;
    }
    //! Corruptions with at least one evaluated severity, in ImageNet-C order.
    std::vector<std::string> corruptions() const {
        std::vector<std::string> v;
        for (int c = 0; c < known_corruption_count; ++c)
            if (severities_evaluated(corruption_names[std::size_t(c)]) > 0) v.emplace_back(corruption_names[std::size_t(c)]);
        return v;
    }
    //! True when nothing (clean or corrupted) was set.
    bool empty() const { return std::isnan(clean_) && corruptions().empty(); }

private:
    static constexpr std::array<double, severity_count> filled_nan() {
        return {detail::nan, detail::nan, detail::nan, detail::nan, detail::nan};
    }
    std::array<std::array<double, severity_count>, known_corruption_count> acc_{};
    double clean_ = detail::nan;
};

//! One row of a report: a model (or model + method, e.g. "ResNet-20 (var only)") before
//! rectification and, optionally, after it (the paper's starred columns Acc*, mCE*).
struct model_results {
    std::string model;
    results before;
    std::optional<results> after;
};

//! Metrics of one corruption (all percentages; NaN = not available, `note` says why).
struct corruption_metrics {
    std::string corruption;
    bool common = false;      //!< one of the 15 corruptions mCE averages over
    int severities = 0;       //!< evaluated severities (0..5)
    double accuracy = detail::nan;     //!< mean accuracy over evaluated severities, in %
    double error = detail::nan;        //!< mean top-1 error over evaluated severities, in %
    double ce = detail::nan;           //!< CE_c in % (normalized, or plain error for `none`)
    double relative_ce = detail::nan;  //!< relative CE_c in % (needs both clean errors)
    std::string note;                  //!< why ce / relative_ce are NaN, if they are
};

//! Summary of one results object against a baseline.
struct summary {
    std::string baseline;            //!< baseline_name() of the table used
    double clean_accuracy = detail::nan;  //!< in %
    double acc = detail::nan;        //!< Acc: mean accuracy over evaluated common cells, in %
    int cells = 0;                   //!< evaluated (common corruption, severity) cells, of 75
    double mce = detail::nan;        //!< mean CE over common corruptions with a CE, in %
    int mce_count = 0;               //!< corruptions averaged into mce, of 15
    double relative_mce = detail::nan;  //!< mean relative CE, in %
    int relative_mce_count = 0;
    std::vector<corruption_metrics> per_corruption;  //!< evaluated corruptions, ImageNet-C order
    std::vector<std::string> missing;  //!< common corruptions absent from mce (not evaluated / no CE)

    //! All 15 x 5 common cells evaluated and all 15 CE values present.
    bool complete() const { return cells == common_corruption_count * severity_count && mce_count == common_corruption_count; }
    //! Metrics of one corruption, or nullptr if it was not evaluated.
    const corruption_metrics* find(const std::string& corruption) const {
        for (const auto& m : per_corruption)
            if (m.corruption == corruption) return &m;
        return nullptr;
    }
};

//! The mCE variant a baseline table yields, in words: printed in every table/CSV/JSON header.
inline std::string mce_variant(const baseline_table& b) {
    if (!b.normalizes())
        return "mCE = mean top-1 error in % over corruptions (unnormalized, --baseline none); "
               "relative mCE = mean of (E - E_clean) in %";
    std::string s = "mCE = mean over corruptions of CE_c = 100 * sum_s E_s,c / sum_s E^AlexNet_s,c, baseline " +
                    b.name() + " (" + b.description() + ")";
    if (!b.per_severity()) s += "; the baseline has 5-severity averages only, so CE_c needs all 5 severities";
    s += "; relative mCE uses (E - E_clean) for model and baseline";
    return s;
}

//! Computes the metrics of seed 000 / methods.md section 6 (Hendrycks & Dietterich 2019):
//! - Acc = mean top-1 accuracy over the evaluated (common corruption, severity) cells; with all
//!   15 x 5 cells this is the paper's Acc (Acc* when `r` is the rectified model).
//! - CE_c = sum_s E_s,c / sum_s E^base_s,c (seed 000 eq. 4), summed over the severities that were
//!   evaluated when the baseline is per severity (ImageNet-C); for the CIFAR tables (5-severity
//!   averages only) CE_c = mean_s E_s,c / avg E^base_c and needs all 5 severities.
//! - relative CE_c = sum_s (E_s,c - E_clean) / sum_s (E^base_s,c - E^base_clean): needs r.clean()
//!   and b.clean_error() (the AlexNet clean error is not in the shipped CSV).
//! - baseline none: CE_c = mean_s E_s,c (plain error), relative CE_c = mean_s (E_s,c - E_clean).
//! - mCE, relative mCE = means over the common corruptions that have a value; the others are
//!   listed in `missing`. Held-out corruptions get per-corruption values but never enter means.
//! All outputs are percentages. Complexity O(19 x 5).
inline summary summarize(const results& r, const baseline_table& b) {
    summary out;
    out.baseline = b.name();
    const auto clean = r.clean();
    if (clean) out.clean_accuracy = 100.0 * *clean;
    const auto base_clean = b.clean_error();
    double acc_sum = 0, mce_sum = 0, rmce_sum = 0;
    for (int ci = 0; ci < known_corruption_count; ++ci) {
        const std::string name = corruption_names[std::size_t(ci)];
        const bool common = ci < common_corruption_count;
        corruption_metrics m;
        m.corruption = name;
        m.common = common;
        double e_sum = 0, eb_sum = 0, re_sum = 0, reb_sum = 0;
        for (int s = 1; s <= severity_count; ++s) {
            const auto a = r.get(name, s);
            if (!a) continue;
            ++m.severities;
            const double e = 1.0 - *a;
            e_sum += e;
            if (common) {
                acc_sum += *a;
                ++out.cells;
            }
            if (clean) re_sum += e - (1.0 - *clean);
            if (b.per_severity() && b.has(name)) {
                eb_sum += b.error(name, s);
                if (base_clean) reb_sum += b.error(name, s) - *base_clean;
            }
        }
        if (m.severities == 0) {
            if (common) out.missing.push_back(name);
            continue;
        }
        const double n = m.severities;
        m.error = 100.0 * e_sum / n;
        m.accuracy = 100.0 - m.error;
        if (!b.normalizes()) {
            m.ce = m.error;
            if (clean) m.relative_ce = 100.0 * re_sum / n;
            else m.note = "relative CE needs the clean accuracy";
        } else if (!b.has(name)) {
            m.note = "not in baseline " + b.name();
        } else if (b.per_severity()) {
            m.ce = 100.0 * e_sum / eb_sum;
            if (!clean) m.note = "relative CE needs the clean accuracy";
            else if (!base_clean) m.note = "relative CE needs the baseline clean error";
            else if (!(reb_sum > 0)) m.note = "relative CE undefined: baseline error <= baseline clean error";
            else m.relative_ce = 100.0 * re_sum / reb_sum;
        } else if (m.severities < severity_count) {
            m.note = shiftnorm::detail::concat("CE needs 5 severities (baseline ", b.name(), " has averages only), got ",
                                               m.severities);
        } else {
            const double avg = b.average_error(name);
            m.ce = 100.0 * (e_sum / n) / avg;
            if (!clean) m.note = "relative CE needs the clean accuracy";
            else if (!base_clean) m.note = "relative CE needs the baseline clean error";
            else if (!(avg - *base_clean > 0)) m.note = "relative CE undefined: baseline error <= baseline clean error";
            else m.relative_ce = 100.0 * (re_sum / n) / (avg - *base_clean);
        }
        if (common) {
            if (std::isfinite(m.ce)) {
                mce_sum += m.ce;
                ++out.mce_count;
            } else {
                out.missing.push_back(name);
            }
            if (std::isfinite(m.relative_ce)) {
                rmce_sum += m.relative_ce;
                ++out.relative_mce_count;
            }
        }
        out.per_corruption.push_back(std::move(m));
    }
    if (out.cells > 0) out.acc = 100.0 * acc_sum / out.cells;
    if (out.mce_count > 0) out.mce = mce_sum / out.mce_count;
    if (out.relative_mce_count > 0) out.relative_mce = rmce_sum / out.relative_mce_count;
    return out;
}

//! Mean accuracy in % at each severity 1..5 over the evaluated common corruptions (NaN where
//! none was evaluated): the per-severity curve of a results object.
inline std::array<double, severity_count> accuracy_by_severity(const results& r) {
    std::array<double, severity_count> out{};
    for (int s = 1; s <= severity_count; ++s) {
        double sum = 0;
        int n = 0;
        for (int c = 0; c < common_corruption_count; ++c)
            if (const auto a = r.get(corruption_names[std::size_t(c)], s)) {
                sum += *a;
                ++n;
            }
        out[std::size_t(s - 1)] = n > 0 ? 100.0 * sum / n : detail::nan;
    }
    return out;
}

}  // namespace shiftnorm::eval
