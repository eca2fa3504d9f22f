// SPDX-License-Identifier: MIT
// Image-folder loader: class order, decoding via image_io, size mismatches and corrupt files.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "shiftnorm/data/image_folder.hpp"

using namespace shiftnorm;
namespace fs = std::filesystem;

TEST_CASE("image folders load in ImageFolder order; bad trees and files are io_errors", "[data][image_folder]") {
    const fs::path root = fs::temp_directory_path() / "shiftnorm_test_image_folder";
    fs::remove_all(root);
    fs::create_directories(root / "b_cls");
    fs::create_directories(root / "a_cls");
    std::vector<std::uint8_t> rgb(4 * 5 * 3);
    for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = std::uint8_t(i * 5);
    data::write_png((root / "a_cls" / "1.png").string(), rgb.data(), 4, 5, 3);
    data::write_png((root / "b_cls" / "0.png").string(), rgb.data(), 4, 5, 3);
    data::write_jpeg((root / "a_cls" / "0.jpg").string(), rgb.data(), 4, 5, 3, 95);
    std::ofstream(root / "a_cls" / "notes.txt") << "ignored";

    auto ds = data::load_image_folder(root.string(), 3);
    REQUIRE(ds.size() == 3);
    CHECK(ds.classes == std::vector<std::string>{"a_cls", "b_cls"});
    CHECK(ds.labels == std::vector<std::int32_t>{0, 0, 1});
    CHECK(ds.height == 4);
    CHECK(ds.width == 5);
    // PNG is lossless: image 1 (a_cls/1.png) R plane pixel (0,1) is rgb[3].
    CHECK(ds.image(1)[1] == rgb[3]);
    CHECK(ds.image(1)[20 + 1] == rgb[4]);  // G plane
    const auto gray = data::load_image_folder(root.string(), 1);
    CHECK(gray.channels == 1);

    data::write_png((root / "b_cls" / "1.png").string(), rgb.data(), 5, 4, 3);  // wrong size
    CHECK_THROWS_AS(data::load_image_folder(root.string()), io_error);
    fs::remove(root / "b_cls" / "1.png");
    std::ofstream(root / "b_cls" / "2.jpg", std::ios::binary) << "\xff\xd8\xff\xe0 not really a jpeg";
    CHECK_THROWS_AS(data::load_image_folder(root.string()), io_error);
    CHECK_THROWS_AS(data::load_image_folder((root / "missing").string()), io_error);
    fs::remove_all(root);
    fs::create_directories(root);
    CHECK_THROWS_AS(data::load_image_folder(root.string()), io_error);
    fs::remove_all(root);
}
