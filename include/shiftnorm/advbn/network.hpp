// SPDX-License-Identifier: MIT
// A network split at a named stage into a frozen front and a trainable head with auxiliary BNs (AdvBN, seed 001).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/sequential.hpp"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/norm/dual_batch_norm.hpp"

namespace shiftnorm::advbn {

//! Prefix of the auxiliary BN tensors in an AdvBN checkpoint: the auxiliary copy of
//! `layer2.0.bn1.weight` is stored as `advbn_aux.layer2.0.bn1.weight`. The network's usual names
//! hold the clean BNs, so a plain model loads the file after dropping this prefix (the CLI's
//! loaders skip it; PyTorch: `{k: v for k, v in sd.items() if not k.startswith("advbn_aux.")}`).
inline const std::string& aux_prefix() {
    static const std::string p = "advbn_aux.";
    return p;
}

//! The top-level stage names of `net` a split can name (children with a non-empty name).
inline std::string stage_names(const nn::sequential& net) {
    std::string s;
    for (std::size_t i = 0; i < net.size(); ++i)
        if (!net.name_of(i).empty()) s += (s.empty() ? "" : ", ") + net.name_of(i);
    return s;
}

//! A network g = head o front split after the top-level child `split_at` (AdvBN's layer l: the
//! front g_{1..l} ends with that child, e.g. `layer1` of a CIFAR ResNet or of ResNet-50, which
//! is the paper's conv2_3). The front is frozen and always runs in inference mode; the head
//! trains. Every normalization layer of type `Norm` in the head has an AUXILIARY copy
//! (initialised from the clean one) for adversarially perturbed features; which copy the head
//! uses is an explicit route (`route()` / `routed`), never inferred.
//!
//! As a module this is the whole network with the clean BNs (forward/backward run the full
//! chain), and its parameters are the network's under its usual names followed by the
//! auxiliary BNs under aux_prefix(): save_checkpoint / load_checkpoint work on it unchanged.
template <class Norm>
class split_network : public nn::module {
public:
    using layer_type = nn::norm_layer<Norm>;

    //! Takes ownership of `net`. value_error naming the available stages when `split_at` is not
    //! a top-level child, or names the last one (the head would be empty).
    split_network(nn::sequential net, const std::string& split_at) : net_(std::move(net)), split_name_(split_at) {
        const std::size_t i = net_.index_of(split_at);
        if (i >= net_.size())
            throw value_error("advbn: the network has no stage '" + split_at + "' to split at; stages: " + stage_names(net_));
        if (i + 1 >= net_.size())
            throw value_error("advbn: splitting at '" + split_at + "', the last stage, leaves no head to fine-tune");
        head_begin_ = i + 1;
        for (std::size_t k = head_begin_; k < net_.size(); ++k)
            for (auto* l : nn::find_all<layer_type>(net_[k])) clean_.push_back(l);
        if (clean_.empty())
            throw value_error("advbn: the head after '" + split_at + "' has no normalization layer of the network's type");
        // names of the clean layers, from the parameter pointers of the whole network
        const nn::param_set ps = net_.parameters();
        for (auto* l : clean_) {
            const float* key = !l->impl.scale.empty() ? l->impl.scale.data() : nullptr;
            std::string name;
            for (const auto& p : ps.params)
                if (key && p.value == key) name = p.name.substr(0, p.name.size() - std::string(".weight").size());
            if (name.empty()) throw value_error("advbn: a head normalization layer has no affine weight to name it by");
            names_.push_back(name);
        }
        aux_.reserve(clean_.size());
        for (auto* l : clean_) aux_.push_back(std::make_unique<layer_type>(l->channels()));
        copy_clean_to_auxiliary();
    }

    split_network(split_network&&) = delete;  // the layer pointers point into net_

    nn::sequential& network() { return net_; }
    const std::string& split_at() const { return split_name_; }
    //! Index of the first head child in network().
    std::size_t head_begin() const { return head_begin_; }
    //! Names of the head's normalization layers (the clean ones), front to back.
    const std::vector<std::string>& head_norm_names() const { return names_; }
    std::size_t head_norm_count() const { return clean_.size(); }

    //! AdvBN's initialisation: every auxiliary BN becomes a copy of its clean BN (parameters
    //! and running statistics).
    void copy_clean_to_auxiliary() {
        require_clean("copy_clean_to_auxiliary");
        for (std::size_t i = 0; i < clean_.size(); ++i) aux_[i]->impl = clean_[i]->impl;
    }

