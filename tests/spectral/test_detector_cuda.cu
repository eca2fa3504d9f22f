// SPDX-License-Identifier: MIT
// CUDA detector inference against the CPU spectral::detector: the same probabilities (and so the
// same decisions) from the same trained weights, with and without input standardization.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "shiftnorm/cuda.cuh"

using namespace shiftnorm;
namespace cu = shiftnorm::backend::cuda;

namespace {
std::vector<std::uint8_t> random_images(index_t n, index_t c, index_t h, index_t w, unsigned seed) {
    std::mt19937 g(seed);
    std::vector<std::uint8_t> v(std::size_t(n * c * h * w));
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::uint8_t((g() % 200) + (i / std::size_t(h * w)) % 3 * 20);
    return v;
}
}  // namespace

TEST_CASE("cuda detector gives the CPU detector's probabilities", "[cuda][spectral][detector]") {
    for (bool standardize : {false, true})
        for (bool gray : {false, true}) {
            INFO("standardize " << standardize << " gray " << gray);
            spectral::detector_options o;
            o.hidden = {24, 12};
            o.spectrum.gray = gray;
            spectral::detector cpu(3, 16, 16, {"clean", "noise", "blur", "fog"}, o);
            cpu.reset_parameters(7);
            const index_t n = 37;
            const auto images = random_images(n, 3, 16, 16, 11);
            if (standardize) {
                const auto f = cpu.compute_features(images.data(), n);
                cpu.fit_standardization(f.data(), n);
            }
            const auto want = cpu.probabilities(images.data(), n);
            cu::detector gpu(cpu);
            CHECK(gpu.num_classes() == 4);
            cu::device_buffer<std::uint8_t> d;
            d.assign_sync(images);
            const auto got = gpu.probabilities(d.data(), n);
            REQUIRE(got.size() == want.size());
            double worst = 0;
            for (std::size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - double(want[i])));
            // float FFTs (cuFFT vs ours) and float dot products in different orders
            CHECK(worst < 1e-4);
            const auto a = spectral::decide_batch(want.data(), n, 4), b = spectral::decide_batch(got.data(), n, 4);
            CHECK(a.cls == b.cls);
        }
}

TEST_CASE("cuda detector checks its arguments", "[cuda][spectral][detector][errors]") {
    spectral::detector cpu(1, 8, 8, {"a", "b"});
    cu::detector gpu(cpu);
    CHECK(gpu.probabilities(nullptr, 0).empty());
    CHECK_THROWS_AS(gpu.probabilities(nullptr, -1), shape_error);
    CHECK_THROWS_AS(gpu.probabilities_from_features(nullptr, 2), value_error);
}
