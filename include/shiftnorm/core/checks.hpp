// SPDX-License-Identifier: MIT
// Argument checks shared by the normalization layers (shapes, contiguity, empty tensors).
#pragma once

#include <string>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::detail {

template <class A, class B>
void check_same_shape(const char* where, const char* arg, const tensor_view<A>& ref, const tensor_view<B>& v) {
    if (v.shape() != ref.shape()) fail<shape_error>(where, arg, ref.shape(), v.shape());
    if (!v.is_contiguous()) fail<shape_error>(where, arg, "a contiguous NCHW view", "a strided view");
}

//! src/dst of a normalization layer: same non-empty contiguous shape, C = channels.
template <class A, class B>
void check_norm_io(const char* where, const tensor_view<A>& src, const tensor_view<B>& dst, index_t channels) {
    if (src.empty()) fail<shape_error>(where, "src", "a non-empty tensor", src.shape());
    if (!src.is_contiguous()) fail<shape_error>(where, "src", "a contiguous NCHW view", "a strided view");
    if (src.shape().c != channels) fail<shape_error>(where, "src channels", channels, src.shape().c);
    check_same_shape(where, "dst", src, dst);
    if (src.data() == nullptr) fail<shape_error>(where, "src", "allocated data", "a null pointer");
}

//! Arguments of a normalization layer's backward: a forward call saved what backward needs
//! (`forwarded`, else state_error), src has the forwarded shape, diff_dst and diff_src have
//! src's shape and are contiguous (shape_error naming the argument).
template <class A, class B, class C>
void check_backward_io(const char* where, bool forwarded, const shape4& forwarded_shape, const tensor_view<A>& src,
                       const tensor_view<B>& diff_dst, const tensor_view<C>& diff_src) {
    if (!forwarded) throw state_error(concat(where, ": needs a forward call first"));
    if (src.shape() != forwarded_shape) fail<shape_error>(where, "src", forwarded_shape, src.shape());
    check_same_shape(where, "diff_dst", src, diff_dst);
    check_same_shape(where, "diff_src", src, diff_src);
}

//! nan_policy::raise found non-finite statistics: numeric_error "<where>: <unit> of src has
//! non-finite values (<values>) under nan_policy::raise", the one message of every layer and
//! device (`unit` e.g. "channel 3" or "sample 0 group 2"; `values` may be empty).
[[noreturn]] inline void throw_non_finite(const char* where, const std::string& unit, const std::string& values = {}) {
    throw numeric_error(concat(where, ": ", unit, " of src has non-finite values", values.empty() ? "" : " (" + values + ")",
                               " under nan_policy::raise"));
}

inline void check_reducible(const char* where, index_t count, index_t minimum, const char* what) {
    if (count < minimum) fail<shape_error>(where, what, concat(">= ", minimum), count);
}

}  // namespace shiftnorm::detail
