// SPDX-License-Identifier: MIT
// The convolution's weight gradient per image (issue 14): im2col + Eigen's dW += dY * col^T (the
// peer, also what the oneDNN-less build ran before) against im2col + the transposed AVX-512 form
// (nn::detail::weight_grad_t: dY transposed, then Wt += col * dY^T), on the CIFAR ResNet / small
// ResNet 3x3 shapes; and the shifted-window forward / weight gradient (nn/conv_shifted.hpp) against
// im2col + GEMM; the Winograd F(2x2, 3x3) forward (nn/conv_winograd.hpp) in its two layouts against
// the shifted forward, whole conv2d layers (forward, input and weight gradients) per algorithm
// (direct, winograd: F(4x4, 3x3) on pixel-major planes, winograd_2x2: F(2x2, 3x3) only), and the
// stride-2 layers (3x3 and 1x1 projections: im2col / col2im rows + GEMM).
// Bytes: the col and dY each image reads (the forward: x and y). One thread, batches of 32 images.
// Run: bench_conv_wgrad --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/conv_shifted.hpp"
#include "shiftnorm/nn/conv_winograd.hpp"
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

//! The 3x3 pad-1 window, its shifted geometry and row offsets for C channels of H x H planes.
struct shifted_setup {
    nn::window2d g{3, 3, 1, 1, 1, 1, 1, 1};
    d::shifted_geometry s;
    std::vector<index_t> off;
    shifted_setup(index_t C, index_t H) : s(d::make_shifted(C, H, H, g)) { d::shifted_offsets(s, off); }
    bool available() const { return d::use_shifted(g, s.H, s.W, s.H, s.W); }
};

//! The shifted-window path (nn/conv_shifted.hpp): pad the planes, then the GEMM on their windows.
void weight_grad_shifted(benchmark::State& st) {
    nn::set_num_threads(1);
    const index_t C = st.range(0), H = st.range(1), P = H * H, K = C * 9, N = 32;
    const shifted_setup su(C, H);
    if (!su.available()) {
        st.SkipWithError("no AVX-512 kernel on this CPU / in this build");
        return;
    }
    const auto& s = su.s;
    const auto& off = su.off;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    std::vector<float> x(std::size_t(N * C * P)), dy(std::size_t(N * C * P)), pad(std::size_t(s.buffer_size())),
        scratch(std::size_t(s.cols * C)), w(std::size_t(C * K), 0.0f);
    for (auto& v : x) v = nd(rng);
    for (auto& v : dy) v = nd(rng);
    for (auto _ : st) {
        for (index_t n = 0; n < N; ++n) {
            d::pad_planes(x.data() + n * C * P, s, pad.data());
            d::weight_grad_shifted(C, K, dy.data() + n * C * P, pad.data(), off.data(), s, scratch.data(), w.data());
        }
        benchmark::DoNotOptimize(w.data());
    }
    st.SetItemsProcessed(st.iterations() * N);
    st.SetBytesProcessed(st.iterations() * N * (K * P + C * P) * index_t(sizeof(float)));
}

//! The forward product per image: im2col + GEMM against the shifted windows.
void forward(benchmark::State& st, bool shifted) {
    nn::set_num_threads(1);
    const index_t C = st.range(0), H = st.range(1), P = H * H, K = C * 9, N = 32;
    const shifted_setup su(C, H);
    if (shifted && !su.available()) {
        st.SkipWithError("no AVX-512 kernel on this CPU / in this build");
        return;
    }
    const auto& s = su.s;
    const auto& off = su.off;
    const auto& g = su.g;
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    std::vector<float> x(std::size_t(N * C * P)), y(std::size_t(N * C * P)), col(std::size_t(K * P)),
        pad(std::size_t(s.buffer_size())), wide(std::size_t(s.cols * C)), w(std::size_t(C * K));
    for (auto& v : x) v = nd(rng);
    for (auto& v : w) v = nd(rng);
    for (auto _ : st) {
        for (index_t n = 0; n < N; ++n) {
            if (shifted) {
                d::pad_planes(x.data() + n * C * P, s, pad.data());
                d::conv_forward_shifted(C, K, w.data(), pad.data(), off.data(), s, wide.data(), y.data() + n * C * P);
            } else {
                d::im2col(x.data() + n * C * P, C, H, H, g, H, H, col.data());
                d::gemm(false, false, C, P, K, 1.0f, w.data(), K, col.data(), P, 0.0f, y.data() + n * C * P, P);
            }
        }
        benchmark::DoNotOptimize(y.data());
    }
    st.SetItemsProcessed(st.iterations() * N);
    st.SetBytesProcessed(st.iterations() * N * (2 * C * P) * index_t(sizeof(float)));
}

