// SPDX-License-Identifier: MIT
// Seed 001's feature divergence (eq. 5): symmetric KL between per-channel Gaussian fits of block outputs on two data sets.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/corrupt/dataset.hpp"
#include "shiftnorm/corrupt/selection.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/transforms.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/nn/sequential.hpp"

namespace shiftnorm::eval {

//! Per-channel Gaussian fits (mean, biased variance over N, H, W and all images) of the output
//! of each block of a network on one data set.
struct block_gaussians {
    std::vector<std::string> blocks;             //!< "layer2.0", ... front to back
    std::vector<std::vector<double>> mean, var;  //!< [block][channel]
};

//! Which outputs count as blocks: the children of every top-level child that is itself a
//! sequential (a CIFAR ResNet's / ResNet-50's residual blocks `layerK.i`, a VGG's `features.j`),
//! from top-level child `first_child` on (e.g. a split_network's head_begin(), the fine-tuned
//! blocks of the paper's Fig. 4). Top-level children that are not sequential (pooling, the
//! classifier) run but are not measured.
struct divergence_options {
    std::size_t first_child = 0;
    index_t batch_size = 250;
    data::normalization norm{};
    double var_floor = 1e-5;  //!< variances are floored here before the KL (a dead channel has 0)
};

//! Fits the per-channel Gaussians of every block's output of `net` (inference mode) over `ds`.
//! Sums are shifted by the first batch's channel means and accumulated in double.
inline block_gaussians fit_block_gaussians(nn::sequential& net, const data::image_dataset& ds, const divergence_options& o) {
    const char* where = "fit_block_gaussians";
    if (ds.size() < 1) shiftnorm::detail::fail<shape_error>(where, "dataset", "at least 1 image", ds.size());
    if (o.batch_size < 1) shiftnorm::detail::fail(where, "batch_size", ">= 1", o.batch_size);
    block_gaussians g;
    std::vector<std::vector<double>> shift, s1, s2;
    std::vector<double> count;
    std::vector<index_t> idx;
    for (index_t b0 = 0; b0 < ds.size(); b0 += o.batch_size) {
        idx.clear();
        for (index_t i = b0; i < std::min(ds.size(), b0 + o.batch_size); ++i) idx.push_back(i);
        const tensor<float> x = batch_of(ds, idx, o.norm);
        std::size_t block = 0;
        auto tap = [&](const std::string& name, const tensor<float>& t) {
            const shape4 s = t.shape();
            if (b0 == 0) {
                g.blocks.push_back(name);
                shift.emplace_back(std::size_t(s.c), 0.0);
                for (index_t c = 0; c < s.c; ++c) {
                    double m = 0;
                    for (index_t n = 0; n < s.n; ++n) {
                        const float* p = t.data() + (n * s.c + c) * s.h * s.w;
                        for (index_t i = 0; i < s.h * s.w; ++i) m += p[i];
                    }
                    shift.back()[std::size_t(c)] = m / double(s.n * s.h * s.w);
                }
                s1.emplace_back(std::size_t(s.c), 0.0);
                s2.emplace_back(std::size_t(s.c), 0.0);
                count.push_back(0);
            }
            for (index_t c = 0; c < s.c; ++c) {
                const double k = shift[block][std::size_t(c)];
                double a = 0, b = 0;
                for (index_t n = 0; n < s.n; ++n) {
                    const float* p = t.data() + (n * s.c + c) * s.h * s.w;
                    for (index_t i = 0; i < s.h * s.w; ++i) {
                        const double d = double(p[i]) - k;
                        a += d;
                        b += d * d;
                    }
                }
                s1[block][std::size_t(c)] += a;
                s2[block][std::size_t(c)] += b;
            }
            count[block] += double(s.n * s.h * s.w);
            ++block;
        };
        const tensor<float>* h = &x;
        for (std::size_t k = 0; k < net.size(); ++k) {
            auto* stage = dynamic_cast<nn::sequential*>(&net[k]);
            if (k >= o.first_child && stage) {
                for (std::size_t j = 0; j < stage->size(); ++j) {
                    h = &(*stage)[j].forward(*h, nn::mode::eval);
                    tap(nn::join_name(net.name_of(k), stage->name_of(j)), *h);
                }
            } else {
                h = &net[k].forward(*h, nn::mode::eval);
            }
        }
    }
    if (g.blocks.empty())
        throw value_error("fit_block_gaussians: no block to measure (no sequential stage from top-level child " +
                          std::to_string(o.first_child) + " on)");
    for (std::size_t b = 0; b < g.blocks.size(); ++b) {
        const std::size_t C = shift[b].size();
        g.mean.emplace_back(C);
        g.var.emplace_back(C);
        for (std::size_t c = 0; c < C; ++c) {
            const double m1 = s1[b][c] / count[b];
            g.mean[b][c] = shift[b][c] + m1;
            g.var[b][c] = std::max(0.0, s2[b][c] / count[b] - m1 * m1);
        }
    }
    return g;
}

//! KL(N(ma, va) || N(mb, vb)) for one channel: log(sb / sa) + (va + (ma - mb)^2) / (2 vb) - 1/2.
inline double gaussian_kl(double ma, double va, double mb, double vb) {
    return 0.5 * std::log(vb / va) + (va + (ma - mb) * (ma - mb)) / (2.0 * vb) - 0.5;
}

//! Eq. 5: D(A || B) = 1/C sum_i [KL(A_i || B_i) + KL(B_i || A_i)] per block, variances floored
//! at var_floor. shape_error when the two fits do not describe the same blocks and channels.
inline std::vector<double> symmetric_kl(const block_gaussians& a, const block_gaussians& b, double var_floor = 1e-5) {
    if (a.blocks != b.blocks) shiftnorm::detail::fail<shape_error>("symmetric_kl", "blocks", a.blocks.size(), b.blocks.size());
    if (!(var_floor > 0)) shiftnorm::detail::fail("symmetric_kl", "var_floor", "> 0", var_floor);
    std::vector<double> d(a.blocks.size(), 0.0);
    for (std::size_t k = 0; k < a.blocks.size(); ++k) {
        const std::size_t C = a.mean[k].size();
        if (b.mean[k].size() != C) shiftnorm::detail::fail<shape_error>("symmetric_kl", ("channels of " + a.blocks[k]).c_str(), C, b.mean[k].size());
        double s = 0;
        for (std::size_t c = 0; c < C; ++c) {
            const double va = std::max(a.var[k][c], var_floor), vb = std::max(b.var[k][c], var_floor);
            s += gaussian_kl(a.mean[k][c], va, b.mean[k][c], vb) + gaussian_kl(b.mean[k][c], vb, a.mean[k][c], va);
        }
        d[k] = s / double(C);
    }
    return d;
}

//! Options of measure_divergence().
struct divergence_protocol {
    std::vector<corrupt::corruption> corruptions;  //!< empty: the 15 common ones
    int severity = 3;
    std::uint64_t seed = 0;  //!< corruption seed (image i of the set uses image_seed(seed, c, severity, i))
    corrupt::corrupt_options corrupt{};
    divergence_options fit{};
};

//! One row: D(clean || corrupted) of one block (eq. 5).
struct divergence_row {
    std::string corruption, block;
    int severity = 0;
    double divergence = 0;
};

//! Seed 001's Fig. 4 protocol for one network: the per-channel Gaussians of every block's
//! output (from top-level child fit.first_child on) on the clean set `ds` and on its copy under
//! each corruption at `severity`; one row per corruption and block. `progress` (may be empty)
//! gets each corruption's name as it starts.
inline std::vector<divergence_row> measure_divergence(nn::sequential& net, const data::image_dataset& ds,
                                                      const divergence_protocol& o,
                                                      const std::function<void(const std::string&)>& progress = {}) {
    if (o.severity < 1 || o.severity > 5) shiftnorm::detail::fail("measure_divergence", "severity", "in [1, 5]", o.severity);
    const auto list = o.corruptions.empty() ? corrupt::parse_corruption_list("common") : o.corruptions;
    const block_gaussians clean = fit_block_gaussians(net, ds, o.fit);
    std::vector<divergence_row> rows;
    for (const auto c : list) {
        if (progress) progress(corrupt::name_of(c));
        const auto shifted = fit_block_gaussians(net, corrupt::corrupted_copy(ds, c, o.severity, o.seed, o.corrupt), o.fit);
        const auto d = symmetric_kl(clean, shifted, o.fit.var_floor);
        for (std::size_t b = 0; b < d.size(); ++b) rows.push_back({corrupt::name_of(c), clean.blocks[b], o.severity, d[b]});
    }
    return rows;
}

}  // namespace shiftnorm::eval
