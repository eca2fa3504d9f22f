// SPDX-License-Identifier: MIT
// Normalization benchmarks: shiftnorm BN / RobustNorm vs oneDNN BN vs a copy loop. Threads: both
// sides take OMP_NUM_THREADS (run with OMP_NUM_THREADS=1 and =2 for the one- and two-thread rows);
// the copy loop is always one thread.
//
// Bytes processed count the MINIMUM traffic of each operation (performance.md): forward
// training and inference 2T (read x, write y), backward 3T (read x, dy; write dx), copy 2T, so
// the printed GB/s of every row is comparable with the copy loop's.
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <dnnl.hpp>

#include "shiftnorm/shiftnorm.hpp"

namespace {
using namespace shiftnorm;

const std::vector<shape4> shapes = {
    {128, 16, 32, 32}, {128, 32, 16, 16}, {128, 64, 8, 8},                         // CIFAR ResNet
    {50, 64, 112, 112}, {50, 256, 56, 56}, {50, 64, 56, 56},   {50, 512, 28, 28},  // ResNet-50
    {50, 128, 28, 28},  {50, 1024, 14, 14}, {50, 256, 14, 14}, {50, 2048, 7, 7}, {50, 512, 7, 7}};

std::string name(const shape4& s) {
    return std::to_string(s.n) + "x" + std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w);
}

tensor<float> random(shape4 s, unsigned seed) {
    tensor<float> t(s);
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0.5f, 2.f);
    for (auto& v : t) v = d(g);
    return t;
}

void set_bytes(benchmark::State& st, const shape4& s, int tensors) {
    st.SetBytesProcessed(int64_t(st.iterations()) * s.numel() * int64_t(sizeof(float)) * tensors);
}

// ---- shiftnorm -------------------------------------------------------------------------------
//! The `_CPUchannelmajor` rows force the channel-major schedule policy (the default,
//! auto_schedule, streams planes on all these shapes): the two schedules compared in one run.

template <class Layer = batch_norm<population>>
void bn_fwd_train(benchmark::State& st, shape4 s) {
    auto x = random(s, 1);
    tensor<float> y(s);
    Layer bn(s.c);
    for (auto _ : st) {
        bn.forward_training(x, y.view());
        benchmark::DoNotOptimize(y.data());
    }
    set_bytes(st, s, 2);
}
template <class Layer = batch_norm<population>>
void bn_fwd_infer(benchmark::State& st, shape4 s) {
    auto x = random(s, 1);
    tensor<float> y(s);
    Layer bn(s.c);
    for (auto _ : st) {
        bn.forward_inference(x, y.view());
        benchmark::DoNotOptimize(y.data());
    }
    set_bytes(st, s, 2);
}
template <class Layer = batch_norm<population>>
void bn_bwd(benchmark::State& st, shape4 s) {
    auto x = random(s, 1), dy = random(s, 2);
    tensor<float> y(s), dx(s);
    Layer bn(s.c);
    bn.forward_training(x, y.view());
    for (auto _ : st) {
        bn.backward(x, dy, dx.view());
        benchmark::DoNotOptimize(dx.data());
    }
    set_bytes(st, s, 3);
}
void rn_fwd_train(benchmark::State& st, shape4 s) {
    auto x = random(s, 1);
    tensor<float> y(s);
    robust_norm<> rn(s.c);
    for (auto _ : st) {
        rn.forward_training(x, y.view());
        benchmark::DoNotOptimize(y.data());
    }
    set_bytes(st, s, 2);
}
//! One training step: forward_training + backward (RobustNorm's backward locates the arg-extremes
//! of the fresh forward, so the step is the fair unit to compare with BN).
template <class Layer>
void train_step(benchmark::State& st, shape4 s) {
    auto x = random(s, 1), dy = random(s, 2);
    tensor<float> y(s), dx(s);
    Layer layer(s.c);
    for (auto _ : st) {
        layer.forward_training(x, y.view());
        layer.backward(x, dy, dx.view());
        benchmark::DoNotOptimize(dx.data());
    }
    set_bytes(st, s, 5);  // minimum traffic of the pair: fwd 2T + bwd 3T
}
void copy_loop(benchmark::State& st, shape4 s) {
    auto x = random(s, 1);
    tensor<float> y(s);
    for (auto _ : st) {
        std::memcpy(y.data(), x.data(), std::size_t(x.numel()) * sizeof(float));
        benchmark::DoNotOptimize(y.data());
        benchmark::ClobberMemory();
    }
    set_bytes(st, s, 2);
}

