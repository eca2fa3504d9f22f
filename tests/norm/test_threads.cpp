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
