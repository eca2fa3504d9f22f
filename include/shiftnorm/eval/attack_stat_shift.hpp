// SPDX-License-Identifier: MIT
// Seed 003's Fig. 2: how far the batch statistics of adversarial batches are from a BN network's
// population statistics, channel by channel and batch by batch, against clean batches.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "shiftnorm/attack/attacks.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/random.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/transforms.hpp"
#include "shiftnorm/eval/analysis.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/visit.hpp"

namespace shiftnorm::eval {

struct attack_stat_shift_options {
    attack::attack_options attack;  //!< the attack (default: PGD, eps 8/255, 20 steps); seeded per batch
    attack::input_space space = attack::input_space::pixel;
    index_t batch_size = 128;       //!< images per batch (>= 2: unbiased batch variance)
    data::normalization norm;       //!< the network's input normalization (pixel space)
    std::function<void(index_t done, index_t total)> progress;
};

//! One BN layer: per batch and channel, batch statistic minus population statistic at the
//! layer's input (the batch variance unbiased, like the running variance).
struct layer_stat_shift {
    index_t channels = 0;
    std::vector<std::vector<double>> dmean_clean, dvar_clean, dmean_adv, dvar_adv;  //!< [batch][channel]
    //! mean over batches and channels of |difference|
    double mean_abs_dmean_clean = 0, mean_abs_dvar_clean = 0, mean_abs_dmean_adv = 0, mean_abs_dvar_adv = 0;
    //! The paper's "channels that are inaccurate in some batches make a similar mistake in other
    //! batches": the mean over pairs of batches of the Pearson correlation of their per-channel
    //! adversarial differences (1: the same channel pattern in every batch; NaN with < 2 batches).
    double consistency_dmean_adv = NAN, consistency_dvar_adv = NAN;
};

struct attack_stat_shift_result {
    std::vector<layer_stat_shift> layers;  //!< every BN layer, in forward order
    index_t images = 0, batches = 0;
    double clean_accuracy = 0, adversarial_accuracy = 0;  //!< of the network with population statistics
};

namespace detail {
//! Mean over pairs (i < j) of the Pearson correlation of rows i and j (rows with zero variance skipped).
inline double mean_pairwise_correlation(const std::vector<std::vector<double>>& rows) {
    double sum = 0;
    long long n = 0;
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t j = i + 1; j < rows.size(); ++j) {
            const auto& a = rows[i];
            const auto& b = rows[j];
            const double k = double(a.size());
            double ma = 0, mb = 0;
            for (std::size_t c = 0; c < a.size(); ++c) ma += a[c], mb += b[c];
            ma /= k, mb /= k;
            double sab = 0, saa = 0, sbb = 0;
            for (std::size_t c = 0; c < a.size(); ++c) {
                sab += (a[c] - ma) * (b[c] - mb);
                saa += (a[c] - ma) * (a[c] - ma);
                sbb += (b[c] - mb) * (b[c] - mb);
            }
            if (saa <= 0 || sbb <= 0) continue;
            sum += sab / std::sqrt(saa * sbb);
            ++n;
        }
    return n ? sum / double(n) : NAN;
}
inline double mean_abs(const std::vector<std::vector<double>>& rows) {
    double s = 0;
    std::size_t n = 0;
    for (const auto& r : rows)
        for (double v : r) s += std::abs(v), ++n;
    return n ? s / double(n) : 0.0;
}
}  // namespace detail

