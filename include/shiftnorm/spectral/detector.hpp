// SPDX-License-Identifier: MIT
// Spectral corruption detector of seed 002: spectrum features -> a shallow 3-layer MLP -> corruption class.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/random.hpp"
#include "shiftnorm/data/safetensors.hpp"
#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/linear.hpp"
#include "shiftnorm/nn/loss.hpp"
#include "shiftnorm/nn/sequential.hpp"
#include "shiftnorm/spectral/spectrum.hpp"
#include "shiftnorm/train/sgd.hpp"

namespace shiftnorm::spectral {

//! Architecture of the detector: the spectrum it reads and the widths of its two hidden layers
//! (the paper: "a shallow 3-layer fully connected network"; a fully connected first layer sees
//! every frequency at a fixed place, which a convolution's shift invariance would not).
struct detector_options {
    spectrum_options spectrum;
    std::vector<index_t> hidden{256, 128};  //!< widths of the hidden layers (ReLU after each)
    //! Standardize each feature with the training set's mean and standard deviation before
    //! the first layer (stored with the weights). Beyond the paper, which feeds the normalized
    //! spectrum directly (false).
    bool standardize = true;
};

//! A corruption detector for images of one size: spectrum features (spectral/spectrum.hpp)
//! followed by Linear-ReLU-Linear-ReLU-Linear over `classes` (e.g. "clean" and the corruption
//! names). Inference is batch-independent: an image's probabilities do not depend on the
//! other images of its batch (up to float rounding of the GEMM's blocking).
class detector {
public:
    detector(index_t channels, index_t height, index_t width, std::vector<std::string> classes, detector_options o = {})
        : spec_(channels, height, width, o.spectrum), classes_(std::move(classes)), opt_(std::move(o)) {
        if (classes_.size() < 2) shiftnorm::detail::fail("detector", "classes", "at least 2 names", classes_.size());
        for (std::size_t i = 0; i < classes_.size(); ++i) {
            if (classes_[i].empty() || classes_[i].find_first_of(",\n\"") != std::string::npos)
                throw value_error("detector: class name '" + classes_[i] + "' must be non-empty without ',', '\"' or newlines");
            for (std::size_t j = 0; j < i; ++j)
                if (classes_[i] == classes_[j]) throw value_error("detector: class '" + classes_[i] + "' named twice");
        }
        if (opt_.hidden.size() != 2)
            shiftnorm::detail::fail("detector", "hidden", "two widths (a 3-layer network)", opt_.hidden.size());
        index_t in = spec_.size();
        for (index_t h : opt_.hidden) {
            if (h < 1) shiftnorm::detail::fail("detector", "hidden width", ">= 1", h);
            net_.add(nn::linear(in, h));
            net_.add(nn::relu());
            in = h;
        }
        net_.add(nn::linear(in, index_t(classes_.size())));
        net_.set_input_grad(false);
        nn::rng_type g(0);
        net_.reset_parameters(g);
    }

    index_t channels() const { return spec_.channels(); }
    index_t height() const { return spec_.height(); }
    index_t width() const { return spec_.width(); }
    index_t num_classes() const { return index_t(classes_.size()); }
    const std::vector<std::string>& classes() const { return classes_; }
    //! Index of class `name`, or -1.
    int class_index(const std::string& name) const {
        for (std::size_t i = 0; i < classes_.size(); ++i)
            if (classes_[i] == name) return int(i);
        return -1;
    }
    const detector_options& options() const { return opt_; }
    const spectrum& features() const { return spec_; }
    nn::sequential& network() { return net_; }
    index_t feature_size() const { return spec_.size(); }

    //! Re-draws the weights (PyTorch's Linear default) from `seed`.
    void reset_parameters(std::uint64_t seed) {
        nn::rng_type g(seed);
        net_.reset_parameters(g);
    }

    //! Throws shape_error naming both sides when images of (c, h, w) are not what it reads.
    void check_images(index_t c, index_t h, index_t w, const std::string& what) const {
        if (c != channels() || h != height() || w != width())
            throw shape_error(shiftnorm::detail::concat(what, ": images are ", c, "x", h, "x", w, " (CxHxW), the detector reads ",
                                                        channels(), "x", height(), "x", width()));
    }

