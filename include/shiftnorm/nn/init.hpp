// SPDX-License-Identifier: MIT
// Parameter initializers (Kaiming / PyTorch defaults) and Eigen row-major map aliases.
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include <Eigen/Core>

#include "shiftnorm/core/shape.hpp"

namespace shiftnorm::nn {

//! The random engine every initializer and stochastic layer takes: seeded, reproducible.
using rng_type = std::mt19937_64;

namespace detail {
using matrix_rm = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using map_rm = Eigen::Map<matrix_rm>;
using cmap_rm = Eigen::Map<const matrix_rm>;
using vec_map = Eigen::Map<Eigen::VectorXf>;
using cvec_map = Eigen::Map<const Eigen::VectorXf>;
}  // namespace detail

//! Kaiming-normal (He et al. 2015, eq. 10): N(0, 2 / fan), fan = fan_out for convolutions in
//! torchvision's ResNets (`mode='fan_out', nonlinearity='relu'`).
inline void kaiming_normal(std::vector<float>& w, index_t fan, rng_type& g) {
    std::normal_distribution<double> d(0.0, std::sqrt(2.0 / double(fan > 0 ? fan : 1)));
    for (auto& v : w) v = float(d(g));
}

//! U(-bound, bound); PyTorch's default Linear/Conv init is bound = 1/sqrt(fan_in) for both
//! weight (kaiming_uniform with a = sqrt(5)) and bias.
inline void uniform_init(std::vector<float>& w, double bound, rng_type& g) {
    std::uniform_real_distribution<double> d(-bound, bound);
    for (auto& v : w) v = float(d(g));
}

}  // namespace shiftnorm::nn
