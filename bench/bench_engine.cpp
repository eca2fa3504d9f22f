// SPDX-License-Identifier: MIT
// Whole-network engine speed and thread scaling (issue 14), in one process: a training step
// (forward, softmax cross-entropy, backward, SGD with momentum and weight decay; batch 128) of
// the CIFAR ResNet-20 (32x32x3) and small-resnet8 (28x28x1), and eval inference through
// nn::infer (batch 500) of ResNet-20 and ResNet-56, each at 1 and 2 threads (the last argument),
// each convolution of small-resnet8 alone (conv_layer: training forward + backward), and the
// GEMM alone on the stride-2 layers' shapes (gemm_shape).
// The peer of a 2-thread row is the 1-thread row of the same network in the same run: the
// items_per_second ratio is the thread scaling. Random weights and inputs (timing only; the
// kernels do not depend on the values, and flush-to-zero is on as in `shiftnorm train`).
// Run: bench_engine --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//      --benchmark_report_aggregates_only=true   (then compare the medians' img/s)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "shiftnorm/core/denormals.hpp"
#include "shiftnorm/engine.hpp"
#include "shiftnorm/models/zoo.hpp"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/train/sgd.hpp"

namespace {
using namespace shiftnorm;

struct setup {
    nn::sequential net;
    std::unique_ptr<train::sgd> opt;
    tensor<float> x, out;
    std::vector<std::int32_t> y;
};

//! The network `name` (seeded Kaiming weights, no input gradient) and its SGD (momentum 0.9,
//! weight decay 5e-4), as every training benchmark here runs it.
void build_net(const std::string& name, index_t in_channels, nn::sequential& net, std::unique_ptr<train::sgd>& opt) {
    models::model_spec spec;
    spec.name = name;
    spec.in_channels = in_channels;
    net = models::make_model<batch_norm<population>>(spec);
    nn::rng_type g(1);
    net.reset_parameters(g);
    net.set_input_grad(false);
    train::sgd_options o;
    o.momentum = 0.9;
    o.weight_decay = 5e-4;
    opt = std::make_unique<train::sgd>(net.parameters(), o);
}

//! One network per (name, batch), built once: its buffers are warm when a benchmark starts.
setup& get(const std::string& name, index_t batch, bool training) {
    static std::map<std::string, std::unique_ptr<setup>> cache;
    auto& s = cache[name + (training ? "/train" : "/eval")];
    if (s) return *s;
    s = std::make_unique<setup>();
    const bool fmnist = name.rfind("small-resnet", 0) == 0;
    const index_t channels = fmnist ? 1 : 3, hw = fmnist ? 28 : 32;
    build_net(name, channels, s->net, s->opt);
    s->x = tensor<float>(shape4{batch, channels, hw, hw});
    std::mt19937 rng(2);
    std::normal_distribution<float> nd;
    for (auto& v : s->x) v = nd(rng);
    s->y.resize(std::size_t(batch));
    for (index_t i = 0; i < batch; ++i) s->y[std::size_t(i)] = std::int32_t(i % 10);
    return *s;
}

void threads(benchmark::State& st) {
    nn::set_num_threads(int(st.range(0)));
    set_flush_denormals_all_threads(true);
}

void train_step(benchmark::State& st, const char* name) {
    threads(st);
    setup& s = get(name, 128, true);
    nn::softmax_cross_entropy ce;
    auto step = [&] {
        s.net.zero_grad();
        ce.forward(s.net.forward(s.x, nn::mode::train), s.y);
        s.net.backward(ce.backward());
        s.opt->step(0.01);
    };
    step();  // warm-up at this thread count
    for (auto _ : st) step();
    st.SetItemsProcessed(st.iterations() * 128);
    st.counters["threads"] = double(st.range(0));
}

//! The upper bound of a data-parallel training step (issue 14; timing only, not a training
//! method): two replicas of the network, each a half batch (64) on one thread of a 2-thread
//! team, batch norms with their half batch's statistics (ghost batch norm: no reduction across
//! the replicas), then the replicas' gradients summed, SGD on the first and its weights copied to
//! the second. barrier = 1 adds one team barrier after every batch norm's forward (an observer:
//! the ReLU after it is then not fused), the synchronisation a real data-parallel step needs for
//! the whole batch's statistics (and again in backward, not counted here). Compare with
//! train_step/small_resnet8/2 (docs/benchmarks.md, "A data-parallel step, measured").
void train_step_replicas(benchmark::State& st, const char* name) {
    const bool barrier = st.range(0) != 0;
    set_flush_denormals_all_threads(true);
    struct replica {
        nn::sequential net;
        std::unique_ptr<train::sgd> opt;
        tensor<float> x;
        std::vector<std::int32_t> y;
        nn::softmax_cross_entropy ce;
        nn::param_set ps;
    };
    auto make = [&] {
        auto r = std::make_unique<replica>();
        const setup& full = get(name, 128, true);  // the input and labels: the halves of its batch
        build_net(name, full.x.shape().c, r->net, r->opt);
        r->ps = r->net.parameters();
        const shape4 h = full.x.shape();
        r->x = tensor<float>(shape4{64, h.c, h.h, h.w});
        r->y.resize(64);
        if (barrier)
            for (auto* bn : nn::find_all<nn::norm_layer<batch_norm<population>>>(r->net))
                bn->observer = [](const tensor<float>&, const tensor<float>&, nn::mode) {
SHIFTNORM_OMP(omp barrier)
                };
        return r;
    };
    auto a = make(), b = make();
    const setup& full = get(name, 128, true);
    const std::size_t half = std::size_t(a->x.size());
    std::copy(full.x.data(), full.x.data() + half, a->x.data());
    std::copy(full.x.data() + half, full.x.data() + 2 * half, b->x.data());
    std::copy(full.y.begin(), full.y.begin() + 64, a->y.begin());
    std::copy(full.y.begin() + 64, full.y.end(), b->y.begin());
#if defined(_OPENMP)
    omp_set_max_active_levels(1);  // the layers' own parallel loops run on their replica's thread
#endif
    auto step = [&] {
SHIFTNORM_OMP(omp parallel num_threads(2))
        {
            replica& r = nn::detail::thread_id() == 0 ? *a : *b;
            r.net.zero_grad();
            r.ce.forward(r.net.forward(r.x, nn::mode::train), r.y);
            r.net.backward(r.ce.backward());
SHIFTNORM_OMP(omp barrier)
SHIFTNORM_OMP(omp for schedule(static))
            for (std::size_t k = 0; k < a->ps.params.size(); ++k)
                if (float* g = a->ps.params[k].grad) {
                    const float* h = b->ps.params[k].grad;
                    for (index_t i = 0; i < a->ps.params[k].size; ++i) g[i] += h[i];
                }
        }
        a->opt->step(0.01);
        for (std::size_t k = 0; k < a->ps.params.size(); ++k)
            std::copy(a->ps.params[k].value, a->ps.params[k].value + a->ps.params[k].size, b->ps.params[k].value);
    };
SHIFTNORM_OMP(omp parallel num_threads(2))
    set_flush_denormals(true);
    step();
    for (auto _ : st) step();
    st.SetItemsProcessed(st.iterations() * 128);
}

void eval_batch(benchmark::State& st, const char* name) {
    threads(st);
    setup& s = get(name, 500, false);
    nn::infer(s.net, s.x, nn::mode::eval, s.out);
    for (auto _ : st) {
        nn::infer(s.net, s.x, nn::mode::eval, s.out);
        benchmark::DoNotOptimize(s.out.data());
    }
    st.SetItemsProcessed(st.iterations() * 500);
    st.counters["threads"] = double(st.range(0));
}

//! One convolution of small-resnet8 as a training step runs it (batch 128, one thread): forward,
//! then backward with the weight gradient and the input gradient (none for the first layer,
//! whose input is the data). Args: in channels, out channels, plane, kernel, stride (padding
//! k / 2). The per-layer split of a Fashion-MNIST training step (docs/benchmarks.md, session 20).
void conv_layer(benchmark::State& st) {
    const index_t C = st.range(0), O = st.range(1), H = st.range(2), k = st.range(3), s = st.range(4);
    nn::set_num_threads(1);
    set_flush_denormals_all_threads(true);
    nn::conv2d conv(C, O, k, s, k / 2);
    conv.set_input_grad(C != 1);
    std::mt19937 g(3);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    tensor<float> x({128, C, H, H});
    for (index_t i = 0; i < x.numel(); ++i) x.data()[i] = nd(g);
    tensor<float> dy(conv.output_shape(x.shape()));
    for (index_t i = 0; i < dy.numel(); ++i) dy.data()[i] = nd(g);
    conv.forward(x, nn::mode::train);
    conv.backward(dy);
    for (auto _ : st) {
        benchmark::DoNotOptimize(conv.forward(x, nn::mode::train).data());
        benchmark::DoNotOptimize(conv.backward(dy).data());
    }
    st.SetItemsProcessed(st.iterations() * 128);
    st.SetBytesProcessed(st.iterations() * (x.numel() + dy.numel()) * index_t(sizeof(float)));
}

//! The AVX-512 GEMM alone on shapes of the stride-2 layers (one thread, hot caches):
//! C[M x N] = A[M x K] B[K x N]; the GFLOP/s counter is 2 M N K per call.
void gemm_shape(benchmark::State& st) {
    const index_t M = st.range(0), N = st.range(1), K = st.range(2);
    nn::set_num_threads(1);
    std::vector<float> a(std::size_t(M * K), 0.01f), b(std::size_t(K * N), 0.02f), c(std::size_t(M * N));
    for (auto _ : st) {
        nn::detail::gemm(false, false, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
        benchmark::DoNotOptimize(c.data());
    }
    st.counters["GFLOP/s"] = benchmark::Counter(2.0 * double(M * N * K) * double(st.iterations()),
                                                benchmark::Counter::kIsRate, benchmark::Counter::kIs1000);
    st.SetBytesProcessed(st.iterations() * (M * K + K * N + M * N) * index_t(sizeof(float)));
}

BENCHMARK_CAPTURE(train_step, resnet20, "resnet20")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, small_resnet8, "small-resnet8")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step_replicas, small_resnet8, "small-resnet8")->ArgName("barrier")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(eval_batch, resnet20, "resnet20")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(eval_batch, resnet56, "resnet56")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK(conv_layer)
    ->ArgNames({"C", "O", "H", "k", "s"})
    ->Args({1, 16, 28, 3, 1})
    ->Args({16, 16, 28, 3, 1})
    ->Args({16, 32, 28, 3, 2})
    ->Args({16, 32, 28, 1, 2})
    ->Args({32, 32, 14, 3, 1})
    ->Args({32, 64, 14, 3, 2})
    ->Args({32, 64, 14, 1, 2})
    ->Args({64, 64, 7, 3, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK(gemm_shape)->ArgNames({"M", "N", "K"})->Args({32, 196, 144})->Args({64, 49, 288})->Args({64, 48, 288})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
