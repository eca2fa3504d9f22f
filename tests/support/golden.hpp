// SPDX-License-Identifier: MIT
// Test helper: 4-D float tensors of the PyTorch golden fixtures (safetensors) as shiftnorm tensors.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/data/safetensors.hpp"

namespace shiftnorm::test {

//! The tensor `name` of `f`, which must be 4-D, as an NCHW tensor.
inline tensor<float> read4(const data::safetensors_file& f, const std::string& name) {
    const auto& t = f.at(name);
    REQUIRE(t.shape.size() == 4);
    tensor<float> x(shape4{t.shape[0], t.shape[1], t.shape[2], t.shape[3]});
    const auto v = t.to_float();
    std::copy(v.begin(), v.end(), x.begin());
    return x;
}

}  // namespace shiftnorm::test
