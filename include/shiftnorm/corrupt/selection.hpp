// SPDX-License-Identifier: MIT
// Naming sets of corruptions and severities ("common", "1-5"), and the parameter table for an image size.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/corrupt/corrupt.hpp"

namespace shiftnorm::corrupt {

//! "all" (19), "common" (the 15 of the benchmarks), "heldout" (the 4 validation corruptions) or
//! a comma-separated list of names. value_error for an unknown name or an empty list.
inline std::vector<corruption> parse_corruption_list(const std::string& s) {
    const auto all = all_corruptions();
    if (s == "all") return all;
    if (s == "common") return {all.begin(), all.begin() + 15};
    if (s == "heldout") return {all.begin() + 15, all.end()};
    std::vector<corruption> out;
    std::stringstream ss(s);
    for (std::string name; std::getline(ss, name, ',');)
        if (!name.empty()) out.push_back(parse_corruption(name));
    if (out.empty()) throw value_error("corruptions '" + s + "' names no corruption");
    return out;
}

//! "1-5", "3", "1,3,5" -> sorted, distinct severities in [1, 5]; value_error otherwise.
inline std::vector<int> parse_severity_list(const std::string& s) {
    std::vector<int> out;
    auto num = [&](const std::string& t) {
        char* end = nullptr;
        const long v = std::strtol(t.c_str(), &end, 10);
        if (t.empty() || *end != '\0' || v < 1 || v > 5)
            throw value_error("severities: '" + t + "' is not a severity in 1..5 (in '" + s + "')");
        return int(v);
    };
    std::stringstream ss(s);
    for (std::string part; std::getline(ss, part, ',');) {
        const auto dash = part.find('-');
        if (dash == std::string::npos) {
            out.push_back(num(part));
        } else {
            const int a = num(part.substr(0, dash)), b = num(part.substr(dash + 1));
            if (a > b) throw value_error("severities: range '" + part + "' is empty");
            for (int v = a; v <= b; ++v) out.push_back(v);
        }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    if (out.empty()) throw value_error("severities '" + s + "' names no severity");
    return out;
}

//! The parameter table for images of this size: mnist for <= 28 px gray, cifar up to 64 px,
//! imagenet above.
inline param_table default_table(std::int64_t height, std::int64_t channels) {
    if (height <= 28 && channels == 1) return param_table::mnist;
    return height <= 64 ? param_table::cifar : param_table::imagenet;
}

}  // namespace shiftnorm::corrupt
