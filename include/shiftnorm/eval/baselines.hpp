// SPDX-License-Identifier: MIT
// AlexNet baseline errors for mCE (ImageNet-C, CIFAR-10-C, CIFAR-100-C), looked up by corruption name.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/eval/baselines_data.hpp"

namespace shiftnorm::eval {

//! Severities of every benchmark corruption are 1..5.
inline constexpr int severity_count = 5;
//! The 15 benchmark ("common") corruptions that Acc and mCE average over.
inline constexpr int common_corruption_count = 15;
//! The 15 common corruptions plus the 4 held-out ones (speckle_noise, gaussian_blur, spatter, saturate).
inline constexpr int known_corruption_count = 19;

namespace detail {
inline constexpr std::array<const char*, known_corruption_count> make_corruption_names() {
    std::array<const char*, known_corruption_count> a{};
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = alexnet_imagenet_c[i].corruption;
    return a;
}
inline bool same_name(const char* a, const std::string& b) { return b == a; }
}  // namespace detail

//! Corruption names in ImageNet-C order: indices 0..14 are the common ones, 15..18 held out.
//! Identical to `corrupt::corruption_names` (checked by tests/eval/test_baselines.cpp).
inline constexpr std::array<const char*, known_corruption_count> corruption_names = detail::make_corruption_names();

//! Index of `name` in corruption_names, or -1 when it is not one of the 19 known corruptions.
inline int corruption_index(const std::string& name) {
    for (int i = 0; i < known_corruption_count; ++i)
        if (detail::same_name(corruption_names[std::size_t(i)], name)) return i;
    return -1;
}

//! True for the 15 benchmark corruptions (the ones mCE averages over).
inline bool is_common_corruption(const std::string& name) {
    const int i = corruption_index(name);
    return i >= 0 && i < common_corruption_count;
}

//! Returns the index of `name`; throws value_error naming `arg` when the name is unknown.
inline int check_corruption(const char* where, const char* arg, const std::string& name) {
    const int i = corruption_index(name);
    if (i < 0)
        shiftnorm::detail::fail<value_error>(where, arg, "one of the 19 ImageNet-C corruption names (gaussian_noise ... saturate)",
                                             "'" + name + "'");
    return i;
}

//! Checks 1 <= severity <= 5 and returns severity - 1.
inline int check_severity(const char* where, int severity) {
    if (severity < 1 || severity > severity_count)
        shiftnorm::detail::fail<value_error>(where, "severity", "an integer in [1, 5]", severity);
    return severity - 1;
}

//! Which errors normalize the corruption error (CLI: --baseline).
//! - alexnet_imagenet: torchvision AlexNet on ImageNet-C, per severity (Hendrycks & Dietterich 2019);
//! - alexnet_cifar10 / alexnet_cifar100: a CIFAR-trained AlexNet, average over severities only
//!   (the normalization seed 000, Benz et al. 2021, uses for its CIFAR tables);
//! - none: no normalization, "mCE" is the plain mean top-1 error in % (most CIFAR-C literature).
enum class baseline_kind { alexnet_imagenet, alexnet_cifar10, alexnet_cifar100, none };

//! The CLI spelling: "alexnet-imagenet", "alexnet-cifar10", "alexnet-cifar100" or "none".
inline const char* baseline_name(baseline_kind k) {
    switch (k) {
        case baseline_kind::alexnet_imagenet: return "alexnet-imagenet";
        case baseline_kind::alexnet_cifar10: return "alexnet-cifar10";
        case baseline_kind::alexnet_cifar100: return "alexnet-cifar100";
        case baseline_kind::none: return "none";
    }
    return "?";
}

//! Parses the CLI spelling (see baseline_name); throws value_error naming 'baseline' otherwise.
inline baseline_kind parse_baseline(const std::string& s) {
    if (s == "alexnet-imagenet") return baseline_kind::alexnet_imagenet;
    if (s == "alexnet-cifar10") return baseline_kind::alexnet_cifar10;
    if (s == "alexnet-cifar100") return baseline_kind::alexnet_cifar100;
    if (s == "none") return baseline_kind::none;
    shiftnorm::detail::fail<value_error>("parse_baseline", "baseline",
                                         "one of alexnet-imagenet, alexnet-cifar10, alexnet-cifar100, none", "'" + s + "'");
}

//! A baseline's AlexNet top-1 errors (fractions in [0, 1]) for the 15 common corruptions (and,
//! for ImageNet-C, the 4 held-out ones), compiled in from shared/data/alexnet_baselines.csv via
//! baselines_data.hpp. The AlexNet CLEAN error is not in that file: relative CE needs it, so it
//! is unset until set_clean_error() provides it (docs/metrics.md).
class baseline_table {
public:
    //! The `none` baseline (plain mean error).
    baseline_table() = default;
    explicit baseline_table(baseline_kind kind) : kind_(kind) {}

