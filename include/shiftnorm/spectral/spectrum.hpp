// SPDX-License-Identifier: MIT
// spectrum: log-normalized 2-D FFT magnitude features of images (the corruption detector's input).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include <Eigen/Core>

#include "shiftnorm/config.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/omp.hpp"
#include "shiftnorm/core/shape.hpp"
#include "shiftnorm/spectral/fft.hpp"

namespace shiftnorm::spectral {

//! What a spectrum feature is: log_normalized = log(|F| / (eps n) + 1) (the detector's input in
//! "Dynamic Batch Norm Statistics Update for Natural Robustness"), raw = |F| itself (the paper's
//! ablation).
enum class scaling { log_normalized, raw };

//! Options of spectrum features. Defaults: per-channel, fftshifted, half spectrum, log-normalized.
struct spectrum_options {
    bool gray = false;  //!< false: one spectrum per channel; true: on the luminance 0.299 R + 0.587 G + 0.114 B (1-channel input passes through)
    bool shift = true;  //!< fftshift: zero frequency at the centre (along both axes for full; along rows (h axis) only for half)
    bool half = true;   //!< the R2C half spectrum h x (w/2+1) (loses nothing for real input); false: full h x w (Hermitian mirror)
    scaling scale = scaling::log_normalized;
    double eps = 1e-3;  //!< log(|F| / (eps * n) + 1), n = h * w pixels; must be > 0 and finite
};

//! Throws value_error naming the field when an option is out of its domain (eps <= 0, NaN, inf,
//! an unknown scaling).
inline void validate(const spectrum_options& o) {
    const char* where = "spectral::spectrum_options";
    if (!(o.eps > 0.0) || !std::isfinite(o.eps)) shiftnorm::detail::fail(where, "eps", "a finite value > 0", o.eps);
    if (o.scale != scaling::log_normalized && o.scale != scaling::raw)
        shiftnorm::detail::fail(where, "scale", "scaling::log_normalized or scaling::raw", static_cast<int>(o.scale));
}

namespace detail {

inline void check_spectrum_shape(const char* where, index_t channels, index_t h, index_t w, const spectrum_options& o) {
    if (channels < 1) shiftnorm::detail::fail<shape_error>(where, "channels", ">= 1", channels);
    if (o.gray && channels != 1 && channels != 3)
        shiftnorm::detail::fail<shape_error>(where, "channels", "1 or 3 with gray = true", channels);
    if (h < 1) shiftnorm::detail::fail<shape_error>(where, "h", ">= 1", h);
    if (w < 1) shiftnorm::detail::fail<shape_error>(where, "w", ">= 1", w);
    validate(o);
}
}  // namespace detail

//! Floats per image: (gray ? 1 : channels) * h * (half ? w/2+1 : w). Throws like spectrum's
//! constructor on bad sizes or options.
inline index_t feature_size(index_t channels, index_t h, index_t w, const spectrum_options& o) {
    detail::check_spectrum_shape("spectral::feature_size", channels, h, w, o);
    return (o.gray ? 1 : channels) * h * (o.half ? w / 2 + 1 : w);
}

//! Spectrum features of uint8 NCHW images (the library's dataset layout), pixels scaled to
//! [0, 1] (x / 255). Per plane (each channel, or the luminance when gray): F = the 2-D DFT
//! (fft2_plan), feature = log(|F| / (eps h w) + 1) or |F|, laid out [plane][u][v] in C order
//! with u over h rows (shifted: row i holds frequency u = (i - h/2) mod h, numpy.fft.fftshift)
//! and v over w/2+1 (half) or w (full; shifted like u) columns. Matches
//! numpy.fft.fftshift(numpy.abs(numpy.fft.rfft2(x)), axes=0) etc. to ~1e-6 of the maximum.
//! Thread-safe (const); scratch is thread_local.
class spectrum {
public:
    spectrum(index_t channels, index_t h, index_t w, spectrum_options o = {})
        : channels_(channels), h_(h), w_(w), o_(o), plan_(checked_plan(channels, h, w, o)) {
        size_ = (o.gray ? 1 : channels) * h * (o.half ? w / 2 + 1 : w);
        inv_scale_ = static_cast<float>(1.0 / (o.eps * static_cast<double>(h) * static_cast<double>(w)));
    }

    index_t channels() const { return channels_; }
    index_t height() const { return h_; }
    index_t width() const { return w_; }
    const spectrum_options& options() const { return o_; }
    //! Floats per image: feature_size(channels(), height(), width(), options()).
    index_t size() const { return size_; }

    //! One image (channels*h*w bytes, NCHW) -> size() floats, layout [channel][u][v] C order.
    void operator()(const std::uint8_t* image, float* out) const {
        check_pointers("spectral::spectrum", image, out);
        constexpr float k = 1.0f / 255.0f;
        const index_t n = h_ * w_;
        float* plane = input_scratch();
        if (o_.gray && channels_ == 3) {
            const std::uint8_t* r = image;
            const std::uint8_t* g = image + n;
            const std::uint8_t* b = image + 2 * n;
            for (index_t i = 0; i < n; ++i)
                plane[i] = 0.299f * (static_cast<float>(r[i]) * k) + 0.587f * (static_cast<float>(g[i]) * k) +
                           0.114f * (static_cast<float>(b[i]) * k);
            features(plane, out);
            return;
        }
        for (index_t c = 0; c < channels_; ++c) {
            const std::uint8_t* src = image + c * n;
            for (index_t i = 0; i < n; ++i) plane[i] = static_cast<float>(src[i]) * k;
            features(plane, out + c * plane_size());
        }
    }

