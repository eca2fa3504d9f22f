// SPDX-License-Identifier: MIT
// Noise corruptions: gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise.
#pragma once

#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/noise_simd.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"

namespace shiftnorm::corrupt {

//! x + N(0, sigma^2) per value, x in [0,1]; clipped, scaled to 255 and truncated.
//! noise_stream::counter: in float, 0-255 units (x + 255 sigma z), z from the counter stream keyed
//! by the generator's next word; v1: in double, one polar-method normal per value in HWC order.
inline void gaussian_noise(const_image_view src, image_view dst, int severity, generator& gen,
                           param_table table = param_table::cifar, noise_stream stream = noise_stream::counter) {
    const double c = gaussian_noise_sigma(table, severity);
    detail::check_pair("gaussian_noise", src, dst);
    if (stream == noise_stream::counter)
        return detail::normal_noise_row(detail::normal_noise_kind::additive, src.data, dst.data, src.size(),
                                        static_cast<float>(255.0 * c), gen.next());
    detail::fimage f = detail::to_unit(src);
    for (double& v : f.px) v = v + gen.normal(0.0, c);
    detail::store_unit(f, dst);
}

//! Poisson(x * c) / c per value (photon shot noise with c photons for white).
//! noise_stream::counter: one counter word per value through the rate's alias tables (the output
//! byte's exact law for each input byte, detail::shot_table); v1: PTRS draws in HWC order.
inline void shot_noise(const_image_view src, image_view dst, int severity, generator& gen,
                       param_table table = param_table::cifar, noise_stream stream = noise_stream::counter) {
    const double c = shot_noise_rate(table, severity);
    detail::check_pair("shot_noise", src, dst);
    if (stream == noise_stream::counter)
        return detail::shot_noise_row(*detail::shot_table_for(c), src.data, dst.data, src.size(), gen.next());
    detail::fimage f = detail::to_unit(src);
    for (double& v : f.px) v = static_cast<double>(gen.poisson(v * c)) / c;
    detail::store_unit(f, dst);
}

//! skimage.util.random_noise(mode='s&p', amount=c): each value independently becomes 1 (salt) or
//! 0 (pepper) with probability c, salt and pepper equally likely.
//! noise_stream::counter: 32 random bits per value (flip with probability floor(c 2^31) / 2^31);
//! v1: two uniform doubles per value.
inline void impulse_noise(const_image_view src, image_view dst, int severity, generator& gen,
                          param_table table = param_table::cifar, noise_stream stream = noise_stream::counter) {
    const double c = impulse_noise_amount(table, severity);
    detail::check_pair("impulse_noise", src, dst);
    if (stream == noise_stream::counter)
        return detail::impulse_noise_row(src.data, dst.data, src.size(), detail::impulse_threshold(c), gen.next());
    detail::fimage f = detail::to_unit(src);
    for (double& v : f.px) {
        const bool flipped = gen.uniform() < c;
        const bool salted = gen.uniform() < 0.5;
        if (flipped) v = salted ? 1.0 : 0.0;
    }
    detail::store_unit(f, dst);
}

//! x + x * N(0, c^2) per value (multiplicative noise).
//! noise_stream::counter: in float, 0-255 units (x + (x c) z), as gaussian_noise; v1: in double.
inline void speckle_noise(const_image_view src, image_view dst, int severity, generator& gen,
                          param_table table = param_table::cifar, noise_stream stream = noise_stream::counter) {
    const double c = speckle_noise_sigma(table, severity);
    detail::check_pair("speckle_noise", src, dst);
    if (stream == noise_stream::counter)
        return detail::normal_noise_row(detail::normal_noise_kind::multiplicative, src.data, dst.data, src.size(),
                                        static_cast<float>(c), gen.next());
    detail::fimage f = detail::to_unit(src);
    for (double& v : f.px) v = v + v * gen.normal(0.0, c);
    detail::store_unit(f, dst);
}

}  // namespace shiftnorm::corrupt
