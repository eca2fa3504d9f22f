// SPDX-License-Identifier: MIT
// safetensors: round trip, PyTorch-written files, and every truncation/corruption is an io_error.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "support/skip.hpp"
#include "shiftnorm/data/safetensors.hpp"

using namespace shiftnorm;

namespace {
data::safetensors_file sample() {
    data::safetensors_file f;
    const float a[6] = {1, -2, 3.5f, 4, 5, 6};
    const std::int64_t c = 42;
    f.put_f32("layer1.0.conv1.weight", {1, 2, 3, 1}, a);
    f.put_f32("bias", {2}, a + 4);
    f.put_i64("bn.num_batches_tracked", {}, &c);
    f.metadata["epochs_done"] = "3";
    f.metadata["note"] = "quote \" and backslash \\";
    return f;
}
}  // namespace

TEST_CASE("safetensors round trip in memory and through an atomic file write", "[data][safetensors]") {
    const auto f = sample();
    const auto bytes = data::encode_safetensors(f);
    REQUIRE((bytes.size() - 8) % 8 == 0);  // header padded to 8 bytes, data 4/8-byte sizes
    const auto g = data::parse_safetensors(bytes.data(), bytes.size(), "mem");
    REQUIRE(g.tensors.size() == 3);
    CHECK(g.at("layer1.0.conv1.weight").shape == std::vector<std::int64_t>{1, 2, 3, 1});
    CHECK(g.at("layer1.0.conv1.weight").to_float()[2] == 3.5f);
    CHECK(g.at("bn.num_batches_tracked").to_int64()[0] == 42);
    CHECK(g.at("bn.num_batches_tracked").shape.empty());
    CHECK(g.metadata.at("note") == "quote \" and backslash \\");

    const std::string path = "test_safetensors_roundtrip.safetensors";
    data::write_safetensors(path, f);
    CHECK(!std::ifstream(path + ".tmp"));  // the temporary was renamed away
    const auto h = data::read_safetensors(path);
    CHECK(h.at("bias").to_float() == std::vector<float>{5, 6});
    std::remove(path.c_str());
    CHECK_THROWS_AS(data::read_safetensors(path), io_error);
    CHECK_THROWS_AS(data::write_safetensors("/nonexistent-dir/x.safetensors", f), io_error);
}

TEST_CASE("every truncation of a safetensors file is an io_error, never a crash", "[data][safetensors]") {
    const auto bytes = data::encode_safetensors(sample());
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        INFO("truncated to " << n << " of " << bytes.size() << " bytes");
        CHECK_THROWS_AS(data::parse_safetensors(bytes.data(), n, "trunc"), io_error);
    }
}

TEST_CASE("malformed safetensors headers are io_errors naming the problem", "[data][safetensors]") {
    auto make = [](const std::string& header, std::size_t data_bytes) {
        std::vector<unsigned char> b(8 + header.size() + data_bytes, 0);
        const std::uint64_t n = header.size();
        for (int k = 0; k < 8; ++k) b[std::size_t(k)] = static_cast<unsigned char>(n >> (8 * k));
        std::copy(header.begin(), header.end(), b.begin() + 8);
        return b;
    };
    const char* bad[] = {
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})",           // size mismatch
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})",         // beyond data
        R"({"a":{"dtype":"X9","shape":[2],"data_offsets":[0,8]}})",            // unknown dtype
        R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",          // negative dim
        R"({"a":{"dtype":"F32","shape":[2]}})",                                // no offsets
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})",           // reversed
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})",            // unbalanced
        R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})",         // float dim
        R"({"a":{"dtype":"F32","shape":[99999999999,99999999999,99999],"data_offsets":[0,8]}})",  // overflow
        R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
        R"([1,2,3])", R"({"a":)", "", R"({"__metadata__":{"k":5}})", R"({} trailing)",
    };
    for (const char* h : bad) {
        INFO("header " << h);
        const auto b = make(h, 16);
        CHECK_THROWS_AS(data::parse_safetensors(b.data(), b.size(), "bad"), io_error);
    }
    // A header length larger than the file.
    auto b = make("{}", 0);
    b[0] = 200;
    CHECK_THROWS_AS(data::parse_safetensors(b.data(), b.size(), "len"), io_error);
    // A valid empty file parses.
    const auto e = make("{}", 0);
    CHECK(data::parse_safetensors(e.data(), e.size(), "empty").tensors.empty());
}

TEST_CASE("the shared pretrained ResNet-20 checkpoint parses with PyTorch names", "[data][safetensors][shared]") {
    const std::string path = std::string(SHIFTNORM_SHARED_DIR) + "/data/pretrained/resnet20-cifar10.safetensors";
    SHIFTNORM_SKIP_UNLESS(std::ifstream(path).good(), path << " not present");
    const auto f = data::read_safetensors(path);
    CHECK(f.tensors.size() == 97);
    CHECK(f.at("conv1.weight").shape == std::vector<std::int64_t>{16, 3, 3, 3});
    CHECK(f.at("linear.weight").shape == std::vector<std::int64_t>{10, 64});
    CHECK(f.metadata.at("bn_eps") == "1e-5");
}
