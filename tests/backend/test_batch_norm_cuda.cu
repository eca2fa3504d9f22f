// SPDX-License-Identifier: MIT
// CUDA batch_norm against the CPU layer on the same inputs: all modes, sources, backward, errors.
#include <catch2/catch.hpp>

#include "backend/cuda_parity.cuh"

using namespace shiftnorm;
namespace cu = shiftnorm::backend::cuda;

namespace {

template <class Source, class Affine>
struct pair_of_layers {
    shiftnorm::batch_norm<Source, Affine> cpu;
    cu::batch_norm<Source, Affine> gpu;
    //! Parameters cycle over 16 values (scale 0.5 .. 4.25): the outputs' absolute tolerances hold
    //! on that scale. (A pattern growing with k reached scale 2250 at 9000 channels, where even the
    //! CPU layer is 11.5x outside the output tolerance against a double reference.)
    explicit pair_of_layers(index_t c) : cpu(c), gpu(c) {
        for (index_t k = 0; k < c; ++k) {
            const float j = float(k % 16);
            cpu.scale[k] = 0.5f + 0.25f * j, cpu.shift[k] = 0.1f - 0.2f * j;
        }
        gpu.copy_from(cpu);
    }
};

//! Tolerance for outputs that divide by the batch std: 1e-5, loosened at large |mean|/std
//! where x - mean in fp32 already carries ulp(|mean|) of absolute error on both backends.
double out_atol(double ratio) { return ratio > 10 ? 3e-4 : 2e-5; }

void check_close(const char* what, const tensor<float>& gpu, const tensor<float>& cpu, double atol, double rtol) {
    INFO(what);
    CHECK(test::worst_error(gpu, cpu, atol, rtol) <= 1.0);
}
void check_close(const char* what, const std::vector<float>& gpu, const std::vector<float>& cpu, double atol, double rtol) {
    INFO(what);
    REQUIRE(gpu.size() == cpu.size());
    CHECK(test::worst_error(gpu, cpu, atol, rtol) <= 1.0);
}

template <class Source, class Affine>
void forward_backward_parity(shape4 s, double ratio, unsigned seed) {
    INFO("shape " << s << " |mean|/std " << ratio);
    pair_of_layers<Source, Affine> L(s.c);
    const auto x = test::hostile_tensor(s, seed, ratio);
    tensor<float> y(s), dx(s), dy(s);
    for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(std::sin(0.37 * double(i) + 0.1));
    auto xd = test::to_device(x), dyd = test::to_device(dy);
    cu::device_tensor<float> yd(s), dxd(s);

    // training forward: output, saved statistics, running buffers
    L.cpu.forward_training(x, y.view());
    L.gpu.forward_training(xd.view(), yd.view());
    check_close("training output", yd.to_host(), y, out_atol(ratio), 1e-5);
    check_close("saved mean", L.gpu.saved_mean(), L.cpu.saved_mean(), 1e-6, 1e-6);
    check_close("saved inv_std", L.gpu.saved_inv_std(), L.cpu.saved_inv_std(), 0, 2e-5);
    L.gpu.sync_statistics();  // forward_training folds the running buffers lazily
    check_close("running mean", L.gpu.source.running.stats.mean, L.cpu.source.running.stats.mean, 1e-7, 1e-6);
    check_close("running var", L.gpu.source.running.stats.var, L.cpu.source.running.stats.var, 1e-7, 1e-5);
    CHECK(L.gpu.source.running.num_batches_tracked == L.cpu.source.running.num_batches_tracked);

    // training backward: input gradient and accumulated parameter gradients
    L.cpu.backward(x, dy, dx.view());
    L.gpu.backward(xd.view(), dyd.view(), dxd.view());
    check_close("training diff_src", dxd.to_host(), dx, 1e-4, 1e-3);
    shiftnorm::batch_norm<Source, Affine> back(s.c);
    L.gpu.copy_to(back);
    check_close("training diff_scale", back.diff_scale, L.cpu.diff_scale, 1e-4, 1e-4);
    check_close("training diff_shift", back.diff_shift, L.cpu.diff_shift, 1e-4, 1e-5);

    // inference forward and frozen-statistics backward
    L.cpu.forward_inference(x, y.view());
    L.gpu.forward_inference(xd.view(), yd.view());
    check_close("inference output", yd.to_host(), y, Source::uses_batch_at_inference ? out_atol(ratio) : 1e-5, 1e-5);
    L.cpu.backward_inference(x, dy, dx.view());
    L.gpu.backward_inference(xd.view(), dyd.view(), dxd.view());
    check_close("inference diff_src", dxd.to_host(), dx, 1e-5, 1e-4);
    L.gpu.copy_to(back);
    check_close("inference diff_scale", back.diff_scale, L.cpu.diff_scale, 1e-3, 1e-4);
    check_close("inference diff_shift", back.diff_shift, L.cpu.diff_shift, 1e-4, 1e-5);
}

}  // namespace

