// SPDX-License-Identifier: MIT
// libFuzzer target: data::decode_jpeg on arbitrary bytes (see fuzz_safetensors.cpp for what counts
// as a finding). A decoded image must be consistent and within data::max_image_pixels.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "shiftnorm/data/image_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sd = shiftnorm::data;
    try {
        const sd::decoded_image img = sd::decode_jpeg(data, size, "fuzz");
        FUZZ_CHECK(img.height > 0 && img.width > 0 && (img.channels == 1 || img.channels == 3));
        FUZZ_CHECK(std::uint64_t(img.height) * std::uint64_t(img.width) <= sd::max_image_pixels);
        FUZZ_CHECK(img.pixels.size() == std::size_t(img.height) * std::size_t(img.width) * std::size_t(img.channels));
    } catch (const shiftnorm::error&) {
    }
    return 0;
}
