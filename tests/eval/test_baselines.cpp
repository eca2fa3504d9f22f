// SPDX-License-Identifier: MIT
// Tests of the compiled-in AlexNet baseline tables: lookups, errors, and a cross-check with the CSV.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/skip.hpp"
#include "shiftnorm/corrupt/corrupt.hpp"
#include "shiftnorm/eval/baselines.hpp"

using namespace shiftnorm;
using namespace shiftnorm::eval;

TEST_CASE("corruption names agree with the corruption registry", "[eval][baselines]") {
    for (int i = 0; i < known_corruption_count; ++i)
        CHECK(std::string(corruption_names[std::size_t(i)]) == corrupt::corruption_names[std::size_t(i)]);
    CHECK(is_common_corruption("jpeg_compression"));
    CHECK_FALSE(is_common_corruption("saturate"));
    CHECK_FALSE(is_common_corruption("Gaussian_noise"));
    CHECK(corruption_index("fog") == 9);
    CHECK(corruption_index("nope") == -1);
}

TEST_CASE("baseline lookups return the transcribed values", "[eval][baselines]") {
    const baseline_table im(baseline_kind::alexnet_imagenet);
    CHECK(im.error("gaussian_noise", 1) == 0.69528);
    CHECK(im.error("elastic_transform", 3) == 0.55686);
    CHECK(im.error("saturate", 5) == 0.82260);
    CHECK(im.average_error("brightness") == 0.564592);
    CHECK(im.per_severity());
    CHECK(im.corruptions().size() == 19);

    const baseline_table c10(baseline_kind::alexnet_cifar10), c100(baseline_kind::alexnet_cifar100);
    CHECK(c10.average_error("contrast") == 0.51958);
    CHECK(c100.average_error("jpeg_compression") == 0.58216);
    CHECK(c10.corruptions().size() == 15);
    CHECK_FALSE(c10.per_severity());
    CHECK_FALSE(c10.has("spatter"));
    CHECK(c10.has("fog"));

    const baseline_table none;
    CHECK_FALSE(none.normalizes());
    CHECK(none.corruptions().empty());
}

TEST_CASE("baseline lookups reject bad input with named arguments", "[eval][baselines]") {
    const baseline_table im(baseline_kind::alexnet_imagenet), c10(baseline_kind::alexnet_cifar10), none;
    CHECK_THROWS_AS(im.error("gaussian", 1), value_error);
    CHECK_THROWS_WITH(im.error("gaussian", 1), Catch::Contains("'corruption'") && Catch::Contains("'gaussian'"));
    CHECK_THROWS_WITH(im.error("fog", 6), Catch::Contains("severity") && Catch::Contains("6"));
    CHECK_THROWS_WITH(c10.error("fog", 1), Catch::Contains("per-severity"));
    CHECK_THROWS_WITH(c10.average_error("spatter"), Catch::Contains("held out"));
    CHECK_THROWS_AS(none.average_error("fog"), value_error);
    CHECK_THROWS_AS(parse_baseline("alexnet"), value_error);
    CHECK(parse_baseline("alexnet-cifar100") == baseline_kind::alexnet_cifar100);
    CHECK(parse_baseline(baseline_name(baseline_kind::none)) == baseline_kind::none);
    baseline_table t(baseline_kind::alexnet_imagenet);
    CHECK_FALSE(t.clean_error());
    CHECK_THROWS_AS(t.set_clean_error(1.5), value_error);
    CHECK_THROWS_AS(t.set_clean_error(std::nan("")), value_error);
    CHECK(*t.set_clean_error(0.4).clean_error() == 0.4);
    baseline_table n2;
    CHECK_THROWS_AS(n2.set_clean_error(0.4), value_error);
}

// Re-reads the CSV the header was generated from and compares every number (skipped when the
// shared folder is absent, e.g. in an installed-package build).
TEST_CASE("compiled-in tables equal shared/data/alexnet_baselines.csv", "[eval][baselines][shared]") {
    const std::string path = std::string(SHIFTNORM_SHARED_DIR) + "/data/alexnet_baselines.csv";
    std::ifstream f(path);
    SHIFTNORM_SKIP_UNLESS(f.good(), path << " not found");
    const baseline_table im(baseline_kind::alexnet_imagenet), c10(baseline_kind::alexnet_cifar10),
        c100(baseline_kind::alexnet_cifar100);
    std::string line;
    int table = 0, rows = 0;
    bool header = false;
    while (std::getline(f, line)) {
        if (line.empty()) continue;
        if (line[0] == '#') {
            ++table;
            header = true;
            continue;
        }
        if (header) {
            header = false;
            continue;
        }
        std::vector<std::string> cells;
        std::stringstream ss(line);
        for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
        INFO(line);
        if (table == 1) {
            REQUIRE(cells.size() == 8);
            CHECK(im.average_error(cells[0]) == std::stod(cells[1]));
            for (int s = 1; s <= 5; ++s) CHECK(im.error(cells[0], s) == std::stod(cells[std::size_t(1 + s)]));
            CHECK(is_common_corruption(cells[0]) == (cells[7] == "common"));
        } else {
            REQUIRE(cells.size() == 3);
            CHECK(c10.average_error(cells[0]) == std::stod(cells[1]));
            CHECK(c100.average_error(cells[0]) == std::stod(cells[2]));
        }
        ++rows;
    }
    CHECK(table == 2);
    CHECK(rows == 19 + 15);
}
