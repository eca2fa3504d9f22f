// SPDX-License-Identifier: MIT
// CUDA group_norm (instance / layer norm) against the CPU layer on the same inputs: forward, backward, errors.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/cuda_parity.cuh"

using namespace shiftnorm;
namespace cu = shiftnorm::backend::cuda;

namespace {

template <class Affine>
struct gn_pair {
    shiftnorm::group_norm<Affine> cpu;
    cu::group_norm<Affine> gpu;
    gn_pair(index_t c, index_t g) : cpu(c, g), gpu(c, g) {
        for (index_t k = 0; k < c; ++k) cpu.scale[k] = 0.5f + 0.25f * float(k % 7), cpu.shift[k] = 0.1f - 0.2f * float(k % 5);
        gpu.copy_from(cpu);
    }
};

void check_close(const tensor<float>& gpu, const tensor<float>& cpu, double atol, double rtol) {
    CHECK(test::worst_error(gpu, cpu, atol, rtol) <= 1.0);
}
void check_close(const std::vector<float>& gpu, const std::vector<float>& cpu, double atol, double rtol) {
    REQUIRE(gpu.size() == cpu.size());
    CHECK(test::worst_error(gpu, cpu, atol, rtol) <= 1.0);
}

//! Group means: fp32 sums of values up to max|x| err on the scale of the group's spread, not
//! of |mean|. A group of one channel near 1e3 and 263 near 0.5 has mean 4.3 and std 61; there
//! the CPU layer itself is 2e-5 from the double mean (3e-7 of the std, 4x an |mean|-relative
//! 1e-6 tolerance; measured with the reference backend). Each backend is within 1e-6 std.
void check_means(const std::vector<float>& gpu, const std::vector<float>& cpu, const std::vector<float>& inv_std) {
    REQUIRE(gpu.size() == cpu.size());
    REQUIRE(inv_std.size() == cpu.size());
    double worst = 0;
    for (std::size_t i = 0; i < cpu.size(); ++i) {
        const double tol = 1e-6 * std::abs(double(cpu[i])) + 2e-6 / double(inv_std[i]);
        const double r = std::abs(double(gpu[i]) - double(cpu[i])) / tol;
        if (!(r <= worst)) worst = r;
    }
    CHECK(worst <= 1.0);
}

//! Outputs divide by the group std: at |mean|/std = 1e3, x - mean in fp32 carries ulp(|mean|)
//! on both backends, and the two means may round to neighbouring floats.
double out_atol(double ratio) { return ratio > 10 ? 3e-4 : 2e-5; }

//! Forward (output, saved mean / inv_std), backward (diff_src, accumulated diff_scale /
//! diff_shift over two calls) of the CUDA layer against the CPU layer on the same input.
template <class Affine>
void parity(shape4 s, index_t groups, double ratio, unsigned seed) {
    INFO("shape " << s << " groups " << groups << " |mean|/std " << ratio);
    gn_pair<Affine> L(s.c, groups);
    const auto x = test::hostile_tensor(s, seed, ratio);
    tensor<float> y(s), dx(s), dy(s);
    for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(std::sin(0.37 * double(i) + 0.1));
    auto xd = test::to_device(x), dyd = test::to_device(dy);
    cu::device_tensor<float> yd(s), dxd(s);

    L.cpu.forward(x, y.view());
    L.gpu.forward(xd.view(), yd.view());
    {
        INFO("output");
        check_close(yd.to_host(), y, out_atol(ratio), 1e-5);
    }
    {
        INFO("saved mean");
        check_means(L.gpu.saved_mean(), L.cpu.saved_mean(), L.cpu.saved_inv_std());
    }
    {
        INFO("saved inv_std");
        check_close(L.gpu.saved_inv_std(), L.cpu.saved_inv_std(), 0, 2e-5);
    }

    for (int call = 0; call < 2; ++call) {  // the parameter gradients accumulate
        INFO("diff_src, backward call " << call);
        L.cpu.backward(x, dy, dx.view());
        L.gpu.backward(xd.view(), dyd.view(), dxd.view());
        check_close(dxd.to_host(), dx, 1e-4, 1e-3);
    }
    shiftnorm::group_norm<Affine> back(s.c, groups);
    L.gpu.copy_to(back);
    {
        INFO("diff_scale");
        check_close(back.diff_scale, L.cpu.diff_scale, 1e-3, 1e-4);
    }
    {
        INFO("diff_shift");
        check_close(back.diff_shift, L.cpu.diff_shift, 1e-4, 1e-5);
    }
}

//! The group counts each shape runs: layer norm (1), 2 when it divides C, instance norm (C).
std::vector<index_t> group_counts(index_t c) {
    std::vector<index_t> g{1};
    if (c % 2 == 0 && c > 2) g.push_back(2);
    if (c > 1) g.push_back(c);
    return g;
}

}  // namespace

TEST_CASE("cuda group_norm matches the CPU layer for G = 1, 2, C", "[cuda][group_norm]") {
    unsigned seed = 11;
    // parity_shapes covers N = 1, H = W = 1, odd H*W (scalar path) and many chunks per block
    for (shape4 s : test::parity_shapes())
        for (index_t G : group_counts(s.c))
            for (double ratio : {1.0, 1e3}) {
                parity<affine>(s, G, ratio, seed++);
                parity<no_affine>(s, G, ratio, seed++);
            }
}

