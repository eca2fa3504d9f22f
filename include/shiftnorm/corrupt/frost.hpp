// SPDX-License-Identifier: MIT
// Frost corruption: seeded procedural ice texture by default, optional texture photographs (ImageNet-C's).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"
#include "shiftnorm/data/image_io.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt {

namespace detail {

//! Bilinear resize by factor `scale` with OpenCV's INTER_LINEAR geometry (half-pixel centres,
//! output size round(in * scale)); used to shrink texture photographs like cv2.resize(fx=0.2).
inline image resize_bilinear(const_image_view src, double scale) {
    const int oh = std::max(1, static_cast<int>(std::lround(src.height * scale)));
    const int ow = std::max(1, static_cast<int>(std::lround(src.width * scale)));
    image out(oh, ow, src.channels);
    const double sy = static_cast<double>(src.height) / oh, sx = static_cast<double>(src.width) / ow;
    for (int y = 0; y < oh; ++y) {
        double fy = (y + 0.5) * sy - 0.5;
        fy = std::max(0.0, fy);
        const int y0 = std::min(static_cast<int>(fy), src.height - 1), y1 = std::min(y0 + 1, src.height - 1);
        const double ty = fy - y0;
        for (int x = 0; x < ow; ++x) {
            double fx = (x + 0.5) * sx - 0.5;
            fx = std::max(0.0, fx);
            const int x0 = std::min(static_cast<int>(fx), src.width - 1), x1 = std::min(x0 + 1, src.width - 1);
            const double tx = fx - x0;
            for (int c = 0; c < src.channels; ++c) {
                const double v = (src(y0, x0, c) * (1 - tx) + src(y0, x1, c) * tx) * (1 - ty) +
                                 (src(y1, x0, c) * (1 - tx) + src(y1, x1, c) * tx) * ty;
                out(y, x, c) = static_cast<std::uint8_t>(std::min(255.0, std::floor(v + 0.5)));
            }
        }
    }
    return out;
}

//! Smooth value noise on a lattice of `cell` pixels (bilinear with smoothstep), values in [0,1).
inline void add_value_noise(std::vector<double>& dst, int h, int w, double cell, double amp, generator& gen) {
    const int gh = static_cast<int>(std::ceil(h / cell)) + 2, gw = static_cast<int>(std::ceil(w / cell)) + 2;
    std::vector<double> lat(static_cast<std::size_t>(gh) * gw);
    for (double& v : lat) v = gen.uniform();
    const double oy = gen.uniform() * cell, ox = gen.uniform() * cell;
    for (int y = 0; y < h; ++y) {
        const double fy = (y + oy) / cell;
        const int iy = static_cast<int>(fy);
        double ty = fy - iy;
        ty = ty * ty * (3 - 2 * ty);
        for (int x = 0; x < w; ++x) {
            const double fx = (x + ox) / cell;
            const int ix = static_cast<int>(fx);
            double tx = fx - ix;
            tx = tx * tx * (3 - 2 * tx);
            const double a = lat[iy * gw + ix], b = lat[iy * gw + ix + 1];
            const double c = lat[(iy + 1) * gw + ix], d = lat[(iy + 1) * gw + ix + 1];
            dst[static_cast<std::size_t>(y) * w + x] += amp * ((a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty);
        }
    }
}

}  // namespace detail

//! One look of the procedural frost: the grey-level mean `mean` and within-image standard
//! deviation `sd` of the texture (in [0,1] units) and a per-channel tint (channel c gets
//! tint[c] * grey level).
struct frost_style {
    double mean, sd;
    std::array<double, 3> tint;
};

//! Parameters of the procedural frost texture (the default when no texture photographs are
//! given). Each image draws one style (as the reference draws one of five photographs), shifts
//! its mean by N(0, mean_jitter), and scales the within-image contrast by `contrast`.
//!
//! calibrated(): the five styles are summary statistics of the reference's five frost
//! photographs after the CIFAR resize (grey mean and within-32x32-crop sd of each photograph,
//! its channel means as the tint, the spread of crop means as the jitter; measured with
//! scripts/frost_texture_stats.py), and `contrast` was then chosen on what matters: the accuracy
//! a pretrained ResNet-20 keeps under procedural frost, severity by severity, against frost made
//! with the photographs on the same images (examples/calibrate_frost.cpp on 1,000 CIFAR-10
//! TRAINING images; checked on test images; docs/corruptions.md has both measurements).
//! v1(): the procedural frost used before 2026-12-02 (one style standardized to mean 0.65 and sd
//! 0.21 in every image, no jitter), kept so older results can be reproduced; it is clearly harsher
//! than the reference (see docs/corruptions.md).
struct procedural_frost_params {
    std::vector<frost_style> styles;
    double mean_jitter = 0;
    double contrast = 1;
    double needle_weight = 1.2;  //!< weight of the ice needles against the value-noise haze

