// SPDX-License-Identifier: MIT
// Walking a network's module tree: visit every module, or collect the layers of one type.
#pragma once

#include <functional>
#include <vector>

#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! Calls f on `root` and on every module below it, depth first, in registration order (the
//! order of the architecture: front layers first).
inline void for_each_module(module& root, const std::function<void(module&)>& f) {
    f(root);
    root.for_each_child([&](module& child) { for_each_module(child, f); });
}

//! Every module of dynamic type M in the tree, front to back. E.g. all rectifiable BN layers:
//! `find_all<norm_layer<batch_norm<rectified>>>(net)`.
template <class M>
std::vector<M*> find_all(module& root) {
    std::vector<M*> out;
    for_each_module(root, [&](module& m) {
        if (auto* p = dynamic_cast<M*>(&m)) out.push_back(p);
    });
    return out;
}

}  // namespace shiftnorm::nn
