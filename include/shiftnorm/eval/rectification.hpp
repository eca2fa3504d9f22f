// SPDX-License-Identifier: MIT
// Seed 000's protocol: accuracy on every corruption x severity without and with BN rectification.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/data/layout.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/eval/metrics.hpp"
#include "shiftnorm/eval/report.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/stats/rectified.hpp"

namespace shiftnorm::eval {

//! The BN layer type whose statistics the protocol rectifies.
using rectifiable_bn = batch_norm<rectified>;

//! One ablation setting of seed 000, applied to every BN layer of a network: which statistics
//! are replaced (Table 6) and which third of the BN layers takes part (Table 7).
struct rectify_variant {
    rectify_options opt;
    std::string what = "both";   //!< both | mean | var
    std::string layers = "all";  //!< all | front | middle | end (thirds of the BN layers in order)

    std::string spec() const { return what + "/" + layers; }
    //! Row suffix: "" for the paper's standard setting, else e.g. " [var only]", " [front third]".
    std::string label() const {
        std::string l;
        if (what != "both") l = what == "mean" ? "mean only" : "var only";
        if (layers != "all") l += (l.empty() ? "" : ", ") + layers + " third";
        return l.empty() ? "" : " [" + l + "]";
    }
};

//! A variant from its two names; value_error naming `context` for an unknown one.
inline rectify_variant make_rectify_variant(const std::string& what, const std::string& layers, const std::string& context) {
    rectify_variant v;
    v.what = what;
    v.layers = layers;
    v.opt.what = parse_adapt_what(what, context);
    if (layers != "all" && layers != "front" && layers != "middle" && layers != "end")
        throw value_error(context + ": the layers must be all, front, middle or end, got '" + layers + "'");
    return v;
}

//! "both,var,mean,both/front,...": WHAT[/LAYERS] settings evaluated side by side (Tables 6, 7).
inline std::vector<rectify_variant> parse_rectify_variants(const std::string& s) {
    std::vector<rectify_variant> out;
    std::stringstream ss(s);
    for (std::string t; std::getline(ss, t, ',');) {
        const auto slash = t.find('/');
        const std::string what = t.substr(0, slash), layers = slash == std::string::npos ? "all" : t.substr(slash + 1);
        out.push_back(make_rectify_variant(what, layers, "variant '" + t + "'"));
        for (std::size_t i = 0; i + 1 < out.size(); ++i)
            if (out[i].spec() == out.back().spec()) throw value_error("variants name '" + out.back().spec() + "' twice");
    }
    if (out.empty()) throw value_error("variants '" + s + "' name no variant");
    return out;
}

//! Sets every rectifiable BN layer's options to `v` (the Table 7 selection enables one third,
//! by BN-layer order: layer i of L is in third min(2, 3i/L)) and forgets adapted statistics.
inline void configure_rectification(nn::module& net, const rectify_variant& v) {
    auto layers = nn::find_all<nn::norm_layer<rectifiable_bn>>(net);
    const std::size_t L = layers.size();
    for (std::size_t i = 0; i < L; ++i) {
        auto& src = layers[i]->impl.source;
        src.options = v.opt;
        const int third = rectify_third(i, L);
        if (v.layers != "all")
            src.options.enabled = (v.layers == "front" && third == 0) || (v.layers == "middle" && third == 1) ||
                                  (v.layers == "end" && third == 2);
        src.reset();
    }
}

//! Back to the source statistics in every rectifiable BN layer.
inline void reset_rectification(nn::module& net) {
    for (auto* l : nn::find_all<nn::norm_layer<rectifiable_bn>>(net)) l->impl.source.reset();
}

//! Rectifies every BN layer of `net` from images `idx` of `ds`: ONE forward pass in rectify mode
//! (seed 000: the paper's procedure).
inline void rectify_from(nn::module& net, const data::image_dataset& ds, const std::vector<index_t>& idx,
                         const data::normalization& norm) {
    net.forward(batch_of(ds, idx, norm), nn::mode::rectify);
}

//! Everything the rectification sweep needs besides the network and the clean split.
struct rectification_sweep_options {
    std::vector<rectify_variant> variants;  //!< settings side by side; empty: evaluation only (no BN)
    std::vector<index_t> ks{32};            //!< representation samples K; the first is the main one
    int draws = 1;                          //!< independent K-sample draws per cell (results averaged)
    std::vector<corrupt::corruption> corruptions;
    std::vector<int> severities{1, 2, 3, 4, 5};
    std::uint64_t seed = 0;         //!< corruption seed (images corrupted in memory)
    std::uint64_t sample_seed = 1;  //!< seed of the K-sample draws
    corrupt::corrupt_options corrupt;
    index_t batch = 500;  //!< evaluation batch size
    data::normalization norm;
    //! Optional: the corrupted split of a corruption as NHWC uint8, severity-major (5 x the
    //! split, the CIFAR-10-C layout), e.g. read from files; empty: generated in memory.
    std::function<std::vector<std::uint8_t>(corrupt::corruption)> load_corrupted;
    //! Optional: one line per finished cell (progress; the protocol itself prints nothing).
    std::function<void(const std::string&)> progress;
};

//! What the sweep measured. Accuracies are fractions in [0, 1].
struct rectification_sweep_result {
    double clean = 0;  //!< clean accuracy with the source statistics
    results before{"before"};
    //! after[v].at(k): variant v rectified from K = k samples, mean over the draws; its clean
    //! cell is Clean* (rectified on K clean samples of the split, then evaluated on it).
    std::vector<std::map<index_t, results>> after;
    //! per_draw[v].at(k)[r]: one draw (the spread shown in the K table).
    std::vector<std::map<index_t, std::vector<results>>> per_draw;
    double seconds = 0;
};

//! Runs seed 000's protocol on `net` (weights loaded; rectifiable BN layers, or any layers when
//! o.variants is empty) over the clean split `ds`: the clean accuracy, then for every corruption
//! x severity the accuracy before and, for every variant, K and draw, after rectifying from K
//! samples drawn from that corrupted split (seed sample_seed ^ (cell << 20) ^ K ^ (draw << 40):
//! every variant sees the same samples). Deterministic for fixed seeds.
inline rectification_sweep_result run_rectification_sweep(nn::module& net, const data::image_dataset& ds,
                                                          const rectification_sweep_options& o) {
    if (o.draws < 1) shiftnorm::detail::fail("run_rectification_sweep", "draws", ">= 1", o.draws);
    if (o.ks.empty()) throw value_error("run_rectification_sweep: no K given");
    for (auto k : o.ks)
        if (k < 1 || k > ds.size())
            shiftnorm::detail::fail("run_rectification_sweep", "K", shiftnorm::detail::concat("in [1, ", ds.size(), "]"), k);
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t V = o.variants.size();
    const auto draws = std::size_t(o.draws);
    rectification_sweep_result r;
    r.after.resize(V);
    r.per_draw.resize(V);
    for (std::size_t v = 0; v < V; ++v)
        for (auto k : o.ks) {
            r.after[v].emplace(k, results("after K=" + std::to_string(k) + o.variants[v].label()));
            r.per_draw[v][k].assign(draws, results("draw"));
        }
    r.clean = evaluate(net, ds, o.norm, o.batch).accuracy;
    r.before.set_clean(r.clean);

    // for every variant, K and draw: rectify from K samples of `d`, evaluate on `d`, store()
    auto rectify_all = [&](const data::image_dataset& d, std::uint64_t base, auto&& store) {
        for (auto k : o.ks)
            for (std::size_t rd = 0; rd < draws; ++rd) {
                const auto idx = data::draw_indices(d.size(), k, base ^ std::uint64_t(k) ^ (std::uint64_t(rd) << 40));
                for (std::size_t v = 0; v < V; ++v) {
                    configure_rectification(net, o.variants[v]);
                    rectify_from(net, d, idx, o.norm);
                    store(r.per_draw[v].at(k)[rd], evaluate(net, d, o.norm, o.batch).accuracy);
                }
            }
        reset_rectification(net);
    };
    auto mean_of_draws = [&](std::size_t v, index_t k, auto&& get) {
        double sum = 0;
        for (const auto& d : r.per_draw[v].at(k)) sum += get(d);
        return sum / double(draws);
    };
    // Clean*: each variant rectified on K samples of the clean split itself, then evaluated on it
    rectify_all(ds, o.sample_seed ^ (std::uint64_t(0xc1ea) << 48), [](results& x, double a) { x.set_clean(a); });
    for (std::size_t v = 0; v < V; ++v)
        for (auto k : o.ks)
            r.after[v].at(k).set_clean(mean_of_draws(v, k, [](const results& x) { return x.clean().value_or(0.0); }));

    const auto nhwc = data::to_nhwc(ds);
    const corrupt::const_batch_view images{nhwc.data(), std::size_t(ds.size()), int(ds.height), int(ds.width),
                                           int(ds.channels)};
    std::vector<std::uint8_t> buf(nhwc.size());
    std::size_t cell = 0;
    const std::size_t cells = o.corruptions.size() * o.severities.size();
    for (auto c : o.corruptions) {
        std::vector<std::uint8_t> file;
        if (o.load_corrupted) {
            file = o.load_corrupted(c);
            if (file.size() != 5 * nhwc.size())
                throw io_error(shiftnorm::detail::concat("run_rectification_sweep: the corrupted data of ", corrupt::name_of(c),
                                                         " has ", file.size(), " bytes, expected 5 x ", nhwc.size()));
        }
        const std::string name = corrupt::name_of(c);
        for (int s : o.severities) {
            const auto cell_t0 = std::chrono::steady_clock::now();
            if (file.empty()) {
                corrupt::batch_view dst{buf.data(), images.count, images.height, images.width, images.channels};
                corrupt::corrupt_batch(c, s, images, dst, o.seed, o.corrupt, 0, 0);
            } else {
                std::copy_n(file.begin() + std::ptrdiff_t(std::size_t(s - 1) * nhwc.size()), nhwc.size(), buf.begin());
            }
            const auto cds = data::from_nhwc(buf, ds);
            reset_rectification(net);
            const double before = evaluate(net, cds, o.norm, o.batch).accuracy;
            r.before.set(name, s, before);
            rectify_all(cds, o.sample_seed ^ (std::uint64_t(cell) << 20), [&](results& x, double a) { x.set(name, s, a); });
            std::string line;
            for (std::size_t v = 0; v < V; ++v)
                for (auto k : o.ks) {
                    const double m = mean_of_draws(v, k, [&](const results& x) { return x.get(name, s).value_or(0.0); });
                    r.after[v].at(k).set(name, s, m);
                    line += shiftnorm::detail::concat("  ", V > 1 ? o.variants[v].spec() + " " : "", "K=", k, " ",
                                                      detail::fmt_fixed(100 * m, 2), "%");
                }
            ++cell;
            if (o.progress) {
                const auto now = std::chrono::steady_clock::now();
                const double el = std::chrono::duration<double>(now - t0).count();
                const double dt = std::chrono::duration<double>(now - cell_t0).count();
                char head[160];
                std::snprintf(head, sizeof head, "  [%zu/%zu] %-18s s%d  before %.2f%% ", cell, cells, name.c_str(), s,
                              100 * before);
                char tail[80];
                std::snprintf(tail, sizeof tail, "  (%.1f s, ETA %.0f s)", dt, el / double(cell) * double(cells - cell));
                o.progress(head + line + tail);
            }
        }
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace shiftnorm::eval