    //! The same from float images already in [0, 1] (NCHW, channels*h*w floats).
    void operator()(const float* image, float* out) const {
        check_pointers("spectral::spectrum", image, out);
        const index_t n = h_ * w_;
        if (o_.gray && channels_ == 3) {
            float* plane = input_scratch();
            for (index_t i = 0; i < n; ++i)
                plane[i] = 0.299f * image[i] + 0.587f * image[n + i] + 0.114f * image[2 * n + i];
            features(plane, out);
            return;
        }
        for (index_t c = 0; c < channels_; ++c) features(image + c * n, out + c * plane_size());
    }

    //! n images contiguous (n * channels*h*w bytes) -> n * size() floats. Parallel over images
    //! with OpenMP when available; each image is computed by one thread with the same code, so
    //! the result is bitwise the same for any thread count.
    void batch(const std::uint8_t* images, index_t n, float* out) const {
        const char* where = "spectral::spectrum::batch";
        if (n < 0) shiftnorm::detail::fail<shape_error>(where, "n", ">= 0", n);
        if (n == 0) return;
        check_pointers(where, images, out);
        const index_t in_size = channels_ * h_ * w_, out_size = size_;
        SHIFTNORM_OMP(omp parallel for schedule(static))
        for (index_t i = 0; i < n; ++i) (*this)(images + i * in_size, out + i * out_size);
    }

private:
    //! Checks sizes and options before any allocation; the plan of the checked shape.
    static fft2_plan checked_plan(index_t channels, index_t h, index_t w, const spectrum_options& o) {
        detail::check_spectrum_shape("spectral::spectrum", channels, h, w, o);
        return fft2_plan(h, w);
    }

    index_t plane_size() const { return h_ * (o_.half ? w_ / 2 + 1 : w_); }

    template <class T>
    static void check_pointers(const char* where, const T* image, const float* out) {
        if (image == nullptr) shiftnorm::detail::fail(where, "image", "a non-null pointer", "nullptr");
        if (out == nullptr) shiftnorm::detail::fail(where, "out", "a non-null pointer", "nullptr");
    }

    float* input_scratch() const {
        thread_local std::vector<float> buf;
        const std::size_t need = static_cast<std::size_t>(h_ * w_);
        if (buf.size() < need) buf.resize(need);
        return buf.data();
    }

    //! Features of n bins from split planes: |F| (raw) or log1p(|F| * inv_scale). Eigen's
    //! packet sqrt / log1p keep the loop vectorized (std::sqrt's errno path and the scalar libm
    //! log1p cost ~6x the FFT per bin); accuracy ~1 ulp like libm.
    void bins(const float* re, const float* im, float* dst, index_t n) const {
        const Eigen::Map<const Eigen::ArrayXf> r(re, n), i(im, n);
        Eigen::Map<Eigen::ArrayXf> d(dst, n);
        if (o_.scale == scaling::raw)
            d = (r.square() + i.square()).sqrt();
        else
            d = ((r.square() + i.square()).sqrt() * inv_scale_).log1p();
    }

    //! One plane (h*w floats) -> plane_size() features.
    void features(const float* plane, float* out) const {
        const float* re = nullptr;
        const float* im = nullptr;
        plan_.forward_split(plane, re, im);
        const index_t h = h_, w = w_, hw = w_ / 2 + 1;
        const index_t du = o_.shift ? h / 2 : 0;  // output row of frequency u: (u + du) mod h
        if (o_.half) {
            // the row shift is a rotation: rows [0, h - du) go to [du, h), the rest to [0, du)
            bins(re, im, out + du * hw, (h - du) * hw);
            bins(re + (h - du) * hw, im + (h - du) * hw, out, du * hw);
            return;
        }
        // full: the half spectrum's features, then mirrored: |F(u, v)| for v > w/2 is
        // |F(-u, w - v)| (Hermitian symmetry of a real input)
        thread_local std::vector<float> half;
        if (half.size() < static_cast<std::size_t>(h * hw)) half.resize(static_cast<std::size_t>(h * hw));
        bins(re, im, half.data(), h * hw);
        const index_t dv = o_.shift ? w / 2 : 0;
        for (index_t u = 0; u < h; ++u) {
            const float* a = half.data() + u * hw;
            const float* b = half.data() + ((h - u) % h) * hw;
            float* dst = out + ((u + du) % h) * w;
            for (index_t v = 0; v < w; ++v) dst[(v + dv) % w] = v < hw ? a[v] : b[w - v];
        }
    }

    index_t channels_, h_, w_;
    spectrum_options o_;
    fft2_plan plan_;
    index_t size_ = 0;
    float inv_scale_ = 1.0f;
};

}  // namespace shiftnorm::spectral
