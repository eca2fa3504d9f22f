// SPDX-License-Identifier: MIT
// CIFAR binary readers: synthetic batches, truncation, bad labels.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "shiftnorm/data/cifar.hpp"
#include "shiftnorm/data/transforms.hpp"

using namespace shiftnorm;

TEST_CASE("CIFAR-10 and CIFAR-100 records decode to NCHW uint8 + labels", "[data][cifar]") {
    std::vector<unsigned char> b;
    for (int i = 0; i < 3; ++i) {
        b.push_back(static_cast<unsigned char>(i + 2));
        for (int k = 0; k < 3072; ++k) b.push_back(static_cast<unsigned char>((k + i) % 256));
    }
    data::image_dataset ds;
    data::append_cifar_batch(ds, b, "mem", 1, 10);
    REQUIRE(ds.size() == 3);
    CHECK(ds.labels[1] == 3);
    CHECK(ds.image(2)[1024] == static_cast<unsigned char>((1024 + 2) % 256));  // first G pixel
    std::vector<unsigned char> c100;
    c100.push_back(4);
    c100.push_back(77);
    c100.insert(c100.end(), 3072, 9);
    data::image_dataset d2;
    data::append_cifar_batch(d2, c100, "mem", 2, 100);
    CHECK(d2.labels[0] == 77);
    data::image_dataset d3;
    data::append_cifar_batch(d3, c100, "mem", 2, 20, true);
    CHECK(d3.labels[0] == 4);
}

TEST_CASE("truncated CIFAR batches and bad labels are io_errors", "[data][cifar]") {
    std::vector<unsigned char> b(3073 * 2, 1);
    data::image_dataset ds;
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(3072), std::size_t(3074), b.size() - 1}) {
        std::vector<unsigned char> t(b.begin(), b.begin() + std::ptrdiff_t(n));
        CHECK_THROWS_AS(data::append_cifar_batch(ds, t, "t", 1, 10), io_error);
    }
    b[3073] = 10;
    CHECK_THROWS_AS(data::append_cifar_batch(ds, b, "t", 1, 10), io_error);
    CHECK_THROWS_AS(data::load_cifar10_bin("/nonexistent", false), io_error);
    // A directory with a truncated test batch.
    std::ofstream("test_batch.bin", std::ios::binary).write("abc", 3);
    CHECK_THROWS_AS(data::load_cifar10_bin(".", false), io_error);
    std::remove("test_batch.bin");
}

TEST_CASE("make_batch normalizes, crops and flips reproducibly", "[data][transforms]") {
    data::image_dataset ds;
    ds.channels = 1;
    ds.height = 2;
    ds.width = 3;
    ds.pixels = {0, 51, 102, 153, 204, 255};
    ds.labels = {1};
    ds.classes = data::numbered_classes(2);
    tensor<float> x;
    std::vector<std::int32_t> y;
    data::make_batch(ds, {0}, 0, 1, {{0.5f}, {0.25f}}, {}, nullptr, x, y);
    CHECK(x[1] == Approx((0.2 - 0.5) / 0.25));
    CHECK(y[0] == 1);
    std::mt19937_64 g(1);
    data::augmentation flip_only;
    flip_only.flip = true;
    bool saw_flip = false;
    for (int t = 0; t < 20; ++t) {
        data::make_batch(ds, {0}, 0, 1, {{0.0f}, {1.0f}}, flip_only, &g, x, y);
        if (x[0] == Approx(0.4)) saw_flip = true;  // pixel 102 moved to the front
    }
    CHECK(saw_flip);
    CHECK(data::shuffled_indices(100, 7, 3) == data::shuffled_indices(100, 7, 3));
    CHECK(data::shuffled_indices(100, 7, 3) != data::shuffled_indices(100, 7, 4));
    CHECK_THROWS_AS(data::make_batch(ds, {0}, 0, 2, {}, {}, nullptr, x, y), shape_error);
    CHECK_THROWS_AS(data::make_batch(ds, {0}, 0, 1, {{0.f, 0.f}, {1.f}}, {}, nullptr, x, y), shape_error);
}