    //! Spectrum features of n uint8 NCHW images: n x feature_size() floats.
    std::vector<float> compute_features(const std::uint8_t* images, index_t n) const {
        std::vector<float> f(std::size_t(n * spec_.size()));
        if (n > 0) spec_.batch(images, n, f.data());
        return f;
    }
    //! The per-feature standardization (empty: none): x' = (x - mean) / std.
    const std::vector<float>& input_mean() const { return in_mean_; }
    const std::vector<float>& input_std() const { return in_std_; }
    //! Sets the standardization from n training feature rows (std floored at 1e-6 of the
    //! largest std), or clears it when the options do not standardize.
    void fit_standardization(const float* features, index_t n) {
        in_mean_.clear(), in_std_.clear();
        if (!opt_.standardize || n < 1) return;
        const index_t D = spec_.size();
        std::vector<double> s1(std::size_t(D), 0.0), s2(std::size_t(D), 0.0);
        for (index_t i = 0; i < n; ++i)
            for (index_t j = 0; j < D; ++j) {
                const double v = features[i * D + j];
                s1[std::size_t(j)] += v, s2[std::size_t(j)] += v * v;
            }
        in_mean_.resize(std::size_t(D)), in_std_.resize(std::size_t(D));
        double top = 0;
        for (index_t j = 0; j < D; ++j) {
            const double m = s1[std::size_t(j)] / double(n);
            const double var = std::max(0.0, s2[std::size_t(j)] / double(n) - m * m);
            in_mean_[std::size_t(j)] = float(m), in_std_[std::size_t(j)] = float(std::sqrt(var));
            top = std::max(top, std::sqrt(var));
        }
        const float floor_std = float(std::max(top * 1e-6, 1e-12));
        for (auto& v : in_std_) v = std::max(v, floor_std);
    }
    //! Writes the standardized copy of m rows into dst.
    void standardize_rows(const float* src, index_t m, float* dst) const {
        const index_t D = spec_.size();
        if (in_mean_.empty()) {
            std::copy_n(src, std::size_t(m * D), dst);
            return;
        }
        for (index_t i = 0; i < m; ++i)
            for (index_t j = 0; j < D; ++j) dst[i * D + j] = (src[i * D + j] - in_mean_[std::size_t(j)]) / in_std_[std::size_t(j)];
    }

    //! Class probabilities (n x num_classes(), rows sum to 1) from n feature rows.
    std::vector<float> probabilities_from_features(const float* features, index_t n) {
        std::vector<float> p(std::size_t(n * num_classes()));
        const index_t chunk = 1024;
        tensor<float> x;
        for (index_t b = 0; b < n; b += chunk) {
            const index_t m = std::min(chunk, n - b);
            x = tensor<float>(shape4{m, spec_.size(), 1, 1});
            standardize_rows(features + b * spec_.size(), m, x.data());
            const tensor<float>& z = net_.forward(x, nn::mode::eval);
            softmax_rows(z.data(), m, num_classes(), p.data() + b * num_classes());
        }
        return p;
    }
    //! Class probabilities of n uint8 NCHW images (channels() x height() x width() each).
    std::vector<float> probabilities(const std::uint8_t* images, index_t n) {
        const auto f = compute_features(images, n);
        return probabilities_from_features(f.data(), n);
    }

    //! Softmax of each row of logits (n x k), in double, into out.
    static void softmax_rows(const float* z, index_t n, index_t k, float* out) {
        for (index_t i = 0; i < n; ++i) {
            const float* r = z + i * k;
            const double mx = *std::max_element(r, r + k);
            double s = 0;
            for (index_t j = 0; j < k; ++j) s += std::exp(double(r[j]) - mx);
            for (index_t j = 0; j < k; ++j) out[i * k + j] = float(std::exp(double(r[j]) - mx) / s);
        }
    }

