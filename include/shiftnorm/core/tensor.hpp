// SPDX-License-Identifier: MIT
// Owning NCHW tensor and non-owning view (shape, strides, checked access in debug builds).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

#include "shiftnorm/config.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/shape.hpp"

namespace shiftnorm {

//! Non-owning view of an NCHW tensor. Strides are in elements; most kernels require a
//! contiguous view (is_contiguous()) and say so. T may be const-qualified.
//! Element access with operator() is bounds-checked when SHIFTNORM_CHECKED is 1.
template <class T>
class tensor_view {
public:
    using value_type = std::remove_const_t<T>;

    tensor_view() = default;
    tensor_view(T* data, shape4 shape) : data_(data), shape_(shape), strides_(strides4::contiguous(shape)) {
        check_shape(shape);
    }
    tensor_view(T* data, shape4 shape, strides4 strides) : data_(data), shape_(shape), strides_(strides) {
        check_shape(shape);
    }
    //! A view of T converts to a view of const T.
    template <class U, class = std::enable_if_t<std::is_same_v<const U, T> && !std::is_same_v<U, T>>>
    tensor_view(const tensor_view<U>& o) : data_(o.data()), shape_(o.shape()), strides_(o.strides()) {}

    T* data() const { return data_; }
    const shape4& shape() const { return shape_; }
    const strides4& strides() const { return strides_; }
    index_t numel() const { return shape_.numel(); }
    bool empty() const { return shape_.empty(); }
    bool is_contiguous() const { return strides_ == strides4::contiguous(shape_); }

    T& operator()(index_t n, index_t c, index_t h, index_t w) const {
#if SHIFTNORM_CHECKED
        return at(n, c, h, w);
#else
        return data_[n * strides_.n + c * strides_.c + h * strides_.h + w * strides_.w];
#endif
    }
    //! Always bounds-checked access; throws shape_error naming the offending index.
    T& at(index_t n, index_t c, index_t h, index_t w) const {
        check_index("n", n, shape_.n);
        check_index("c", c, shape_.c);
        check_index("h", h, shape_.h);
        check_index("w", w, shape_.w);
        return data_[n * strides_.n + c * strides_.c + h * strides_.h + w * strides_.w];
    }
    //! Pointer to the plane (n, c) of a contiguous view.
    T* plane(index_t n, index_t c) const { return data_ + n * strides_.n + c * strides_.c; }

private:
    static void check_shape(const shape4& s) {
        if (!s.valid()) detail::fail<shape_error>("tensor_view", "shape", "non-negative extents", s);
    }
    static void check_index(const char* axis, index_t i, index_t extent) {
        if (i < 0 || i >= extent)
            throw shape_error(detail::concat("tensor_view::at: index '", axis, "' expected in [0, ", extent,
                                             "), got ", i));
    }

    T* data_ = nullptr;
    shape4 shape_{};
    strides4 strides_{};
};

namespace detail {
//! 64-byte aligned deleter/allocator for tensor storage (one cache line, one AVX-512 vector).
struct aligned_free {
    void operator()(void* p) const noexcept { std::free(p); }
};
template <class T>
T* aligned_alloc_array(std::size_t count) {
    if (count == 0) return nullptr;
    if (count > (std::size_t(-1) - 63) / sizeof(T)) throw std::bad_alloc();
    std::size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
}
}  // namespace detail

//! Owning, contiguous, 64-byte aligned NCHW tensor of trivially copyable T.
template <class T>
class tensor {
    static_assert(std::is_trivially_copyable_v<T>, "tensor<T> requires a trivially copyable T");

public:
    using value_type = T;

    tensor() = default;
    //! Uninitialised storage for `shape` (use fill() or tensor(shape, value) to initialise).
    explicit tensor(shape4 shape) : shape_(shape) {
        if (!shape.valid()) detail::fail<shape_error>("tensor", "shape", "non-negative extents", shape);
        data_.reset(detail::aligned_alloc_array<T>(static_cast<std::size_t>(shape.numel())));
        capacity_ = shape.numel();
    }
    tensor(shape4 shape, T value) : tensor(shape) { fill(value); }
    tensor(const tensor& o) : tensor(o.shape_) { std::copy_n(o.data(), o.numel(), data()); }
    tensor(tensor&& o) noexcept : data_(std::move(o.data_)), shape_(o.shape_), capacity_(o.capacity_) {
        o.shape_ = {};
        o.capacity_ = 0;
    }
    tensor& operator=(const tensor& o) {
        if (this != &o) {
            tensor t(o);
            *this = std::move(t);
        }
        return *this;
    }
    tensor& operator=(tensor&& o) noexcept {
        data_ = std::move(o.data_);
        shape_ = o.shape_;
        capacity_ = o.capacity_;
        o.shape_ = {};
        o.capacity_ = 0;
        return *this;
    }

    //! Deep copy of a (possibly strided) view.
    template <class U>
    static tensor from(const tensor_view<U>& v) {
        tensor t(v.shape());
        auto dst = t.view();
        for (index_t n = 0; n < v.shape().n; ++n)
            for (index_t c = 0; c < v.shape().c; ++c)
                for (index_t h = 0; h < v.shape().h; ++h)
                    for (index_t w = 0; w < v.shape().w; ++w) dst(n, c, h, w) = static_cast<T>(v(n, c, h, w));
        return t;
    }

    T* data() { return data_.get(); }
    const T* data() const { return data_.get(); }
    const shape4& shape() const { return shape_; }
    index_t numel() const { return shape_.numel(); }
    bool empty() const { return shape_.empty(); }
    std::size_t size() const { return std::size_t(numel()); }
    T* begin() { return data(); }
    T* end() { return data() + numel(); }
    const T* begin() const { return data(); }
    const T* end() const { return data() + numel(); }

    tensor_view<T> view() { return {data(), shape_}; }
    tensor_view<const T> view() const { return {data(), shape_}; }
    operator tensor_view<T>() { return view(); }
    operator tensor_view<const T>() const { return view(); }

    T& operator()(index_t n, index_t c, index_t h, index_t w) { return view()(n, c, h, w); }
    const T& operator()(index_t n, index_t c, index_t h, index_t w) const { return view()(n, c, h, w); }
    T& operator[](index_t i) { return data()[i]; }
    const T& operator[](index_t i) const { return data()[i]; }

    void fill(T value) { std::fill_n(data(), numel(), value); }
    //! Reinterprets the same elements under a new shape with equal element count.
    void reshape(shape4 s) {
        if (s.numel() != numel())
            detail::fail<shape_error>("tensor::reshape", "shape", detail::concat(numel(), " elements"),
                                      detail::concat(s, " (", s.numel(), " elements)"));
        shape_ = s;
    }
    //! Gives the tensor shape `s`, keeping its storage when it holds at least s.numel() elements
    //! (no allocation: the layers' outputs keep their buffers when a smaller or equal batch
    //! follows a larger one); the elements are unspecified afterwards.
    void resize(shape4 s) {
        if (!s.valid()) detail::fail<shape_error>("tensor::resize", "shape", "non-negative extents", s);
        if (data_ && s.numel() <= capacity_) {
            shape_ = s;
            return;
        }
        *this = tensor(s);
    }
    //! Elements the storage holds (>= numel()).
    index_t capacity() const { return capacity_; }

private:
    std::unique_ptr<T[], detail::aligned_free> data_;
    shape4 shape_{};
    index_t capacity_ = 0;
};

}  // namespace shiftnorm