TEST_CASE("cuda group_norm splits large blocks over many CTAs", "[cuda][group_norm][large]") {
    // G = 1: two blocks of 262144 values, each reduced by many CTAs and merged in a fixed order
    const shape4 s{2, 64, 64, 64};
    parity<affine>(s, 1, 1e3, 5);
    // the statistics against the double reference, and run-to-run determinism
    const auto x = test::hostile_tensor(s, 6, 1e3);
    auto xd = test::to_device(x);
    cu::device_tensor<float> yd(s);
    cu::group_norm<affine> ln(s.c, 1);  // layer norm
    ln.forward(xd.view(), yd.view());
    const auto mean = ln.saved_mean(), inv_std = ln.saved_inv_std();
    const auto y1 = yd.to_host();
    ln.forward(xd.view(), yd.view());
    const auto y2 = yd.to_host();
    CHECK(ln.saved_mean() == mean);
    CHECK(std::equal(y1.begin(), y1.end(), y2.begin()));  // bitwise equal
    const auto xr = test::to_double(x);
    const index_t blk = s.c * s.spatial();
    REQUIRE(mean.size() == 2);
    for (index_t n = 0; n < s.n; ++n) {
        double m = 0, v = 0;
        for (index_t i = 0; i < blk; ++i) m += xr[std::size_t(n * blk + i)];
        m /= double(blk);
        for (index_t i = 0; i < blk; ++i) v += (xr[std::size_t(n * blk + i)] - m) * (xr[std::size_t(n * blk + i)] - m);
        v /= double(blk);
        CHECK(double(mean[std::size_t(n)]) == Approx(m).epsilon(1e-6));
        CHECK(double(inv_std[std::size_t(n)]) == Approx(1.0 / std::sqrt(v + 1e-5)).epsilon(1e-6));
    }
}

TEST_CASE("cuda instance and layer norm factories match the CPU ones", "[cuda][group_norm]") {
    const shape4 s{3, 6, 5, 4};
    const auto x = test::hostile_tensor(s, 8, 1e3);
    auto xd = test::to_device(x);
    tensor<float> y(s);
    cu::device_tensor<float> yd(s);
    auto in_cpu = make_instance_norm<no_affine>(s.c);
    cu::group_norm<no_affine> in_gpu(s.c, s.c);  // instance norm
    CHECK(in_gpu.groups() == s.c);
    in_cpu.forward(x, y.view());
    in_gpu.forward(xd.view(), yd.view());
    check_close(yd.to_host(), y, 3e-4, 1e-5);
    auto ln_cpu = make_layer_norm<affine>(s.c);
    cu::group_norm<affine> ln_gpu(s.c, 1);
    CHECK(ln_gpu.groups() == 1);
    ln_cpu.forward(x, y.view());
    ln_gpu.forward(xd.view(), yd.view());
    check_close(yd.to_host(), y, 2e-5, 1e-5);
}

TEST_CASE("cuda group_norm reports bad arguments before launching", "[cuda][group_norm][errors]") {
    CHECK_THROWS_AS(cu::group_norm<>(0, 1), shape_error);
    CHECK_THROWS_AS(cu::group_norm<>(6, 4), shape_error);  // 4 does not divide 6
    CHECK_THROWS_AS(cu::group_norm<>(6, 0), shape_error);
    CHECK_THROWS_AS(cu::group_norm<>(6, 2, {-1.0}), value_error);

    cu::group_norm<> gn(4, 2);
    cu::device_tensor<float> x(shape4{2, 4, 3, 3}), y(shape4{2, 4, 3, 3}), wrong(shape4{2, 6, 3, 3}),
        empty(shape4{0, 4, 3, 3}), other(shape4{3, 4, 3, 3});
    x.zero();
    CHECK_THROWS_AS(gn.forward(empty.view(), empty.view()), shape_error);
    CHECK_THROWS_AS(gn.forward(wrong.view(), wrong.view()), shape_error);
    CHECK_THROWS_AS(gn.forward(x.view(), other.view()), shape_error);
    CHECK_THROWS_AS(gn.backward(x.view(), x.view(), y.view()), state_error);
    // a strided view (every other plane of a larger tensor)
    cu::device_tensor<float> big(shape4{2, 8, 3, 3});
    const tensor_view<const float> strided(big.data(), shape4{2, 4, 3, 3}, strides4{72, 9, 3, 1});
    CHECK_THROWS_AS(gn.forward(strided, y.view()), shape_error);
    // host memory is refused before any kernel touches it
    auto host = test::random_tensor(shape4{2, 4, 3, 3}, 1);
    CHECK_THROWS_AS(gn.forward(host.view(), y.view()), value_error);
    gn.forward(x.view(), y.view());
    CHECK_THROWS_AS(gn.backward(other.view(), other.view(), other.view()), shape_error);
    CHECK_THROWS_AS(gn.backward(x.view(), host.view(), y.view()), value_error);
    CHECK(gn.saved_mean().size() == 4);

    shiftnorm::group_norm<> cpu_other(4, 4);
    CHECK_THROWS_AS(gn.copy_from(cpu_other), shape_error);

    cu::group_norm<> strict(4, 2, {1e-5, nan_policy::raise});
    auto bad = test::random_tensor(shape4{2, 4, 3, 3}, 2);
    bad[40] = NAN;  // sample 1, group 0
    auto badd = test::to_device(bad);
    CHECK_THROWS_WITH(strict.forward(badd.view(), y.view()), Catch::Contains("sample 1 group 0"));
    CHECK_THROWS_AS(strict.backward(badd.view(), badd.view(), y.view()), state_error);
}
