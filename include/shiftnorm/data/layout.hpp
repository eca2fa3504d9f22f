// SPDX-License-Identifier: MIT
// Pixel layout conversion between datasets (NCHW) and the corruption suite / CIFAR-10-C (NHWC).
#pragma once

#include <cstdint>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/dataset.hpp"

namespace shiftnorm::data {

//! NCHW dataset pixels -> NHWC (the corruption suite's and CIFAR-10-C's layout). O(pixels).
inline std::vector<std::uint8_t> to_nhwc(const image_dataset& ds) {
    const index_t C = ds.channels, HW = ds.height * ds.width;
    std::vector<std::uint8_t> out(ds.pixels.size());
    for (index_t i = 0; i < ds.size(); ++i) {
        const std::uint8_t* src = ds.image(i);
        std::uint8_t* dst = out.data() + i * ds.image_size();
        for (index_t c = 0; c < C; ++c)
            for (index_t p = 0; p < HW; ++p) dst[p * C + c] = src[c * HW + p];
    }
    return out;
}

//! NHWC uint8 images (as many as `like` holds, same H, W, C) back into a dataset (NCHW) with
//! the labels and classes of `like`.
inline image_dataset from_nhwc(const std::vector<std::uint8_t>& nhwc, const image_dataset& like) {
    if (nhwc.size() != like.pixels.size())
        shiftnorm::detail::fail<shape_error>("data::from_nhwc", "pixel bytes", like.pixels.size(), nhwc.size());
    image_dataset d = like;
    const index_t C = like.channels, HW = like.height * like.width;
    for (index_t i = 0; i < like.size(); ++i) {
        const std::uint8_t* src = nhwc.data() + i * like.image_size();
        std::uint8_t* dst = d.pixels.data() + i * like.image_size();
        for (index_t c = 0; c < C; ++c)
            for (index_t q = 0; q < HW; ++q) dst[c * HW + q] = src[q * C + c];
    }
    return d;
}

}  // namespace shiftnorm::data
