// SPDX-License-Identifier: MIT
// CUDA robust_norm against the CPU layer: RN/RNT/RNM forward, saved argmin/argmax, backward with ties.
#include <catch2/catch.hpp>

#include "backend/cuda_parity.cuh"

using namespace shiftnorm;
namespace cu = shiftnorm::backend::cuda;

namespace {

template <class Affine>
struct pair_of_layers {
    shiftnorm::robust_norm<Affine> cpu;
    cu::robust_norm<Affine> gpu;
    explicit pair_of_layers(index_t c, double p = 0.2) : cpu(c, make(p)), gpu(c, make(p)) {
        // cycling over 16 values (scale 1 .. 8.5): a pattern growing with k reached scale 4500 at
        // 9000 channels, beyond what the outputs' absolute tolerances can hold on either backend
        for (index_t k = 0; k < c; ++k) cpu.scale[k] = 1.0f + 0.5f * float(k % 16), cpu.shift[k] = -0.3f * float(k % 16);
        gpu.copy_from(cpu);
    }
    static typename shiftnorm::robust_norm<Affine>::options make(double p) {
        typename shiftnorm::robust_norm<Affine>::options o;
        o.p = p;
        o.eps = 1e-3;  // a constant channel divides by eps: keep its gradients comparable
        return o;
    }
};

void check_close(const char* what, const tensor<float>& gpu, const tensor<float>& cpu, double atol, double rtol) {
    INFO(what);
    CHECK(test::worst_error(gpu, cpu, atol, rtol) <= 1.0);
}
void check_close(const char* what, const std::vector<float>& gpu, const std::vector<float>& cpu, double atol, double rtol) {
    INFO(what);
    REQUIRE(gpu.size() == cpu.size());
    CHECK(test::worst_error(gpu, cpu, atol, rtol) <= 1.0);
}

template <class Affine>
void parity(const tensor<float>& x, double p, double atol) {
    const shape4& s = x.shape();
    INFO("shape " << s << " p " << p);
    pair_of_layers<Affine> L(s.c, p);
    tensor<float> y(s), dx(s), dy(s);
    for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(std::cos(0.61 * double(i)) + 0.2);
    auto xd = test::to_device(x), dyd = test::to_device(dy);
    cu::device_tensor<float> yd(s), dxd(s);
    shiftnorm::robust_norm<Affine> back(s.c);

    auto compare_saved = [&](bool range_from_batch) {
        L.cpu.locate_extremes(x);  // the CPU layer finds arg-extremes lazily
        const auto g = L.gpu.saved();
        for (index_t c = 0; c < s.c; ++c) {
            const auto& e = L.cpu.saved(c);
            CHECK(g[c].mean == Approx(e.mean).epsilon(1e-9).margin(1e-6));  // fp32 tile sums
            CHECK(g[c].range == e.range);  // min and max are exact values of src
            CHECK(g[c].denom == Approx(e.denom).epsilon(1e-12));
            if (range_from_batch) {
                CHECK(g[c].argmin == e.argmin);
                CHECK(g[c].argmax == e.argmax);
            }
        }
    };

    L.cpu.forward_training(x, y.view());
    L.gpu.forward_training(xd.view(), yd.view());
    check_close("training output", yd.to_host(), y, atol, 1e-5);
    compare_saved(true);
    L.gpu.sync_statistics();  // forward_training folds the tracked statistics lazily
    check_close("running mean", L.gpu.running_mean, L.cpu.running_mean, 1e-6, 1e-6);
    check_close("running range", L.gpu.running_range, L.cpu.running_range, 1e-6, 1e-6);

    L.cpu.backward(x, dy, dx.view());
    L.gpu.backward(xd.view(), dyd.view(), dxd.view());
    check_close("training diff_src", dxd.to_host(), dx, 1e-4, 1e-3);
    L.gpu.copy_to(back);
    check_close("diff_scale", back.diff_scale, L.cpu.diff_scale, 1e-4, 1e-4);
    check_close("diff_shift", back.diff_shift, L.cpu.diff_shift, 1e-4, 1e-5);

    for (robust_inference mode : {robust_inference::rn, robust_inference::rnt, robust_inference::rnm}) {
        INFO("inference mode " << int(mode));
        L.cpu.forward_inference(x, y.view(), mode);
        L.gpu.forward_inference(xd.view(), yd.view(), mode);
        check_close("inference output", yd.to_host(), y, atol, 1e-5);
        compare_saved(mode != robust_inference::rnt);
        L.cpu.backward(x, dy, dx.view());
        L.gpu.backward(xd.view(), dyd.view(), dxd.view());
        check_close("diff_src after inference", dxd.to_host(), dx, 1e-4, 1e-3);
    }
}

}  // namespace

