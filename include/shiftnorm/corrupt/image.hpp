// SPDX-License-Identifier: MIT
// uint8 HWC image views, an owning image, batch views, and the float work image corruptions compute in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/scratch.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt {

//! Non-owning view of one contiguous uint8 image in HWC order (row-major, channels interleaved).
//! T is `std::uint8_t` or `const std::uint8_t`.
template <class T>
struct basic_image_view {
    T* data = nullptr;
    int height = 0;
    int width = 0;
    int channels = 0;

    std::size_t size() const {
        return static_cast<std::size_t>(height) * static_cast<std::size_t>(width) * static_cast<std::size_t>(channels);
    }
    bool empty() const { return height <= 0 || width <= 0 || channels <= 0 || data == nullptr; }
    T& operator()(int y, int x, int c) const {
        return data[(static_cast<std::size_t>(y) * width + x) * channels + c];
    }
    //! A view of T converts to a view of const T.
    operator basic_image_view<const std::uint8_t>() const { return {data, height, width, channels}; }
};
using image_view = basic_image_view<std::uint8_t>;
using const_image_view = basic_image_view<const std::uint8_t>;

//! Owning uint8 HWC image.
class image {
public:
    image() = default;
    image(int height, int width, int channels, std::uint8_t fill = 0)
        : h_(height), w_(width), c_(channels),
          px_(static_cast<std::size_t>(height) * width * channels, fill) {}
    image(const_image_view v) : h_(v.height), w_(v.width), c_(v.channels), px_(v.data, v.data + v.size()) {}

    int height() const { return h_; }
    int width() const { return w_; }
    int channels() const { return c_; }
    std::size_t size() const { return px_.size(); }
    std::uint8_t* data() { return px_.data(); }
    const std::uint8_t* data() const { return px_.data(); }
    image_view view() { return {px_.data(), h_, w_, c_}; }
    const_image_view view() const { return {px_.data(), h_, w_, c_}; }
    operator const_image_view() const { return view(); }
    std::uint8_t& operator()(int y, int x, int c) { return px_[(static_cast<std::size_t>(y) * w_ + x) * c_ + c]; }
    std::uint8_t operator()(int y, int x, int c) const { return px_[(static_cast<std::size_t>(y) * w_ + x) * c_ + c]; }

private:
    int h_ = 0, w_ = 0, c_ = 0;
    std::vector<std::uint8_t> px_;
};

//! Non-owning view of N contiguous images of equal shape, NHWC (the layout of CIFAR-10-C .npy files).
template <class T>
struct basic_batch_view {
    T* data = nullptr;
    std::size_t count = 0;
    int height = 0;
    int width = 0;
    int channels = 0;

    std::size_t image_size() const { return static_cast<std::size_t>(height) * width * channels; }
    basic_image_view<T> operator[](std::size_t i) const { return {data + i * image_size(), height, width, channels}; }
};
using batch_view = basic_batch_view<std::uint8_t>;
using const_batch_view = basic_batch_view<const std::uint8_t>;

namespace detail {

// Error helpers of the core, visible as corrupt::detail::fail / concat.
using shiftnorm::detail::concat;
using shiftnorm::detail::fail;

//! Float work image, HWC, values in [0,1] units (or 0-255 where a function says so). Double
//! precision because the reference computes in float64 and truncates to uint8 at the end: a
//! float32 path would flip the truncation of many pixels.
struct fimage {
    int h = 0, w = 0, c = 0;
    scratch_vector<double> px;  //!< reused across calls (scratch_allocator)

