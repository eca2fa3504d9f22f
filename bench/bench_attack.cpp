// SPDX-License-Identifier: MIT
// Seed 003's cost: one PGD step (forward + input backward + projected sign step) on CIFAR ResNet-20
// against one SGD training step on the same batch, same binary and run, one thread (issue 12's
// target: PGD step <= 1.2x training step). Items are images. Run: bench_attack --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "shiftnorm/attack/attacks.hpp"
#include "shiftnorm/core/random.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/nn/loss.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/train/sgd.hpp"

namespace {
using namespace shiftnorm;

struct setup {
    nn::sequential net;
    tensor<float> x;
    std::vector<std::int32_t> y;
    explicit setup(index_t n) {
        models::cifar_resnet_options o;
        o.depth = 20;
        net = models::cifar_resnet<batch_norm<population>>(o);
        nn::rng_type g(1);
        net.reset_parameters(g);
        x = tensor<float>(shape4{n, 3, 32, 32});
        random_engine r(2);
        for (auto& v : x) v = float(r.uniform());
        for (index_t i = 0; i < n; ++i) y.push_back(std::int32_t(i % 10));
    }
};

//! One SGD step as the trainer runs it: train-mode forward, loss, backward without the input
//! gradient (the trainer switches it off), optimizer step.
void BM_TrainStep_ResNet20(benchmark::State& st) {
    nn::set_num_threads(1);
    setup s(st.range(0));
    s.net.set_input_grad(false);
    train::sgd opt(s.net.parameters());
    nn::softmax_cross_entropy ce;
    for (auto _ : st) {
        s.net.zero_grad();
        ce.forward(s.net.forward(s.x, nn::mode::train), s.y);
        s.net.backward(ce.backward());
        opt.step(0.01);
    }
    st.SetItemsProcessed(std::int64_t(st.iterations()) * st.range(0));
}

//! One PGD step: forward in the attack's mode (arg 1: 0 = population statistics P, 1 = batch
//! statistics B), loss, backward to the input image, sign step, projection, clipping.
void BM_PGDStep_ResNet20(benchmark::State& st) {
    nn::set_num_threads(1);
    setup s(st.range(0));
    attack::model m(s.net, st.range(1) ? nn::mode::batch : nn::mode::eval, attack::input_space::pixel,
                    {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
    attack::attack_options o;
    o.kind = attack::attack_kind::bim, o.steps = 1;  // one step of the shared L-inf loop
    for (auto _ : st) {
        auto xa = attack::run(m, s.x, s.y, o, {0.0f, 1.0f});
        benchmark::DoNotOptimize(xa.data());
    }
    st.SetItemsProcessed(std::int64_t(st.iterations()) * st.range(0));
}

}  // namespace

BENCHMARK(BM_TrainStep_ResNet20)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_PGDStep_ResNet20)->Args({128, 0})->Args({128, 1})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