    //! The detector as a safetensors file: the MLP's tensors (`0.weight`, `0.bias`, `2.*`, `4.*`)
    //! and metadata naming the image size, the classes and every spectrum option, so that a file
    //! is never applied to images it was not trained for. `extra` adds provenance entries.
    data::safetensors_file to_safetensors(std::map<std::string, std::string> extra = {}) {
        data::safetensors_file f;
        for (const auto& p : net_.parameters().params) f.put_f32(p.name, p.shape, p.value);
        if (!in_mean_.empty()) {
            f.put_f32("input.mean", {std::int64_t(in_mean_.size())}, in_mean_.data());
            f.put_f32("input.std", {std::int64_t(in_std_.size())}, in_std_.data());
        }
        f.metadata = std::move(extra);
        f.metadata["shiftnorm.kind"] = "spectral_detector";
        f.metadata["channels"] = std::to_string(channels());
        f.metadata["height"] = std::to_string(height());
        f.metadata["width"] = std::to_string(width());
        f.metadata["classes"] = join(classes_);
        f.metadata["hidden"] = std::to_string(opt_.hidden[0]) + "," + std::to_string(opt_.hidden[1]);
        const auto& s = opt_.spectrum;
        f.metadata["spectrum.gray"] = s.gray ? "1" : "0";
        f.metadata["spectrum.shift"] = s.shift ? "1" : "0";
        f.metadata["spectrum.half"] = s.half ? "1" : "0";
        f.metadata["spectrum.scale"] = s.scale == scaling::raw ? "raw" : "log";
        std::ostringstream e;
        e.precision(17);
        e << s.eps;
        f.metadata["spectrum.eps"] = e.str();
        return f;
    }
    void save(const std::string& path, std::map<std::string, std::string> extra = {}) {
        data::write_safetensors(path, to_safetensors(std::move(extra)));
    }

    //! A detector from a file written by save(); io_error naming the file for anything missing,
    //! inconsistent or non-finite.
    static detector from_safetensors(const data::safetensors_file& f, const std::string& what) {
        auto meta = [&](const std::string& k) -> const std::string& {
            const auto it = f.metadata.find(k);
            if (it == f.metadata.end()) throw io_error(what + ": not a shiftnorm spectral detector (metadata '" + k + "' missing)");
            return it->second;
        };
        if (meta("shiftnorm.kind") != "spectral_detector")
            throw io_error(what + ": metadata shiftnorm.kind is '" + meta("shiftnorm.kind") + "', expected spectral_detector");
        auto integer = [&](const std::string& k) {
            const std::string& v = meta(k);
            if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos)
                throw io_error(what + ": metadata '" + k + "' = '" + v + "' is not a positive integer");
            return index_t(std::stoll(v));
        };
        detector_options o;
        const auto hidden = split(meta("hidden"));
        if (hidden.size() != 2) throw io_error(what + ": metadata 'hidden' = '" + meta("hidden") + "' must hold two widths");
        for (std::size_t i = 0; i < 2; ++i) {
            if (hidden[i].empty() || hidden[i].size() > 9 || hidden[i].find_first_not_of("0123456789") != std::string::npos)
                throw io_error(what + ": metadata 'hidden' = '" + meta("hidden") + "' must hold two positive integers");
            o.hidden[i] = index_t(std::stoll(hidden[i]));
        }
        o.standardize = f.contains("input.mean");
        o.spectrum.gray = meta("spectrum.gray") == "1";
        o.spectrum.shift = meta("spectrum.shift") == "1";
        o.spectrum.half = meta("spectrum.half") == "1";
        const std::string& sc = meta("spectrum.scale");
        if (sc != "raw" && sc != "log") throw io_error(what + ": metadata spectrum.scale = '" + sc + "', expected log or raw");
        o.spectrum.scale = sc == "raw" ? scaling::raw : scaling::log_normalized;
        try {
            std::size_t used = 0;
            o.spectrum.eps = std::stod(meta("spectrum.eps"), &used);
        } catch (const std::exception&) {
            throw io_error(what + ": metadata spectrum.eps = '" + meta("spectrum.eps") + "' is not a number");
        }
        std::vector<std::string> classes = split(meta("classes"));
        try {
            detector d(integer("channels"), integer("height"), integer("width"), classes, o);
            auto ps = d.net_.parameters();
            for (auto& p : ps.params) {
                if (!f.contains(p.name)) throw io_error(what + ": tensor '" + p.name + "' missing");
                const auto& t = f.at(p.name);
                if (t.shape != p.shape)
                    throw io_error(shiftnorm::detail::concat(what, ": tensor '", p.name, "' has ", t.numel(),
                                                             " elements in another shape than the detector's"));
                const auto v = t.to_float(p.name);
                for (float x : v)
                    if (!std::isfinite(x)) throw io_error(what + ": tensor '" + p.name + "' holds a non-finite value");
                std::copy(v.begin(), v.end(), p.value);
            }
            std::size_t expected = ps.params.size();
            if (o.standardize) {
                if (!f.contains("input.std")) throw io_error(what + ": tensor 'input.mean' without 'input.std'");
                d.in_mean_ = f.at("input.mean").to_float("input.mean");
                d.in_std_ = f.at("input.std").to_float("input.std");
                if (index_t(d.in_mean_.size()) != d.feature_size() || index_t(d.in_std_.size()) != d.feature_size())
                    throw io_error(shiftnorm::detail::concat(what, ": the standardization holds ", d.in_mean_.size(), " / ",
                                                             d.in_std_.size(), " features, the spectrum has ", d.feature_size()));
                for (std::size_t j = 0; j < d.in_std_.size(); ++j)
                    if (!std::isfinite(d.in_mean_[j]) || !(d.in_std_[j] > 0) || !std::isfinite(d.in_std_[j]))
                        throw io_error(what + ": the standardization holds a non-finite mean or a non-positive std");
                expected += 2;
            }
            if (f.tensors.size() != expected)
                throw io_error(shiftnorm::detail::concat(what, ": ", f.tensors.size(), " tensors, the detector has ", expected));
            return d;
        } catch (const io_error&) {
            throw;
        } catch (const std::exception& e) {
            throw io_error(what + ": " + e.what());
        }
    }
    static detector load(const std::string& path) { return from_safetensors(data::read_safetensors(path), path); }