    static procedural_frost_params calibrated() {
        procedural_frost_params p;
        p.styles = {{0.513, 0.162, {0.593, 1.140, 1.267}},
                    {0.811, 0.075, {0.971, 0.993, 1.037}},
                    {0.811, 0.075, {0.971, 0.993, 1.037}},
                    {0.597, 0.112, {0.906, 1.006, 1.087}},
                    {0.484, 0.138, {0.910, 0.999, 1.091}}};
        p.mean_jitter = 0.044;
        p.contrast = 1.15;  // calibrated on accuracy (examples/calibrate_frost.cpp)
        return p;
    }
    static procedural_frost_params v1() {
        procedural_frost_params p;
        p.styles = {{0.65, 0.21, {0.93, 0.98, 1.04}}};
        return p;
    }
    //! Throws value_error naming the first bad field.
    void check() const {
        if (styles.empty()) detail::fail<value_error>("procedural_frost_params", "styles", "at least one style", 0);
        for (const auto& st : styles) {
            if (!(st.mean >= 0 && st.mean <= 1)) detail::fail<value_error>("procedural_frost_params", "styles.mean", "in [0, 1]", st.mean);
            if (!(st.sd >= 0 && st.sd <= 1)) detail::fail<value_error>("procedural_frost_params", "styles.sd", "in [0, 1]", st.sd);
            for (double t : st.tint)
                if (!(t >= 0 && t <= 4)) detail::fail<value_error>("procedural_frost_params", "styles.tint", "in [0, 4]", t);
        }
        if (!(mean_jitter >= 0 && mean_jitter <= 1)) detail::fail<value_error>("procedural_frost_params", "mean_jitter", "in [0, 1]", mean_jitter);
        if (!(contrast >= 0 && contrast <= 10)) detail::fail<value_error>("procedural_frost_params", "contrast", "in [0, 10]", contrast);
        if (!(needle_weight >= 0 && needle_weight <= 10))
            detail::fail<value_error>("procedural_frost_params", "needle_weight", "in [0, 10]", needle_weight);
    }
};

namespace detail {

//! Procedural frost texture of h x w pixels, 0-255 RGB (or gray): fractal value noise (the
//! frosted haze) plus randomly oriented, branching ice needles (the crystals), standardised in
//! the image to a style's mean and standard deviation (times `contrast`) and tinted. `cell` is
//! the feature scale in pixels (8 for CIFAR's 0.2-scaled photographs, 40 at ImageNet scale).
//! With one style and no jitter no extra random numbers are drawn (v1() is reproduced exactly).
inline image procedural_frost(int h, int w, int channels, double cell, generator& gen,
                              const procedural_frost_params& prm = procedural_frost_params::calibrated()) {
    prm.check();
    std::vector<double> t(static_cast<std::size_t>(h) * w, 0.0);
    double amp = 1.0, c = cell;
    for (int o = 0; o < 4 && c >= 1.0; ++o, amp *= 0.55, c *= 0.5) add_value_noise(t, h, w, c, amp, gen);
    // Needles: line segments drawn additively with a 1-pixel triangular profile.
    std::vector<double> needles(t.size(), 0.0);
    const int count = std::max(4, static_cast<int>(3.0 * h * w / (cell * cell)));
    for (int n = 0; n < count; ++n) {
        double y = gen.uniform(0, h), x = gen.uniform(0, w);
        double ang = gen.uniform(0, 6.283185307179586);
        const int branches = 1 + static_cast<int>(gen.randint(0, 3));
        for (int b = 0; b < branches; ++b) {
            const double len = cell * gen.uniform(0.5, 2.0);
            const double dy = std::sin(ang), dx = std::cos(ang), inten = gen.uniform(0.4, 1.0);
            for (double s = 0; s < len; s += 0.5) {
                const double py = y + dy * s, px = x + dx * s;
                const int iy = static_cast<int>(std::floor(py)), ix = static_cast<int>(std::floor(px));
                for (int yy = iy; yy <= iy + 1; ++yy)
                    for (int xx = ix; xx <= ix + 1; ++xx) {
                        if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
                        const double wgt = std::max(0.0, 1 - std::fabs(py - yy)) * std::max(0.0, 1 - std::fabs(px - xx));
                        double& v = needles[static_cast<std::size_t>(yy) * w + xx];
                        v = std::max(v, inten * wgt);
                    }
            }
            y += dy * len, x += dx * len;
            ang += gen.uniform(-1.2, 1.2);
        }
    }
    for (std::size_t i = 0; i < t.size(); ++i) t[i] = t[i] + prm.needle_weight * needles[i];
    double mean = 0, sq = 0;
    for (double v : t) mean += v;
    mean /= t.size();
    for (double v : t) sq += (v - mean) * (v - mean);
    const double sd = std::sqrt(sq / t.size()) + 1e-12;
    const frost_style& st =
        prm.styles.size() == 1 ? prm.styles[0] : prm.styles[static_cast<std::size_t>(gen.randint(0, std::int64_t(prm.styles.size())))];
    const double m = prm.mean_jitter > 0 ? st.mean + prm.mean_jitter * gen.normal() : st.mean;
    const double s = prm.contrast * st.sd;
    image out(h, w, channels);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const double z = m + s * (t[static_cast<std::size_t>(y) * w + x] - mean) / sd;
            for (int k = 0; k < channels; ++k) {
                const double v = (channels == 3 ? st.tint[std::size_t(k)] : 1.0) * z * 255.0;
                out(y, x, k) = static_cast<std::uint8_t>(std::clamp(std::floor(v + 0.5), 0.0, 255.0));
            }
        }
    return out;
}

}  // namespace detail

