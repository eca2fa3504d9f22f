// SPDX-License-Identifier: MIT
// .npy reading and writing: round trips, float64 reading, and io_errors on malformed files.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "shiftnorm/data/npy.hpp"

namespace sd = shiftnorm::data;
using Catch::Matchers::Contains;

namespace {
std::vector<unsigned char> npy_v1(const std::string& dict, const std::vector<unsigned char>& payload) {
    std::string hdr = dict;
    while ((10 + hdr.size() + 1) % 64) hdr.push_back(' ');
    hdr.push_back('\n');
    const unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, static_cast<unsigned char>(hdr.size() & 0xff),
                                     static_cast<unsigned char>(hdr.size() >> 8)};
    // One allocation, then copies (inserting into a 10-byte vector drew a false GCC 12
    // -Wstringop-overread in Release builds)
    std::vector<unsigned char> out(sizeof(magic) + hdr.size() + payload.size());
    std::copy(magic, magic + sizeof(magic), out.begin());
    std::copy(hdr.begin(), hdr.end(), out.begin() + sizeof(magic));
    std::copy(payload.begin(), payload.end(), out.begin() + static_cast<std::ptrdiff_t>(sizeof(magic) + hdr.size()));
    return out;
}
}  // namespace

TEST_CASE("uint8 and float32 arrays round-trip through files", "[data][npy]") {
    const std::string path = (std::filesystem::temp_directory_path() / ("shiftnorm_npy_" + std::to_string(::getpid()) + ".npy")).string();
    std::vector<std::uint8_t> u(2 * 3 * 4);
    for (std::size_t i = 0; i < u.size(); ++i) u[i] = static_cast<std::uint8_t>(i * 11);
    sd::write_npy(path, {2, 3, 4}, u.data());
    auto a = sd::read_npy(path);
    CHECK(a.dtype == sd::npy_dtype::u8);
    CHECK(a.shape == std::vector<std::int64_t>{2, 3, 4});
    CHECK(std::memcmp(a.data<std::uint8_t>(), u.data(), u.size()) == 0);
    CHECK_THROWS_AS(a.data<float>(), shiftnorm::value_error);

    const std::vector<float> f = {1.5f, -2.25f, 3e-8f};
    sd::write_npy(path, {3}, f.data());
    auto b = sd::read_npy(path);
    CHECK(b.dtype == sd::npy_dtype::f32);
    CHECK(b.shape == std::vector<std::int64_t>{3});
    CHECK(b.data<float>()[1] == -2.25f);
    CHECK(b.to_double()[2] == Approx(3e-8).epsilon(1e-6));
    std::filesystem::remove(path);
}

TEST_CASE("header of a written file is what numpy writes", "[data][npy]") {
    const std::uint8_t x[2] = {1, 2};
    const auto bytes = sd::encode_npy(sd::npy_dtype::u8, {1, 2}, x);
    const std::string hdr(bytes.begin() + 10, bytes.end() - 2);
    CHECK(bytes.size() % 64 == 2);  // header block padded to 64 bytes, then 2 data bytes
    CHECK_THAT(hdr, Contains("{'descr': '|u1', 'fortran_order': False, 'shape': (1,2), }"));
}

TEST_CASE("float64 arrays and version-2 headers are read", "[data][npy]") {
    std::vector<unsigned char> payload(16);
    const double v[2] = {0.25, -7.0};
    std::memcpy(payload.data(), v, 16);
    auto bytes = npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", payload);
    auto a = sd::parse_npy(bytes.data(), bytes.size());
    CHECK(a.dtype == sd::npy_dtype::f64);
    CHECK(a.data<double>()[1] == -7.0);
    // the same as version 2.0 (4-byte header length)
    std::vector<unsigned char> v2(bytes.begin(), bytes.begin() + 8);
    v2[6] = 2;
    const std::size_t hl = bytes.size() - 10 - 16;
    for (int i = 0; i < 4; ++i) v2.push_back(static_cast<unsigned char>((hl >> (8 * i)) & 0xff));
    v2.insert(v2.end(), bytes.begin() + 10, bytes.end());
    CHECK(sd::parse_npy(v2.data(), v2.size()).data<double>()[0] == 0.25);
}

TEST_CASE("malformed files throw io_error with a clear message", "[data][npy]") {
    const std::vector<unsigned char> payload(12, 0);
    const auto good = npy_v1("{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4), }", payload);
    SECTION("truncated data") {
        CHECK_THROWS_AS(sd::parse_npy(good.data(), good.size() - 1), shiftnorm::io_error);
        CHECK_THROWS_WITH(sd::parse_npy(good.data(), good.size() - 5, "x.npy"),
                          Contains("x.npy") && Contains("truncated") && Contains("12 bytes") && Contains("has 7"));
    }
    SECTION("truncated header") {
        CHECK_THROWS_WITH(sd::parse_npy(good.data(), 40), Contains("truncated .npy header"));
        CHECK_THROWS_AS(sd::parse_npy(good.data(), 5), shiftnorm::io_error);
    }
    SECTION("bad magic") {
        auto bad = good;
        bad[1] = 'X';
        CHECK_THROWS_WITH(sd::parse_npy(bad.data(), bad.size()), Contains("magic"));
    }
    SECTION("unsupported dtype and Fortran order") {
        const auto i4 = npy_v1("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", payload);
        CHECK_THROWS_WITH(sd::parse_npy(i4.data(), i4.size()), Contains("descr") && Contains("'<i4'"));
        const auto fo = npy_v1("{'descr': '|u1', 'fortran_order': True, 'shape': (3, 4), }", payload);
        CHECK_THROWS_WITH(sd::parse_npy(fo.data(), fo.size()), Contains("fortran_order"));
        const auto nokey = npy_v1("{'descr': '|u1', 'shape': (3, 4), }", payload);
        CHECK_THROWS_AS(sd::parse_npy(nokey.data(), nokey.size()), shiftnorm::io_error);
    }
    SECTION("missing file") {
        CHECK_THROWS_WITH(sd::read_npy("/nonexistent/dir/a.npy"), Contains("/nonexistent/dir/a.npy"));
    }
}