    fimage() = default;
    fimage(int h_, int w_, int c_, double fill = 0.0)
        : h(h_), w(w_), c(c_), px(static_cast<std::size_t>(h_) * w_ * c_, fill) {}
    double& operator()(int y, int x, int ch) { return px[(static_cast<std::size_t>(y) * w + x) * c + ch]; }
    double operator()(int y, int x, int ch) const { return px[(static_cast<std::size_t>(y) * w + x) * c + ch]; }
    std::size_t size() const { return px.size(); }
};

//! Validates a (src, dst) pair: non-empty, 1 or 3 channels, equal shapes. Throws shape_error
//! naming the argument, the expected and the actual value.
inline void check_pair(const char* where, const_image_view src, image_view dst) {
    if (src.data == nullptr || src.height <= 0 || src.width <= 0)
        fail<shape_error>(where, "src", "a non-empty image", concat(src.height, "x", src.width, "x", src.channels));
    if (src.channels != 1 && src.channels != 3) fail<shape_error>(where, "src.channels", "1 or 3", src.channels);
    if (dst.data == nullptr || dst.height != src.height || dst.width != src.width || dst.channels != src.channels)
        fail<shape_error>(where, "dst", concat(src.height, "x", src.width, "x", src.channels),
                          concat(dst.height, "x", dst.width, "x", dst.channels));
}

//! double(b) / 255.0 for a byte value b (0-255) without a division: b hi + b lo, with hi = 1 / 255
//! truncated after 44 bits (0x1.0101010101p-8: 41 significant bits, so b hi is exact) and
//! lo = 1 / 255 - hi rounded
//! (0x1.010101010101p-56); the sum rounds to the correctly rounded quotient for every byte
//! (tests/corrupt/test_rounding.cpp checks all 256), so the bits are those of the division.
//! Two multiplications and an addition pipeline where a division waits for the divider (eight
//! lanes of vdivpd every ~10 cycles on Zen 4): the byte-to-unit step of the final blends.
SHIFTNORM_KERNEL_BODY double byte_unit(double b) { return b * 0x1.0101010101p-8 + b * 0x1.010101010101p-56; }

//! uint8 -> double divided by 255 (numpy `np.array(x) / 255.`; byte_unit).
inline fimage to_unit(const_image_view src) {
    fimage f(src.height, src.width, src.channels);
    for (std::size_t i = 0; i < f.size(); ++i) f.px[i] = byte_unit(src.data[i]);
    return f;
}

//! v[i] = float32(v[i] * scale) for n values (NumPy float32 steps kept in a float64 array;
//! never inlined, SLP vectorizer off: kernel_attributes.hpp).
SHIFTNORM_FP_EXACT_NO_SLP inline void round_float32(double* v, std::size_t n, double scale) {
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] * scale);
}

//! Truncating uint8 conversion of a value in 0-255 units (numpy `np.uint8(float)` after clipping).
inline std::uint8_t trunc_u8(double v) {
    if (!(v > 0.0)) return 0;  // also maps NaN to 0
    if (v >= 255.0) return 255;
    return static_cast<std::uint8_t>(v);
}

//! The reference's final step for one value: `np.uint8(np.clip(v, 0, 1) * 255)`, NaN -> 0 (as
//! trunc_u8). Branch-free, so loops over it vectorize; FP_EXACT like its callers, so it inlines
//! into them (GCC inlines no function across differing optimize attributes).
SHIFTNORM_KERNEL_BODY std::uint8_t unit_to_u8(double v) {
    v = v > 0.0 ? v : 0.0;
    v = v < 1.0 ? v : 1.0;
    return static_cast<std::uint8_t>(static_cast<int>(v * 255.0));
}

//! d[i] = unit_to_u8(v[i]) for n values; with `add`, of x[i] / 255 + add[i] (the image in [0, 1]
//! plus a layer, numpy's order). One body, a plain and an AVX-512 build (kernel_attributes.hpp).
SHIFTNORM_KERNEL_BODY void store_unit_body(const double* v, const std::uint8_t* x, const double* add, std::uint8_t* d,
                                           std::size_t n) {
    if (add)
        for (std::size_t i = 0; i < n; ++i) d[i] = unit_to_u8(byte_unit(x[i]) + add[i]);
    else
        for (std::size_t i = 0; i < n; ++i) d[i] = unit_to_u8(v[i]);
}
SHIFTNORM_FP_EXACT inline void store_unit_plain(const double* v, const std::uint8_t* x, const double* add,
                                                std::uint8_t* d, std::size_t n) {
    store_unit_body(v, x, add, d, n);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void store_unit_avx512(const double* v, const std::uint8_t* x,
                                                                   const double* add, std::uint8_t* d, std::size_t n) {
    store_unit_body(v, x, add, d, n);
}
#endif
//! store_unit_body on the fastest kernel this CPU has (the same bytes on every CPU).
inline void store_unit_values(const double* v, const std::uint8_t* x, const double* add, std::uint8_t* d,
                              std::size_t n) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return store_unit_avx512(v, x, add, d, n);
#endif
    store_unit_plain(v, x, add, d, n);
}

//! The reference's final step: `np.uint8(np.clip(x, 0, 1) * 255)`.
inline void store_unit(const fimage& f, image_view dst) { store_unit_values(f.px.data(), nullptr, nullptr, dst.data, f.size()); }

//! `np.uint8(np.clip(x, 0, 255))` for a work image in 0-255 units.
inline void store_255(const fimage& f, image_view dst) {
    for (std::size_t i = 0; i < f.size(); ++i) dst.data[i] = trunc_u8(f.px[i]);
}

}  // namespace detail
}  // namespace shiftnorm::corrupt

SHIFTNORM_FP_EXACT_END