//! Texture photographs for frost (e.g. frost1.png ... frost6.jpg distributed with ImageNet-C).
//! Like the reference, a frost call picks one of the first five (or all, if fewer) textures at
//! random, resizes it by the table's texture_scale and crops a random window of the image size.
//! Thread-safe; resized copies are cached per scale.
class frost_textures {
public:
    frost_textures() = default;
    //! Loads frost1.png, frost2.png, frost3.png, frost4.jpg, frost5.jpg, frost6.jpg from `dir`
    //! when present, otherwise every .png/.jpg/.jpeg file in name order. Throws io_error when
    //! the directory has none.
    static frost_textures load_directory(const std::string& dir) {
        namespace fs = std::filesystem;
        frost_textures t;
        std::error_code ec;  // never the throwing overloads: a symlink loop is a clear io_error
        if (!fs::is_directory(dir, ec))
            detail::fail<io_error>("frost_textures::load_directory", "dir",
                                   "an existing directory", "'" + dir + "'" + (ec ? " (" + ec.message() + ")" : ""));
        std::vector<std::string> files;
        for (const char* n : {"frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"})
            if (fs::exists(fs::path(dir) / n, ec)) files.push_back((fs::path(dir) / n).string());
        if (files.empty()) {
            for (const auto& e : fs::directory_iterator(dir, ec)) {
                std::string ext = e.path().extension().string();
                std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
                if (ext == ".png" || ext == ".jpg" || ext == ".jpeg") files.push_back(e.path().string());
            }
            std::sort(files.begin(), files.end());
        }
        if (files.empty())
            detail::fail<io_error>("frost_textures::load_directory", "dir", "a directory with .png/.jpg textures", "'" + dir + "'");
        for (const auto& f : files) {
            data::decoded_image d = data::read_image(f);
            image img(d.height, d.width, 3);
            for (int i = 0; i < d.height * d.width; ++i)
                for (int k = 0; k < 3; ++k) img.data()[i * 3 + k] = d.pixels[i * d.channels + (d.channels >= 3 ? k : 0)];
            t.add(std::move(img));
        }
        return t;
    }
    //! Adds one RGB texture.
    void add(image rgb) { state_->raw.push_back(std::move(rgb)); }
    std::size_t size() const { return state_->raw.size(); }
    bool empty() const { return state_->raw.empty(); }

    //! The textures resized by `scale` (cached).
    const std::vector<image>& scaled(double scale) const {
        std::lock_guard<std::mutex> lock(state_->mu);
        auto it = state_->cache.find(scale);
        if (it != state_->cache.end()) return it->second;
        std::vector<image> v;
        for (const auto& r : state_->raw) v.push_back(scale == 1.0 ? r : detail::resize_bilinear(r.view(), scale));
        return state_->cache.emplace(scale, std::move(v)).first->second;
    }

private:
    struct state {
        std::vector<image> raw;
        std::mutex mu;
        std::map<double, std::vector<image>> cache;
    };
    std::shared_ptr<state> state_ = std::make_shared<state>();
};