//! Winograd per image in one layout (pixel-major or planar, whichever make_winograd would pick),
//! the weights transformed once (as a layer does once per call for all its images); F(2x2, 3x3),
//! or F(4x4, 3x3) when m = 4 (nb images per call, as conv2d runs it).
void forward_winograd(benchmark::State& st, bool planar, int m = 2) {
    nn::set_num_threads(1);
    const index_t C = st.range(0), H = st.range(1), P = H * H, N = 32;
    const nn::window2d g{3, 3, 1, 1, 1, 1, 1, 1};
    if (!d::winograd_eligible(g, C, C, H, H, H, H)) {
        st.SkipWithError("no AVX-512 kernel on this CPU / in this build");
        return;
    }
    d::winograd_geometry wg = d::make_winograd(C, C, H, H, m, planar);
    if (m == 4 && planar && !wg.planar) {
        st.SkipWithError("F(4x4, 3x3) runs planar only on planes of 4 or 6-8 tiles per tile row");
        return;
    }
    wg.planar = planar;  // F(2x2, 3x3): either layout on any plane up to 32 wide
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    std::vector<float> x(std::size_t(N * C * P)), y(std::size_t(N * C * P)), w(std::size_t(C * C * 9)),
        u(std::size_t(wg.points() * C * C));
    for (auto& v : x) v = nd(rng);
    for (auto& v : w) v = nd(rng);
    if (m == 4)
        d::winograd_weights_f4(w.data(), C, C, u.data(), planar);
    else
        d::winograd_weights(w.data(), C, C, u.data(), planar);
    d::winograd_buffers b;
    b.prepare(wg);
    for (auto _ : st) {
        for (index_t n = 0; n < N; n += wg.nb)
            d::winograd_conv_images(x.data() + n * C * P, C * P, std::min(wg.nb, N - n), u.data(), wg, b,
                                    y.data() + n * C * P, C * P);
        benchmark::DoNotOptimize(y.data());
    }
    st.SetItemsProcessed(st.iterations() * N);
    st.SetBytesProcessed(st.iterations() * N * (2 * C * P) * index_t(sizeof(float)));
}

//! A whole conv2d layer (3x3, pad 1, C -> C) per algorithm: its forward, its input gradient alone
//! (set_param_grad(false)) or its weight gradient alone (set_input_grad(false)), 32 images per
//! call, weight transforms included.
enum class layer_pass { forward, input_grad, weight_grad };
//! The timed loop of a layer benchmark: forward, or backward (the pass set up by the caller).
void time_pass(benchmark::State& st, nn::conv2d& conv, const tensor<float>& x, const tensor<float>& dy,
               layer_pass pass) {
    for (auto _ : st) {
        if (pass == layer_pass::forward) {
            benchmark::DoNotOptimize(conv.forward(x, nn::mode::train).data());
        } else {
            conv.backward(dy);
            benchmark::DoNotOptimize(conv.diff_weight.data());
        }
    }
}

void layer(benchmark::State& st, nn::conv_algorithm a, layer_pass pass) {
    nn::set_num_threads(1);
    const index_t C = st.range(0), H = st.range(1), N = 32;
    nn::conv2d conv(nn::conv2d_options{C, C, 3, 1, 1, 1, 1, false, a});
    if (a != nn::conv_algorithm::direct && !d::winograd_eligible(conv.window(), C, C, H, H, H, H)) {
        st.SkipWithError("no AVX-512 kernel on this CPU / in this build");
        return;
    }
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (auto& v : conv.weight) v = nd(rng);
    tensor<float> x({N, C, H, H}), dy({N, C, H, H});
    for (index_t i = 0; i < x.numel(); ++i) x.data()[i] = nd(rng), dy.data()[i] = nd(rng);
    conv.set_param_grad(pass == layer_pass::weight_grad);
    conv.set_input_grad(pass == layer_pass::input_grad);
    conv.forward(x, nn::mode::train);
    time_pass(st, conv, x, dy, pass);
    st.SetItemsProcessed(st.iterations() * N);
    st.SetBytesProcessed(st.iterations() * 2 * x.numel() * index_t(sizeof(float)));
}

