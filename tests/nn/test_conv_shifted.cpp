// SPDX-License-Identifier: MIT
// The shifted-window (implicit im2col) convolution path against the materialized im2col + GEMM it
// replaces: bit-identical forward outputs and weight gradients; forward and input gradient against
// a double-precision reference.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "shiftnorm/nn/conv2d.hpp"
#include "support/conv_reference.hpp"

using namespace shiftnorm;
namespace d = shiftnorm::nn::detail;

namespace {
struct conv_case {
    index_t n, c, o, h, w, k, groups;
};

// CIFAR / Fashion-MNIST ResNet shapes, odd planes (tails of every strip width), 5x5 kernels,
// planes narrower than one vector, groups, the 3-channel first layer.
const conv_case cases[] = {
    {3, 16, 16, 32, 32, 3, 1}, {2, 32, 32, 16, 16, 3, 1}, {2, 64, 64, 8, 8, 3, 1}, {2, 16, 16, 28, 28, 3, 1},
    {2, 64, 64, 7, 7, 3, 1},   {2, 3, 16, 32, 32, 3, 1},  {2, 5, 11, 9, 13, 3, 1}, {2, 4, 6, 6, 5, 5, 1},
    {2, 8, 8, 3, 2, 3, 2},     {1, 2, 3, 1, 1, 3, 1},     {2, 12, 20, 17, 33, 3, 1}, {2, 6, 9, 40, 3, 5, 3},
};

using shiftnorm::test::randn;

bool bits_equal(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }
}  // namespace

TEST_CASE("shifted convolution: same bits as im2col + GEMM, forward and weight gradient", "[nn][conv2d][shifted]") {
    const int threads_before = nn::num_threads();
    for (const auto& cc : cases) {
        nn::conv2d conv(nn::conv2d_options{cc.c, cc.o, cc.k, 1, cc.k / 2, 1, cc.groups, false, nn::conv_algorithm::direct});
        const nn::window2d& g = conv.window();
        if (!d::use_shifted(g, cc.h, cc.w, cc.h, cc.w)) {
            WARN("no AVX-512 GEMM on this CPU / in this build: the shifted path is not used, nothing to compare");
            nn::set_num_threads(threads_before);
            return;
        }
        INFO(conv.describe() << " on " << cc.n << "x" << cc.c << "x" << cc.h << "x" << cc.w);
        conv.weight = randn(conv.weight.size(), unsigned(cc.c * 7 + cc.h));
        nn::set_num_threads(1);  // one thread: the weight-gradient partials are summed image by image
        tensor<float> x({cc.n, cc.c, cc.h, cc.w});
        const auto xv = randn(std::size_t(x.numel()), unsigned(cc.w * 3 + 1));
        std::copy(xv.begin(), xv.end(), x.data());
        const auto& y = conv.forward(x, nn::mode::train);
        tensor<float> dy(y.shape());
        const auto dyv = randn(std::size_t(dy.numel()), unsigned(cc.o + 5));
        std::copy(dyv.begin(), dyv.end(), dy.data());
        std::fill(conv.diff_weight.begin(), conv.diff_weight.end(), 0.0f);
        const auto& dx = conv.backward(dy);

        // the materialized path: im2col into a column matrix, the same GEMM and weight_grad_t
        const index_t G = cc.groups, Cg = cc.c / G, Og = cc.o / G, K = Cg * cc.k * cc.k, P = cc.h * cc.w;
        std::vector<float> col(std::size_t(K * P)), yref(std::size_t(y.numel())), scratch(std::size_t(Og * P)),
            wt(conv.weight.size(), 0.0f);
        for (index_t n = 0; n < cc.n; ++n)
            for (index_t gi = 0; gi < G; ++gi) {
                const float* xg = x.data() + (n * cc.c + gi * Cg) * P;
                d::im2col(xg, Cg, cc.h, cc.w, g, cc.h, cc.w, col.data());
                d::gemm(false, false, Og, P, K, 1.0f, conv.weight.data() + gi * Og * K, K, col.data(), P, 0.0f,
                        yref.data() + (n * cc.o + gi * Og) * P, P);
                d::weight_grad_t(Og, K, P, dy.data() + (n * cc.o + gi * Og) * P, P, col.data(), P, scratch.data(),
                                 wt.data() + gi * Og * K);
            }
        CHECK(bits_equal(y.data(), yref.data(), yref.size()));
        std::vector<float> dw(conv.weight.size());
        for (index_t gi = 0; gi < G; ++gi)
            for (index_t o = 0; o < Og; ++o)
                for (index_t k = 0; k < K; ++k)
                    dw[std::size_t((gi * Og + o) * K + k)] = 0.0f + wt[std::size_t(gi * Og * K + k * Og + o)];
        CHECK(bits_equal(conv.diff_weight.data(), dw.data(), dw.size()));

        // and against a double-precision reference (cross-correlation, zero padding)
        const shiftnorm::test::conv_dims dd{cc.n, cc.c, cc.o, cc.h, cc.w, cc.k, cc.groups};
        CHECK(shiftnorm::test::conv_forward_error(dd, conv.weight, x, y) < 1e-5);

        // the input gradient (a same-window convolution of diff_dst with the flipped, transposed
        // weights: another summation order, so against the double reference only)
        REQUIRE(dx.shape() == x.shape());
        CHECK(shiftnorm::test::conv_input_grad_error(dd, conv.weight, dy, dx) < 1e-5);
    }
    nn::set_num_threads(threads_before);
}

