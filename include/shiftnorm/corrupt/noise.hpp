// SPDX-License-Identifier: MIT
// Noise corruptions: gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise.
#pragma once

#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"

namespace shiftnorm::corrupt {

//! x + N(0, sigma^2) per value, x in [0,1]; clipped, scaled to 255 and truncated.
//! Draws one normal per value in HWC order.
inline void gaussian_noise(const_image_view src, image_view dst, int severity, generator& gen,
                           param_table table = param_table::cifar) {
    const double c = gaussian_noise_sigma(table, severity);
    detail::check_pair("gaussian_noise", src, dst);
    detail::fimage f = detail::to_unit(src);
    for (double& v : f.px) v = v + gen.normal(0.0, c);
    detail::store_unit(f, dst);
}

//! Poisson(x * c) / c per value (photon shot noise with c photons for white).
inline void shot_noise(const_image_view src, image_view dst, int severity, generator& gen,
                       param_table table = param_table::cifar) {
    const double c = shot_noise_rate(table, severity);
    detail::check_pair("shot_noise", src, dst);
    detail::fimage f = detail::to_unit(src);
    for (double& v : f.px) v = static_cast<double>(gen.poisson(v * c)) / c;
    detail::store_unit(f, dst);
}

//! skimage.util.random_noise(mode='s&p', amount=c): each value independently becomes 1 (salt) or
//! 0 (pepper) with probability c, salt and pepper equally likely.
inline void impulse_noise(const_image_view src, image_view dst, int severity, generator& gen,
                          param_table table = param_table::cifar) {
    const double c = impulse_noise_amount(table, severity);
    detail::check_pair("impulse_noise", src, dst);
    detail::fimage f = detail::to_unit(src);
    for (double& v : f.px) {
        const bool flipped = gen.uniform() < c;
        const bool salted = gen.uniform() < 0.5;
        if (flipped) v = salted ? 1.0 : 0.0;
    }
    detail::store_unit(f, dst);
}

//! x + x * N(0, c^2) per value (multiplicative noise).
inline void speckle_noise(const_image_view src, image_view dst, int severity, generator& gen,
                          param_table table = param_table::cifar) {
    const double c = speckle_noise_sigma(table, severity);
    detail::check_pair("speckle_noise", src, dst);
    detail::fimage f = detail::to_unit(src);
    for (double& v : f.px) v = v + v * gen.normal(0.0, c);
    detail::store_unit(f, dst);
}

}  // namespace shiftnorm::corrupt
