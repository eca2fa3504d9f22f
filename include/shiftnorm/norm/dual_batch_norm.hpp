// SPDX-License-Identifier: MIT
// Dual batch norm: a clean and an auxiliary BN with explicit routing (AdvBN, seed 001).
#pragma once

#include "shiftnorm/norm/batch_norm.hpp"

namespace shiftnorm {

//! Which branch of a dual_batch_norm a call uses.
enum class bn_route { clean, auxiliary };

//! Two batch_norm layers over the same channels: `clean` for natural data and `auxiliary`
//! for adversarially perturbed features (AdvBN trains the head with both; inference on
//! natural or corrupted data uses the clean branch). The route is an explicit argument of
//! every call: nothing is inferred from the data.
template <class Source, class Affine = affine, class Precision = fp32, class Backend = backend::cpu::auto_schedule>
class dual_batch_norm {
public:
    using layer_type = batch_norm<Source, Affine, Precision, Backend>;
    using T = typename layer_type::T;

    layer_type clean, auxiliary;

    dual_batch_norm() = default;
    explicit dual_batch_norm(index_t channels, typename layer_type::options o = {})
        : clean(channels, o), auxiliary(channels, o) {}

    layer_type& branch(bn_route r) { return r == bn_route::clean ? clean : auxiliary; }
    const layer_type& branch(bn_route r) const { return r == bn_route::clean ? clean : auxiliary; }
    index_t channels() const { return clean.channels(); }

    //! Makes the auxiliary branch a copy of the clean one (AdvBN's initialisation).
    void copy_clean_to_auxiliary() { auxiliary = clean; }

    void forward_training(bn_route r, const tensor_view<const T>& src, const tensor_view<T>& dst) {
        branch(r).forward_training(src, dst);
    }
    void forward_inference(bn_route r, const tensor_view<const T>& src, const tensor_view<T>& dst) {
        branch(r).forward_inference(src, dst);
    }
    void backward(bn_route r, const tensor_view<const T>& src, const tensor_view<const T>& diff_dst,
                  const tensor_view<T>& diff_src) {
        branch(r).backward(src, diff_dst, diff_src);
    }
    void backward_inference(bn_route r, const tensor_view<const T>& src, const tensor_view<const T>& diff_dst,
                            const tensor_view<T>& diff_src) {
        branch(r).backward_inference(src, diff_dst, diff_src);
    }
    void zero_grad() {
        clean.zero_grad();
        auxiliary.zero_grad();
    }
};

}  // namespace shiftnorm