//! Frost: out = image_weight * x + frost_weight * texture (0-255 units), clipped, truncated.
//! With `textures` null or empty, the texture is procedural (detail::procedural_frost with
//! `procedural`) and drawn from `gen`; otherwise a random crop of a random photograph (reference
//! behaviour).
//! Throws shape_error when a photograph is smaller than the image after resizing.
namespace detail {

//! dst[i] = trunc(clip(a x[i] + b t[i], 0, 255)): both products rounded, then the sum (the
//! reference's float64 expression), the plain loop.
SHIFTNORM_FP_EXACT inline void blend_plain(const std::uint8_t* x, const std::uint8_t* t, std::uint8_t* dst, std::size_t n,
                                           double a, double b) {
    for (std::size_t i = 0; i < n; ++i) {
        const double u = a * x[i];
        const double v = b * t[i];
        dst[i] = trunc_u8(u + v);
    }
}

#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_SIMD_WARNINGS_OFF
//! blend_plain, 8 values per step (the same operations, so the same bytes).
SHIFTNORM_FP_EXACT_TARGET("avx512f") inline void blend_avx512(const std::uint8_t* x, const std::uint8_t* t,
                                                              std::uint8_t* dst, std::size_t n, double a, double b) {
    const __m512d av = _mm512_set1_pd(a), bv = _mm512_set1_pd(b), lo = _mm512_setzero_pd(), hi = _mm512_set1_pd(255.0);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m512d xv = _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x + i))));
        const __m512d tv = _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t + i))));
        // trunc_u8 of a value that is never NaN: clip to [0, 255], then toward zero
        const __m512d v = _mm512_min_pd(_mm512_max_pd(_mm512_add_pd(_mm512_mul_pd(av, xv), _mm512_mul_pd(bv, tv)), lo), hi);
        _mm_storel_epi64(reinterpret_cast<__m128i*>(dst + i), _mm512_cvtepi32_epi8(_mm512_castsi256_si512(_mm512_cvttpd_epi32(v))));
    }
    blend_plain(x + i, t + i, dst + i, n - i, a, b);
}
SHIFTNORM_SIMD_WARNINGS_ON
#endif

//! blend_plain on the fastest kernel this CPU has (the same bytes on every CPU).
inline void blend(const std::uint8_t* x, const std::uint8_t* t, std::uint8_t* dst, std::size_t n, double a, double b) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_rows_available()) return blend_avx512(x, t, dst, n, a, b);
#endif
    blend_plain(x, t, dst, n, a, b);
}

}  // namespace detail

inline void frost(const_image_view src, image_view dst, int severity, generator& gen,
                  param_table table = param_table::cifar, const frost_textures* textures = nullptr,
                  const procedural_frost_params& procedural = procedural_frost_params::calibrated()) {
    const frost_params p = frost_params_for(table, severity);
    detail::check_pair("frost", src, dst);
    const int H = src.height, W = src.width, C = src.channels;
    image tex;
    if (textures == nullptr || textures->empty()) {
        tex = detail::procedural_frost(H, W, C, 40.0 * p.texture_scale, gen, procedural);
    } else {
        const auto& bank = textures->scaled(p.texture_scale);
        const auto n = static_cast<std::int64_t>(std::min<std::size_t>(bank.size(), 5));
        const image& t = bank[static_cast<std::size_t>(gen.randint(0, n))];
        if (t.height() <= H || t.width() <= W)
            detail::fail<shape_error>("frost", "texture", detail::concat("larger than ", H, "x", W, " after resize"),
                                      detail::concat(t.height(), "x", t.width()));
        const int y0 = static_cast<int>(gen.randint(0, t.height() - H));
        const int x0 = static_cast<int>(gen.randint(0, t.width() - W));
        tex = image(H, W, C);
        for (int y = 0; y < H; ++y) {
            if (C == 3) {  // the crop's rows
                std::copy_n(t.data() + (static_cast<std::size_t>(y0 + y) * t.width() + x0) * 3, static_cast<std::size_t>(W) * 3,
                            tex.data() + static_cast<std::size_t>(y) * W * 3);
                continue;
            }
            for (int x = 0; x < W; ++x)
                tex(y, x, 0) = static_cast<std::uint8_t>(std::lround(0.299 * t(y0 + y, x0 + x, 0) + 0.587 * t(y0 + y, x0 + x, 1) +
                                                                     0.114 * t(y0 + y, x0 + x, 2)));
        }
    }
    detail::blend(src.data, tex.data(), dst.data, src.size(), p.image_weight, p.frost_weight);
}

}  // namespace shiftnorm::corrupt

SHIFTNORM_FP_EXACT_END
