// SPDX-License-Identifier: MIT
// Argument checking (severity, channels, empty images, names) and behaviour on gray / odd-sized images.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "shiftnorm/corrupt.hpp"

namespace sc = shiftnorm::corrupt;
using Catch::Matchers::Contains;

TEST_CASE("bad arguments throw shiftnorm errors naming argument, expectation and value", "[corrupt][errors]") {
    sc::image img(8, 8, 3, 100);
    SECTION("severity 0 and 6") {
        for (int s : {0, 6}) {
            for (sc::corruption c : sc::all_corruptions()) {
                INFO(sc::name_of(c) << " severity " << s);
                CHECK_THROWS_AS(sc::corrupt(c, s, img, 1), shiftnorm::value_error);
            }
            CHECK_THROWS_WITH(sc::corrupt("fog", s, img, 1),
                              Contains("severity") && Contains("[1, 5]") && Contains(std::to_string(s)));
        }
    }
    SECTION("unknown corruption name") {
        CHECK_THROWS_AS(sc::corrupt("fgsm", 1, img, 1), shiftnorm::value_error);
        CHECK_THROWS_WITH(sc::parse_corruption("fgsm"), Contains("name") && Contains("gaussian_noise") && Contains("'fgsm'"));
    }
    SECTION("wrong channel count") {
        for (int ch : {2, 4}) {
            sc::image bad(8, 8, ch, 7);
            for (sc::corruption c : sc::all_corruptions()) {
                INFO(sc::name_of(c) << " channels " << ch);
                CHECK_THROWS_AS(sc::corrupt(c, 1, bad, 1), shiftnorm::shape_error);
            }
            CHECK_THROWS_WITH(sc::corrupt("snow", 1, bad, 1), Contains("channels") && Contains("1 or 3") && Contains(std::to_string(ch)));
        }
    }
    SECTION("empty image") {
        sc::image empty;
        for (sc::corruption c : sc::all_corruptions()) {
            INFO(sc::name_of(c));
            CHECK_THROWS_AS(sc::corrupt(c, 1, empty, 1), shiftnorm::shape_error);
        }
    }
    SECTION("mismatched batch") {
        std::vector<std::uint8_t> a(2 * 8 * 8 * 3), b(8 * 8 * 3);
        CHECK_THROWS_AS(sc::corrupt_batch(sc::corruption::fog, 1, {a.data(), 2, 8, 8, 3}, {b.data(), 1, 8, 8, 3}, 1),
                        shiftnorm::shape_error);
    }
    SECTION("table names") {
        CHECK(sc::parse_table("imagenet") == sc::param_table::imagenet);
        CHECK_THROWS_WITH(sc::parse_table("svhn"), Contains("table") && Contains("svhn"));
    }
}

TEST_CASE("all corruptions run on gray, non-square and ImageNet-sized images under every table", "[corrupt][shapes]") {
    struct shape {
        int h, w, c;
        sc::param_table t;
    };
    for (const shape& s : {shape{28, 28, 1, sc::param_table::mnist}, shape{20, 37, 3, sc::param_table::cifar},
                           shape{1, 1, 3, sc::param_table::cifar}, shape{224, 224, 3, sc::param_table::imagenet}}) {
        sc::image img(s.h, s.w, s.c);
        for (int y = 0; y < s.h; ++y)
            for (int x = 0; x < s.w; ++x)
                for (int k = 0; k < s.c; ++k) img(y, x, k) = static_cast<std::uint8_t>((x * 9 + y * 5 + 60 * k) % 256);
        for (sc::corruption c : sc::all_corruptions())
            for (int sev : {1, 5}) {
                if (s.h == 224 && sev == 1) continue;  // keep the suite fast
                INFO(sc::name_of(c) << " " << s.h << "x" << s.w << "x" << s.c << " severity " << sev);
                sc::image out;
                REQUIRE_NOTHROW(out = sc::corrupt(c, sev, img, 3, {s.t}));
                CHECK(out.height() == s.h);
                CHECK(out.width() == s.w);
                CHECK(out.channels() == s.c);
            }
    }
}

TEST_CASE("severity orders the damage of the size-independent corruptions", "[corrupt][shapes]") {
    // Mean absolute change grows with severity for corruptions whose tables are monotone.
    sc::image img(32, 32, 3);
    sc::generator g(11);
    for (std::size_t i = 0; i < img.size(); ++i) img.data()[i] = static_cast<std::uint8_t>(g.randint(40, 216));
    for (const char* name : {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "gaussian_blur",
                             "zoom_blur", "contrast", "brightness", "jpeg_compression", "pixelate", "fog"}) {
        double prev = -1;
        for (int s = 1; s <= 5; ++s) {
            const sc::image out = sc::corrupt(name, s, img, 8);
            double d = 0;
            for (std::size_t i = 0; i < img.size(); ++i) d += std::abs(int(out.data()[i]) - int(img.data()[i]));
            INFO(name << " severity " << s << " mean |diff| " << d / img.size() << " previous " << prev);
            CHECK(d / img.size() > prev);
            prev = d / img.size();
        }
    }
}