    static std::string join(const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
        return s;
    }
    static std::vector<std::string> split(const std::string& s) {
        std::vector<std::string> out;
        std::stringstream ss(s);
        for (std::string t; std::getline(ss, t, ',');) out.push_back(t);
        return out;
    }

private:
    spectrum spec_;
    std::vector<std::string> classes_;
    detector_options opt_;
    nn::sequential net_;
    std::vector<float> in_mean_, in_std_;
};

namespace detail {
//! A permutation of [0, n) from the project's generator (Fisher-Yates).
inline std::vector<index_t> permutation(index_t n, std::uint64_t seed) {
    std::vector<index_t> idx(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) idx[std::size_t(i)] = i;
    random_engine g(seed);
    for (index_t i = n - 1; i > 0; --i) std::swap(idx[std::size_t(i)], idx[std::size_t(g.randint(0, i + 1))]);
    return idx;
}
}  // namespace detail

//! Knobs of train_detector (SGD with momentum, cosine learning-rate decay to 0, seeded).
struct detector_train_options {
    int epochs = 30;
    index_t batch = 128;
    double lr = 0.05;
    double momentum = 0.9;
    double weight_decay = 5e-4;
    std::uint64_t seed = 0;  //!< initial weights and the order of the examples
    //! Optional: called after each epoch with (epoch 1-based, mean training loss, training accuracy).
    std::function<void(int, double, double)> progress;
};

