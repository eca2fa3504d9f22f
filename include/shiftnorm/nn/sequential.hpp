// SPDX-License-Identifier: MIT
// Sequential composition of named modules, the backbone of every reference network.
#pragma once

#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! A chain of modules: dst = f_k(... f_1(src)). Children are named like PyTorch submodules
//! ("conv1", "layer1", "0"); a child added with an empty name contributes its parameters
//! directly under this module's prefix (a flattened group, e.g. a block's post-add ReLU).
//! Cost: the sum of the children; no copies between them (each reads its predecessor's dst).
class sequential : public module {
public:
    sequential() = default;
    sequential(sequential&&) = default;
    sequential& operator=(sequential&&) = default;

    //! Appends a module under `name`; returns *this so that a network reads like its table.
    template <class M>
    sequential& add(std::string name, M&& m) {
        module_ptr p = boxed(std::forward<M>(m));
        if (!p) shiftnorm::detail::fail("sequential::add", "module", "a non-null module", "nullptr");
        children_.emplace_back(std::move(name), std::move(p));
        return *this;
    }
    //! Appends under the next integer name ("0", "1", ... as in nn.Sequential).
    template <class M>
    sequential& add(M&& m) {
        return add(std::to_string(children_.size()), std::forward<M>(m));
    }

    std::size_t size() const { return children_.size(); }
    void for_each_child(const std::function<void(module&)>& f) override {
        for (auto& c : children_) f(*c.second);
    }
    bool empty() const { return children_.empty(); }
    module& operator[](std::size_t i) { return *children_.at(i).second; }
    const std::string& name_of(std::size_t i) const { return children_.at(i).first; }

    shape4 output_shape(const shape4& src) const override {
        shape4 s = src;
        for (const auto& c : children_) s = c.second->output_shape(s);
        return s;
    }

    //! mode::train: a child that takes a ReLU after it (module::takes_train_relu: batch norm on
    //! a CPU schedule) runs the nn::relu that follows it inside its own passes, and that ReLU is
    //! skipped in forward and backward (same bits, two passes fewer). Eval mode with inference
    //! fusion: forward_fused. Other modes: the children one by one.
    const tensor<float>& forward(const tensor<float>& src, mode m) override {
        fused_ = false;
        skipped_.assign(children_.size(), 0);
        if (children_.empty()) return src;
        if (fusion_ && m == mode::eval) return forward_fused(src, m);
        return forward_walk(src, m, nullptr, nullptr);
    }

    //! A residual's body in training (mode::train, the walk of forward) with the residual's add
    //! (`add`, of the output's shape) and the ReLU after it run by the last child when it takes
    //! them (module::takes_train_add_relu): `applied` tells whether it did (false: the plain
    //! result, the caller adds). Same bits either way.
    const tensor<float>& forward_train_tail(const tensor<float>& src, const tensor<float>& add, bool& applied) {
        applied = false;
        fused_ = false;
        skipped_.assign(children_.size(), 0);
        if (children_.empty()) return src;
        return forward_walk(src, mode::train, &add, &applied);
    }

    //! Inference fusion on or off for this container and its subtree (module::set_inference_fusion).
    void set_inference_fusion(bool on) override {
        fusion_ = on;
        module::set_inference_fusion(on);
    }

    //! Index of the child named `name` (size() when there is none).
    std::size_t index_of(const std::string& name) const {
        for (std::size_t i = 0; i < children_.size(); ++i)
            if (children_[i].first == name && !name.empty()) return i;
        return children_.size();
    }

    //! Runs children [begin, end) only: a network split into a front and a head (AdvBN) runs
    //! each part on its own. backward_range must cover the same range as the last forward_range
    //! over it. begin == end returns the input.
    const tensor<float>& forward_range(const tensor<float>& src, mode m, std::size_t begin, std::size_t end) {
        check_range("sequential::forward_range", begin, end);
        skipped_.assign(children_.size(), 0);
        const tensor<float>* x = &src;
        for (std::size_t i = begin; i < end; ++i) x = &children_[i].second->forward(*x, m);
        return *x;
    }
    const tensor<float>& backward_range(const tensor<float>& diff_dst, std::size_t begin, std::size_t end) {
        check_range("sequential::backward_range", begin, end);
        const tensor<float>* d = &diff_dst;
        for (std::size_t i = end; i > begin; --i) d = &children_[i - 1].second->backward(*d);
        return *d;
    }
    shape4 output_shape_range(const shape4& src, std::size_t begin, std::size_t end) const {
        check_range("sequential::output_shape_range", begin, end);
        shape4 s = src;
        for (std::size_t i = begin; i < end; ++i) s = children_[i].second->output_shape(s);
        return s;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        if (fused_)
            throw state_error("sequential::backward: the last forward ran with inference fusion (nn::infer), which "
                              "keeps no state for backward; run net.forward without it before backward");
        if (children_.empty()) return diff_dst;
        return backward_walk(diff_dst, nullptr);
    }

    //! The add goes to the first child (the last to run backward), the others run their plain
    //! backward.
    bool takes_backward_fusion(const backward_fusion& f) const override {
        return !fused_ && !children_.empty() && children_[0].second->takes_backward_fusion(f);
    }
    const tensor<float>& backward_fused(const tensor<float>& diff_dst, const backward_fusion& f) override {
        if (!takes_backward_fusion(f)) return module::backward_fused(diff_dst, f);
        return backward_walk(diff_dst, &f);
    }

    void collect(const std::string& prefix, param_set& out) override {
        for (auto& c : children_) c.second->collect(join_name(prefix, c.first), out);
    }

    void reset_parameters(rng_type& g) override {
        for (auto& c : children_) c.second->reset_parameters(g);
    }

