// SPDX-License-Identifier: MIT
// The per-channel scale / shift parameters and their gradients, shared by every normalization layer.
#pragma once

#include <algorithm>
#include <vector>

#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/norm/layer_concept.hpp"

namespace shiftnorm {

//! gamma (`scale`) and beta (`shift`) of a normalization layer, size C, with their accumulated
//! gradients; the layers derive from it, so `layer.scale` etc. are their members.
template <class Stat>
struct affine_params {
    std::vector<Stat> scale, shift;            //!< gamma = 1, beta = 0 after init_affine
    std::vector<Stat> diff_scale, diff_shift;  //!< accumulated gradients (zero_grad clears them)

    //! C channels: gamma 1, beta 0, zero gradients.
    void init_affine(index_t channels) {
        const auto C = std::size_t(channels);
        scale.assign(C, Stat(1));
        shift.assign(C, Stat(0));
        diff_scale.assign(C, Stat(0));
        diff_shift.assign(C, Stat(0));
    }
    void zero_grad() {
        std::fill(diff_scale.begin(), diff_scale.end(), Stat(0));
        std::fill(diff_shift.begin(), diff_shift.end(), Stat(0));
    }
    //! PyTorch's `weight` and `bias` for the layer concept's visit_state (nothing when empty).
    template <class V>
    void visit_affine(V& v) {
        if (scale.empty()) return;
        const auto C = index_t(scale.size());
        v.tensor("weight", scale.data(), diff_scale.data(), C, state_role::weight);
        v.tensor("bias", shift.data(), diff_shift.data(), C, state_role::bias);
    }
};

}  // namespace shiftnorm