TEST_CASE("cuda batch_norm<population> matches the CPU layer", "[cuda][batch_norm]") {
    unsigned seed = 3;
    for (shape4 s : test::parity_shapes()) {
        if (s.per_channel() < 2) continue;
        for (double ratio : {1.0, 1e3}) {
            forward_backward_parity<population, affine>(s, ratio, seed++);
            forward_backward_parity<population, no_affine>(s, ratio, seed++);
        }
    }
}

TEST_CASE("cuda batch_norm<batch_stats> normalizes inference batches with their own statistics", "[cuda][batch_norm]") {
    for (shape4 s : {shape4{4, 3, 5, 7}, shape4{32, 3, 32, 32}, shape4{8, 5, 1, 1}})
        forward_backward_parity<batch_stats, affine>(s, 1e3, 77);
}

TEST_CASE("cuda batch_norm keeps the running buffers of repeated training steps", "[cuda][batch_norm]") {
    const shape4 s{16, 4, 8, 8};
    pair_of_layers<population, affine> L(s.c);
    L.cpu.source.running.mode = L.gpu.source.running.mode = running_stats<float>::update::cumulative;
    tensor<float> y(s);
    cu::device_tensor<float> yd(s);
    for (unsigned step = 0; step < 5; ++step) {
        const auto x = test::random_tensor(s, 100 + step, 2.0 + step, 1.5);
        auto xd = test::to_device(x);
        L.cpu.forward_training(x, y.view());
        L.gpu.forward_training(xd.view(), yd.view());
    }
    CHECK(L.gpu.pending_folds() <= L.gpu.max_pending_folds);
    L.gpu.sync_statistics();
    CHECK(L.gpu.pending_folds() == 0);
    CHECK(L.gpu.source.running.num_batches_tracked == 5);
    check_close("running mean", L.gpu.source.running.stats.mean, L.cpu.source.running.stats.mean, 1e-6, 1e-6);
    check_close("running var", L.gpu.source.running.stats.var, L.cpu.source.running.stats.var, 1e-6, 1e-5);
}


TEST_CASE("cuda batch_norm forward_training does not wait for the device; folds keep the call order",
          "[cuda][batch_norm][sync]") {
    // Issue 10: forward_training used to copy the moments and synchronize the stream on every
    // call. Now the copy is asynchronous: with a kernel holding the stream for ~0.5 s, the calls
    // return while the stream is still busy, the running buffers are untouched until
    // sync_statistics(), and then equal the CPU layer's after the same 12 steps (more than
    // max_pending_folds, so the ring also wraps and waits for its oldest slot).
    const shape4 s{8, 5, 6, 6};
    pair_of_layers<population, affine> L(s.c);
    cudaStream_t st = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess);
    std::vector<cu::device_tensor<float>> xs;
    std::vector<tensor<float>> hs;
    for (unsigned k = 0; k < 12; ++k) {
        hs.push_back(test::random_tensor(s, 300 + k, 0.5 * k - 2.0, 1.0 + 0.1 * k));
        xs.push_back(test::to_device(hs.back()));
    }
    tensor<float> y(s);
    cu::device_tensor<float> yd(s);
    test::busy_wait_kernel<<<1, 1, 0, st>>>(500000000ull);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    for (int k = 0; k < 3; ++k) L.gpu.forward_training(xs[std::size_t(k)].view(), yd.view(), st);
    CHECK(cudaStreamQuery(st) == cudaErrorNotReady);  // returned without waiting for the stream
    CHECK(L.gpu.pending_folds() == 3);
    CHECK(L.gpu.source.running.num_batches_tracked == 0);
    for (std::size_t k = 3; k < xs.size(); ++k) L.gpu.forward_training(xs[k].view(), yd.view(), st);
    CHECK(L.gpu.pending_folds() <= L.gpu.max_pending_folds);
    for (const auto& h : hs) L.cpu.forward_training(h, y.view());
    L.gpu.sync_statistics();
    CHECK(L.gpu.pending_folds() == 0);
    CHECK(L.gpu.source.running.num_batches_tracked == 12);
    check_close("running mean", L.gpu.source.running.stats.mean, L.cpu.source.running.stats.mean, 1e-6, 1e-6);
    check_close("running var", L.gpu.source.running.stats.var, L.cpu.source.running.stats.var, 1e-6, 1e-5);
    // forward_inference folds by itself: one more training step, then inference matches the CPU
    L.gpu.forward_training(xs[0].view(), yd.view(), st);
    L.cpu.forward_training(hs[0], y.view());
    L.gpu.forward_inference(xs[1].view(), yd.view(), st);
    L.cpu.forward_inference(hs[1], y.view());
    REQUIRE(cudaStreamSynchronize(st) == cudaSuccess);
    check_close("output", yd.to_host(), y, 2e-5, 1e-5);
    CHECK(cudaStreamDestroy(st) == cudaSuccess);
}

