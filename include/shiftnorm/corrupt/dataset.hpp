// SPDX-License-Identifier: MIT
// A corrupted copy of a labelled image set (every image, one corruption and severity, seeded).
#pragma once

#include <cstdint>
#include <vector>

#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/layout.hpp"

namespace shiftnorm::corrupt {

//! `ds` with every image corrupted by (c, severity): image i uses image_seed(seed, c, severity,
//! first_index + i) (corrupt_batch), so a subset keeps the seeds of its global indices when the
//! caller passes them. Labels and classes are kept.
inline data::image_dataset corrupted_copy(const data::image_dataset& ds, corruption c, int severity, std::uint64_t seed,
                                          const corrupt_options& opt, std::uint64_t first_index = 0) {
    const auto nhwc = data::to_nhwc(ds);
    const const_batch_view images{nhwc.data(), std::size_t(ds.size()), int(ds.height), int(ds.width), int(ds.channels)};
    std::vector<std::uint8_t> buf(nhwc.size());
    batch_view dst{buf.data(), images.count, images.height, images.width, images.channels};
    corrupt_batch(c, severity, images, dst, seed, opt, 0, first_index);
    return data::from_nhwc(buf, ds);
}

}  // namespace shiftnorm::corrupt
