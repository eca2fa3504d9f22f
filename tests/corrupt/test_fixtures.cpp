// SPDX-License-Identifier: MIT
// Fidelity against the public CIFAR-10-C reference outputs (skipped when the shared fixtures are absent).
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "corrupt/fixture_util.hpp"
#include "support/skip.hpp"
#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/data/npy.hpp"

namespace sc = shiftnorm::corrupt;
namespace sd = shiftnorm::data;

TEST_CASE("deterministic corruptions match the reference within 0.1 grey level mean absolute difference", "[corrupt][fixture][shared]") {
    const std::string dir = shiftnorm_test::cifar_c_fixture_dir();
    SHIFTNORM_SKIP_UNLESS(!dir.empty(), "the CIFAR-10-C reference fixtures (../shared/fixtures) are absent");
    const auto in = sd::read_npy(dir + "/input_16x32x32x3.npy");
    REQUIRE(in.shape == std::vector<std::int64_t>{16, 32, 32, 3});
    const sc::const_batch_view batch{in.data<std::uint8_t>(), 16, 32, 32, 3};
    const std::size_t per = 16 * 32 * 32 * 3;
    for (const char* name : {"brightness", "contrast", "saturate", "defocus_blur", "gaussian_blur", "zoom_blur",
                             "pixelate", "jpeg_compression"}) {
        const auto ref = sd::read_npy(dir + "/" + name + "_5x16x32x32x3.npy");
        REQUIRE(ref.numel() == 5 * per);
        const auto out = sc::corrupt_all_severities(sc::parse_corruption(name), batch, 0, {}, 2);
        for (int s = 0; s < 5; ++s) {
            double sum = 0;
            for (std::size_t i = 0; i < per; ++i)
                sum += std::abs(int(out[s * per + i]) - int(ref.data<std::uint8_t>()[s * per + i]));
            const double mad = sum / per;
            INFO(name << " severity " << s + 1 << " mean |diff| = " << mad);
            CHECK(mad <= 0.1);  // measured worst: 0.083 (saturate s3; float64 ties at the truncation boundary)
        }
    }
}

namespace {

// Minimal reader for stochastic_stats.json: {"name": [{"severity": s, "mean_diff": m, ...}, ...], ...}
std::map<std::string, std::vector<std::map<std::string, double>>> read_stats(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    const std::string t = ss.str();
    std::map<std::string, std::vector<std::map<std::string, double>>> out;
    std::size_t p = 0;
    std::string current;
    while (p < t.size()) {
        const auto q = t.find('"', p);
        if (q == std::string::npos) break;
        const auto e = t.find('"', q + 1);
        const std::string key = t.substr(q + 1, e - q - 1);
        auto c = t.find_first_not_of(" :\n\t", e + 1);
        if (t[c] == '[') {
            current = key;
            p = c + 1;
            continue;
        }
        const double v = std::stod(t.substr(c));
        if (key == "severity") out[current].emplace_back();
        out[current].back()[key] = v;
        p = t.find_first_of(",}", c);
    }
    return out;
}

}  // namespace

