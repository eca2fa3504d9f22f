// SPDX-License-Identifier: MIT
// Throughput (images/s) of every corruption on 32x32 (CIFAR table) and 224x224 (ImageNet table) RGB images.
//
// BM_Corrupt_CPU/<corruption>/<size>: one thread, severity 3, a batch of 64 (32 px) or 4 (224 px)
// images per iteration; items/s = images/s. BM_CorruptBatch_CPU/<corruption>/32/threads:<t> runs
// corrupt_batch on 256 CIFAR images with t worker threads (same bytes for any t).
// BM_JpegRoundTrip/<libjpeg|codec>/<size>: the JPEG corruption's round trip of the same images at
// the same quality (CIFAR severity 3 at 32 px, ImageNet severity 3 at 224 px) by libjpeg's encode +
// decode (the peer: what Pillow runs; what jpeg_compression ran before 2026-12-05) and by
// corrupt/jpeg_codec.hpp (the same bytes, no file); compare their bytes/s.
// Needs libjpeg, libpng and Threads linked (see docs/corruptions.md).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "shiftnorm/corrupt.hpp"
#include "shiftnorm/data/image_io.hpp"

namespace sc = shiftnorm::corrupt;

namespace {

std::vector<std::uint8_t> natural_like(std::size_t n, int size) {
    // smooth gradients plus texture, so that blurs, edges (spatter) and JPEG do real work
    sc::generator g(42);
    std::vector<std::uint8_t> v(n * size * size * 3);
    for (std::size_t i = 0; i < n; ++i)
        for (int y = 0; y < size; ++y)
            for (int x = 0; x < size; ++x)
                for (int k = 0; k < 3; ++k)
                    v[((i * size + y) * size + x) * 3 + k] =
                        static_cast<std::uint8_t>((x * 160 / size + y * 60 / size + 30 * k + 17 * i) % 200 + g.randint(0, 50));
    return v;
}

void bm_corrupt(benchmark::State& state, sc::corruption c, int size) {
    const std::size_t n = size <= 32 ? 64 : 4;
    const auto src = natural_like(n, size);
    std::vector<std::uint8_t> dst(src.size());
    sc::corrupt_options opt;
    opt.table = size <= 32 ? sc::param_table::cifar : sc::param_table::imagenet;
    const sc::const_batch_view in{src.data(), n, size, size, 3};
    const sc::batch_view out{dst.data(), n, size, size, 3};
    std::uint64_t seed = 0;
    for (auto _ : state) {
        sc::corrupt_batch(c, 3, in, out, seed++, opt, 1);
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * src.size() * 2));
}

void bm_corrupt_batch(benchmark::State& state, sc::corruption c) {
    const std::size_t n = 256;
    const int threads = static_cast<int>(state.range(0));
    const auto src = natural_like(n, 32);
    std::vector<std::uint8_t> dst(src.size());
    const sc::const_batch_view in{src.data(), n, 32, 32, 3};
    const sc::batch_view out{dst.data(), n, 32, 32, 3};
    for (auto _ : state) {
        sc::corrupt_batch(c, 3, in, out, 1, {}, threads);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.counters["threads"] = threads;
}

void bm_jpeg(benchmark::State& state, bool libjpeg, int size) {
    const std::size_t n = size <= 32 ? 64 : 4;
    const auto src = natural_like(n, size);
    std::vector<std::uint8_t> dst(src.size());
    const int q = sc::jpeg_quality(size <= 32 ? sc::param_table::cifar : sc::param_table::imagenet, 3);
    const std::size_t one = static_cast<std::size_t>(size) * size * 3;
    for (auto _ : state) {
        for (std::size_t i = 0; i < n; ++i) {
            if (libjpeg) {
                const auto file = shiftnorm::data::encode_jpeg(src.data() + i * one, size, size, 3, q);
                const auto d = shiftnorm::data::decode_jpeg(file.data(), file.size(), "bench");
                std::copy(d.pixels.begin(), d.pixels.end(), dst.begin() + static_cast<std::ptrdiff_t>(i * one));
            } else {
                sc::detail::jpeg_round_trip({src.data() + i * one, size, size, 3}, {dst.data() + i * one, size, size, 3}, q);
            }
        }
        benchmark::DoNotOptimize(dst.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * src.size() * 2));
}

const bool registered = [] {
    for (int size : {32, 224})
        for (bool libjpeg : {true, false})
            benchmark::RegisterBenchmark(
                (std::string("BM_JpegRoundTrip/") + (libjpeg ? "libjpeg/" : "codec/") + std::to_string(size)).c_str(),
                [libjpeg, size](benchmark::State& st) { bm_jpeg(st, libjpeg, size); })
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
    for (sc::corruption c : sc::all_corruptions())
        for (int size : {32, 224})
            benchmark::RegisterBenchmark(
                (std::string("BM_Corrupt_CPU/") + sc::name_of(c) + "/" + std::to_string(size)).c_str(),
                [c, size](benchmark::State& st) { bm_corrupt(st, c, size); })
                ->Unit(benchmark::kMicrosecond)
                ->UseRealTime();
    for (sc::corruption c : {sc::corruption::glass_blur, sc::corruption::zoom_blur, sc::corruption::snow})
        benchmark::RegisterBenchmark((std::string("BM_CorruptBatch_CPU/") + sc::name_of(c) + "/32").c_str(),
                                     [c](benchmark::State& st) { bm_corrupt_batch(st, c); })
            ->Arg(1)
            ->Arg(2)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime();
    return true;
}();

}  // namespace

BENCHMARK_MAIN();
