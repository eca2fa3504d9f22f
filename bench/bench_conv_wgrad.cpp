// SPDX-License-Identifier: MIT
// The convolution's weight gradient per image (issue 14): im2col + Eigen's dW += dY * col^T (the
// peer, also what the oneDNN-less build ran before) against im2col + the transposed AVX-512 form
// (nn::detail::weight_grad_t: dY transposed, then Wt += col * dY^T), on the CIFAR ResNet / small
// ResNet 3x3 shapes. Bytes: the col and dY each image reads. One thread, batches of 32 images.
// Run: bench_conv_wgrad --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/gemm.hpp"

namespace {
using namespace shiftnorm;
namespace d = shiftnorm::nn::detail;

void weight_grad(benchmark::State& st, bool transposed) {
    if (transposed && !d::weight_grad_transposed()) {
        st.SkipWithError("no AVX-512 kernel on this CPU / in this build");
        return;
    }
    nn::set_num_threads(1);
    const index_t C = st.range(0), H = st.range(1), P = H * H, K = C * 9, N = 32;
    nn::window2d g;
    g.kh = g.kw = 3;
    g.ph = g.pw = 1;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    std::vector<float> x(std::size_t(N * C * P)), dy(std::size_t(N * C * P)), col(std::size_t(K * P)),
        scratch(std::size_t(P * C)), w(std::size_t(C * K), 0.0f);
    for (auto& v : x) v = nd(rng);
    for (auto& v : dy) v = nd(rng);
    for (auto _ : st) {
        for (index_t n = 0; n < N; ++n) {
            d::im2col(x.data() + n * C * P, C, H, H, g, H, H, col.data());
            if (transposed)
                d::weight_grad_t(C, K, P, dy.data() + n * C * P, P, col.data(), P, scratch.data(), w.data());
            else
                d::gemm(false, true, C, K, P, 1.0f, dy.data() + n * C * P, P, col.data(), P, 1.0f, w.data(), K);
        }
        benchmark::DoNotOptimize(w.data());
    }
    st.SetItemsProcessed(st.iterations() * N);
    st.SetBytesProcessed(st.iterations() * N * (K * P + C * P) * index_t(sizeof(float)));
}

void shapes(benchmark::internal::Benchmark* b) {
    for (const auto& s : std::vector<std::pair<int, int>>{{16, 32}, {32, 16}, {64, 8}, {16, 28}, {32, 14}, {64, 7}})
        b->Args({s.first, s.second});
    b->ArgNames({"C", "H"})->Unit(benchmark::kMicrosecond);
}
}  // namespace

BENCHMARK_CAPTURE(weight_grad, Eigen, false)->Apply(shapes);
BENCHMARK_CAPTURE(weight_grad, AVX512_transposed, true)->Apply(shapes);
BENCHMARK_MAIN();