// ---- oneDNN 2.6 batch normalization -----------------------------------------------------------
enum class dnnl_op { fwd_train, fwd_infer, bwd };
void onednn_bn(benchmark::State& st, shape4 s, dnnl_op op, dnnl::memory::format_tag tag) {
    using namespace dnnl;
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    memory::dims dims{s.n, s.c, s.h, s.w};
    auto md = memory::desc(dims, memory::data_type::f32, tag);
    const auto flags = normalization_flags::use_scale | normalization_flags::use_shift |
                       (op == dnnl_op::fwd_infer ? normalization_flags::use_global_stats : normalization_flags::none);
    const auto pk = op == dnnl_op::fwd_infer ? prop_kind::forward_inference : prop_kind::forward_training;
    batch_normalization_forward::desc fd(pk, md, 1e-5f, flags);
    batch_normalization_forward::primitive_desc fpd(fd, eng);
    auto src = random(s, 1), diff = random(s, 2);
    memory src_m(md, eng), dst_m(md, eng), dd_m(md, eng), ds_m(md, eng);
    std::memcpy(src_m.get_data_handle(), src.data(), src.size() * 4);  // layout-agnostic random data
    std::memcpy(dd_m.get_data_handle(), diff.data(), diff.size() * 4);
    auto cmd = memory::desc({s.c}, memory::data_type::f32, memory::format_tag::x);
    memory scale(cmd, eng), shift(cmd, eng), mean(cmd, eng), var(cmd, eng), dscale(cmd, eng), dshift(cmd, eng);
    for (auto* m : {&scale, &var}) std::fill_n(static_cast<float*>(m->get_data_handle()), s.c, 1.f);
    for (auto* m : {&shift, &mean}) std::fill_n(static_cast<float*>(m->get_data_handle()), s.c, 0.f);
    batch_normalization_forward fwd(fpd);
    std::unordered_map<int, memory> fargs{{DNNL_ARG_SRC, src_m},     {DNNL_ARG_DST, dst_m},
                                          {DNNL_ARG_SCALE, scale},   {DNNL_ARG_SHIFT, shift},
                                          {DNNL_ARG_MEAN, mean},     {DNNL_ARG_VARIANCE, var}};
    if (op == dnnl_op::bwd) {
        fwd.execute(strm, fargs);
        strm.wait();
        batch_normalization_backward::desc bd(prop_kind::backward, md, md, 1e-5f,
                                              normalization_flags::use_scale | normalization_flags::use_shift);
        batch_normalization_backward::primitive_desc bpd(bd, eng, fpd);
        batch_normalization_backward bwd(bpd);
        std::unordered_map<int, memory> bargs{{DNNL_ARG_SRC, src_m},          {DNNL_ARG_DIFF_DST, dd_m},
                                              {DNNL_ARG_MEAN, mean},          {DNNL_ARG_VARIANCE, var},
                                              {DNNL_ARG_SCALE, scale},        {DNNL_ARG_SHIFT, shift},
                                              {DNNL_ARG_DIFF_SRC, ds_m},
                                              {DNNL_ARG_DIFF_SCALE, dscale},  {DNNL_ARG_DIFF_SHIFT, dshift}};
        for (auto _ : st) {
            bwd.execute(strm, bargs);
            strm.wait();
        }
        set_bytes(st, s, 3);
        return;
    }
    for (auto _ : st) {
        fwd.execute(strm, fargs);
        strm.wait();
    }
    set_bytes(st, s, 2);
}

int register_all() {
    using tag = dnnl::memory::format_tag;
    using cm_bn = batch_norm<population, affine, fp32, backend::cpu::channel_major_schedule>;
    for (const auto& s : shapes) {
        const std::string n = name(s);
        benchmark::RegisterBenchmark(("BM_Copy_CPU/" + n).c_str(), copy_loop, s);
        benchmark::RegisterBenchmark(("BM_BNForwardTraining_CPU/" + n).c_str(), bn_fwd_train<>, s);
        benchmark::RegisterBenchmark(("BM_BNForwardTraining_CPUchannelmajor/" + n).c_str(), bn_fwd_train<cm_bn>, s);
        benchmark::RegisterBenchmark(("BM_BNForwardTraining_OneDNN_nchw/" + n).c_str(), onednn_bn, s, dnnl_op::fwd_train, tag::nchw);
        benchmark::RegisterBenchmark(("BM_BNForwardTraining_OneDNN_nChw16c/" + n).c_str(), onednn_bn, s, dnnl_op::fwd_train, tag::nChw16c);
        benchmark::RegisterBenchmark(("BM_BNForwardInference_CPU/" + n).c_str(), bn_fwd_infer<>, s);
        benchmark::RegisterBenchmark(("BM_BNForwardInference_OneDNN_nchw/" + n).c_str(), onednn_bn, s, dnnl_op::fwd_infer, tag::nchw);
        benchmark::RegisterBenchmark(("BM_BNForwardInference_OneDNN_nChw16c/" + n).c_str(), onednn_bn, s, dnnl_op::fwd_infer, tag::nChw16c);
        benchmark::RegisterBenchmark(("BM_BNBackward_CPU/" + n).c_str(), bn_bwd<>, s);
        benchmark::RegisterBenchmark(("BM_BNBackward_CPUchannelmajor/" + n).c_str(), bn_bwd<cm_bn>, s);
        benchmark::RegisterBenchmark(("BM_BNBackward_OneDNN_nchw/" + n).c_str(), onednn_bn, s, dnnl_op::bwd, tag::nchw);
        benchmark::RegisterBenchmark(("BM_BNBackward_OneDNN_nChw16c/" + n).c_str(), onednn_bn, s, dnnl_op::bwd, tag::nChw16c);
        benchmark::RegisterBenchmark(("BM_RNForwardTraining_CPU/" + n).c_str(), rn_fwd_train, s);
        benchmark::RegisterBenchmark(("BM_BNTrainingStep_CPU/" + n).c_str(), train_step<batch_norm<population>>, s);
        benchmark::RegisterBenchmark(("BM_RNTrainingStep_CPU/" + n).c_str(), train_step<robust_norm<>>, s);
    }
    return 0;
}
const int registered = register_all();
}  // namespace

BENCHMARK_MAIN();