    baseline_kind kind() const { return kind_; }
    //! CLI spelling, e.g. "alexnet-cifar10".
    std::string name() const { return baseline_name(kind_); }
    //! One sentence naming the source of the numbers, printed in every table header.
    std::string description() const {
        switch (kind_) {
            case baseline_kind::alexnet_imagenet:
                return "AlexNet ImageNet-C top-1 errors per severity (Hendrycks & Dietterich 2019)";
            case baseline_kind::alexnet_cifar10:
                return "CIFAR-10 AlexNet CIFAR-10-C average errors (Benz et al. 2021, seed 000)";
            case baseline_kind::alexnet_cifar100:
                return "CIFAR-100 AlexNet CIFAR-100-C average errors (Benz et al. 2021, seed 000)";
            case baseline_kind::none: return "no baseline: plain mean top-1 error in %";
        }
        return "?";
    }
    //! False for baseline_kind::none (CE is then the plain error in %).
    bool normalizes() const { return kind_ != baseline_kind::none; }
    //! True when errors per severity are known (ImageNet-C); CIFAR tables hold averages only.
    bool per_severity() const { return kind_ == baseline_kind::alexnet_imagenet; }

    //! Whether the table has an entry for `corruption` (false for unknown names and for `none`).
    bool has(const std::string& corruption) const {
        const int i = corruption_index(corruption);
        if (i < 0 || kind_ == baseline_kind::none) return false;
        return kind_ == baseline_kind::alexnet_imagenet || i < common_corruption_count;
    }

    //! AlexNet error at one severity (per_severity() tables only). Throws value_error for an
    //! unknown corruption, a severity outside [1, 5], or a table without per-severity errors.
    double error(const std::string& corruption, int severity) const {
        const int i = lookup("baseline_table::error", corruption);
        const int s = check_severity("baseline_table::error", severity);
        if (!per_severity())
            shiftnorm::detail::fail<value_error>("baseline_table::error", "baseline",
                                                 "a table with per-severity errors (alexnet-imagenet)", "'" + name() + "'");
        return detail::alexnet_imagenet_c[std::size_t(i)].severity[std::size_t(s)];
    }

    //! AlexNet error averaged over severities 1..5 (the CSV's 'average' column for ImageNet-C).
    double average_error(const std::string& corruption) const {
        const int i = lookup("baseline_table::average_error", corruption);
        switch (kind_) {
            case baseline_kind::alexnet_imagenet: return detail::alexnet_imagenet_c[std::size_t(i)].average;
            case baseline_kind::alexnet_cifar10: return detail::alexnet_cifar_c[std::size_t(i)].cifar10;
            default: return detail::alexnet_cifar_c[std::size_t(i)].cifar100;
        }
    }

    //! AlexNet clean (uncorrupted test set) error, if set_clean_error() gave one.
    std::optional<double> clean_error() const { return clean_error_; }
    //! Sets the AlexNet clean error in [0, 1) used by relative CE; throws value_error otherwise.
    baseline_table& set_clean_error(double e) {
        if (!(e >= 0.0 && e < 1.0))
            shiftnorm::detail::fail<value_error>("baseline_table::set_clean_error", "clean_error", "a value in [0, 1)", e);
        if (kind_ == baseline_kind::none)
            shiftnorm::detail::fail<value_error>("baseline_table::set_clean_error", "baseline", "an AlexNet table", "'none'");
        clean_error_ = e;
        return *this;
    }

    //! Names the table has entries for, in ImageNet-C order (empty for `none`).
    std::vector<std::string> corruptions() const {
        std::vector<std::string> v;
        for (const char* n : corruption_names)
            if (has(n)) v.emplace_back(n);
        return v;
    }

private:
    int lookup(const char* where, const std::string& corruption) const {
        if (kind_ == baseline_kind::none)
            shiftnorm::detail::fail<value_error>(where, "baseline", "an AlexNet table", "'none' (it has no errors)");
        const int i = check_corruption(where, "corruption", corruption);
        if (!has(corruption))
            shiftnorm::detail::fail<value_error>(where, "corruption", "one of the 15 common corruptions for " + name(),
                                                 "'" + corruption + "' (held out; only alexnet-imagenet lists it)");
        return i;
    }

    baseline_kind kind_ = baseline_kind::none;
    std::optional<double> clean_error_;
};

}  // namespace shiftnorm::eval