TEST_CASE("shifted convolution: the padded planes and row offsets", "[nn][conv2d][shifted]") {
    nn::window2d g{3, 3, 1, 1, 1, 1, 1, 1};
    const auto s = d::make_shifted(2, 3, 4, g);
    CHECK(s.Hp == 5);
    CHECK(s.Wp == 6);
    CHECK(s.cols == 18);
    std::vector<float> x(24);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i + 1);
    std::vector<float> pad(std::size_t(s.buffer_size()), -7.0f);
    d::pad_planes(x.data(), s, pad.data());
    for (index_t c = 0; c < 2; ++c)
        for (index_t r = 0; r < 5; ++r)
            for (index_t q = 0; q < 6; ++q) {
                const bool inside = r >= 1 && r <= 3 && q >= 1 && q <= 4;
                const float want = inside ? x[std::size_t(c * 12 + (r - 1) * 4 + (q - 1))] : 0.0f;
                CHECK(pad[std::size_t(c * 30 + r * 6 + q)] == want);
            }
    for (index_t i = 60; i < s.buffer_size(); ++i) CHECK(pad[std::size_t(i)] == 0.0f);  // slack zeroed
    std::vector<index_t> off;
    d::shifted_offsets(s, off);
    REQUIRE(off.size() == 18u);
    CHECK(off[0] == 0);
    CHECK(off[4] == 7);    // centre tap of channel 0: one row and one column in
    CHECK(off[9 + 8] == 30 + 14);  // tap (2, 2) of channel 1
}

TEST_CASE("shifted convolution: same bits for 1 and 2 threads and across input sizes", "[nn][conv2d][shifted][threads]") {
    const int threads_before = nn::num_threads();
    struct result {
        std::vector<float> y, dx, dw;
    };
    // one layer fed 16x16, then 8x8 (weight gradient on im2col there), then 16x16 again, 5 and 3
    // images, then 9
    auto run = [](nn::conv2d& conv, index_t n, index_t h, unsigned seed) {
        tensor<float> x({n, 8, h, h});
        const auto xv = randn(std::size_t(x.numel()), seed);
        std::copy(xv.begin(), xv.end(), x.data());
        result r;
        const auto& y = conv.forward(x, nn::mode::train);
        r.y.assign(y.data(), y.data() + y.numel());
        tensor<float> dy(y.shape());
        const auto dyv = randn(std::size_t(dy.numel()), seed + 1);
        std::copy(dyv.begin(), dyv.end(), dy.data());
        std::fill(conv.diff_weight.begin(), conv.diff_weight.end(), 0.0f);
        const auto& dx = conv.backward(dy);
        r.dx.assign(dx.data(), dx.data() + dx.numel());
        r.dw = conv.diff_weight;
        return r;
    };
    const index_t sizes[][2] = {{5, 16}, {3, 8}, {3, 16}, {5, 16}, {9, 16}};
    std::vector<result> one, two, fresh;
    nn::conv2d a(8, 12, 3, 1, 1), b(8, 12, 3, 1, 1);
    a.weight = randn(a.weight.size(), 9);
    b.weight = a.weight;
    nn::set_num_threads(1);
    for (const auto& s : sizes) one.push_back(run(a, s[0], s[1], unsigned(s[0] * 100 + s[1])));
    nn::set_num_threads(2);
    for (const auto& s : sizes) two.push_back(run(b, s[0], s[1], unsigned(s[0] * 100 + s[1])));
    nn::set_num_threads(1);
    for (const auto& s : sizes) {
        nn::conv2d c(8, 12, 3, 1, 1);
        c.weight = a.weight;
        fresh.push_back(run(c, s[0], s[1], unsigned(s[0] * 100 + s[1])));
    }
    nn::set_num_threads(threads_before);
    for (std::size_t i = 0; i < one.size(); ++i) {
        INFO("call " << i);
        // forward and input gradient: each image on its own, whatever the thread
        CHECK(one[i].y == two[i].y);
        CHECK(one[i].dx == two[i].dx);
        // a layer that saw other sizes before gives a fresh layer's bits
        CHECK(one[i].y == fresh[i].y);
        CHECK(one[i].dx == fresh[i].dx);
        CHECK(one[i].dw == fresh[i].dw);
        // the weight gradient sums per-thread partials: another order for 2 threads, close
        REQUIRE(one[i].dw.size() == two[i].dw.size());
        double worst = 0, scale = 0;
        for (std::size_t k = 0; k < one[i].dw.size(); ++k) {
            worst = std::max(worst, double(std::fabs(one[i].dw[k] - two[i].dw[k])));
            scale = std::max(scale, double(std::fabs(one[i].dw[k])));
        }
        CHECK(worst <= 1e-5 * scale);
    }
}

