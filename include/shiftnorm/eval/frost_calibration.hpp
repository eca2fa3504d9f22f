// SPDX-License-Identifier: MIT
// Calibrating the procedural frost on what matters: the accuracy a network keeps under it,
// severity by severity, against frost made with the reference's texture photographs on the
// same images.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/corrupt/dataset.hpp"
#include "shiftnorm/eval/evaluate.hpp"

namespace shiftnorm::eval {

struct frost_calibration_options {
    //! Candidate values of procedural_frost_params::contrast (each scales every style's sd).
    std::vector<double> contrasts = {0.8, 1.0, 1.1, 1.15, 1.2, 1.4};
    std::vector<int> severities = {1, 2, 3, 4, 5};
    //! The procedural parameters the candidates start from (only `contrast` is replaced).
    corrupt::procedural_frost_params base = corrupt::procedural_frost_params::calibrated();
    corrupt::param_table table = corrupt::param_table::cifar;
    std::uint64_t seed = 0;  //!< corruption seed (the same for every mode)
    index_t batch_size = 256;
};

//! Accuracy (fraction) per severity of one frost mode, and its gap to the textured mode.
struct frost_mode_accuracy {
    std::vector<double> accuracy;
    double mean_gap = 0;  //!< mean over severities of (accuracy - textured accuracy)
    double rms_gap = 0;   //!< root mean square of the same differences
};

struct frost_calibration_result {
    std::vector<int> severities;
    double clean = 0;                 //!< accuracy on the uncorrupted images
    frost_mode_accuracy textured;     //!< the reference's photographs (gaps are 0)
    frost_mode_accuracy v1;           //!< procedural_frost_params::v1(), the old default
    std::vector<double> contrasts;    //!< the candidates, in order
    std::vector<frost_mode_accuracy> candidates;
    std::size_t best = 0;             //!< the candidate with the smallest rms_gap
};

namespace detail {
inline frost_mode_accuracy frost_mode_eval(nn::module& net, const data::image_dataset& ds, const data::normalization& norm,
                                           const frost_calibration_options& o, const corrupt::corrupt_options& copt,
                                           const std::vector<double>* reference) {
    frost_mode_accuracy r;
    for (int s : o.severities) {
        const auto c = corrupt::corrupted_copy(ds, corrupt::corruption::frost, s, o.seed, copt);
        r.accuracy.push_back(evaluate(net, c, norm, o.batch_size).accuracy);
    }
    if (reference) {
        double sum = 0, sq = 0;
        for (std::size_t i = 0; i < r.accuracy.size(); ++i) {
            const double d = r.accuracy[i] - (*reference)[i];
            sum += d, sq += d * d;
        }
        r.mean_gap = sum / double(r.accuracy.size());
        r.rms_gap = std::sqrt(sq / double(r.accuracy.size()));
    }
    return r;
}
}  // namespace detail

//! Evaluates `net` (eval mode) on `ds` under frost with the photographs in `textures`, with the
//! v1 procedural frost, and with the calibrated procedural frost at each candidate contrast,
//! all with the same corruption seed, and picks the candidate whose per-severity accuracies are
//! closest (root mean square) to the textured ones. `progress(done, total)` counts modes.
//! Throws value_error for no candidates/severities or an empty texture bank, shape_error for an
//! empty dataset.
inline frost_calibration_result calibrate_procedural_frost(nn::module& net, const data::image_dataset& ds,
                                                           const data::normalization& norm,
                                                           const corrupt::frost_textures& textures,
                                                           const frost_calibration_options& o = {},
                                                           const std::function<void(std::size_t, std::size_t)>& progress = {}) {
    using shiftnorm::detail::fail;
    if (ds.size() == 0) fail<shape_error>("calibrate_procedural_frost", "ds", "at least one image", 0);
    if (textures.empty()) fail<value_error>("calibrate_procedural_frost", "textures", "at least one texture photograph", 0);
    if (o.contrasts.empty()) fail<value_error>("calibrate_procedural_frost", "contrasts", "at least one candidate", 0);
    if (o.severities.empty()) fail<value_error>("calibrate_procedural_frost", "severities", "at least one severity", 0);
    for (int s : o.severities)
        if (s < 1 || s > 5) fail<value_error>("calibrate_procedural_frost", "severities", "values in [1, 5]", s);
    for (double c : o.contrasts)
        if (!(c >= 0 && c <= 10)) fail<value_error>("calibrate_procedural_frost", "contrasts", "values in [0, 10]", c);
    const std::size_t total = o.contrasts.size() + 2;
    std::size_t done = 0;
    auto tick = [&] {
        if (progress) progress(++done, total);
    };
    frost_calibration_result r;
    r.severities = o.severities;
    r.contrasts = o.contrasts;
    r.clean = evaluate(net, ds, norm, o.batch_size).accuracy;
    corrupt::corrupt_options copt;
    copt.table = o.table;
    copt.frost = &textures;
    r.textured = detail::frost_mode_eval(net, ds, norm, o, copt, nullptr);
    tick();
    copt.frost = nullptr;
    copt.frost_procedural = corrupt::procedural_frost_params::v1();
    r.v1 = detail::frost_mode_eval(net, ds, norm, o, copt, &r.textured.accuracy);
    tick();
    double best = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < o.contrasts.size(); ++i) {
        copt.frost_procedural = o.base;
        copt.frost_procedural.contrast = o.contrasts[i];
        r.candidates.push_back(detail::frost_mode_eval(net, ds, norm, o, copt, &r.textured.accuracy));
        if (r.candidates.back().rms_gap < best) best = r.candidates.back().rms_gap, r.best = i;
        tick();
    }
    return r;
}

}  // namespace shiftnorm::eval
