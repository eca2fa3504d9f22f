// SPDX-License-Identifier: MIT
// CUDA spectrum (cuFFT R2C + feature kernel) against the CPU spectral::spectrum on the same images.
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

std::vector<std::uint8_t> random_bytes(index_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::vector<std::uint8_t> v(static_cast<std::size_t>(n));
    for (auto& x : v) x = static_cast<std::uint8_t>(g() & 0xff);
    return v;
}

//! max |gpu - cpu| / max |cpu|: both are float FFTs (ours, cuFFT) of the same planes.
double relative_error(const std::vector<float>& gpu, const std::vector<float>& cpu) {
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < cpu.size(); ++i) {
        worst = std::max(worst, std::abs(double(gpu[i]) - double(cpu[i])));
        scale = std::max(scale, std::abs(double(cpu[i])));
    }
    return scale > 0 ? worst / scale : worst;
}

struct shape_case {
    index_t n, c, h, w;
};

}  // namespace

TEST_CASE("cuda spectrum matches the CPU spectrum for every option set", "[cuda][spectral]") {
    const shape_case shapes[] = {{5, 3, 32, 32}, {4, 1, 28, 28}, {3, 3, 5, 7}, {2, 3, 224, 224}, {2, 1, 1, 1}};
    for (const auto& s : shapes)
        for (int bits = 0; bits < 16; ++bits) {
            spectral::spectrum_options o;
            o.gray = bits & 1;
            o.shift = bits & 2;
            o.half = bits & 4;
            o.scale = (bits & 8) ? spectral::scaling::raw : spectral::scaling::log_normalized;
            INFO("shape " << s.n << "x" << s.c << "x" << s.h << "x" << s.w << " gray " << o.gray << " shift "
                          << o.shift << " half " << o.half << " raw " << (bits & 8 ? 1 : 0));
            const spectral::spectrum cpu(s.c, s.h, s.w, o);
            cu::spectrum gpu(s.c, s.h, s.w, o);
            REQUIRE(gpu.size() == cpu.size());
            const auto imgs = random_bytes(s.n * s.c * s.h * s.w, unsigned(bits + 1));
            std::vector<float> expected(static_cast<std::size_t>(s.n * cpu.size()));
            cpu.batch(imgs.data(), s.n, expected.data());

            cu::device_buffer<std::uint8_t> d_imgs(imgs.size());
            d_imgs.upload(imgs.data(), imgs.size());
            cu::device_buffer<float> d_out(expected.size());
            gpu.batch(d_imgs.data(), s.n, d_out.data());
            CHECK(relative_error(d_out.to_vector_sync(), expected) <= 1e-5);

            // float input in [0, 1], on a stream of our own: same features
            std::vector<float> imgf(imgs.size());
            for (std::size_t i = 0; i < imgs.size(); ++i) imgf[i] = float(imgs[i]) * (1.0f / 255.0f);
            cu::device_buffer<float> d_imgf(imgf.size());
            cudaStream_t stream = nullptr;
            REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
            d_imgf.upload(imgf.data(), imgf.size(), stream);
            gpu.batch(d_imgf.data(), s.n, d_out.data(), stream);
            CHECK(relative_error(d_out.to_vector_sync(stream), expected) <= 1e-5);
            cudaStreamDestroy(stream);
        }
}

TEST_CASE("cuda spectrum caches one cuFFT plan per (h, w, batch)", "[cuda][spectral]") {
    cu::spectrum gpu(3, 32, 32);
    const auto imgs = random_bytes(8 * 3 * 32 * 32, 3);
    cu::device_buffer<std::uint8_t> d_imgs(imgs.size());
    d_imgs.upload(imgs.data(), imgs.size());
    cu::device_buffer<float> d_out(static_cast<std::size_t>(8 * gpu.size()));
    gpu.batch(d_imgs.data(), 8, d_out.data());
    gpu.batch(d_imgs.data(), 8, d_out.data());
    CHECK(gpu.plans().size() == 1);
    gpu.batch(d_imgs.data(), 4, d_out.data());
    CHECK(gpu.plans().size() == 2);
    SHIFTNORM_CUDA_CHECK(cudaDeviceSynchronize());
}

TEST_CASE("cuda spectrum rejects bad arguments before launching", "[cuda][spectral]") {
    CHECK_THROWS_AS(cu::spectrum(0, 32, 32), shape_error);
    spectral::spectrum_options o;
    o.eps = 0;
    CHECK_THROWS_WITH(cu::spectrum(3, 32, 32, o), Catch::Contains("'eps'"));
    cu::spectrum gpu(1, 8, 8);
    cu::device_buffer<float> d_out(static_cast<std::size_t>(gpu.size()));
    CHECK_THROWS_AS(gpu.batch(static_cast<const std::uint8_t*>(nullptr), 1, d_out.data()), value_error);
    CHECK_THROWS_AS(gpu.batch(static_cast<const std::uint8_t*>(nullptr), -1, d_out.data()), shape_error);
    std::vector<std::uint8_t> host(64, 1);
    CHECK_THROWS_AS(gpu.batch(host.data(), 1, d_out.data()), value_error);  // a host pointer (SHIFTNORM_CHECKED)
}