TEST_CASE("shifted convolution: hostile inputs (NaN, Inf, huge values, empty batch)", "[nn][conv2d][shifted]") {
    nn::conv2d conv(4, 6, 3, 1, 1);
    conv.weight = randn(conv.weight.size(), 21);
    const nn::window2d& g = conv.window();
    if (!d::use_shifted(g, 9, 17, 9, 17)) {
        WARN("no AVX-512 GEMM on this CPU / in this build: the shifted path is not used");
        return;
    }
    tensor<float> x({2, 4, 9, 17});
    const auto xv = randn(std::size_t(x.numel()), 22);
    std::copy(xv.begin(), xv.end(), x.data());
    x(0, 1, 4, 16) = std::numeric_limits<float>::quiet_NaN();  // last column: read by garbage columns too
    x(1, 2, 0, 0) = std::numeric_limits<float>::infinity();
    x(1, 3, 8, 5) = 1e30f;
    const auto& y = conv.forward(x, nn::mode::train);
    // forward: the same bits as im2col + GEMM, NaN / Inf exactly where the windows cover them
    const index_t K = 4 * 9, P = 9 * 17;
    std::vector<float> col(std::size_t(K * P)), yref(std::size_t(y.numel()));
    for (index_t n = 0; n < 2; ++n) {
        d::im2col(x.data() + n * 4 * P, 4, 9, 17, g, 9, 17, col.data());
        d::gemm(false, false, 6, P, K, 1.0f, conv.weight.data(), K, col.data(), P, 0.0f, yref.data() + n * 6 * P, P);
    }
    CHECK(bits_equal(y.data(), yref.data(), yref.size()));
    index_t nan_out = 0;
    for (index_t i = 0; i < 6 * P; ++i) nan_out += std::isnan(y.data()[i]) ? 1 : 0;
    CHECK(nan_out == 6 * 6);  // 6 outputs x the 6 in-range window positions of a last-column pixel
    // backward (one thread: partials summed image by image): the weight gradient of the clean
    // channel 0 has the materialized path's bits. Channel 1's NaN sits in the last column: the
    // materialized path never multiplies it by the taps of kernel column 0 (their windows end one
    // column earlier), the shifted path does, at a garbage column, by 0: NaN for every tap of that
    // channel (the documented difference on non-finite inputs, conv_shifted.hpp)
    const int threads_before = nn::num_threads();
    nn::set_num_threads(1);
    tensor<float> dy(y.shape());
    const auto dyv = randn(std::size_t(dy.numel()), 23);
    std::copy(dyv.begin(), dyv.end(), dy.data());
    std::fill(conv.diff_weight.begin(), conv.diff_weight.end(), 0.0f);
    conv.backward(dy);
    nn::set_num_threads(threads_before);
    std::vector<float> scratch(std::size_t(6 * P)), wt(conv.weight.size(), 0.0f);
    for (index_t n = 0; n < 2; ++n) {
        d::im2col(x.data() + n * 4 * P, 4, 9, 17, g, 9, 17, col.data());
        d::weight_grad_t(6, K, P, dy.data() + n * 6 * P, P, col.data(), P, scratch.data(), wt.data());
    }
    for (index_t o = 0; o < 6; ++o)
        for (index_t k = 0; k < 9; ++k) {
            const float got0 = conv.diff_weight[std::size_t(o * K + k)];
            const float want0 = 0.0f + wt[std::size_t(k * 6 + o)];
            CHECK(std::isfinite(got0));
            CHECK(std::memcmp(&got0, &want0, sizeof(float)) == 0);
            CHECK(std::isnan(conv.diff_weight[std::size_t(o * K + 9 + k)]));
            CHECK(std::isnan(wt[std::size_t((9 + k) * 6 + o)]) == (k % 3 != 0));
        }

    // an empty batch: empty output, no work, no crash
    tensor<float> e({0, 4, 9, 17});
    const auto& ye = conv.forward(e, nn::mode::train);
    CHECK(ye.shape() == shape4{0, 6, 9, 17});
    const auto& dxe = conv.backward(tensor<float>({0, 6, 9, 17}));
    CHECK(dxe.numel() == 0);
}
