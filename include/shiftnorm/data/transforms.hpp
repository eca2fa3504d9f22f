// SPDX-License-Identifier: MIT
// Batch assembly: uint8 images -> normalized float NCHW, seeded shuffling, random crop + flip.
#pragma once

#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/omp.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/data/dataset.hpp"

namespace shiftnorm::data {

//! Per-channel input normalization: x = (pixel / 255 - mean[c]) / std[c] (torchvision's
//! ToTensor + Normalize). One value is broadcast to every channel.
struct normalization {
    std::vector<float> mean{0.0f}, std{1.0f};

    float mean_of(index_t c) const { return mean.size() == 1 ? mean[0] : mean.at(std::size_t(c)); }
    float std_of(index_t c) const { return std.size() == 1 ? std[0] : std.at(std::size_t(c)); }
    void check(index_t channels, const char* where) const {
        for (auto* v : {&mean, &std})
            if (v->size() != 1 && index_t(v->size()) != channels)
                shiftnorm::detail::fail<shape_error>(where, v == &mean ? "normalization mean" : "normalization std",
                                                     shiftnorm::detail::concat("1 or ", channels, " values"), v->size());
        for (float s : std)
            if (!(s > 0.0f)) shiftnorm::detail::fail(where, "normalization std", "> 0", s);
    }
    static normalization imagenet() { return {{0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}}; }
    static normalization fashion_mnist() { return {{0.2860f}, {0.3530f}}; }
    static normalization mnist() { return {{0.1307f}, {0.3081f}}; }
};

//! Training augmentation: random crop of the image zero-padded by `pad` pixels on each side
//! (torchvision RandomCrop(size, padding=pad), padding pixels are 0 before normalization) and a
//! horizontal flip with probability 1/2 when `flip`.
struct augmentation {
    index_t pad = 0;
    bool flip = false;
    bool enabled() const { return pad > 0 || flip; }
};

//! A permutation of [0, n) drawn from seed and epoch only (Fisher-Yates with mt19937_64), so
//! a resumed run reproduces the order of every epoch.
inline std::vector<index_t> shuffled_indices(index_t n, std::uint64_t seed, std::uint64_t epoch) {
    std::vector<index_t> idx(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), index_t(0));
    std::mt19937_64 g(seed * 0x9E3779B97F4A7C15ull + epoch + 1);
    for (index_t i = n - 1; i > 0; --i) {
        const index_t j = index_t(g() % std::uint64_t(i + 1));
        std::swap(idx[std::size_t(i)], idx[std::size_t(j)]);
    }
    return idx;
}

//! Fills `dst` ([count, C, H, W]) and `labels` with images order[begin, begin+count) of ds,
//! normalized, augmented with `aug` using `g` (g may be null when aug is disabled).
inline void make_batch(const image_dataset& ds, const std::vector<index_t>& order, index_t begin, index_t count,
                       const normalization& norm, const augmentation& aug, std::mt19937_64* g, tensor<float>& dst,
                       std::vector<std::int32_t>& labels) {
    const char* where = "make_batch";
    norm.check(ds.channels, where);
    if (begin < 0 || count <= 0 || begin + count > index_t(order.size()))
        shiftnorm::detail::fail<shape_error>(where, "batch range", shiftnorm::detail::concat("inside [0, ", order.size(), ")"),
                                             shiftnorm::detail::concat("[", begin, ", ", begin + count, ")"));
    if (aug.enabled() && !g) shiftnorm::detail::fail(where, "rng", "an engine when augmenting", "nullptr");
    const index_t C = ds.channels, H = ds.height, W = ds.width;
    const shape4 s{count, C, H, W};
    if (dst.shape() != s) dst = tensor<float>(s);
    labels.resize(std::size_t(count));
    std::vector<float> scale(static_cast<std::size_t>(C)), bias(static_cast<std::size_t>(C));
    for (index_t c = 0; c < C; ++c) {
        scale[std::size_t(c)] = 1.0f / (255.0f * norm.std_of(c));
        bias[std::size_t(c)] = -norm.mean_of(c) / norm.std_of(c);
    }
    // Draw every random number first, in image order (reproducible for any thread count),
    // then fill the images in parallel.
    std::vector<index_t> offs(static_cast<std::size_t>(3 * count), 0);
    for (index_t b = 0; b < count; ++b) {
        const index_t i = order[std::size_t(begin + b)];
        if (i < 0 || i >= ds.size())
            shiftnorm::detail::fail<shape_error>(where, "image index", shiftnorm::detail::concat("< ", ds.size()), i);
        labels[std::size_t(b)] = ds.labels[std::size_t(i)];
        if (aug.pad > 0) {
            offs[std::size_t(3 * b)] = index_t((*g)() % std::uint64_t(2 * aug.pad + 1)) - aug.pad;
            offs[std::size_t(3 * b + 1)] = index_t((*g)() % std::uint64_t(2 * aug.pad + 1)) - aug.pad;
        }
        if (aug.flip) offs[std::size_t(3 * b + 2)] = index_t((*g)() & 1u);
    }
SHIFTNORM_OMP(omp parallel for schedule(static))
    for (index_t b = 0; b < count; ++b) {
        const std::uint8_t* px = ds.image(order[std::size_t(begin + b)]);
        const index_t oy = offs[std::size_t(3 * b)], ox = offs[std::size_t(3 * b + 1)];
        const bool flip = offs[std::size_t(3 * b + 2)] != 0;
        for (index_t c = 0; c < C; ++c) {
            float* out = dst.data() + (b * C + c) * H * W;
            const std::uint8_t* in = px + c * H * W;
            for (index_t y = 0; y < H; ++y)
                for (index_t x = 0; x < W; ++x) {
                    const index_t sy = y + oy, sx0 = flip ? (W - 1 - x) : x, sx = sx0 + ox;
                    const float v = (sy >= 0 && sy < H && sx >= 0 && sx < W) ? float(in[sy * W + sx]) : 0.0f;
                    out[y * W + x] = v * scale[std::size_t(c)] + bias[std::size_t(c)];
                }
        }
    }
}

}  // namespace shiftnorm::data