//! Fig. 2 (seed 003): for each batch of `ds` in order, attacks the network with its population
//! statistics (eval mode) and records, at every `Norm` layer's input, the batch mean and
//! (unbiased) variance of the clean and of the adversarial batch minus the layer's population
//! statistics. `Norm` must be a BN layer type whose source holds population statistics
//! (source.inference_stats(nullptr)). The network's stored statistics are not changed.
//! Throws value_error for a bad batch size or attack, shape_error for too few images, and
//! value_error when the network has no `Norm` layer.
template <class Norm>
attack_stat_shift_result measure_attack_stat_shift(nn::module& net, const data::image_dataset& ds,
                                                   const attack_stat_shift_options& o) {
    using shiftnorm::detail::fail;
    const char* where = "measure_attack_stat_shift";
    if (o.batch_size < 2) fail(where, "batch_size", ">= 2 (unbiased batch variance)", o.batch_size);
    if (ds.size() < o.batch_size) fail<shape_error>(where, "ds", shiftnorm::detail::concat(">= ", o.batch_size, " images"), ds.size());
    attack::validate(o.attack);
    if (o.attack.kind == attack::attack_kind::cw) fail(where, "attack", "an L-inf attack (fgsm, bim, mim, pgd)", "cw");
    auto layers = nn::find_all<nn::norm_layer<Norm>>(net);
    if (layers.empty()) fail(where, "net", "a network with BN layers of the requested type", "none");
    const std::size_t L = layers.size();
    std::vector<channel_stats<float>> population;
    for (auto* l : layers) population.push_back(l->impl.source.inference_stats(nullptr));

    // taps: the input of every BN layer in the last forward pass
    std::vector<tensor<float>> inputs(L);
    struct tap_guard {
        std::vector<nn::norm_layer<Norm>*>& ls;
        ~tap_guard() {
            for (auto* l : ls) l->observer = nullptr;
        }
    } guard{layers};
    bool recording = false;
    for (std::size_t i = 0; i < L; ++i)
        layers[i]->observer = [&inputs, &recording, i](const tensor<float>& src, const tensor<float>&, nn::mode) {
            if (recording) inputs[i] = src;
        };

    attack_stat_shift_result r;
    r.layers.resize(L);
    for (std::size_t l = 0; l < L; ++l) r.layers[l].channels = layers[l]->channels();
    const bool pixel = o.space == attack::input_space::pixel;
    const data::normalization identity{{0.0f}, {1.0f}};
    attack::model m(net, nn::mode::eval, o.space, o.norm.mean, o.norm.std);
    std::vector<index_t> order(std::size_t(ds.size()));
    for (index_t i = 0; i < ds.size(); ++i) order[std::size_t(i)] = i;
    const index_t batches = ds.size() / o.batch_size;  // full batches only: every row has the same size
    index_t correct_clean = 0, correct_adv = 0;
    tensor<float> x;
    std::vector<std::int32_t> y;
    auto record = [&](const tensor<float>& batch, bool adv) {
        recording = true;
        const auto pred = m.predict(batch);
        recording = false;
        index_t correct = 0;
        for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == y[i];
        for (std::size_t l = 0; l < L; ++l) {
            const auto st = batch_channel_stats(inputs[l], variance_kind::unbiased);
            std::vector<double> dm(st.mean.size()), dv(st.var.size());
            for (std::size_t c = 0; c < dm.size(); ++c) {
                dm[c] = st.mean[c] - double(population[l].mean[c]);
                dv[c] = st.var[c] - double(population[l].var[c]);
            }
            (adv ? r.layers[l].dmean_adv : r.layers[l].dmean_clean).push_back(std::move(dm));
            (adv ? r.layers[l].dvar_adv : r.layers[l].dvar_clean).push_back(std::move(dv));
        }
        return correct;
    };
    for (index_t b = 0; b < batches; ++b) {
        data::make_batch(ds, order, b * o.batch_size, o.batch_size, pixel ? identity : o.norm, {}, nullptr, x, y);
        const attack::clip_box box = pixel ? attack::clip_box{0.0f, 1.0f} : attack::batch_range(x);
        auto a = o.attack;
        a.seed = mix_seed(o.attack.seed, std::uint64_t(b * o.batch_size), 0);
        const tensor<float> xa = attack::run(m, x, y, a, box);
        correct_clean += record(x, false);
        correct_adv += record(xa, true);
        if (o.progress) o.progress(b + 1, batches);
    }
    for (auto& ls : r.layers) {
        ls.mean_abs_dmean_clean = detail::mean_abs(ls.dmean_clean);
        ls.mean_abs_dvar_clean = detail::mean_abs(ls.dvar_clean);
        ls.mean_abs_dmean_adv = detail::mean_abs(ls.dmean_adv);
        ls.mean_abs_dvar_adv = detail::mean_abs(ls.dvar_adv);
        ls.consistency_dmean_adv = detail::mean_pairwise_correlation(ls.dmean_adv);
        ls.consistency_dvar_adv = detail::mean_pairwise_correlation(ls.dvar_adv);
    }
    r.batches = batches;
    r.images = batches * o.batch_size;
    r.clean_accuracy = double(correct_clean) / double(r.images);
    r.adversarial_accuracy = double(correct_adv) / double(r.images);
    return r;
}

}  // namespace shiftnorm::eval
