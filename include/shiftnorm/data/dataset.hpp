// SPDX-License-Identifier: MIT
// In-memory labelled image dataset (uint8 NCHW pixels, int32 labels, class names).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/shape.hpp"

namespace shiftnorm::data {

//! A labelled image set held in memory as uint8 NCHW pixels (C = 1 gray or 3 RGB). Small
//! datasets (MNIST 47 MB, CIFAR-10 184 MB) fit comfortably; loaders fill it, batches are made
//! from it by transforms.hpp.
struct image_dataset {
    index_t channels = 0, height = 0, width = 0;
    std::vector<std::uint8_t> pixels;   //!< size() * channels * height * width bytes
    std::vector<std::int32_t> labels;   //!< one per image, in [0, classes.size())
    std::vector<std::string> classes;   //!< class names in label order

    index_t size() const { return index_t(labels.size()); }
    index_t image_size() const { return channels * height * width; }
    index_t num_classes() const { return index_t(classes.size()); }
    const std::uint8_t* image(index_t i) const { return pixels.data() + i * image_size(); }

    //! Throws when pixels/labels disagree or a label is out of range (loaders call it last).
    void validate(const std::string& what) const {
        if (std::size_t(size() * image_size()) != pixels.size())
            throw io_error(shiftnorm::detail::concat(what, ": ", pixels.size(), " pixel bytes for ", size(), " images of ",
                                                     image_size(), " bytes"));
        for (std::size_t i = 0; i < labels.size(); ++i)
            if (labels[i] < 0 || labels[i] >= num_classes())
                throw io_error(shiftnorm::detail::concat(what, ": label ", labels[i], " of image ", i, " outside [0, ",
                                                         num_classes(), ")"));
    }

    //! Keeps the first `n` images (n >= size() keeps all).
    void truncate(index_t n) {
        if (n < 0 || n >= size()) return;
        labels.resize(std::size_t(n));
        pixels.resize(std::size_t(n * image_size()));
    }
};

inline std::vector<std::string> numbered_classes(index_t k) {
    std::vector<std::string> c;
    for (index_t i = 0; i < k; ++i) c.push_back(std::to_string(i));
    return c;
}

}  // namespace shiftnorm::data
