// SPDX-License-Identifier: MIT
// The spectral corruption detector: it learns to name synthetic corruptions from their spectra,
// round-trips through safetensors, refuses files for other images, decides per batch / image.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>

#include "shiftnorm/spectral/detector.hpp"

using namespace shiftnorm;

namespace {
//! n gray 16x16 images of class 0 (smooth: a few low frequencies), 1 (the same + strong pixel
//! noise) or 2 (the same, blurred to 2x2 blocks).
void synthetic(int n, std::uint32_t seed, std::vector<std::uint8_t>& px, std::vector<std::int32_t>& y) {
    std::mt19937 g(seed);
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> nd(0, 40);
    for (int i = 0; i < n; ++i) {
        const int cls = i % 3;
        std::vector<double> img(256);
        const double fx = 1 + 2 * u(g), fy = 1 + 2 * u(g), ph = 6.28 * u(g), a = 40 + 60 * u(g), m = 80 + 80 * u(g);
        for (int r = 0; r < 16; ++r)
            for (int c = 0; c < 16; ++c) img[std::size_t(r * 16 + c)] = m + a * std::sin(fx * r / 16.0 * 6.28 + fy * c / 16.0 * 6.28 + ph);
        if (cls == 1)
            for (auto& v : img) v += nd(g);
        if (cls == 2)
            for (int r = 0; r < 16; r += 2)
                for (int c = 0; c < 16; c += 2) {
                    const double v = img[std::size_t(r * 16 + c)];
                    for (int dr = 0; dr < 2; ++dr)
                        for (int dc = 0; dc < 2; ++dc) img[std::size_t((r + dr) * 16 + c + dc)] = v;
                }
        for (double v : img) px.push_back(std::uint8_t(std::clamp(std::lround(v), 0L, 255L)));
        y.push_back(cls);
    }
}
spectral::detector trained(double* test_accuracy = nullptr) {
    spectral::detector_options o;
    o.hidden = {32, 16};
    spectral::detector d(1, 16, 16, {"clean", "noise", "pixelate"}, o);
    std::vector<std::uint8_t> px;
    std::vector<std::int32_t> y;
    synthetic(300, 1, px, y);
    spectral::detector_train_options t;
    t.epochs = 40, t.batch = 32, t.lr = 0.05, t.seed = 7;
    spectral::train_detector(d, d.compute_features(px.data(), 300), y, t);
    if (test_accuracy) {
        std::vector<std::uint8_t> tp;
        std::vector<std::int32_t> ty;
        synthetic(150, 2, tp, ty);
        const auto p = d.probabilities(tp.data(), 150);
        int ok = 0;
        for (int i = 0; i < 150; ++i) ok += int(std::max_element(p.begin() + i * 3, p.begin() + i * 3 + 3) - (p.begin() + i * 3)) == ty[std::size_t(i)];
        *test_accuracy = ok / 150.0;
    }
    return d;
}
std::string temp_file(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("shiftnorm_detector_" + name)).string();
}
}  // namespace

TEST_CASE("the detector learns to name corruptions from their spectra (held-out images)", "[detector]") {
    double acc = 0;
    trained(&acc);
    // chance is 1/3; the three classes differ only in their high frequencies
    CHECK(acc > 0.95);
}

TEST_CASE("detector training is deterministic for a seed and depends on it", "[detector]") {
    auto a = trained(), b = trained();
    std::vector<std::uint8_t> px;
    std::vector<std::int32_t> y;
    synthetic(12, 9, px, y);
    CHECK(a.probabilities(px.data(), 12) == b.probabilities(px.data(), 12));
    spectral::detector c(1, 16, 16, {"clean", "noise", "pixelate"}, a.options());
    c.reset_parameters(1);
    CHECK(c.probabilities(px.data(), 12) != a.probabilities(px.data(), 12));
}

TEST_CASE("probabilities are rows summing to 1, independent of the batch", "[detector]") {
    auto d = trained();
    std::vector<std::uint8_t> px;
    std::vector<std::int32_t> y;
    synthetic(10, 4, px, y);
    const auto all = d.probabilities(px.data(), 10);
    const auto one = d.probabilities(px.data() + 3 * 256, 1);
    for (int j = 0; j < 3; ++j) CHECK(one[std::size_t(j)] == Approx(all[std::size_t(9 + j)]).epsilon(1e-5).margin(1e-7));  // GEMM blocking may differ by rounding
    for (int i = 0; i < 10; ++i) CHECK(all[std::size_t(3 * i)] + all[std::size_t(3 * i + 1)] + all[std::size_t(3 * i + 2)] == Approx(1.0).margin(1e-6));
}

