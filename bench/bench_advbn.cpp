// SPDX-License-Identifier: MIT
// Seed 001's cost: one AdvBN training step of a CIFAR ResNet-20 head (split after layer1: PGD with
// m steps on d_mu/d_sigma + clean and adversarial passes) against one plain training step of the
// same head (the --control), same binary and run, one thread. Issue 13's target: AdvBN step <=
// (m + 2)x the plain step. Items are images. Run: bench_advbn --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "shiftnorm/advbn/fine_tune.hpp"
#include "shiftnorm/core/random.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/norm/batch_norm.hpp"

namespace {
using namespace shiftnorm;
using bn = batch_norm<population>;

struct setup {
    advbn::split_network<bn> net;
    tensor<float> x, f;
    std::vector<std::int32_t> y;
    explicit setup(index_t n) : net(models::cifar_resnet<bn>(20), "layer1") {
        nn::rng_type g(1);
        net.reset_parameters(g);
        x = tensor<float>(shape4{n, 3, 32, 32});
        random_engine r(2);
        for (auto& v : x) v = float(r.uniform());
        for (index_t i = 0; i < n; ++i) y.push_back(std::int32_t(i % 10));
        f = net.front(x);
    }
};

//! arg 0: batch; arg 1: 0 = plain step of the head (control), m > 0 = AdvBN step with m PGD steps.
//! The front's forward is not timed (it is the same for both and runs once per step).
void BM_HeadStep_ResNet20(benchmark::State& st) {
    nn::set_num_threads(1);
    setup s(st.range(0));
    const bool control = st.range(1) == 0;
    train::sgd opt(s.net.head_parameters(!control), {0.9, 1e-4});
    advbn::attack_options a;
    a.steps = control ? 1 : int(st.range(1));
    adversarial_stats adv;
    tensor<float> f_adv;
    nn::softmax_cross_entropy ce;
    for (auto _ : st) {
        advbn::accumulate_step(s.net, adv, s.f, s.y, control, a, f_adv, ce);
        opt.step(1e-3);
    }
    st.SetItemsProcessed(std::int64_t(st.iterations()) * st.range(0));
    st.counters["pgd_steps"] = double(st.range(1));
}

}  // namespace

BENCHMARK(BM_HeadStep_ResNet20)->Args({128, 0})->Args({128, 6})->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
