// SPDX-License-Identifier: MIT
// CIFAR-10-C and ImageNet-C layouts written to a temporary directory and read back.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <unistd.h>
#include <vector>

#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/data/image_io.hpp"
#include "shiftnorm/data/npy.hpp"

namespace sc = shiftnorm::corrupt;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const char* tag) {
    const fs::path p = fs::temp_directory_path() / (std::string("shiftnorm_test_") + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(p);
    return p;
}
}  // namespace

TEST_CASE("write_cifar_c writes severity-major arrays and tiled labels", "[corrupt][writer]") {
    const fs::path dir = temp_dir("cifarc");
    const std::size_t n = 3;
    std::vector<std::uint8_t> imgs(n * 32 * 32 * 3);
    for (std::size_t i = 0; i < imgs.size(); ++i) imgs[i] = static_cast<std::uint8_t>(i * 31 % 251);
    const std::vector<std::uint8_t> labels = {4, 0, 9};
    const sc::const_batch_view in{imgs.data(), n, 32, 32, 3};
    sc::write_cifar_c(dir.string(), in, labels, {sc::corruption::fog, sc::corruption::contrast}, 5, {}, 2);
    const auto fog = shiftnorm::data::read_npy((dir / "fog.npy").string());
    CHECK(fog.shape == std::vector<std::int64_t>{15, 32, 32, 3});
    const auto lab = shiftnorm::data::read_npy((dir / "labels.npy").string());
    REQUIRE(lab.shape == std::vector<std::int64_t>{15});
    for (int i = 0; i < 15; ++i) CHECK(lab.data<std::uint8_t>()[i] == labels[i % 3]);
    // rows 3(s-1)..3s-1 equal the in-memory corruption at severity s
    for (int s = 1; s <= 5; ++s) {
        std::vector<std::uint8_t> mem(imgs.size());
        sc::corrupt_batch(sc::corruption::fog, s, in, {mem.data(), n, 32, 32, 3}, 5, {}, 1);
        CHECK(std::equal(mem.begin(), mem.end(), fog.data<std::uint8_t>() + (s - 1) * imgs.size()));
    }
    CHECK_THROWS_AS(sc::write_cifar_c(dir.string(), in, {1, 2}, {sc::corruption::fog}, 5), shiftnorm::shape_error);
    fs::remove_all(dir);
}

TEST_CASE("write_imagenet_c writes corruption/severity/class/file JPEGs", "[corrupt][writer]") {
    const fs::path dir = temp_dir("imagenetc");
    const std::size_t n = 2;
    std::vector<std::uint8_t> imgs(n * 40 * 48 * 3, 128);
    const sc::const_batch_view in{imgs.data(), n, 40, 48, 3};
    sc::write_imagenet_c(dir.string(), in, {{"n01440764", "a.JPEG"}, {"n01443537", "b.JPEG"}}, {sc::corruption::snow}, 1);
    for (int s = 1; s <= 5; ++s) {
        const fs::path f = dir / "snow" / std::to_string(s) / "n01443537" / "b.JPEG";
        REQUIRE(fs::exists(f));
        const auto d = shiftnorm::data::read_image(f.string());
        CHECK(d.height == 40);
        CHECK(d.width == 48);
        CHECK(d.channels == 3);
    }
    fs::remove_all(dir);
}
