// SPDX-License-Identifier: MIT
// Helpers for the fixture tests: locating /work/shared fixtures, difference statistics.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

namespace shiftnorm_test {

//! Directory of the CIFAR-10-C reference fixtures, or "" when SHIFTNORM_SHARED_DIR lacks them.
inline std::string cifar_c_fixture_dir() {
#ifdef SHIFTNORM_SHARED_DIR
    const std::string d = std::string(SHIFTNORM_SHARED_DIR) + "/fixtures/cifar-c-reference";
    if (std::filesystem::exists(d + "/input_16x32x32x3.npy")) return d;
#endif
    return "";
}

//! mean, mean absolute and (population) standard deviation of (a - b) / 255.
struct diff_stats {
    double mean = 0, mean_abs = 0, std = 0;
};
inline diff_stats stats_of(const std::uint8_t* corrupted, const std::uint8_t* clean, std::size_t n) {
    double s = 0, sa = 0, sq = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const double d = (double(corrupted[i]) - double(clean[i])) / 255.0;
        s += d, sa += std::fabs(d), sq += d * d;
    }
    diff_stats r;
    r.mean = s / n, r.mean_abs = sa / n;
    r.std = std::sqrt(std::max(0.0, sq / n - r.mean * r.mean));
    return r;
}

//! |ours - ref| <= rel * |ref| or <= abs_tol.
inline bool within(double ours, double ref, double rel, double abs_tol) {
    return std::fabs(ours - ref) <= abs_tol || std::fabs(ours - ref) <= rel * std::fabs(ref);
}

}  // namespace shiftnorm_test