    //! Only the first child needs to know whether the input gradient is wanted.
    void set_input_grad(bool on) override {
        input_grad_ = on;
        if (!children_.empty()) children_.front().second->set_input_grad(on);
    }

    std::string describe() const override { return describe_tree(0); }

    //! Multi-line architecture listing with PyTorch-style child names.
    std::string describe_tree(int indent) const {
        std::ostringstream os;
        os << "sequential(" << children_.size() << ")";
        for (const auto& c : children_) {
            os << '\n' << std::string(std::size_t(indent + 2), ' ') << (c.first.empty() ? "-" : c.first) << ": ";
            if (auto* s = dynamic_cast<const sequential*>(c.second.get()))
                os << s->describe_tree(indent + 2);
            else
                os << c.second->describe();
        }
        return os.str();
    }

private:
    //! The children's backward in reverse order, the ReLUs run inside the layer before them
    //! skipped (that layer masks); with `f`, the first child folds it (backward_fused).
    const tensor<float>& backward_walk(const tensor<float>& diff_dst, const backward_fusion* f) {
        const tensor<float>* d = &diff_dst;
        for (std::size_t i = children_.size(); i-- > 0;) {
            if (i < skipped_.size() && skipped_[i]) continue;
            module& c = *children_[i].second;
            d = i == 0 && f ? &c.backward_fused(*d, *f) : &c.backward(*d);
        }
        return *d;
    }

    //! The children in order; in mode::train a child that takes a ReLU after it (takes_train_relu)
    //! runs the nn::relu that follows it, and with `add` the last child takes the add and ReLU of
    //! forward_train_tail when it can (*applied set then).
    const tensor<float>& forward_walk(const tensor<float>& src, mode m, const tensor<float>* add, bool* applied) {
        const tensor<float>* x = &src;
        const std::size_t n = children_.size();
        for (std::size_t i = 0; i < n; ++i) {
            module& c = *children_[i].second;
            if (m == mode::train && i + 1 < n && dynamic_cast<const relu*>(children_[i + 1].second.get()) &&
                c.takes_train_relu()) {
                x = &c.forward_train_relu(*x);
                skipped_[i + 1] = 1;
                ++i;
                continue;
            }
            if (add && i + 1 == n && c.takes_train_add_relu()) {
                *applied = true;
                return c.forward_train_add_relu(*x, *add);
            }
            x = &c.forward(*x, m);
        }
        return *x;
    }

    //! The eval-mode forward with inference fusion: a child that takes an epilogue
    //! (module::takes_epilogue: conv2d, residual) runs the foldable normalization layer
    //! (module::inference_affine) and / or the ReLU that follow it inside its own pass; the other
    //! children run as usual. With `tail` (a residual's add and ReLU after this sequence), the
    //! last child applies it too when it can (*applied set then). Same bits as the unfused walk.
    const tensor<float>& forward_fused(const tensor<float>& src, mode m, const epilogue* tail = nullptr,
                                       bool* applied = nullptr) {
        const tensor<float>* x = &src;
        const std::size_t n = children_.size();
        for (std::size_t i = 0; i < n; ++i) {
            module& c = *children_[i].second;
            if (!c.takes_epilogue({nullptr, 0, true})) {  // takes none: no layer after it is asked
                x = &c.forward(*x, m);
                continue;
            }
            epilogue e;
            std::size_t next = i + 1;
            if (next < n && children_[next].second->inference_affine(m, coef_)) {
                const epilogue t{coef_.data(), coef_.size(), false};
                if (c.takes_epilogue(t)) e = t, ++next;
            }
            if (next < n && dynamic_cast<const relu*>(children_[next].second.get())) {
                epilogue t = e;
                t.relu = true;
                if (c.takes_epilogue(t)) e = t, ++next;
            }
            bool with_tail = false;
            if (tail && next == n && !e.relu) {
                epilogue t = e;
                t.add = tail->add, t.add_shape = tail->add_shape, t.relu = tail->relu;
                with_tail = c.takes_epilogue(t);
                if (with_tail) e = t;
            }
            if (next == i + 1 && !with_tail) {
                x = &c.forward(*x, m);
                continue;
            }
            x = &c.forward_epilogue(*x, m, e);
            fused_ = true;
            if (with_tail && applied) *applied = true;
            i = next - 1;
        }
        return *x;
    }

public:
    //! A residual's body with the residual's add (tail.add, of the output's shape) and ReLU
    //! (tail.relu) folded into its last layer when inference fusion is on in eval mode and that
    //! layer takes them: `applied` tells whether it did (false: the plain result, the caller adds).
    const tensor<float>& forward_tail(const tensor<float>& src, mode m, const epilogue& tail, bool& applied) {
        applied = false;
        fused_ = false;
        if (!(fusion_ && m == mode::eval) || children_.empty()) return forward(src, m);
        return forward_fused(src, m, &tail, &applied);
    }

private:
    void check_range(const char* where, std::size_t begin, std::size_t end) const {
        if (begin > end || end > children_.size())
            shiftnorm::detail::fail(where, "range", shiftnorm::detail::concat("0 <= begin <= end <= ", children_.size()),
                                    shiftnorm::detail::concat("[", begin, ", ", end, ")"));
    }

    std::vector<std::pair<std::string, module_ptr>> children_;
    bool fusion_ = false;  //!< set_inference_fusion
    bool fused_ = false;   //!< the last forward folded layers (backward refused)
    std::vector<char> skipped_;  //!< children the last training forward ran inside the one before
    std::vector<backend::channel_coef<float>> coef_;  //!< the folded layer's coefficients
};

}  // namespace shiftnorm::nn
