// SPDX-License-Identifier: MIT
// CIFAR-10 / CIFAR-100 binary-version readers (the official *.bin files), with strict checks.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/dataset.hpp"
#include "shiftnorm/data/file.hpp"
#include "shiftnorm/data/safetensors.hpp"

namespace shiftnorm::data {

inline std::vector<std::string> cifar10_classes() {
    return {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
}

//! Appends the records of one CIFAR binary batch to `ds`. CIFAR-10 records are 1 label byte +
//! 3072 pixel bytes (R, G, B planes of 32x32); CIFAR-100 records have a coarse and a fine label
//! byte first (`label_bytes` = 2, the fine label is kept unless `coarse`). A size that is not a
//! whole number of records (truncated file) or a label >= num_classes throws io_error.
inline void append_cifar_batch(image_dataset& ds, const std::vector<unsigned char>& bytes, const std::string& what,
                               int label_bytes, index_t num_classes, bool coarse = false) {
    const std::size_t rec = std::size_t(label_bytes) + 3072;
    if (bytes.empty() || bytes.size() % rec != 0)
        throw io_error(shiftnorm::detail::concat(what, ": ", bytes.size(), " bytes is not a whole number of ", rec,
                                                 "-byte CIFAR records (truncated or not a CIFAR binary batch)"));
    const std::size_t count = bytes.size() / rec;
    ds.channels = 3;
    ds.height = 32;
    ds.width = 32;
    ds.pixels.reserve(ds.pixels.size() + count * 3072);
    for (std::size_t i = 0; i < count; ++i) {
        const unsigned char* r = bytes.data() + i * rec;
        const int label = label_bytes == 1 ? r[0] : (coarse ? r[0] : r[1]);
        if (label >= num_classes)
            throw io_error(shiftnorm::detail::concat(what, ": record ", i, " has label ", label, ", expected < ", num_classes));
        ds.labels.push_back(label);
        ds.pixels.insert(ds.pixels.end(), r + label_bytes, r + rec);
    }
}

//! CIFAR-10 binary directory (`cifar-10-batches-bin`): data_batch_1..5.bin or test_batch.bin.
inline image_dataset load_cifar10_bin(const std::string& dir, bool train) {
    image_dataset ds;
    ds.classes = cifar10_classes();
    std::vector<std::string> files;
    if (train)
        for (int i = 1; i <= 5; ++i) files.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
    else
        files.push_back(dir + "/test_batch.bin");
    for (const auto& f : files) append_cifar_batch(ds, read_regular_file(f, "CIFAR-10 batch"), f, 1, 10);
    ds.validate(dir);
    return ds;
}

//! CIFAR-100 binary directory (`cifar-100-binary`): train.bin or test.bin; fine labels (100
//! classes, named by number) unless `coarse` (20 superclasses).
inline image_dataset load_cifar100_bin(const std::string& dir, bool train, bool coarse = false) {
    image_dataset ds;
    const index_t k = coarse ? 20 : 100;
    ds.classes = numbered_classes(k);
    const std::string f = dir + (train ? "/train.bin" : "/test.bin");
    append_cifar_batch(ds, read_regular_file(f, "CIFAR-100 batch"), f, 2, k, coarse);
    ds.validate(dir);
    return ds;
}

}  // namespace shiftnorm::data
