// SPDX-License-Identifier: MIT
// Severity parameter tables: CIFAR (32 px) and ImageNet (224 px) of ImageNet-C, and a 28x28 gray table.
#pragma once

#include <array>
#include <string>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/corrupt/image.hpp"

namespace shiftnorm::corrupt {

//! Which parameter table a corruption reads. `cifar` and `imagenet` are copied from the
//! benchmark authors' generation scripts (Hendrycks & Dietterich, ICLR 2019: make_cifar_c.py
//! and make_imagenet_c.py). `mnist` is shiftnorm's table for 28x28 gray images (Fashion-MNIST,
//! MNIST), see docs/corruptions.md for the reasoning behind each row.
enum class param_table { cifar, imagenet, mnist };

inline const char* table_name(param_table t) {
    switch (t) {
        case param_table::cifar: return "cifar";
        case param_table::imagenet: return "imagenet";
        case param_table::mnist: return "mnist";
    }
    return "?";
}

//! Parses "cifar", "imagenet" or "mnist"; throws value_error naming the argument otherwise.
inline param_table parse_table(const std::string& s) {
    if (s == "cifar") return param_table::cifar;
    if (s == "imagenet") return param_table::imagenet;
    if (s == "mnist") return param_table::mnist;
    detail::fail<value_error>("parse_table", "table", "one of cifar, imagenet, mnist", "'" + s + "'");
}

namespace detail {

//! Checks 1 <= severity <= 5 and returns severity - 1.
inline int sev_index(int severity, const char* where) {
    if (severity < 1 || severity > 5) fail<value_error>(where, "severity", "an integer in [1, 5]", severity);
    return severity - 1;
}

template <class T>
const T& pick(const std::array<T, 5>& cifar, const std::array<T, 5>& imagenet, const std::array<T, 5>& mnist,
              param_table t, int severity, const char* where) {
    const int i = sev_index(severity, where);
    switch (t) {
        case param_table::imagenet: return imagenet[i];
        case param_table::mnist: return mnist[i];
        default: return cifar[i];
    }
}

}  // namespace detail

// ---- noise ----------------------------------------------------------------------------------------
//! gaussian_noise: standard deviation in [0,1] units.
inline double gaussian_noise_sigma(param_table t, int s) {
    return detail::pick<double>({0.04, 0.06, 0.08, 0.09, 0.10}, {0.08, 0.12, 0.18, 0.26, 0.38},
                                {0.06, 0.10, 0.15, 0.20, 0.28}, t, s, "gaussian_noise");
}
//! shot_noise: photon count of a white pixel (Poisson rate = x * c).
inline double shot_noise_rate(param_table t, int s) {
    return detail::pick<double>({500, 250, 100, 75, 50}, {60, 25, 12, 5, 3}, {250, 100, 50, 25, 12}, t, s,
                                "shot_noise");
}
//! impulse_noise: fraction of values replaced by salt or pepper.
inline double impulse_noise_amount(param_table t, int s) {
    return detail::pick<double>({.01, .02, .03, .05, .07}, {.03, .06, .09, .17, .27}, {.02, .04, .06, .09, .13}, t,
                                s, "impulse_noise");
}
//! speckle_noise: standard deviation of the multiplicative normal noise.
inline double speckle_noise_sigma(param_table t, int s) {
    return detail::pick<double>({.06, .1, .12, .16, .2}, {.15, .2, .35, .45, .6}, {.1, .15, .2, .3, .4}, t, s,
                                "speckle_noise");
}

// ---- blur -----------------------------------------------------------------------------------------
//! gaussian_blur: sigma in pixels.
inline double gaussian_blur_sigma(param_table t, int s) {
    return detail::pick<double>({.4, .6, .7, .8, 1.}, {1, 2, 3, 4, 6}, {.4, .6, .8, 1.0, 1.3}, t, s,
                                "gaussian_blur");
}
struct glass_params {
    double sigma;
    int max_delta;
    int iterations;
};
inline glass_params glass_blur_params(param_table t, int s) {
    return detail::pick<glass_params>({{{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}}},
                                      {{{0.7, 1, 2}, {0.9, 2, 1}, {1, 2, 3}, {1.1, 3, 2}, {1.5, 4, 2}}},
                                      {{{0.05, 1, 1}, {0.25, 1, 1}, {0.4, 1, 1}, {0.25, 1, 2}, {0.4, 1, 2}}}, t, s,
                                      "glass_blur");
}
struct defocus_params {
    double radius;
    double alias_blur;
};
inline defocus_params defocus_blur_params(param_table t, int s) {
    return detail::pick<defocus_params>({{{0.3, 0.4}, {0.4, 0.5}, {0.5, 0.6}, {1, 0.2}, {1.5, 0.1}}},
                                        {{{3, 0.1}, {4, 0.5}, {6, 0.5}, {8, 0.5}, {10, 0.5}}},
                                        {{{0.3, 0.4}, {0.5, 0.5}, {1, 0.3}, {1.5, 0.2}, {2, 0.1}}}, t, s,
                                        "defocus_blur");
}
struct motion_params {
    double radius;
    double sigma;
};
inline motion_params motion_blur_params(param_table t, int s) {
    return detail::pick<motion_params>({{{6, 1}, {6, 1.5}, {6, 2}, {8, 2}, {9, 2.5}}},
                                       {{{10, 3}, {15, 5}, {15, 8}, {15, 12}, {20, 15}}},
                                       {{{5, 1}, {5, 1.5}, {6, 2}, {7, 2.5}, {8, 3}}}, t, s, "motion_blur");
}
//! zoom_blur: zoom factors are numpy.arange(1, stop, step).
struct zoom_params {
    double stop;
    double step;
};
inline zoom_params zoom_blur_params(param_table t, int s) {
    return detail::pick<zoom_params>({{{1.06, .01}, {1.11, .01}, {1.16, .01}, {1.21, .01}, {1.26, .01}}},
                                     {{{1.11, .01}, {1.16, .01}, {1.21, .02}, {1.26, .02}, {1.31, .03}}},
                                     {{{1.06, .01}, {1.11, .01}, {1.16, .01}, {1.21, .01}, {1.26, .01}}}, t, s,
                                     "zoom_blur");
}

// ---- weather --------------------------------------------------------------------------------------
struct snow_params {
    double loc, scale, zoom, threshold, blur_radius, blur_sigma, blend;
};
inline snow_params snow_params_for(param_table t, int s) {
    return detail::pick<snow_params>(
        {{{0.1, 0.2, 1, 0.6, 8, 3, 0.95},
          {0.1, 0.2, 1, 0.5, 10, 4, 0.9},
          {0.15, 0.3, 1.75, 0.55, 10, 4, 0.9},
          {0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
          {0.3, 0.3, 1.25, 0.65, 14, 12, 0.8}}},
        {{{0.1, 0.3, 3, 0.5, 10, 4, 0.8},
          {0.2, 0.3, 2, 0.5, 12, 4, 0.7},
          {0.55, 0.3, 4, 0.9, 12, 8, 0.7},
          {0.55, 0.3, 4.5, 0.85, 12, 8, 0.65},
          {0.55, 0.3, 2.5, 0.85, 12, 12, 0.55}}},
        {{{0.1, 0.2, 1, 0.6, 8, 3, 0.95},
          {0.1, 0.2, 1, 0.5, 10, 4, 0.9},
          {0.15, 0.3, 1.75, 0.55, 10, 4, 0.9},
          {0.25, 0.3, 2.25, 0.6, 12, 6, 0.85},
          {0.3, 0.3, 1.25, 0.65, 14, 12, 0.8}}},
        t, s, "snow");
}
//! frost: out = image_weight * x + frost_weight * texture; texture_scale resizes the texture
//! photographs before cropping (0.2 for CIFAR, 1 for ImageNet).
struct frost_params {
    double image_weight, frost_weight, texture_scale;
};
inline frost_params frost_params_for(param_table t, int s) {
    return detail::pick<frost_params>(
        {{{1, 0.2, 0.2}, {1, 0.3, 0.2}, {0.9, 0.4, 0.2}, {0.85, 0.4, 0.2}, {0.75, 0.45, 0.2}}},
        {{{1, 0.4, 1}, {0.8, 0.6, 1}, {0.7, 0.7, 1}, {0.65, 0.7, 1}, {0.6, 0.75, 1}}},
        {{{1, 0.2, 0.2}, {1, 0.3, 0.2}, {0.9, 0.4, 0.2}, {0.85, 0.4, 0.2}, {0.75, 0.45, 0.2}}}, t, s, "frost");
}
//! fog: strength of the plasma fractal and its wibble decay.
struct fog_params {
    double strength, decay;
};
inline fog_params fog_params_for(param_table t, int s) {
    return detail::pick<fog_params>({{{.2, 3}, {.5, 3}, {.75, 2.5}, {1, 2}, {1.5, 1.75}}},
                                    {{{1.5, 2}, {2, 2}, {2.5, 1.7}, {2.5, 1.5}, {3, 1.4}}},
                                    {{{.2, 3}, {.5, 3}, {.75, 2.5}, {1, 2}, {1.5, 1.75}}}, t, s, "fog");
}
//! spatter: loc, scale, sigma, threshold, intensity, mud (0 = water branch, 1 = mud branch).
struct spatter_params {
    double loc, scale, sigma, threshold, intensity;
    int mud;
};
inline spatter_params spatter_params_for(param_table t, int s) {
    return detail::pick<spatter_params>(
        {{{0.62, 0.1, 0.7, 0.7, 0.5, 0},
          {0.65, 0.1, 0.8, 0.7, 0.5, 0},
          {0.65, 0.3, 1, 0.69, 0.5, 0},
          {0.65, 0.1, 0.7, 0.69, 0.6, 1},
          {0.65, 0.1, 0.5, 0.68, 0.6, 1}}},
        {{{0.65, 0.3, 4, 0.69, 0.6, 0},
          {0.65, 0.3, 3, 0.68, 0.6, 0},
          {0.65, 0.3, 2, 0.68, 0.5, 0},
          {0.65, 0.3, 1, 0.65, 1.5, 1},
          {0.67, 0.4, 1, 0.65, 1.5, 1}}},
        {{{0.62, 0.1, 0.7, 0.7, 0.5, 0},
          {0.65, 0.1, 0.8, 0.7, 0.5, 0},
          {0.65, 0.3, 1, 0.69, 0.5, 0},
          {0.65, 0.1, 0.7, 0.69, 0.6, 1},
          {0.65, 0.1, 0.5, 0.68, 0.6, 1}}},
        t, s, "spatter");
}

// ---- digital --------------------------------------------------------------------------------------
inline double contrast_factor(param_table t, int s) {
    return detail::pick<double>({.75, .5, .4, .3, 0.15}, {0.4, .3, .2, .1, .05}, {.6, .45, .3, .2, .12}, t, s,
                                "contrast");
}
inline double brightness_shift(param_table t, int s) {
    return detail::pick<double>({.05, .1, .15, .2, .3}, {.1, .2, .3, .4, .5}, {.1, .2, .3, .4, .5}, t, s,
                                "brightness");
}
struct saturate_params {
    double scale, shift;
};
inline saturate_params saturate_params_for(param_table t, int s) {
    return detail::pick<saturate_params>({{{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}}},
                                         {{{0.3, 0}, {0.1, 0}, {2, 0}, {5, 0.1}, {20, 0.2}}},
                                         {{{0.3, 0}, {0.1, 0}, {1.5, 0}, {2, 0.1}, {2.5, 0.2}}}, t, s, "saturate");
}
inline int jpeg_quality(param_table t, int s) {
    return detail::pick<int>({80, 65, 58, 50, 40}, {25, 18, 15, 10, 7}, {60, 40, 25, 15, 8}, t, s,
                             "jpeg_compression");
}
inline double pixelate_factor(param_table t, int s) {
    return detail::pick<double>({0.95, 0.9, 0.85, 0.75, 0.65}, {0.6, 0.5, 0.4, 0.3, 0.25}, {0.9, 0.8, 0.7, 0.6, 0.5},
                                t, s, "pixelate");
}
//! elastic_transform: (alpha, sigma, affine jitter) in pixels at the table's nominal image size;
//! scaled linearly by min(H, W) / nominal_size for other sizes.
struct elastic_params {
    double alpha, sigma, affine;
    double nominal_size;
};
inline elastic_params elastic_params_for(param_table t, int s) {
    constexpr double C = 32, I = 244, M = 28;  // I: the reference uses 244 ("should have been 224")
    return detail::pick<elastic_params>(
        {{{C * 0, C * 0, C * 0.08, 32},
          {C * 0.05, C * 0.2, C * 0.07, 32},
          {C * 0.08, C * 0.06, C * 0.06, 32},
          {C * 0.1, C * 0.04, C * 0.05, 32},
          {C * 0.1, C * 0.03, C * 0.03, 32}}},
        {{{I * 2, I * 0.7, I * 0.1, 224},
          {I * 2, I * 0.08, I * 0.2, 224},
          {I * 0.05, I * 0.01, I * 0.02, 224},
          {I * 0.07, I * 0.01, I * 0.02, 224},
          {I * 0.12, I * 0.01, I * 0.02, 224}}},
        {{{M * 0, M * 0, M * 0.08, 28},
          {M * 0.05, M * 0.2, M * 0.07, 28},
          {M * 0.08, M * 0.06, M * 0.06, 28},
          {M * 0.1, M * 0.04, M * 0.05, 28},
          {M * 0.1, M * 0.03, M * 0.03, 28}}},
        t, s, "elastic_transform");
}

}  // namespace shiftnorm::corrupt
