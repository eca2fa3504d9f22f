// SPDX-License-Identifier: MIT
// libFuzzer target: data::append_cifar_batch (the in-memory half of load_cifar10_bin /
// load_cifar100_bin) on arbitrary bytes, read as a CIFAR-10 batch, a CIFAR-100 batch with fine
// labels and one with coarse labels (see fuzz_safetensors.cpp for what counts as a finding).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_check.hpp"
#include "shiftnorm/data/cifar.hpp"

namespace {
void one(const std::vector<unsigned char>& bytes, int label_bytes, shiftnorm::index_t classes, bool coarse) {
    namespace sd = shiftnorm::data;
    try {
        sd::image_dataset ds;
        ds.classes = sd::numbered_classes(classes);
        sd::append_cifar_batch(ds, bytes, "fuzz", label_bytes, classes, coarse);
        ds.validate("fuzz");
        FUZZ_CHECK(ds.size() > 0 && std::size_t(ds.size()) * (3072 + std::size_t(label_bytes)) == bytes.size());
    } catch (const shiftnorm::error&) {
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<unsigned char> bytes(data, data + size);
    one(bytes, 1, 10, false);
    one(bytes, 2, 100, false);
    one(bytes, 2, 20, true);
    return 0;
}
