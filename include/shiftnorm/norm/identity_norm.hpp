// SPDX-License-Identifier: MIT
// The absence of normalization as a layer type: networks built "without normalization" (seed 003, Table 3).
#pragma once

#include <algorithm>
#include <vector>

#include "shiftnorm/core/checks.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/norm/layer_concept.hpp"

namespace shiftnorm {

//! dst = src, no parameters, no statistics: plugs into any network template in place of a
//! normalization layer, so "no normalization" is the same architecture minus the normalization
//! (the convolution biases stay as the architecture has them). Group-norm-like interface
//! (forward / backward, one mode).
class identity_norm {
public:
    identity_norm() = default;
    explicit identity_norm(index_t channels) : channels_(channels) {
        if (channels <= 0) detail::fail<shape_error>("identity_norm", "channels", "> 0", channels);
    }
    index_t channels() const { return channels_; }
    void zero_grad() {}

    // The normalization-layer concept (norm/layer_concept.hpp): no knobs, no state.
    static constexpr norm_interface kind = norm_interface::per_sample;
    static constexpr norm_modes modes{};
    static constexpr bool grouped = false;
    void configure(const norm_config& cfg) {
        check_norm_config(cfg);
        detail::reject_reference_bn(cfg, "identity_norm");
    }
    template <class V>
    void visit_state(V&&) {}

    void forward(const tensor_view<const float>& src, const tensor_view<float>& dst) {
        detail::check_norm_io("identity_norm::forward", src, dst, channels_);
        std::copy_n(src.data(), src.shape().numel(), dst.data());
    }
    void backward(const tensor_view<const float>& src, const tensor_view<const float>& diff_dst,
                  const tensor_view<float>& diff_src) {
        detail::check_same_shape("identity_norm::backward", "diff_dst", src, diff_dst);
        detail::check_same_shape("identity_norm::backward", "diff_src", src, diff_src);
        std::copy_n(diff_dst.data(), src.shape().numel(), diff_src.data());
    }

private:
    index_t channels_ = 0;
};

}  // namespace shiftnorm