TEST_CASE("cuda batch_norm<rectified> and <stats_table> rectify like the CPU layer", "[cuda][batch_norm][rectify]") {
    const shape4 s{8, 3, 6, 6};
    const auto src = test::random_tensor(s, 5, 0.0, 1.0), target = test::random_tensor(s, 6, 1.5, 3.0);
    tensor<float> y(s), y2(s);
    auto srcd = test::to_device(src), targetd = test::to_device(target);
    cu::device_tensor<float> yd(s);
    {
        pair_of_layers<rectified, affine> L(s.c);
        L.cpu.source.options.prior = L.gpu.source.options.prior = 16.0;
        L.cpu.forward_training(src, y.view());
        L.gpu.forward_training(srcd.view(), yd.view());
        L.cpu.forward_rectify(target, y.view());
        L.gpu.forward_rectify(targetd.view(), yd.view());
        check_close("rectified output", yd.to_host(), y, 2e-5, 1e-5);
        check_close("adapted mean", L.gpu.source.adapted.mean, L.cpu.source.adapted.mean, 1e-6, 1e-6);
        check_close("adapted var", L.gpu.source.adapted.var, L.cpu.source.adapted.var, 1e-6, 1e-5);
        L.cpu.forward_inference(target, y2.view());
        L.gpu.forward_inference(targetd.view(), yd.view());
        check_close("inference output after rectification", yd.to_host(), y2, 2e-5, 1e-5);
    }
    {
        pair_of_layers<stats_table, affine> L(s.c);
        L.cpu.source.select(3);
        L.gpu.source.select(3);
        L.cpu.forward_rectify(target, y.view());
        L.gpu.forward_rectify(targetd.view(), yd.view());
        check_close("table output", yd.to_host(), y, 2e-5, 1e-5);
        REQUIRE(L.gpu.source.contains(3));
        check_close("table entry 3 var", L.gpu.source.entries.at(3).var, L.cpu.source.entries.at(3).var, 1e-6, 1e-5);
    }
}

TEST_CASE("cuda batch_norm reports bad arguments before launching", "[cuda][batch_norm][errors]") {
    cu::batch_norm<population> bn(3);
    cu::device_tensor<float> x(shape4{2, 3, 4, 4}), y(shape4{2, 3, 4, 4}), wrong(shape4{2, 4, 4, 4}),
        empty(shape4{0, 3, 4, 4}), one(shape4{1, 3, 1, 1});
    x.zero();
    CHECK_THROWS_AS(bn.forward_training(empty.view(), empty.view()), shape_error);
    CHECK_THROWS_AS(bn.forward_training(wrong.view(), wrong.view()), shape_error);
    CHECK_THROWS_AS(bn.forward_training(one.view(), one.view()), shape_error);  // one value per channel
    CHECK_THROWS_AS(bn.backward(x.view(), x.view(), y.view()), state_error);
    auto host = test::random_tensor(shape4{2, 3, 4, 4}, 1);
    CHECK_THROWS_AS(bn.forward_inference(host.view(), y.view()), value_error);

    cu::batch_norm<population> strict(3, {1e-5, nan_policy::raise});
    auto bad = test::random_tensor(shape4{2, 3, 4, 4}, 2);
    bad[5] = NAN;
    auto badd = test::to_device(bad);
    CHECK_THROWS_AS(strict.forward_training(badd.view(), y.view()), numeric_error);
    CHECK(strict.source.running.num_batches_tracked == 0);  // never updated from a non-finite batch
}