//! A stride-2 conv2d layer (the first of a CIFAR / Fashion-MNIST stage: 3x3 pad 1, or the 1x1
//! projection, C -> 2C, H -> H/2) per pass, 32 images per call: im2col / col2im + GEMM.
void layer_stride2(benchmark::State& st, index_t k, layer_pass pass) {
    nn::set_num_threads(1);
    const index_t C = st.range(0), H = st.range(1), N = 32;
    nn::conv2d conv(nn::conv2d_options{C, 2 * C, k, 2, k / 2, 1, 1, false});
    std::mt19937 rng(1);
    std::normal_distribution<float> nd;
    for (auto& v : conv.weight) v = nd(rng);
    tensor<float> x({N, C, H, H});
    for (index_t i = 0; i < x.numel(); ++i) x.data()[i] = nd(rng);
    conv.set_param_grad(pass == layer_pass::weight_grad);
    conv.set_input_grad(pass == layer_pass::input_grad);
    const tensor<float> y = conv.forward(x, nn::mode::train);
    tensor<float> dy(y.shape());
    for (index_t i = 0; i < dy.numel(); ++i) dy.data()[i] = nd(rng);
    time_pass(st, conv, x, dy, pass);
    st.SetItemsProcessed(st.iterations() * N);
    st.SetBytesProcessed(st.iterations() * (x.numel() + y.numel()) * index_t(sizeof(float)));
}

void shapes_stride2(benchmark::internal::Benchmark* b) {
    for (const auto& s : std::vector<std::pair<int, int>>{{16, 32}, {32, 16}, {16, 28}, {32, 14}})
        b->Args({s.first, s.second});
    b->ArgNames({"C", "H"})->Unit(benchmark::kMicrosecond);
}

void shapes(benchmark::internal::Benchmark* b) {
    for (const auto& s : std::vector<std::pair<int, int>>{{16, 32}, {32, 16}, {64, 8}, {16, 28}, {32, 14}, {64, 7}})
        b->Args({s.first, s.second});
    b->ArgNames({"C", "H"})->Unit(benchmark::kMicrosecond);
}
}  // namespace

BENCHMARK_CAPTURE(weight_grad, Eigen, false)->Apply(shapes);
BENCHMARK_CAPTURE(weight_grad, AVX512_transposed, true)->Apply(shapes);
BENCHMARK(weight_grad_shifted)->Apply(shapes);
BENCHMARK_CAPTURE(forward, im2col, false)->Apply(shapes);
BENCHMARK_CAPTURE(forward, shifted, true)->Apply(shapes);
BENCHMARK_CAPTURE(forward_winograd, pixel_major, false)->Apply(shapes);
BENCHMARK_CAPTURE(forward_winograd, planar, true)->Apply(shapes);
BENCHMARK_CAPTURE(forward_winograd, f4_pixel_major, false, 4)->Apply(shapes);
BENCHMARK_CAPTURE(forward_winograd, f4_planar, true, 4)->Apply(shapes);
BENCHMARK_CAPTURE(layer, forward_direct, nn::conv_algorithm::direct, layer_pass::forward)->Apply(shapes);
BENCHMARK_CAPTURE(layer, forward_winograd, nn::conv_algorithm::winograd, layer_pass::forward)->Apply(shapes);
BENCHMARK_CAPTURE(layer, forward_winograd_2x2, nn::conv_algorithm::winograd_2x2, layer_pass::forward)->Apply(shapes);
BENCHMARK_CAPTURE(layer, input_grad_direct, nn::conv_algorithm::direct, layer_pass::input_grad)->Apply(shapes);
BENCHMARK_CAPTURE(layer, input_grad_winograd, nn::conv_algorithm::winograd, layer_pass::input_grad)->Apply(shapes);
BENCHMARK_CAPTURE(layer, input_grad_winograd_2x2, nn::conv_algorithm::winograd_2x2, layer_pass::input_grad)->Apply(shapes);
BENCHMARK_CAPTURE(layer, weight_grad_direct, nn::conv_algorithm::direct, layer_pass::weight_grad)->Apply(shapes);
BENCHMARK_CAPTURE(layer, weight_grad_winograd, nn::conv_algorithm::winograd, layer_pass::weight_grad)->Apply(shapes);
BENCHMARK_CAPTURE(layer, weight_grad_winograd_2x2, nn::conv_algorithm::winograd_2x2, layer_pass::weight_grad)->Apply(shapes);
BENCHMARK_CAPTURE(layer_stride2, forward_3x3, 3, layer_pass::forward)->Apply(shapes_stride2);
BENCHMARK_CAPTURE(layer_stride2, input_grad_3x3, 3, layer_pass::input_grad)->Apply(shapes_stride2);
BENCHMARK_CAPTURE(layer_stride2, weight_grad_3x3, 3, layer_pass::weight_grad)->Apply(shapes_stride2);
BENCHMARK_CAPTURE(layer_stride2, forward_1x1, 1, layer_pass::forward)->Apply(shapes_stride2);
BENCHMARK_CAPTURE(layer_stride2, input_grad_1x1, 1, layer_pass::input_grad)->Apply(shapes_stride2);
BENCHMARK_MAIN();