//! Trains `d` from scratch on n feature rows (n x d.feature_size(), from d.compute_features)
//! with labels in [0, d.num_classes()): mean softmax cross-entropy, SGD. Returns the last
//! epoch's training accuracy. Deterministic for a fixed seed and thread count.
inline double train_detector(detector& d, const std::vector<float>& features, const std::vector<std::int32_t>& labels,
                             const detector_train_options& o) {
    const index_t D = d.feature_size(), n = index_t(labels.size());
    if (n < 1) shiftnorm::detail::fail("train_detector", "examples", ">= 1", n);
    if (index_t(features.size()) != n * D)
        shiftnorm::detail::fail<shape_error>("train_detector", "features", shiftnorm::detail::concat(n, " x ", D), features.size());
    if (o.epochs < 1) shiftnorm::detail::fail("train_detector", "epochs", ">= 1", o.epochs);
    if (o.batch < 1) shiftnorm::detail::fail("train_detector", "batch", ">= 1", o.batch);
    if (!(o.lr > 0) || !std::isfinite(o.lr)) shiftnorm::detail::fail("train_detector", "lr", "finite and > 0", o.lr);
    for (auto y : labels)
        if (y < 0 || y >= d.num_classes())
            shiftnorm::detail::fail("train_detector", "label", shiftnorm::detail::concat("in [0, ", d.num_classes(), ")"), y);
    for (float v : features)
        if (!std::isfinite(v)) throw value_error("train_detector: a feature is NaN or Inf");
    d.reset_parameters(o.seed);
    d.fit_standardization(features.data(), n);
    auto& net = d.network();
    train::sgd_options so;
    so.momentum = o.momentum, so.weight_decay = o.weight_decay;
    train::sgd opt(net.parameters(), so);
    nn::softmax_cross_entropy ce;
    tensor<float> x;
    std::vector<std::int32_t> y;
    const long long total_steps = (long long)o.epochs * ((n + o.batch - 1) / o.batch);
    long long step = 0;
    double acc = 0;
    for (int e = 1; e <= o.epochs; ++e) {
        const auto order = detail::permutation(n, o.seed ^ (std::uint64_t(e) << 32));
        double loss_sum = 0;
        index_t correct = 0;
        for (index_t b = 0; b < n; b += o.batch) {
            const index_t m = std::min(o.batch, n - b);
            x = tensor<float>(shape4{m, D, 1, 1});
            y.resize(std::size_t(m));
            for (index_t i = 0; i < m; ++i) {
                const index_t j = order[std::size_t(b + i)];
                d.standardize_rows(features.data() + j * D, 1, x.data() + i * D);
                y[std::size_t(i)] = labels[std::size_t(j)];
            }
            const auto& z = net.forward(x, nn::mode::train);
            loss_sum += ce.forward(z, y) * double(m);
            correct += nn::count_correct(z, y);
            net.zero_grad();
            net.backward(ce.backward());
            const double lr = 0.5 * o.lr * (1.0 + std::cos(3.141592653589793 * double(step) / double(total_steps)));
            opt.step(lr);
            ++step;
        }
        acc = double(correct) / double(n);
        if (!std::isfinite(loss_sum)) throw value_error("train_detector: the loss diverged (lower lr)");
        if (o.progress) o.progress(e, loss_sum / double(n), acc);
    }
    return acc;
}


//! How a batch's detection becomes one decision.
enum class decision_rule {
    mean_probability,  //!< argmax of the mean of the images' probabilities (confidence: that mean)
    vote,              //!< the most frequent per-image argmax (confidence: its share of the batch)
};

//! A detection: the class chosen, its confidence, and whether the confidence fell below the
//! threshold (then the caller falls back to the source statistics: open set).
struct decision {
    int cls = -1;
    double confidence = 0;
    bool fallback = false;
};

//! One decision for n images from their probabilities (n x k). Ties go to the lower class index.
inline decision decide_batch(const float* probs, index_t n, index_t k, double threshold = 0.0,
                             decision_rule rule = decision_rule::mean_probability) {
    if (n < 1 || k < 1) shiftnorm::detail::fail<shape_error>("decide_batch", "probabilities", "n >= 1, k >= 1", n * k);
    std::vector<double> score(std::size_t(k), 0.0);
    for (index_t i = 0; i < n; ++i) {
        const float* p = probs + i * k;
        if (rule == decision_rule::mean_probability) {
            for (index_t j = 0; j < k; ++j) score[std::size_t(j)] += double(p[j]);
        } else {
            score[std::size_t(std::max_element(p, p + k) - p)] += 1.0;
        }
    }
    decision d;
    d.cls = int(std::max_element(score.begin(), score.end()) - score.begin());
    d.confidence = score[std::size_t(d.cls)] / double(n);
    d.fallback = d.confidence < threshold;
    return d;
}

//! One decision per image (the per-image mode: a batch is then split by detected class).
inline std::vector<decision> decide_images(const float* probs, index_t n, index_t k, double threshold = 0.0) {
    std::vector<decision> out(static_cast<std::size_t>(n));
    for (index_t i = 0; i < n; ++i) out[std::size_t(i)] = decide_batch(probs + i * k, 1, k, threshold);
    return out;
}

}  // namespace shiftnorm::spectral