TEST_CASE("a saved detector loads with the same outputs and options; bad files are refused", "[detector][io]") {
    auto d = trained();
    const std::string path = temp_file("rt.safetensors");
    d.save(path, {{"note", "test"}});
    auto e = spectral::detector::load(path);
    std::vector<std::uint8_t> px;
    std::vector<std::int32_t> y;
    synthetic(6, 3, px, y);
    CHECK(e.probabilities(px.data(), 6) == d.probabilities(px.data(), 6));
    CHECK(e.classes() == d.classes());
    CHECK(e.options().spectrum.eps == d.options().spectrum.eps);
    CHECK(e.options().hidden == d.options().hidden);
    // images of another size: a clear error naming both sides
    try {
        e.check_images(3, 32, 32, "eval");
        FAIL("no error");
    } catch (const shape_error& err) {
        CHECK_THAT(err.what(), Catch::Contains("3x32x32") && Catch::Contains("1x16x16"));
    }
    auto f = d.to_safetensors();
    auto bad = f;
    bad.metadata.erase("classes");
    CHECK_THROWS_AS(spectral::detector::from_safetensors(bad, "x"), io_error);
    bad = f;
    bad.metadata["shiftnorm.kind"] = "stats_table";
    CHECK_THROWS_WITH(spectral::detector::from_safetensors(bad, "x"), Catch::Contains("spectral_detector"));
    bad = f;
    bad.metadata["classes"] = "clean,noise";  // fewer classes than the last layer has
    CHECK_THROWS_AS(spectral::detector::from_safetensors(bad, "x"), io_error);
    bad = f;
    bad.metadata["height"] = "-3";
    CHECK_THROWS_AS(spectral::detector::from_safetensors(bad, "x"), io_error);
    bad = f;
    float nan = std::nanf("");
    bad.put_f32("0.bias", {32}, std::vector<float>(32, nan).data());
    CHECK_THROWS_WITH(spectral::detector::from_safetensors(bad, "x"), Catch::Contains("non-finite"));
    REQUIRE(f.contains("input.std"));  // the standardization travels with the weights
    bad = f;
    bad.put_f32("input.std", {d.feature_size()}, std::vector<float>(std::size_t(d.feature_size()), 0.0f).data());
    CHECK_THROWS_WITH(spectral::detector::from_safetensors(bad, "x"), Catch::Contains("non-positive std"));
    bad = f;
    bad.tensors.erase("input.std");
    CHECK_THROWS_AS(spectral::detector::from_safetensors(bad, "x"), io_error);
    bad = f;
    bad.tensors.erase("4.weight");
    CHECK_THROWS_WITH(spectral::detector::from_safetensors(bad, "x"), Catch::Contains("4.weight"));
    std::filesystem::remove(path);
}

TEST_CASE("bad detector arguments throw", "[detector][errors]") {
    CHECK_THROWS_AS(spectral::detector(1, 16, 16, {"clean"}), value_error);
    CHECK_THROWS_AS(spectral::detector(1, 16, 16, {"a", "a"}), value_error);
    CHECK_THROWS_AS(spectral::detector(1, 16, 16, {"a", "b,c"}), value_error);
    spectral::detector_options o;
    o.hidden = {8};
    CHECK_THROWS_AS(spectral::detector(1, 16, 16, {"a", "b"}, o), value_error);
    spectral::detector d(1, 4, 4, {"a", "b"});
    std::vector<float> f(std::size_t(2 * d.feature_size()), 0.5f);
    spectral::detector_train_options t;
    t.epochs = 1;
    CHECK_THROWS_AS(spectral::train_detector(d, f, {0, 2}, t), value_error);  // label out of range
    CHECK_THROWS_AS(spectral::train_detector(d, f, {0}, t), shape_error);     // features vs labels
    f[3] = std::nanf("");
    CHECK_THROWS_AS(spectral::train_detector(d, f, {0, 1}, t), value_error);
}

TEST_CASE("batch and per-image decisions, with the confidence threshold", "[detector][decision]") {
    // 3 images, 3 classes
    const std::vector<float> p{0.6f, 0.3f, 0.1f,  //
                               0.1f, 0.5f, 0.4f,  //
                               0.2f, 0.45f, 0.35f};
    auto d = spectral::decide_batch(p.data(), 3, 3);
    CHECK(d.cls == 1);  // mean: 0.3, 0.4167, 0.2833
    CHECK(d.confidence == Approx(1.25 / 3));
    CHECK_FALSE(d.fallback);
    d = spectral::decide_batch(p.data(), 3, 3, 0.5);
    CHECK(d.fallback);
    d = spectral::decide_batch(p.data(), 3, 3, 0.0, spectral::decision_rule::vote);
    CHECK(d.cls == 1);
    CHECK(d.confidence == Approx(2.0 / 3));
    const auto per = spectral::decide_images(p.data(), 3, 3, 0.55);
    CHECK(per[0].cls == 0);
    CHECK_FALSE(per[0].fallback);
    CHECK(per[1].fallback);
    CHECK(per[2].fallback);
    CHECK_THROWS_AS(spectral::decide_batch(p.data(), 0, 3), shape_error);
}
