// SPDX-License-Identifier: MIT
// IDX reader: synthetic plain and gzip files, truncation and corruption errors, Fashion-MNIST.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <zlib.h>

#include "support/skip.hpp"
#include "shiftnorm/data/idx.hpp"

using namespace shiftnorm;

namespace {
std::vector<std::uint8_t> idx_bytes(std::vector<std::uint32_t> dims, std::size_t payload) {
    std::vector<std::uint8_t> b{0, 0, 0x08, std::uint8_t(dims.size())};
    for (auto d : dims)
        for (int k = 3; k >= 0; --k) b.push_back(std::uint8_t(d >> (8 * k)));
    for (std::size_t i = 0; i < payload; ++i) b.push_back(std::uint8_t(i * 7 % 251));
    return b;
}
void write_plain(const std::string& p, const std::vector<std::uint8_t>& b) {
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}
void write_gz(const std::string& p, const std::vector<std::uint8_t>& b) {
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, b.data(), unsigned(b.size()));
    gzclose(f);
}
}  // namespace

TEST_CASE("IDX images and labels load from plain and gzip files", "[data][idx]") {
    write_gz("t_idx_images.gz", idx_bytes({5, 4, 3}, 60));
    write_plain("t_idx_labels", [] {
        auto b = idx_bytes({5}, 0);
        for (std::uint8_t v : {3, 1, 4, 1, 5}) b.push_back(v);
        return b;
    }());
    const auto ds = data::load_idx_pair("t_idx_images.gz", "t_idx_labels");
    CHECK(ds.size() == 5);
    CHECK(ds.channels == 1);
    CHECK(ds.height == 4);
    CHECK(ds.width == 3);
    CHECK(ds.labels[2] == 4);
    CHECK(ds.image(1)[0] == std::uint8_t(12 * 7 % 251));
    std::remove("t_idx_images.gz");
    std::remove("t_idx_labels");
}

TEST_CASE("truncated, corrupt or inconsistent IDX files are io_errors", "[data][idx]") {
    const auto good = idx_bytes({3, 2, 2}, 12);
    for (std::size_t n = 0; n < good.size(); ++n) {
        std::vector<std::uint8_t> t(good.begin(), good.begin() + std::ptrdiff_t(n));
        INFO("truncated to " << n);
        CHECK_THROWS_AS(data::parse_idx(t, "t"), io_error);
    }
    auto extra = good;
    extra.push_back(1);
    CHECK_THROWS_AS(data::parse_idx(extra, "t"), io_error);
    auto bad_type = good;
    bad_type[2] = 0x0D;  // float IDX
    CHECK_THROWS_AS(data::parse_idx(bad_type, "t"), io_error);
    auto bad_magic = good;
    bad_magic[0] = 1;
    CHECK_THROWS_AS(data::parse_idx(bad_magic, "t"), io_error);
    CHECK_THROWS_AS(data::read_idx("/nonexistent/file.gz"), io_error);

    // A truncated gzip stream.
    write_gz("t_idx_full.gz", idx_bytes({100, 28, 28}, 100 * 784));
    std::ifstream in("t_idx_full.gz", std::ios::binary);
    std::vector<char> z((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream("t_idx_cut.gz", std::ios::binary).write(z.data(), std::streamsize(z.size() / 2));
    CHECK_THROWS_AS(data::read_idx("t_idx_cut.gz"), io_error);
    // Labels that disagree with the image count.
    write_plain("t_idx_lab", idx_bytes({99}, 99));
    CHECK_THROWS_AS(data::load_idx_pair("t_idx_full.gz", "t_idx_lab"), io_error);
    // Labels >= 10 classes.
    write_plain("t_idx_lab", idx_bytes({100}, 100));
    CHECK_THROWS_AS(data::load_idx_pair("t_idx_full.gz", "t_idx_lab"), io_error);
    for (const char* p : {"t_idx_full.gz", "t_idx_cut.gz", "t_idx_lab"}) std::remove(p);
}

TEST_CASE("Fashion-MNIST test split from the Debian package", "[data][idx][shared]") {
    const std::string dir = "/usr/share/datasets/fashion-mnist";
    SHIFTNORM_SKIP_UNLESS(std::ifstream(dir + "/t10k-labels-idx1-ubyte.gz").good(), dir << " not installed");
    const auto ds = data::load_mnist_dir(dir, false, data::fashion_mnist_classes());
    CHECK(ds.size() == 10000);
    CHECK(ds.height == 28);
    std::vector<int> count(10, 0);
    for (auto l : ds.labels) ++count[std::size_t(l)];
    for (int c : count) CHECK(c == 1000);
}
