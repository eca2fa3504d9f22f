// SPDX-License-Identifier: MIT
// The normalization layers' OpenMP kernels: bit-identical results for any thread count.
#include <catch2/catch.hpp>

#include <cstring>

#include "shiftnorm/shiftnorm.hpp"
#include "support/reference.hpp"
#if defined(_OPENMP)
#include <omp.h>
#endif

using namespace shiftnorm;

namespace {
struct bn_run {
    std::vector<float> y, dx, dscale, dshift, rmean, rvar;
};

template <class Layer>
bn_run run_bn(int threads, shape4 s) {
#if defined(_OPENMP)
    omp_set_num_threads(threads);
#endif
    (void)threads;
    const auto x = test::random_tensor(s, 17, 3.0, 2.0), dy = test::random_tensor(s, 18);
    Layer bn(s.c);
    for (index_t c = 0; c < s.c; ++c) bn.scale[c] = 1.0f + 0.01f * float(c), bn.shift[c] = -0.02f * float(c);
    tensor<float> y(s), dx(s);
    bn.forward_training(x, y.view());
    bn.backward(x, dy, dx.view());
    bn_run r;
    r.y.assign(y.begin(), y.end());
    r.dx.assign(dx.begin(), dx.end());
    r.dscale = bn.diff_scale;
    r.dshift = bn.diff_shift;
    r.rmean = bn.source.running.stats.mean;
    r.rvar = bn.source.running.stats.var;
    return r;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("batch_norm: forward, backward and running statistics are bit-identical for 1 and 2 threads",
          "[batch_norm][threads]") {
#if !defined(_OPENMP)
    SUCCEED("built without OpenMP: one thread only");
    return;
#else
    // channel-major (32x32 planes) and plane-streaming (8x8, 4x4) schedules, both above the
    // parallel threshold, plus a small tensor below it
    for (shape4 s : {shape4{16, 16, 32, 32}, shape4{64, 64, 8, 8}, shape4{128, 30, 4, 4}, shape4{4, 3, 5, 5}}) {
        INFO("shape " << s);
        const auto one = run_bn<batch_norm<population>>(1, s);
        const auto two = run_bn<batch_norm<population>>(2, s);
        const int restore = omp_get_num_procs();
        omp_set_num_threads(restore);
        CHECK(same_bits(one.y, two.y));
        CHECK(same_bits(one.dx, two.dx));
        CHECK(same_bits(one.dscale, two.dscale));
        CHECK(same_bits(one.dshift, two.dshift));
        CHECK(same_bits(one.rmean, two.rmean));
        CHECK(same_bits(one.rvar, two.rvar));
        // and the values are right (double reference of the forward)
        std::vector<double> m, v;
        const auto x = test::random_tensor(s, 17, 3.0, 2.0);
        test::naive_channel_moments(test::to_double(x), s, m, v);
        std::vector<double> g(std::size_t(s.c)), b(std::size_t(s.c));
        for (index_t c = 0; c < s.c; ++c) g[c] = 1.0 + 0.01 * double(c), b[c] = -0.02 * double(c);
        CHECK(test::worst_error(two.y, test::naive_bn(test::to_double(x), s, m, v, g, b, 1e-5), 1e-4, 1e-4) <= 1.0);
    }
#endif
}

TEST_CASE("robust_norm: forward and backward are bit-identical for 1 and 2 threads", "[robust_norm][threads]") {
#if !defined(_OPENMP)
    SUCCEED("built without OpenMP: one thread only");
    return;
#else
    for (shape4 s : {shape4{64, 48, 8, 8}, shape4{16, 16, 32, 32}}) {
        INFO("shape " << s);
        const auto x = test::random_tensor(s, 5, 1.0, 3.0), dy = test::random_tensor(s, 6);
        std::vector<float> y[2], dx[2], ds[2];
        for (int t = 1; t <= 2; ++t) {
            omp_set_num_threads(t);
            robust_norm<> rn(s.c);
            tensor<float> out(s), grad(s);
            rn.forward_training(x, out.view());
            rn.backward(x, dy, grad.view());
            y[t - 1].assign(out.begin(), out.end());
            dx[t - 1].assign(grad.begin(), grad.end());
            ds[t - 1] = rn.diff_scale;
        }
        omp_set_num_threads(omp_get_num_procs());
        CHECK(same_bits(y[0], y[1]));
        CHECK(same_bits(dx[0], dx[1]));
        CHECK(same_bits(ds[0], ds[1]));
    }
#endif
}

TEST_CASE("group_norm: forward and backward are bit-identical for 1 and 2 threads", "[group_norm][threads]") {
#if !defined(_OPENMP)
    SUCCEED("built without OpenMP: one thread only");
    return;
#else
    const shape4 s{32, 32, 16, 16};
    const auto x = test::random_tensor(s, 8, 2.0, 1.5), dy = test::random_tensor(s, 9);
    // layer norm (one group: the samples are spread over the threads), groups, instance norm
    for (index_t G : {1, 8, 32}) {
    CAPTURE(G);
    std::vector<float> y[2], dx[2], ds[2], db[2];
    for (int t = 1; t <= 2; ++t) {
        omp_set_num_threads(t);
        group_norm<> gn(s.c, G);
        for (index_t c = 0; c < s.c; ++c) gn.scale[c] = 0.5f + 0.03f * float(c);
        tensor<float> out(s), grad(s);
        gn.forward(x, out.view());
        gn.backward(x, dy, grad.view());
        y[t - 1].assign(out.begin(), out.end());
        dx[t - 1].assign(grad.begin(), grad.end());
        ds[t - 1] = gn.diff_scale;
        db[t - 1] = gn.diff_shift;
    }
    omp_set_num_threads(omp_get_num_procs());
    CHECK(same_bits(y[0], y[1]));
    CHECK(same_bits(dx[0], dx[1]));
    CHECK(same_bits(ds[0], ds[1]));
    CHECK(same_bits(db[0], db[1]));
    }
#endif
}

TEST_CASE("plane-streaming statistics and gradient sums give the single-thread bits for 1, 2 and 3 threads",
          "[batch_norm][threads]") {
#if !defined(_OPENMP)
    SUCCEED("built without OpenMP: one thread only");
    return;
#else
    using backend::cpu::stream_channel_moments;
    using backend::cpu::stream_grad_sums;
    struct result {
        std::vector<moments<double>> m, mm;
        std::vector<backend::extreme_hint> hints;
        std::vector<double> sdy, sdyx, rdy, rdyx;
    };
    // 28x28: one plane per fp32 fold tile; 14x14: five, the last tile partial (128 = 25 * 5 + 3);
    // 7x7: twenty; channels not a multiple of 3; MinMax hints, the ReLU-masked sums; and per-image
    // offsets (a new shift mid-stream)
    for (int offsets = 0; offsets < 2; ++offsets)
        for (shape4 s : {shape4{128, 16, 28, 28}, shape4{128, 32, 14, 14}, shape4{127, 64, 7, 7}}) {
            INFO("shape " << s << (offsets ? " with per-image offsets" : ""));
            auto x = test::random_tensor(s, 31, 1.5, 0.5);
            const auto dy = test::random_tensor(s, 32);
            const tensor_view<const float> xv = x.view(), dyv = dy.view();
            if (offsets)
                for (index_t n = 0; n < s.n; ++n)
                    for (index_t i = 0; i < s.c * s.spatial(); ++i) x.data()[n * s.c * s.spatial() + i] += 1000.0f * float(n % 7);
            std::vector<float> mean(std::size_t(s.c));
            // the ReLU mask's coefficients (normalize_value(x, relu[c]) > 0): about half the values
            std::vector<backend::channel_coef<float>> relu(std::size_t(s.c));
            for (index_t c = 0; c < s.c; ++c) {
                mean[std::size_t(c)] = 0.1f * float(c);
                relu[std::size_t(c)] = {1.5f, c % 2 ? 1.25f : -0.75f, 0.01f * float(c % 5)};
            }
            const auto run = [&](int threads) {
                omp_set_num_threads(threads);
                result r;
                stream_channel_moments(xv, r.m);
                stream_channel_moments<true, float, true>(xv, r.mm, &r.hints);
                stream_grad_sums(xv, dyv, mean.data(), r.sdy, r.sdyx);
                stream_grad_sums(xv, dyv, mean.data(), r.rdy, r.rdyx, relu.data());
                return r;
            };
            const result one = run(1), two = run(2), three = run(3);
            omp_set_num_threads(omp_get_num_procs());
            for (const result* r : {&two, &three}) {
                CHECK(std::memcmp(one.m.data(), r->m.data(), one.m.size() * sizeof(moments<double>)) == 0);
                CHECK(std::memcmp(one.mm.data(), r->mm.data(), one.mm.size() * sizeof(moments<double>)) == 0);
                for (std::size_t c = 0; c < one.hints.size(); ++c) {
                    CHECK(one.hints[c].min_n == r->hints[c].min_n);
                    CHECK(one.hints[c].max_n == r->hints[c].max_n);
                }
                CHECK(one.sdy == r->sdy);
                CHECK(one.sdyx == r->sdyx);
                CHECK(one.rdy == r->rdy);
                CHECK(one.rdyx == r->rdyx);
            }
            // and right: channel 0's mean against a double sum
            double s0 = 0.0;
            for (index_t n = 0; n < s.n; ++n)
                for (index_t i = 0; i < s.spatial(); ++i) s0 += double(x.data()[n * s.c * s.spatial() + i]);
            CHECK(std::fabs(one.m[0].mean - s0 / double(s.n * s.spatial())) <= 1e-9 * (1.0 + std::fabs(s0 / double(s.n * s.spatial()))));
        }
#endif
}
