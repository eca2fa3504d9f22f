// SPDX-License-Identifier: MIT
// libFuzzer target: data::parse_npy on arbitrary bytes (see fuzz_safetensors.cpp for what counts as
// a finding). An array that parses must convert, re-encode and re-parse to the same array.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "shiftnorm/data/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sd = shiftnorm::data;
    try {
        const sd::npy_array a = sd::parse_npy(data, size, "fuzz");
        FUZZ_CHECK(a.bytes.size() == a.numel() * sd::npy_itemsize(a.dtype));
        FUZZ_CHECK(a.to_double().size() == a.numel());
        const auto again = sd::encode_npy(a.dtype, a.shape, a.bytes.data());
        const sd::npy_array b = sd::parse_npy(again.data(), again.size(), "fuzz (re-encoded)");
        FUZZ_CHECK(b.dtype == a.dtype && b.shape == a.shape && b.bytes == a.bytes);
    } catch (const shiftnorm::error&) {
    }
    return 0;
}