    //! Which BNs the head runs with. Switching swaps the state of each head layer with its
    //! auxiliary copy (no data are copied; parameter pointers handed out by parameters() keep
    //! pointing at the same tensors). A forward and its backward must run under one route.
    void route(bn_route r) {
        if (r == route_) return;
        for (std::size_t i = 0; i < clean_.size(); ++i) std::swap(clean_[i]->impl, aux_[i]->impl);
        route_ = r;
    }
    bn_route current_route() const { return route_; }

    //! Frozen front in inference mode: the features f of `x` (valid until the next front call).
    const tensor<float>& front(const tensor<float>& x) { return net_.forward_range(x, nn::mode::eval, 0, head_begin_); }
    //! The head on features f in mode `m`, with the BNs of the current route.
    const tensor<float>& head(const tensor<float>& f, nn::mode m) {
        return net_.forward_range(f, m, head_begin_, net_.size());
    }
    //! Backward through the head; returns the gradient with respect to its input when
    //! head_input_grad(true), else an unspecified tensor. Parameter gradients accumulate.
    const tensor<float>& head_backward(const tensor<float>& diff_logits) {
        return net_.backward_range(diff_logits, head_begin_, net_.size());
    }
    void head_input_grad(bool on) { net_[head_begin_].set_input_grad(on); }
    //! Whether head backward passes accumulate parameter gradients (off during the adversary's
    //! search, which needs only the gradient with respect to the features).
    void head_param_grad(bool on) {
        for (std::size_t k = head_begin_; k < net_.size(); ++k) net_[k].set_param_grad(on);
    }
    shape4 feature_shape(const shape4& input) const { return net_.output_shape_range(input, 0, head_begin_); }

    //! The parameters the optimizer trains: the head's (shared convolutions and linear layers,
    //! clean BNs) and, with `auxiliary`, the auxiliary BNs. The front's are left out (frozen).
    nn::param_set head_parameters(bool auxiliary = true) {
        require_clean("head_parameters");
        nn::param_set out;
        for (std::size_t k = head_begin_; k < net_.size(); ++k) net_[k].collect(nn::join_name("", net_.name_of(k)), out);
        if (auxiliary)
            for (std::size_t i = 0; i < aux_.size(); ++i) aux_[i]->collect(aux_prefix() + names_[i], out);
        return out;
    }

    // -- module: the whole network with clean BNs, parameters incl. the auxiliary BNs --
    shape4 output_shape(const shape4& s) const override { return net_.output_shape(s); }
    const tensor<float>& forward(const tensor<float>& src, nn::mode m) override {
        require_clean("forward");
        return net_.forward(src, m);
    }
    const tensor<float>& backward(const tensor<float>& diff_dst) override { return net_.backward(diff_dst); }
    void collect(const std::string& prefix, nn::param_set& out) override {
        require_clean("collect");
        net_.collect(prefix, out);
        for (std::size_t i = 0; i < aux_.size(); ++i) aux_[i]->collect(nn::join_name(prefix, aux_prefix() + names_[i]), out);
    }
    void reset_parameters(nn::rng_type& g) override {
        require_clean("reset_parameters");
        net_.reset_parameters(g);
        copy_clean_to_auxiliary();
    }
    void for_each_child(const std::function<void(module&)>& f) override { f(net_); }
    void set_input_grad(bool on) override {
        input_grad_ = on;
        net_.set_input_grad(on);
    }
    std::string describe() const override {
        return "advbn::split_network(split after " + split_name_ + ", " + std::to_string(clean_.size()) +
               " head normalization layers with auxiliary copies)";
    }

private:
    void require_clean(const char* what) const {
        if (route_ != bn_route::clean)
            throw state_error(std::string("advbn::split_network::") + what +
                              ": called while the head is routed to the auxiliary BNs; route(bn_route::clean) first");
    }

    nn::sequential net_;
    std::string split_name_;
    std::size_t head_begin_ = 0;
    std::vector<layer_type*> clean_;
    std::vector<std::unique_ptr<layer_type>> aux_;
    std::vector<std::string> names_;
    bn_route route_ = bn_route::clean;
};

//! Routes a split_network to `r` for a scope and back to the clean BNs at its end (also when
//! an exception leaves the scope).
template <class Norm>
class routed {
public:
    routed(split_network<Norm>& n, bn_route r) : n_(n) { n_.route(r); }
    ~routed() { n_.route(bn_route::clean); }
    routed(const routed&) = delete;
    routed& operator=(const routed&) = delete;

private:
    split_network<Norm>& n_;
};

}  // namespace shiftnorm::advbn
