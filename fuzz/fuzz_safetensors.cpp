// SPDX-License-Identifier: MIT
// libFuzzer target: data::parse_safetensors on arbitrary bytes. shiftnorm::error is the expected
// answer to bad input; a crash, a sanitizer report, any other exception, a timeout or a huge
// allocation is a finding. A file that parses must convert, re-encode and re-parse to the same
// tensors.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "shiftnorm/data/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace sd = shiftnorm::data;
    try {
        const sd::safetensors_file f = sd::parse_safetensors(data, size, "fuzz");
        for (const auto& kv : f.tensors) {
            const sd::st_tensor& t = kv.second;
            FUZZ_CHECK(t.numel() >= 0);
            FUZZ_CHECK(t.bytes.size() == std::size_t(t.numel()) * sd::detail::st_itemsize(t.dtype));
            try {
                FUZZ_CHECK(t.to_float(kv.first).size() == std::size_t(t.numel()));
            } catch (const shiftnorm::error&) {
            }
            try {
                FUZZ_CHECK(t.to_int64(kv.first).size() == std::size_t(t.numel()));
            } catch (const shiftnorm::error&) {
            }
        }
        const auto again = sd::encode_safetensors(f);
        const sd::safetensors_file g = sd::parse_safetensors(again.data(), again.size(), "fuzz (re-encoded)");
        FUZZ_CHECK(g.metadata == f.metadata);
        FUZZ_CHECK(g.tensors.size() == f.tensors.size());
        for (const auto& kv : f.tensors) {
            const sd::st_tensor& t = g.at(kv.first);
            FUZZ_CHECK(t.dtype == kv.second.dtype && t.shape == kv.second.shape && t.bytes == kv.second.bytes);
        }
    } catch (const shiftnorm::error&) {
    }
    return 0;
}
