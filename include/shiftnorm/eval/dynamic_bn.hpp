// SPDX-License-Identifier: MIT
// Seed 002's protocols: detector data and scores, the statistics table from the training split,
// the sensitivity matrix and the stream benchmark (source, test statistics, EMA, oracle, dynamic).
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/random.hpp"
#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/corrupt/dataset.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/eval/metrics.hpp"
#include "shiftnorm/eval/stats_table.hpp"
#include "shiftnorm/nn/infer.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/spectral/detector.hpp"
#include "shiftnorm/stats/sources.hpp"
#include "shiftnorm/stats/test_ema.hpp"

namespace shiftnorm::eval {

//! Name of a domain: the corruption's name, or "name:s" when keys are per severity (s >= 1).
inline std::string domain_key(corrupt::corruption c, int severity = 0) {
    return severity > 0 ? std::string(corrupt::name_of(c)) + ":" + std::to_string(severity) : corrupt::name_of(c);
}

//! The detector's classes for corruptions `cs`: "clean" first, then one per corruption (or per
//! corruption x severity).
inline std::vector<std::string> detector_classes(const std::vector<corrupt::corruption>& cs, const std::vector<int>& severities,
                                                 bool per_severity) {
    std::vector<std::string> out{"clean"};
    for (auto c : cs) {
        if (!per_severity) out.push_back(domain_key(c));
        else
            for (int s : severities) out.push_back(domain_key(c, s));
    }
    return out;
}

// ------------------------------------------------------------------------------------------
// Detector data

//! Spectrum features of images of a split, labelled by the detector's class index (-1 for a
//! domain the detector has no class for: the held-out corruptions of the open-set test).
struct detection_set {
    std::vector<float> features;        //!< size() x feature size
    std::vector<std::int32_t> labels;   //!< class index or -1
    std::vector<std::int8_t> severity;  //!< 0 for clean images
    std::vector<std::int8_t> corruption;  //!< corrupt::corruption as int, -1 for clean images
    index_t size() const { return index_t(labels.size()); }
};

struct detection_set_options {
    std::vector<corrupt::corruption> corruptions;  //!< corrupted domains drawn (known or held out)
    std::vector<int> severities{1, 2, 3, 4, 5};
    bool clean = true;          //!< also draw clean images
    index_t per_domain = 500;   //!< images per domain (a corruption's are spread over the severities)
    std::uint64_t seed = 0;         //!< corruption seed
    std::uint64_t sample_seed = 1;  //!< which images of the split each domain uses
    corrupt::corrupt_options corrupt;
    std::function<void(const std::string&)> progress;
};

//! Draws per_domain images of `split` for clean and for each corruption (image j of a corruption
//! at severity severities[j % S]), corrupts them in memory and computes the detector's features.
//! Labels follow d.classes() ("clean", names or name:severity).
inline detection_set make_detection_set(const spectral::detector& d, const data::image_dataset& split,
                                        const detection_set_options& o) {
    d.check_images(split.channels, split.height, split.width, "make_detection_set");
    if (o.per_domain < 1) shiftnorm::detail::fail("make_detection_set", "per_domain", ">= 1", o.per_domain);
    if (o.severities.empty()) throw value_error("make_detection_set: no severity given");
    auto class_of = [&](const std::string& k) {
        for (std::size_t i = 0; i < d.classes().size(); ++i)
            if (d.classes()[i] == k) return std::int32_t(i);
        return std::int32_t(-1);
    };
    detection_set out;
    auto append = [&](const data::image_dataset& imgs, std::int32_t label, int sev, int corr) {
        const auto f = d.compute_features(imgs.pixels.data(), imgs.size());
        out.features.insert(out.features.end(), f.begin(), f.end());
        out.labels.insert(out.labels.end(), std::size_t(imgs.size()), label);
        out.severity.insert(out.severity.end(), std::size_t(imgs.size()), std::int8_t(sev));
        out.corruption.insert(out.corruption.end(), std::size_t(imgs.size()), std::int8_t(corr));
    };
    if (o.clean) {
        const auto idx = data::draw_indices(split.size(), o.per_domain, o.sample_seed ^ 0xc1ea0000ULL);
        append(data::select(split, idx), class_of("clean"), 0, -1);
    }
    const std::size_t S = o.severities.size();
    for (auto c : o.corruptions) {
        const auto idx = data::draw_indices(split.size(), o.per_domain, o.sample_seed ^ (std::uint64_t(int(c) + 1) << 24));
        for (std::size_t si = 0; si < S; ++si) {
            std::vector<index_t> sub;
            for (std::size_t j = si; j < idx.size(); j += S) sub.push_back(idx[j]);
            if (sub.empty()) continue;
            const int s = o.severities[si];
            const auto imgs = corrupt::corrupted_copy(data::select(split, sub), c, s, o.seed, o.corrupt);
            std::int32_t label = class_of(domain_key(c, s));
            if (label < 0) label = class_of(domain_key(c));
            append(imgs, label, s, int(c));
        }
        if (o.progress) o.progress(shiftnorm::detail::concat("  features: ", corrupt::name_of(c), " (", idx.size(), " images)"));
    }
    return out;
}

//! How well the detector names the domain of single images.
struct detection_scores {
    std::vector<std::string> classes;
    std::vector<std::vector<long long>> confusion;  //!< [true class][predicted class], known images only
    double accuracy = 0;                             //!< of known images
    std::array<double, 5> per_severity{};            //!< accuracy of corrupted known images per severity (NaN: none)
    double clean_accuracy = std::nan("");            //!< images whose true class is "clean"
    long long known = 0, unknown = 0;
};

//! Scores probabilities (n x k, from detector::probabilities_from_features) against a set's labels.
inline detection_scores score_detections(const std::vector<float>& probs, const detection_set& s,
                                         const std::vector<std::string>& classes) {
    const index_t n = s.size(), k = index_t(classes.size());
    if (index_t(probs.size()) != n * k)
        shiftnorm::detail::fail<shape_error>("score_detections", "probabilities", shiftnorm::detail::concat(n, " x ", k), probs.size());
    detection_scores r;
    r.classes = classes;
    r.confusion.assign(std::size_t(k), std::vector<long long>(std::size_t(k), 0));
    std::array<long long, 5> sev_n{}, sev_ok{};
    long long clean_n = 0, clean_ok = 0, ok = 0;
    for (index_t i = 0; i < n; ++i) {
        const std::int32_t y = s.labels[std::size_t(i)];
        if (y < 0) {
            ++r.unknown;
            continue;
        }
        const float* p = probs.data() + i * k;
        const auto pred = std::max_element(p, p + k) - p;
        ++r.confusion[std::size_t(y)][std::size_t(pred)];
        ++r.known;
        const bool hit = pred == y;
        ok += hit;
        const int sv = s.severity[std::size_t(i)];
        if (sv >= 1 && sv <= 5) ++sev_n[std::size_t(sv - 1)], sev_ok[std::size_t(sv - 1)] += hit;
        if (classes[std::size_t(y)] == "clean") ++clean_n, clean_ok += hit;
    }
    r.accuracy = r.known ? double(ok) / double(r.known) : std::nan("");
    for (std::size_t j = 0; j < 5; ++j) r.per_severity[j] = sev_n[j] ? double(sev_ok[j]) / double(sev_n[j]) : std::nan("");
    if (clean_n) r.clean_accuracy = double(clean_ok) / double(clean_n);
    return r;
}

//! Open-set behaviour at one confidence threshold: images below it fall back to the source
//! statistics. `known_*` on images of the detector's classes, `heldout_*` on corruptions it
//! never saw in training.
struct open_set_row {
    double threshold = 0;
    double known_accepted = 0;   //!< fraction of known images above the threshold
    double known_correct = 0;    //!< fraction of known images accepted AND correctly named
    double heldout_fallback = 0; //!< fraction of held-out images sent to the source statistics
};

inline std::vector<open_set_row> open_set_sweep(const std::vector<float>& known_probs, const detection_set& known,
                                                const std::vector<float>& heldout_probs, index_t k,
                                                const std::vector<double>& thresholds) {
    std::vector<open_set_row> rows;
    for (double t : thresholds) {
        open_set_row r;
        r.threshold = t;
        long long kn = 0, acc = 0, cor = 0;
        for (index_t i = 0; i < known.size(); ++i) {
            if (known.labels[std::size_t(i)] < 0) continue;
            ++kn;
            const auto d = spectral::decide_batch(known_probs.data() + i * k, 1, k, t);
            if (!d.fallback) ++acc, cor += d.cls == known.labels[std::size_t(i)];
        }
        const index_t hn = index_t(heldout_probs.size()) / k;
        long long fb = 0;
        for (index_t i = 0; i < hn; ++i) fb += spectral::decide_batch(heldout_probs.data() + i * k, 1, k, t).fallback;
        r.known_accepted = kn ? double(acc) / double(kn) : std::nan("");
        r.known_correct = kn ? double(cor) / double(kn) : std::nan("");
        r.heldout_fallback = hn ? double(fb) / double(hn) : std::nan("");
        rows.push_back(r);
    }
    return rows;
}

// ------------------------------------------------------------------------------------------
// The statistics table

struct table_build_options {
    std::vector<corrupt::corruption> corruptions;
    std::vector<int> severities{1, 2, 3, 4, 5};
    bool per_severity = false;  //!< one key per (corruption, severity) instead of per corruption
    index_t k = 64;             //!< samples per key (a per-corruption key spreads them over the severities)
    std::uint64_t seed = 0;         //!< corruption seed
    std::uint64_t sample_seed = 2;  //!< which training images each key uses
    corrupt::corrupt_options corrupt;
    data::normalization norm;
    rectify_options rectify;  //!< seed 000's options (what, prior, pass, ...)
    std::function<void(const std::string&)> progress;
};

//! Fills the table of `net` (batch_norm<stats_table> layers, weights loaded) from K images of
//! the TRAINING split per key, corrupted in memory: key i is domain id i. Returns the keys.
//! The evaluated test images are never used.
inline std::vector<std::string> build_stats_table(nn::module& net, const data::image_dataset& train_split,
                                                  const table_build_options& o) {
    if (o.k < 2) shiftnorm::detail::fail("build_stats_table", "k", ">= 2 (an unbiased variance needs two values)", o.k);
    if (o.k > train_split.size())
        shiftnorm::detail::fail("build_stats_table", "k", shiftnorm::detail::concat("<= the ", train_split.size(), " training images"), o.k);
    if (o.severities.empty()) throw value_error("build_stats_table: no severity given");
    clear_table(net);
    std::vector<std::string> keys;
    for (auto c : o.corruptions) {
        const std::vector<int> groups = o.per_severity ? o.severities : std::vector<int>{0};
        for (int g : groups) {
            const int id = int(keys.size());
            keys.push_back(domain_key(c, g));
            const auto idx = data::draw_indices(train_split.size(), o.k, o.sample_seed ^ (std::uint64_t(id + 1) << 20));
            // the K images: all at severity g, or image j at severities[j % S]
            data::image_dataset batch = data::select(train_split, idx);
            if (g > 0) {
                batch = corrupt::corrupted_copy(batch, c, g, o.seed, o.corrupt);
            } else {
                const std::size_t S = o.severities.size();
                for (std::size_t si = 0; si < S; ++si) {
                    std::vector<index_t> sub;
                    for (std::size_t j = si; j < idx.size(); j += S) sub.push_back(index_t(j));
                    if (sub.empty()) continue;
                    const auto part = corrupt::corrupted_copy(data::select(batch, sub), c, o.severities[si], o.seed, o.corrupt, si << 32);
                    for (std::size_t j = 0; j < sub.size(); ++j)
                        std::copy_n(part.image(index_t(j)), std::size_t(batch.image_size()),
                                    batch.pixels.data() + sub[j] * batch.image_size());
                }
            }
            std::vector<index_t> all(std::size_t(batch.size()));
            for (index_t i = 0; i < batch.size(); ++i) all[std::size_t(i)] = i;
            fill_table_entry(net, id, batch_of(batch, all, o.norm), o.rectify);
            if (o.progress) o.progress("  table: " + keys.back() + " from " + std::to_string(o.k) + " training images");
        }
    }
    return keys;
}

// ------------------------------------------------------------------------------------------
// Test cells (the corrupted test split) shared by the sensitivity matrix and the stream

//! One domain of the test stream: a corrupted (or clean) copy of the evaluated images.
struct test_cell {
    std::string name;   //!< corruption name or "clean"
    int severity = 0;   //!< 0 for clean
    data::image_dataset images;
};

//! The clean split and its corruption x severity copies (generated, or read by load_corrupted:
//! NHWC uint8, severity-major 5 x the split, the CIFAR-10-C layout; see rectification.hpp).
struct test_cells_options {
    std::vector<corrupt::corruption> corruptions;
    std::vector<int> severities{1, 2, 3, 4, 5};
    std::uint64_t seed = 0;
    corrupt::corrupt_options corrupt;
    std::function<std::vector<std::uint8_t>(corrupt::corruption)> load_corrupted;
    std::function<void(const std::string&)> progress;
};

inline std::vector<test_cell> make_test_cells(const data::image_dataset& test, const test_cells_options& o) {
    std::vector<test_cell> cells;
    const auto nhwc = data::to_nhwc(test);
    for (auto c : o.corruptions) {
        std::vector<std::uint8_t> file;
        if (o.load_corrupted) {
            file = o.load_corrupted(c);
            if (file.size() != 5 * nhwc.size())
                throw io_error(shiftnorm::detail::concat("make_test_cells: the corrupted data of ", corrupt::name_of(c), " has ",
                                                         file.size(), " bytes, expected 5 x ", nhwc.size()));
        }
        for (int s : o.severities) {
            test_cell cell{corrupt::name_of(c), s, {}};
            if (file.empty()) {
                cell.images = corrupt::corrupted_copy(test, c, s, o.seed, o.corrupt);
            } else {
                std::vector<std::uint8_t> part(file.begin() + std::ptrdiff_t(std::size_t(s - 1) * nhwc.size()),
                                               file.begin() + std::ptrdiff_t(std::size_t(s) * nhwc.size()));
                cell.images = data::from_nhwc(part, test);
            }
            cells.push_back(std::move(cell));
        }
        if (o.progress) o.progress(std::string("  test cells: ") + corrupt::name_of(c));
    }
    return cells;
}

//! Seed 002's second experiment: accuracy on corruption j (rows of the test cells at one
//! severity, or all) with the table entry of key i. acc[i][j]; row keys.size() is the source.
struct sensitivity_result {
    std::vector<std::string> keys;     //!< rows (statistics used), then "source"
    std::vector<std::string> columns;  //!< corruptions evaluated
    std::vector<std::vector<double>> acc;
};

inline sensitivity_result run_sensitivity(nn::module& table_net, const std::vector<std::string>& keys,
                                          const std::vector<test_cell>& cells, const data::normalization& norm,
                                          index_t batch = 500, const std::function<void(const std::string&)>& progress = {}) {
    sensitivity_result r;
    r.keys = keys;
    r.keys.push_back("source");
    for (const auto& c : cells)
        if (c.severity > 0 && std::find(r.columns.begin(), r.columns.end(), c.name) == r.columns.end()) r.columns.push_back(c.name);
    r.acc.assign(r.keys.size(), std::vector<double>(r.columns.size(), 0.0));
    for (std::size_t j = 0; j < r.columns.size(); ++j) {
        for (std::size_t i = 0; i < r.keys.size(); ++i) {
            select_domain(table_net, i < keys.size() ? int(i) : stats_table::source_domain);
            double sum = 0;
            int n = 0;
            for (const auto& c : cells)
                if (c.name == r.columns[j]) sum += evaluate(table_net, c.images, norm, batch).accuracy, ++n;
            r.acc[i][j] = n ? sum / n : std::nan("");
        }
        if (progress) progress("  sensitivity: " + r.columns[j]);
    }
    select_domain(table_net, stats_table::source_domain);
    return r;
}

// ------------------------------------------------------------------------------------------
// The stream benchmark (seed 002's third experiment)

//! The networks the stream benchmark compares, built by the caller from the SAME weights:
//! `table` with batch_norm<stats_table> (filled or loaded: source, oracle and dynamic),
//! `batch` with batch_norm<batch_stats> (statistics of each incoming batch), `ema` with
//! batch_norm<test_ema> (moving average over the stream).
struct stream_networks {
    nn::module& table;
    nn::module& batch;
    nn::module& ema;
};

struct stream_options {
    index_t batch = 16;                          //!< images per incoming batch
    std::vector<index_t> switch_every{1, 4, 16, 0};  //!< B: batches before the domain changes; 0: the whole cell
    double ema_momentum = 0.1;                   //!< weight of each batch in the test EMA
    double threshold = 0.0;                      //!< detector confidence below which the source statistics are used
    spectral::decision_rule rule = spectral::decision_rule::mean_probability;
    bool per_image = false;                      //!< dynamic: split each batch by per-image decisions
    bool mixed_every_interval = false;           //!< test EMA on the mixed stream for every B (default: the first only)
    std::uint64_t seed = 3;                      //!< batch composition and domain order
    data::normalization norm;
    std::function<void(const std::string&)> progress;
};

inline constexpr std::array<const char*, 5> stream_methods = {"source", "test batch", "test EMA", "oracle table",
                                                              "dynamic table"};

struct stream_result {
    std::vector<index_t> switch_every;
    //! [method][b]: accuracy on the stream of corrupted cells switching every switch_every[b] batches
    std::vector<std::vector<double>> corrupted;
    //! [method][b]: the same stream with clean cells mixed in (one clean cell per severity: clean
    //! weighs as much as one corruption type); the test EMA's only for b = 0 unless
    //! stream_options::mixed_every_interval (NaN otherwise)
    std::vector<std::vector<double>> mixed;
    std::vector<double> clean;  //!< [method]: a clean-only stream
    //! per-cell accuracies of the stateless methods (source, test batch, oracle, dynamic)
    std::array<results, 5> cells{results("source"), results("test batch"), results("test EMA"), results("oracle table"),
                                 results("dynamic table")};
    double detector_batch_accuracy = 0;  //!< batches whose decision names their true key (clean: the source)
    double fallback_rate = 0;            //!< batches sent to the source statistics by the threshold
    long long batches = 0;
    double seconds = 0;
};

namespace detail {
struct stream_batch {
    std::size_t cell;
    std::vector<index_t> idx;
};

//! Every cell cut into batches (a seeded shuffle of its images), then interleaved: in rounds,
//! the cells that still have batches, in a seeded order, each give up to B batches (B = 0:
//! all of them). The same batches appear for every B; only their order changes.
inline std::vector<stream_batch> make_stream(const std::vector<std::vector<std::vector<index_t>>>& cell_batches,
                                             const std::vector<std::size_t>& cells, index_t B, std::uint64_t seed) {
    std::vector<std::size_t> pos(cell_batches.size(), 0);
    std::vector<stream_batch> out;
    random_engine g(seed);
    for (;;) {
        std::vector<std::size_t> live;
        for (auto c : cells)
            if (pos[c] < cell_batches[c].size()) live.push_back(c);
        if (live.empty()) break;
        for (std::size_t i = live.size(); i > 1; --i) std::swap(live[i - 1], live[std::size_t(g.randint(0, std::int64_t(i)))]);
        for (auto c : live) {
            const std::size_t take = B == 0 ? cell_batches[c].size() : std::size_t(B);
            for (std::size_t t = 0; t < take && pos[c] < cell_batches[c].size(); ++t)
                out.push_back({c, cell_batches[c][pos[c]++]});
        }
    }
    return out;
}
}  // namespace detail

//! Runs the five methods on streams built from `cells` (corrupted cells; clean cells are added
//! from `clean`), the dynamic table deciding per batch (or per image) with `det`. keys[i] names
//! table id i; the detector's "clean", an unknown class, or a low confidence selects the source.
inline stream_result run_stream_benchmark(stream_networks nets, spectral::detector& det, const std::vector<std::string>& keys,
                                          const data::image_dataset& clean, const std::vector<test_cell>& corrupted,
                                          const stream_options& o) {
    const auto t0 = std::chrono::steady_clock::now();
    if (o.batch < 1) shiftnorm::detail::fail("run_stream_benchmark", "batch", ">= 1", o.batch);
    if (!(o.ema_momentum >= 0 && o.ema_momentum <= 1)) shiftnorm::detail::fail("run_stream_benchmark", "ema_momentum", "in [0, 1]", o.ema_momentum);
    if (o.switch_every.empty()) throw value_error("run_stream_benchmark: no switch interval given");
    det.check_images(clean.channels, clean.height, clean.width, "run_stream_benchmark");
    for (auto* l : nn::find_all<nn::norm_layer<batch_norm<test_ema>>>(nets.ema)) l->impl.source.momentum = o.ema_momentum;
    if (nn::find_all<table_layer>(nets.table).empty() || nn::find_all<nn::norm_layer<batch_norm<batch_stats>>>(nets.batch).empty() ||
        nn::find_all<nn::norm_layer<batch_norm<test_ema>>>(nets.ema).empty())
        throw value_error("run_stream_benchmark: the networks must have batch_norm<stats_table>, <batch_stats> and <test_ema> layers");

    // cells: the corrupted ones, then one clean copy per severity used
    std::vector<test_cell> clean_cells;
    std::vector<int> sevs;
    for (const auto& c : corrupted)
        if (std::find(sevs.begin(), sevs.end(), c.severity) == sevs.end()) sevs.push_back(c.severity);
    for (int s : sevs) clean_cells.push_back({"clean", s, clean});
    std::vector<const test_cell*> cells;
    for (const auto& c : corrupted) cells.push_back(&c);
    for (const auto& c : clean_cells) cells.push_back(&c);
    const std::size_t NC = cells.size(), NK = corrupted.size();

    auto key_id = [&](const std::string& name) {
        for (std::size_t i = 0; i < keys.size(); ++i)
            if (keys[i] == name) return int(i);
        return stats_table::source_domain;
    };
    std::vector<int> true_id(NC);
    for (std::size_t c = 0; c < NC; ++c) {
        const auto* cl = cells[c];
        int id = cl->name == "clean" ? stats_table::source_domain : key_id(cl->name + ":" + std::to_string(cl->severity));
        if (id < 0 && cl->name != "clean") id = key_id(cl->name);
        true_id[c] = id;
    }
    std::vector<int> class_to_id(det.classes().size());
    for (std::size_t k = 0; k < det.classes().size(); ++k) class_to_id[k] = det.classes()[k] == "clean" ? -1 : key_id(det.classes()[k]);

    // batches of every cell
    std::vector<std::vector<std::vector<index_t>>> cell_batches(NC);
    for (std::size_t c = 0; c < NC; ++c) {
        const auto order = data::draw_indices(cells[c]->images.size(), cells[c]->images.size(), o.seed ^ (std::uint64_t(c + 1) << 16));
        for (std::size_t b = 0; b < order.size(); b += std::size_t(o.batch))
            cell_batches[c].emplace_back(order.begin() + std::ptrdiff_t(b),
                                         order.begin() + std::ptrdiff_t(std::min(order.size(), b + std::size_t(o.batch))));
    }

    // stateless methods: correct counts per cell, order-independent. Only the test-batch
    // method depends on how a cell is cut into batches; the table methods are batch-independent
    // once the entry is chosen, so their images are evaluated in large chunks per entry.
    enum { SRC, BAT, EMA, ORA, DYN, M };
    std::vector<std::array<long long, M>> correct(NC, std::array<long long, M>{});
    long long dec_ok = 0, dec_fb = 0, dec_n = 0;
    tensor<float> x, logits;
    std::vector<std::int32_t> y;
    auto count = [&](nn::module& net, const data::image_dataset& ds, const std::vector<index_t>& idx, nn::mode m) {
        x = batch_of(ds, idx, o.norm, &y);
        return (long long)nn::count_correct(nn::infer(net, x, m, logits), y);
    };
    const index_t chunk = 500;
    auto count_chunked = [&](nn::module& net, const data::image_dataset& ds, const std::vector<index_t>& idx) {
        long long k = 0;
        for (std::size_t b = 0; b < idx.size(); b += std::size_t(chunk)) {
            const std::vector<index_t> part(idx.begin() + std::ptrdiff_t(b),
                                            idx.begin() + std::ptrdiff_t(std::min(idx.size(), b + std::size_t(chunk))));
            k += count(net, ds, part, nn::mode::eval);
        }
        return k;
    };
    std::vector<std::uint8_t> pix;
    for (std::size_t c = 0; c < NC; ++c) {
        const auto& ds = cells[c]->images;
        std::vector<index_t> all;
        std::map<int, std::vector<index_t>> by_entry;  // dynamic: images per selected entry
        const index_t K = det.num_classes();
        for (const auto& idx : cell_batches[c]) {
            all.insert(all.end(), idx.begin(), idx.end());
            correct[c][BAT] += count(nets.batch, ds, idx, nn::mode::eval);
            pix.resize(idx.size() * std::size_t(ds.image_size()));
            for (std::size_t i = 0; i < idx.size(); ++i)
                std::copy_n(ds.image(idx[i]), std::size_t(ds.image_size()), pix.data() + i * std::size_t(ds.image_size()));
            const auto probs = det.probabilities(pix.data(), index_t(idx.size()));
            const auto d = spectral::decide_batch(probs.data(), index_t(idx.size()), K, o.threshold, o.rule);
            const int batch_id = d.fallback ? stats_table::source_domain : class_to_id[std::size_t(d.cls)];
            ++dec_n, dec_ok += batch_id == true_id[c], dec_fb += d.fallback;
            if (!o.per_image) {
                auto& v = by_entry[batch_id];
                v.insert(v.end(), idx.begin(), idx.end());
            } else {
                const auto per = spectral::decide_images(probs.data(), index_t(idx.size()), K, o.threshold);
                for (std::size_t i = 0; i < idx.size(); ++i)
                    by_entry[per[i].fallback ? stats_table::source_domain : class_to_id[std::size_t(per[i].cls)]].push_back(idx[i]);
            }
        }
        select_domain(nets.table, stats_table::source_domain);
        correct[c][SRC] = count_chunked(nets.table, ds, all);
        select_domain(nets.table, true_id[c]);
        correct[c][ORA] = count_chunked(nets.table, ds, all);
        for (const auto& [id, imgs] : by_entry) {
            select_domain(nets.table, id);
            correct[c][DYN] += count_chunked(nets.table, ds, imgs);
        }
        if (o.progress)
            o.progress(shiftnorm::detail::concat("  stream: ", cells[c]->name, " s", cells[c]->severity, " [", c + 1, "/", NC, "]"));
    }
    select_domain(nets.table, stats_table::source_domain);

    stream_result r;
    r.switch_every = o.switch_every;
    r.batches = dec_n;
    r.detector_batch_accuracy = dec_n ? double(dec_ok) / double(dec_n) : 0;
    r.fallback_rate = dec_n ? double(dec_fb) / double(dec_n) : 0;
    auto cell_acc = [&](std::size_t c, int m) { return double(correct[c][std::size_t(m)]) / double(cells[c]->images.size()); };
    for (int m : {SRC, BAT, ORA, DYN}) {
        for (std::size_t c = 0; c < NK; ++c) r.cells[std::size_t(m)].set(cells[c]->name, cells[c]->severity, cell_acc(c, m));
        r.cells[std::size_t(m)].set_clean(cell_acc(NK, m));
    }
    auto stateless = [&](const std::vector<std::size_t>& which, int m) {
        long long s = 0, n = 0;
        for (auto c : which) s += correct[c][std::size_t(m)], n += cells[c]->images.size();
        return n ? double(s) / double(n) : std::nan("");
    };
    // the EMA network on an actual stream: state carried from batch to batch
    auto run_ema = [&](const std::vector<std::size_t>& which, index_t B) {
        for (auto* l : nn::find_all<nn::norm_layer<batch_norm<test_ema>>>(nets.ema)) l->impl.source.reset();
        long long s = 0, n = 0;
        for (const auto& sb : detail::make_stream(cell_batches, which, B, o.seed ^ 0x57e4)) {
            s += count(nets.ema, cells[sb.cell]->images, sb.idx, nn::mode::rectify);
            n += index_t(sb.idx.size());
        }
        return n ? double(s) / double(n) : std::nan("");
    };
    std::vector<std::size_t> corr_cells, clean_only, all_cells;
    for (std::size_t c = 0; c < NC; ++c) (c < NK ? corr_cells : clean_only).push_back(c), all_cells.push_back(c);
    r.corrupted.assign(M, std::vector<double>(o.switch_every.size(), 0.0));
    r.mixed = r.corrupted;
    r.clean.assign(M, 0.0);
    for (int m : {SRC, BAT, ORA, DYN}) {
        r.clean[std::size_t(m)] = stateless(clean_only, m);
        for (std::size_t b = 0; b < o.switch_every.size(); ++b) {
            r.corrupted[std::size_t(m)][b] = stateless(corr_cells, m);
            r.mixed[std::size_t(m)][b] = stateless(all_cells, m);
        }
    }
    r.clean[EMA] = run_ema(std::vector<std::size_t>{clean_only.front()}, 0);
    for (std::size_t b = 0; b < o.switch_every.size(); ++b) {
        r.corrupted[EMA][b] = run_ema(corr_cells, o.switch_every[b]);
        // the mixed stream only for the first interval unless asked (the EMA is the one method
        // that needs a sequential pass per stream: it dominates the benchmark's time)
        r.mixed[EMA][b] = b == 0 || o.mixed_every_interval ? run_ema(all_cells, o.switch_every[b]) : std::nan("");
        if (o.progress) o.progress(shiftnorm::detail::concat("  stream: test EMA, switching every ", o.switch_every[b], " batches"));
    }
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return r;
}

}  // namespace shiftnorm::eval
