// SPDX-License-Identifier: MIT
// Regression benchmark on degenerate data (issue 14): a ResNet-20 training step (forward, backward,
// SGD with momentum) on a batch whose gradients are subnormal floats, the situation of a network
// that has nearly converged on its data, against the same step on ordinary gradients, with
// flush-to-zero on (the engine's default) and off. With FTZ/DAZ on, the degenerate step must cost
// what the ordinary one costs; off, it shows the ~100-cycle microcode assist of every subnormal
// operation. Items are images; one thread. Run: bench_denormals --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "shiftnorm/core/denormals.hpp"
#include "shiftnorm/core/random.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/train/sgd.hpp"

namespace {
using namespace shiftnorm;

//! One SGD step whose loss gradient (diff of the logits) has magnitude `grad_scale`: 1e-3 is an
//! ordinary step, 1e-39 (below FLT_MIN = 1.2e-38) makes every backward product and every momentum
//! update subnormal, as in a network whose loss has gone to ~0.
void training_step(benchmark::State& st, float grad_scale, bool flush) {
    nn::set_num_threads(1);
    const bool before = set_flush_denormals(flush);
    const index_t n = 32;
    models::cifar_resnet_options o;
    o.depth = 20;
    auto net = models::cifar_resnet<batch_norm<population>>(o);
    nn::rng_type g(1);
    net.reset_parameters(g);
    net.set_input_grad(false);
    tensor<float> x(shape4{n, 3, 32, 32});
    random_engine r(2);
    for (auto& v : x) v = float(r.uniform());
    train::sgd_options so;
    so.momentum = 0.9;
    so.weight_decay = 0.0;  // decay would add normal-sized terms to the subnormal gradients
    train::sgd opt(net.parameters(), so);
    tensor<float> dy(shape4{n, 10, 1, 1});
    for (auto& v : dy) v = grad_scale * float(r.uniform() - 0.5);
    for (auto _ : st) {
        net.zero_grad();
        benchmark::DoNotOptimize(net.forward(x, nn::mode::train).data());
        net.backward(dy);
        opt.step(0.01);
    }
    st.SetItemsProcessed(std::int64_t(st.iterations()) * n);
    set_flush_denormals(before);
}

//! range(0): the exponent e of the logit gradient's scale 10^e; range(1): 1 = flush-to-zero on.
void BM_TrainStep(benchmark::State& st) {
    float scale = 1.0f;
    for (long e = st.range(0); e < 0; ++e) scale *= 0.1f;
    training_step(st, scale, st.range(1) != 0);
}
}  // namespace

// -3: ordinary gradients; -33, -36, -39: 67, 68,464 and 269,717 of ResNet-20's 269,722 parameter
// gradients come out subnormal (counted without flushing)
BENCHMARK(BM_TrainStep)->ArgNames({"grad_exp", "flush"})->ArgsProduct({{-3, -33, -36, -39}, {1, 0}})
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
