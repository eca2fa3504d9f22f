// SPDX-License-Identifier: MIT
// FFT benchmarks: spectral::fft2_plan vs FFTW's r2c (the peer, when found), and spectrum::batch.
//
// Bytes processed: the real input (h*w floats) plus the half spectrum written (h*(w/2+1) complex
// floats), the same count for ours and FFTW, so the GB/s columns compare directly. One thread.
// Without FFTW (SHIFTNORM_BENCH_HAS_FFTW undefined) only our rows are built.
#include <benchmark/benchmark.h>

#include <complex>
#include <cstdint>
#include <random>
#include <vector>

#if defined(SHIFTNORM_BENCH_HAS_FFTW)
#include <fftw3.h>
#endif

#include "shiftnorm/spectral/fft.hpp"
#include "shiftnorm/spectral/spectrum.hpp"

namespace {
using namespace shiftnorm;

std::vector<float> random_image(index_t h, index_t w) {
    std::mt19937 g(42);
    std::uniform_real_distribution<float> d(0.0f, 1.0f);
    std::vector<float> v(static_cast<std::size_t>(h * w));
    for (auto& x : v) x = d(g);
    return v;
}

void set_bytes(benchmark::State& st, index_t h, index_t w) {
    const index_t per = h * w * 4 + h * (w / 2 + 1) * 8;
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * per);
}

//! fft2_plan::forward on an h x w image (args: h, w).
void BM_FFT2_R2C_Ours(benchmark::State& st) {
    const index_t h = st.range(0), w = st.range(1);
    const spectral::fft2_plan plan(h, w);
    const auto src = random_image(h, w);
    std::vector<std::complex<float>> dst(static_cast<std::size_t>(h * plan.half_width()));
    for (auto _ : st) {
        plan.forward(src.data(), dst.data());
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    set_bytes(st, h, w);
}

#if defined(SHIFTNORM_BENCH_HAS_FFTW)
//! FFTW 3 single precision fftwf_plan_dft_r2c_2d with FFTW_MEASURE, out of place (args: h, w).
void BM_FFT2_R2C_FFTW(benchmark::State& st) {
    const index_t h = st.range(0), w = st.range(1);
    const auto init = random_image(h, w);
    float* src = fftwf_alloc_real(static_cast<std::size_t>(h * w));
    fftwf_complex* dst = fftwf_alloc_complex(static_cast<std::size_t>(h * (w / 2 + 1)));
    fftwf_plan plan = fftwf_plan_dft_r2c_2d(static_cast<int>(h), static_cast<int>(w), src, dst, FFTW_MEASURE);
    for (index_t i = 0; i < h * w; ++i) src[i] = init[static_cast<std::size_t>(i)];  // MEASURE overwrote it
    for (auto _ : st) {
        fftwf_execute(plan);
        benchmark::DoNotOptimize(dst);
        benchmark::ClobberMemory();
    }
    fftwf_destroy_plan(plan);
    fftwf_free(src);
    fftwf_free(dst);
    set_bytes(st, h, w);
}
#endif

//! spectrum::batch on a CIFAR batch: 128 x 3 x 32 x 32 uint8 -> log-normalized half spectra
//! (args: n, h, w). Bytes: the uint8 input plus the float features written.
void BM_Spectrum_Batch_Ours(benchmark::State& st) {
    const index_t n = st.range(0), c = 3, h = st.range(1), w = st.range(2);
    const spectral::spectrum spec(c, h, w);
    std::vector<std::uint8_t> imgs(static_cast<std::size_t>(n * c * h * w));
    std::mt19937 g(7);
    for (auto& x : imgs) x = static_cast<std::uint8_t>(g() & 0xff);
    std::vector<float> out(static_cast<std::size_t>(n * spec.size()));
    for (auto _ : st) {
        spec.batch(imgs.data(), n, out.data());
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    st.SetBytesProcessed(static_cast<std::int64_t>(st.iterations()) * n * (c * h * w + spec.size() * 4));
    st.counters["images_per_s"] = benchmark::Counter(static_cast<double>(st.iterations() * n), benchmark::Counter::kIsRate);
}

void fft_shapes(benchmark::internal::Benchmark* b) {
    for (int s : {32, 28, 64, 224}) b->Args({s, s});
}

}  // namespace

BENCHMARK(BM_FFT2_R2C_Ours)->Apply(fft_shapes);
#if defined(SHIFTNORM_BENCH_HAS_FFTW)
BENCHMARK(BM_FFT2_R2C_FFTW)->Apply(fft_shapes);
#endif
BENCHMARK(BM_Spectrum_Batch_Ours)->Args({128, 32, 32});

BENCHMARK_MAIN();