// Acceptance (docs/corruptions.md): mean |diff| and std of (corrupted - clean)/255 within 5% of the
// reference (measured worst: 2.1%); the signed mean within 0.004 (1 grey level) or 10%: it is
// a small difference of two large sums that moves between seeds by nearly that much (fog s3:
// -0.0043 with seed 12345, -0.0024 with seed 2024, reference -0.0057). Procedural frost is NOT checked here: its texture's mean and std were fitted to these
// very statistics (a circular test); frost with the reference's own textures is checked below.
TEST_CASE("stochastic corruptions match the reference statistics (5% on mean-abs and std)", "[corrupt][fixture][shared]") {
    const std::string dir = shiftnorm_test::cifar_c_fixture_dir();
    SHIFTNORM_SKIP_UNLESS(!dir.empty(), "the CIFAR-10-C reference fixtures (../shared/fixtures) are absent");
    const auto stats = read_stats(dir + "/stochastic_stats.json");
    const auto in = sd::read_npy(dir + "/stats_input_1000x32x32x3.npy");
    REQUIRE(in.shape == std::vector<std::int64_t>{1000, 32, 32, 3});
    const sc::const_batch_view batch{in.data<std::uint8_t>(), 1000, 32, 32, 3};
    const std::size_t per = batch.count * batch.image_size();
    REQUIRE(stats.size() == 11);
    int checked = 0;
    for (const auto& [name, rows] : stats) {
        const sc::corruption c = sc::parse_corruption(name);
        REQUIRE_FALSE(sc::is_deterministic(c));
        REQUIRE(rows.size() == 5);
        if (c == sc::corruption::frost) continue;  // procedural texture: fitted, not evidence
        // the noise corruptions on both random streams (counter, the default, and v1)
        const bool noise = c == sc::corruption::gaussian_noise || c == sc::corruption::shot_noise ||
                           c == sc::corruption::impulse_noise || c == sc::corruption::speckle_noise;
        for (auto stream : {sc::noise_stream::counter, sc::noise_stream::v1}) {
            if (!noise && stream == sc::noise_stream::v1) continue;
            sc::corrupt_options opt;
            opt.noise = stream;
            const auto out = sc::corrupt_all_severities(c, batch, 2024, opt, 2);
            for (int s = 0; s < 5; ++s) {
                const auto st = shiftnorm_test::stats_of(out.data() + s * per, batch.data, per);
                const auto& r = rows[s];
                INFO(name << (stream == sc::noise_stream::v1 ? " (stream v1)" : "") << " severity " << s + 1 << ": mean "
                          << st.mean << " (ref " << r.at("mean_diff") << "), mean_abs " << st.mean_abs << " (ref " << r.at("mean_abs_diff") << "), std " << st.std << " (ref "
                          << r.at("std_diff") << ")");
                CHECK(shiftnorm_test::within(st.mean, r.at("mean_diff"), 0.10, 0.004));
                CHECK(shiftnorm_test::within(st.mean_abs, r.at("mean_abs_diff"), 0.05, 0.0));
                CHECK(shiftnorm_test::within(st.std, r.at("std_diff"), 0.05, 0.0));
            }
        }
        ++checked;
    }
    CHECK(checked == 10);
}

TEST_CASE("frost with the reference's own textures matches the reference statistics", "[corrupt][fixture][shared]") {
    const std::string dir = shiftnorm_test::cifar_c_fixture_dir();
    SHIFTNORM_SKIP_UNLESS(!dir.empty(), "the CIFAR-10-C reference fixtures (../shared/fixtures) are absent");
    const std::string tex = std::string(SHIFTNORM_SHARED_DIR) + "/data/frost";
    SHIFTNORM_SKIP_UNLESS(std::ifstream(tex + "/frost1.png").good(), tex << " (the reference's frost textures) is absent");
    const auto rows = read_stats(dir + "/stochastic_stats.json").at("frost");
    const auto in = sd::read_npy(dir + "/stats_input_1000x32x32x3.npy");
    const sc::const_batch_view batch{in.data<std::uint8_t>(), 1000, 32, 32, 3};
    const std::size_t per = batch.count * batch.image_size();
    sc::corrupt_options opt;
    const auto textures = sc::frost_textures::load_directory(tex);
    opt.frost = &textures;
    const auto out = sc::corrupt_all_severities(sc::corruption::frost, batch, 2024, opt, 2);
    for (int s = 0; s < 5; ++s) {
        const auto st = shiftnorm_test::stats_of(out.data() + s * per, batch.data, per);
        const auto& r = rows[std::size_t(s)];
        INFO("frost (textures) severity " << s + 1 << ": mean_abs " << st.mean_abs << " (ref " << r.at("mean_abs_diff")
                                          << "), std " << st.std << " (ref " << r.at("std_diff") << ")");
        CHECK(shiftnorm_test::within(st.mean_abs, r.at("mean_abs_diff"), 0.05, 0.0));
        CHECK(shiftnorm_test::within(st.std, r.at("std_diff"), 0.05, 0.0));
    }
}