TEST_CASE("cuda batch_norm: calls on two streams do not race on the layer's workspaces", "[cuda][batch_norm][streams]") {
    // forward_inference with a population source uploads statistics and computes coefficients
    // in per-layer device buffers; two calls on different streams, with DIFFERENT statistics in
    // between, must each normalize with their own (scope guard: stream B waits for stream A).
    const shape4 s{64, 16, 32, 32};
    pair_of_layers<population, affine> L(s.c);
    const auto x = test::hostile_tensor(s, 3, 1.0);
    auto xd = test::to_device(x);
    cu::device_tensor<float> ya(s), yb(s);
    cudaStream_t a = nullptr, b = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking) == cudaSuccess);
    REQUIRE(cudaStreamCreateWithFlags(&b, cudaStreamNonBlocking) == cudaSuccess);
    tensor<float> want_a(s), want_b(s);
    for (int round = 0; round < 20; ++round) {
        for (index_t c = 0; c < s.c; ++c) L.gpu.source.running.stats.mean[c] = L.cpu.source.running.stats.mean[c] = 0.1f * float(c);
        L.cpu.forward_inference(x, want_a.view());
        L.gpu.forward_inference(xd.view(), ya.view(), a);
        for (index_t c = 0; c < s.c; ++c) L.gpu.source.running.stats.mean[c] = L.cpu.source.running.stats.mean[c] = -0.3f * float(c);
        L.cpu.forward_inference(x, want_b.view());
        L.gpu.forward_inference(xd.view(), yb.view(), b);
        REQUIRE(cudaStreamSynchronize(a) == cudaSuccess);
        REQUIRE(cudaStreamSynchronize(b) == cudaSuccess);
        check_close("stream a output", ya.to_host(), want_a, 2e-5, 1e-5);
        check_close("stream b output", yb.to_host(), want_b, 2e-5, 1e-5);
    }
    cudaStreamDestroy(a);
    cudaStreamDestroy(b);
}

TEST_CASE("cuda batch_norm<rectified>: mean-only, var-only, both pass kinds and a disabled layer match the CPU layer",
          "[cuda][batch_norm][rectify]") {
    const shape4 s{8, 3, 6, 6};
    const auto src = test::random_tensor(s, 5, 0.0, 1.0), target = test::random_tensor(s, 6, 1.5, 3.0);
    auto srcd = test::to_device(src), targetd = test::to_device(target);
    tensor<float> y(s);
    cu::device_tensor<float> yd(s);
    for (auto what : {adapt_what::both, adapt_what::mean_only, adapt_what::var_only})
        for (auto pass : {rectify_pass::batch, rectify_pass::adapted})
            for (bool enabled : {true, false}) {
                INFO("what " << int(what) << " pass " << int(pass) << " enabled " << enabled);
                pair_of_layers<rectified, affine> L(s.c);
                L.cpu.forward_training(src, y.view());
                L.gpu.forward_training(srcd.view(), yd.view());
                for (auto* o : {&L.cpu.source.options, &L.gpu.source.options}) o->what = what, o->pass = pass, o->enabled = enabled;
                L.cpu.forward_rectify(target, y.view());
                L.gpu.forward_rectify(targetd.view(), yd.view());
                check_close("pass output", yd.to_host(), y, 2e-5, 1e-5);  // what the next layer sees in the pass
                CHECK(L.gpu.source.has_adapted == L.cpu.source.has_adapted);
                const auto& a = L.cpu.source.inference_stats(nullptr);
                const auto& b = L.gpu.source.inference_stats(nullptr);
                check_close("rectified mean", b.mean, a.mean, 1e-6, 1e-6);
                check_close("rectified var", b.var, a.var, 1e-6, 1e-5);
            }
}