TEST_CASE("cuda robust_norm matches the CPU layer on hostile inputs", "[cuda][robust_norm]") {
    unsigned seed = 11;
    for (shape4 s : test::parity_shapes()) {
        parity<affine>(test::hostile_tensor(s, seed++, 1.0), 0.2, 2e-5);
        parity<no_affine>(test::hostile_tensor(s, seed++, 1e3), 1.0, 3e-4);
    }
}

TEST_CASE("cuda robust_norm sends the range gradient to the first tied extreme", "[cuda][robust_norm][ties]") {
    for (shape4 s : {shape4{64, 2, 32, 32}, shape4{3, 4, 5, 5}, shape4{128, 3, 1, 1}}) {
        parity<affine>(test::tied_tensor(s, 4), 0.5, 2e-5);
    }
}

TEST_CASE("cuda robust_norm rejects bad arguments and non-finite batches", "[cuda][robust_norm][errors]") {
    cu::robust_norm<> rn(2);
    cu::device_tensor<float> x(shape4{2, 2, 3, 3}), empty(shape4{2, 2, 0, 3});
    x.zero();
    CHECK_THROWS_AS(rn.backward(x.view(), x.view(), x.view()), state_error);
    CHECK_THROWS_AS(rn.forward_training(empty.view(), empty.view()), shape_error);
    typename cu::robust_norm<>::options o;
    o.nan = nan_policy::raise;
    cu::robust_norm<> strict(2, o);
    auto bad = test::random_tensor(shape4{2, 2, 3, 3}, 3);
    bad[4] = INFINITY;
    auto badd = test::to_device(bad);
    CHECK_THROWS_AS(strict.forward_training(badd.view(), x.view()), numeric_error);
}

TEST_CASE("cuda robust_norm forward_training does not wait for the device; the EMA keeps the call order",
          "[cuda][robust_norm][sync]") {
    const shape4 s{8, 4, 6, 6};
    cu::robust_norm<> gpu(s.c);
    shiftnorm::robust_norm<> cpu(s.c);
    gpu.copy_from(cpu);
    cudaStream_t st = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess);
    std::vector<tensor<float>> hs;
    std::vector<cu::device_tensor<float>> xs;
    for (unsigned k = 0; k < 11; ++k) {
        hs.push_back(test::random_tensor(s, 500 + k, 0.3 * k, 1.0 + 0.2 * k));
        xs.push_back(test::to_device(hs.back()));
    }
    tensor<float> y(s);
    cu::device_tensor<float> yd(s);
    test::busy_wait_kernel<<<1, 1, 0, st>>>(500000000ull);
    REQUIRE(cudaGetLastError() == cudaSuccess);
    gpu.forward_training(xs[0].view(), yd.view(), st);
    gpu.forward_training(xs[1].view(), yd.view(), st);
    CHECK(cudaStreamQuery(st) == cudaErrorNotReady);  // returned without waiting
    CHECK(gpu.pending_folds() == 2);
    CHECK(gpu.running_mean == std::vector<float>(std::size_t(s.c), 0.0f));  // not folded yet
    for (std::size_t k = 2; k < xs.size(); ++k) gpu.forward_training(xs[k].view(), yd.view(), st);
    for (const auto& h : hs) cpu.forward_training(h, y.view());
    gpu.sync_statistics();
    CHECK(gpu.pending_folds() == 0);
    check_close("running mean", gpu.running_mean, cpu.running_mean, 1e-6, 1e-6);
    check_close("running range", gpu.running_range, cpu.running_range, 1e-6, 1e-6);
    CHECK(cudaStreamDestroy(st) == cudaSuccess);
}
