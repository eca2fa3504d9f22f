// SPDX-License-Identifier: MIT
// Seed 002's cost: the spectral detector (FFT + log-normalized magnitude + 3-layer MLP) per image
// against the network it guards (CIFAR ResNet-20 inference), in the same binary and run, one
// thread. Items are images; the ratio detector / ResNet-20 time per image is the cost of dynamic
// BN's detection (target: <= 10%, issue 11). Run: bench_detector --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "shiftnorm/eval/evaluate.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/spectral/detector.hpp"

namespace {
using namespace shiftnorm;

std::vector<std::uint8_t> random_images(index_t n) {
    std::mt19937 g(42);
    std::vector<std::uint8_t> v(static_cast<std::size_t>(n * 3 * 32 * 32));
    for (auto& x : v) x = std::uint8_t(g() & 0xff);
    return v;
}

//! Spectrum features + MLP probabilities of a batch of CIFAR images (arg: batch size).
void BM_Detector_CIFAR(benchmark::State& st) {
    nn::set_num_threads(1);
    const index_t n = st.range(0);
    spectral::detector d(3, 32, 32, {"clean", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"});
    const auto px = random_images(n);
    for (auto _ : st) {
        auto p = d.probabilities(px.data(), n);
        benchmark::DoNotOptimize(p.data());
    }
    st.SetItemsProcessed(std::int64_t(st.iterations()) * n);
    st.SetBytesProcessed(std::int64_t(st.iterations()) * n * 3 * 32 * 32);
}
//! Only the spectrum features (the FFT part of the detector).
void BM_Spectrum_CIFAR(benchmark::State& st) {
    nn::set_num_threads(1);
    const index_t n = st.range(0);
    spectral::spectrum s(3, 32, 32);
    const auto px = random_images(n);
    std::vector<float> out(std::size_t(n * s.size()));
    for (auto _ : st) {
        s.batch(px.data(), n, out.data());
        benchmark::DoNotOptimize(out.data());
    }
    st.SetItemsProcessed(std::int64_t(st.iterations()) * n);
    st.SetBytesProcessed(std::int64_t(st.iterations()) * n * 3 * 32 * 32);
}
//! CIFAR ResNet-20 inference (population statistics) on a batch (arg: batch size).
void BM_ResNet20_Inference(benchmark::State& st) {
    nn::set_num_threads(1);
    const index_t n = st.range(0);
    models::cifar_resnet_options o;
    o.depth = 20;
    auto net = models::cifar_resnet<batch_norm<population>>(o);
    nn::rng_type g(1);
    net.reset_parameters(g);
    tensor<float> x(shape4{n, 3, 32, 32});
    std::mt19937 r(3);
    std::normal_distribution<float> nd(0, 1);
    for (index_t i = 0; i < x.numel(); ++i) x.data()[i] = nd(r);
    for (auto _ : st) {
        const auto& z = net.forward(x, nn::mode::eval);
        benchmark::DoNotOptimize(z.data());
    }
    st.SetItemsProcessed(std::int64_t(st.iterations()) * n);
    st.SetBytesProcessed(std::int64_t(st.iterations()) * n * 3 * 32 * 32 * 4);
}
}  // namespace

BENCHMARK(BM_Spectrum_CIFAR)->Arg(16)->Arg(128)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Detector_CIFAR)->Arg(16)->Arg(128)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_ResNet20_Inference)->Arg(16)->Arg(128)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
