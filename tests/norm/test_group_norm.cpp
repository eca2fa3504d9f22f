// SPDX-License-Identifier: MIT
// group_norm (and instance / layer norm) against the double reference and central differences.
#include <catch2/catch.hpp>

#include <limits>
#include <utility>

#include "shiftnorm/backend/reference/kernels.hpp"
#include "shiftnorm/shiftnorm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using test::random_tensor;

namespace {
std::vector<double> ref_gn(const std::vector<double>& x, shape4 s, index_t G, const std::vector<double>& gamma,
                           const std::vector<double>& beta, double eps) {
    const index_t cg = s.c / G, blk = cg * s.spatial();
    std::vector<double> y(x.size());
    for (index_t n = 0; n < s.n; ++n)
        for (index_t g = 0; g < G; ++g) {
            const std::size_t o = std::size_t((n * s.c + g * cg) * s.spatial());
            double m = 0, v = 0;
            for (index_t i = 0; i < blk; ++i) m += x[o + i];
            m /= double(blk);
            for (index_t i = 0; i < blk; ++i) v += (x[o + i] - m) * (x[o + i] - m);
            v /= double(blk);
            for (index_t i = 0; i < blk; ++i) {
                const index_t c = g * cg + i / s.spatial();
                y[o + i] = gamma[c] * (x[o + i] - m) / std::sqrt(v + eps) + beta[c];
            }
        }
    return y;
}
double w(std::size_t i) { return std::sin(1.3 * double(i)) - 0.1; }
}  // namespace

TEST_CASE("group_norm forward and backward for G = 1, 2, C", "[group_norm]") {
    shape4 s{2, 4, 3, 3};
    for (index_t G : {1, 2, 4}) {
        group_norm<> gn(s.c, G);
        for (index_t c = 0; c < s.c; ++c) gn.scale[c] = 0.5f + 0.25f * float(c), gn.shift[c] = 0.1f * float(c);
        auto x = random_tensor(s, unsigned(G), 100.0, 2.0);
        const auto xd = test::to_double(x);
        std::vector<double> g(gn.scale.begin(), gn.scale.end()), b(gn.shift.begin(), gn.shift.end());
        tensor<float> y(s), dy(s), dx(s);
        gn.forward(x, y.view());
        INFO("groups " << G);
        CHECK(test::worst_error(y, ref_gn(xd, s, G, g, b, 1e-5), 1e-5, 1e-5) <= 1.0);
        for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(w(std::size_t(i)));
        gn.backward(x, dy, dx.view());
        auto loss = [&](const std::vector<double>& xv, const std::vector<double>& gv, const std::vector<double>& bv) {
            const auto yv = ref_gn(xv, s, G, gv, bv, 1e-5);
            double l = 0;
            for (std::size_t i = 0; i < yv.size(); ++i) l += yv[i] * w(i);
            return l;
        };
        const auto gx = test::numeric_gradient(xd, [&](const std::vector<double>& v) { return loss(v, g, b); }, 1e-4);
        CHECK(test::worst_error(dx, gx, 2e-4, 2e-3) <= 1.0);
        const auto gg = test::numeric_gradient(g, [&](const std::vector<double>& v) { return loss(xd, v, b); });
        const auto gb = test::numeric_gradient(b, [&](const std::vector<double>& v) { return loss(xd, g, v); });
        CHECK(test::worst_error(gn.diff_scale, gg, 1e-4, 1e-3) <= 1.0);
        CHECK(test::worst_error(gn.diff_shift, gb, 1e-4, 1e-3) <= 1.0);
    }
}

TEST_CASE("instance and layer norm factories; bad groups", "[group_norm]") {
    CHECK(make_instance_norm(6).groups() == 6);
    CHECK(make_layer_norm(6).groups() == 1);
    CHECK_THROWS_AS(group_norm<>(6, 4), shape_error);
    CHECK_THROWS_AS(group_norm<>(0, 1), shape_error);
    group_norm<> gn(2, 1);
    tensor<float> x(shape4{1, 3, 2, 2}, 0.f), y(shape4{1, 3, 2, 2});
    CHECK_THROWS_AS(gn.forward(x, y.view()), shape_error);
    // H = W = 1 instance norm: a single value per group normalizes to beta
    auto in = make_instance_norm(3);
    tensor<float> a(shape4{2, 3, 1, 1}, 4.f), b(shape4{2, 3, 1, 1});
    in.forward(a, b.view());
    for (float v : b) CHECK(v == 0.f);
}

TEST_CASE("nan_policy::raise: one message format for every layer, naming the channel or group", "[norm][nan]") {
    const shape4 s{2, 4, 3, 3};
    tensor<float> x = random_tensor(s, 11), y(s);
    x(1, 2, 0, 1) = std::numeric_limits<float>::quiet_NaN();  // sample 1, channel 2
    using Catch::Contains;
    batch_norm<population> bn(s.c, {1e-5, nan_policy::raise});
    CHECK_THROWS_WITH(bn.forward_training(x.view(), y.view()), Contains("of src has non-finite values (mean ") && Contains("under nan_policy::raise") && Contains(": channel 2 "));
    robust_norm<> rn(s.c, {0.2, 1e-5, 0.1, robust_inference::rnt, nan_policy::raise});
    CHECK_THROWS_WITH(rn.forward_training(x.view(), y.view()), Contains("of src has non-finite values (mean ") && Contains(", range ") && Contains(": channel 2 "));
    group_norm<> gn(s.c, 2, {1e-5, nan_policy::raise});
    CHECK_THROWS_WITH(gn.forward(x.view(), y.view()), Contains(": sample 1 group 1 of src has non-finite values under nan_policy::raise"));
}

TEST_CASE("group_norm on the CPU schedule agrees with the reference backend; backward needs forward", "[group_norm][reference]") {
    using reference = backend::reference::kernels;
    STATIC_REQUIRE(backend::is_group_backend_v<reference>);
    STATIC_REQUIRE(backend::is_group_backend_v<backend::cpu::auto_schedule>);
    for (const auto& [s, G] : {std::pair{shape4{4, 8, 16, 16}, index_t(1)}, std::pair{shape4{4, 8, 16, 16}, index_t(4)},
                               std::pair{shape4{3, 6, 7, 7}, index_t(6)}, std::pair{shape4{1, 4, 1, 1}, index_t(2)}}) {
        CAPTURE(s.n, s.c, s.h, s.w, G);
        // |mean| / std = 500: the fp32 kernels must subtract a shift before summing squares
        const auto x = random_tensor(s, 31, 1000.0, 2.0), dy = random_tensor(s, 32);
        group_norm<> gn(s.c, G);
        group_norm<affine, fp32, reference> gr(s.c, G);
        for (index_t c = 0; c < s.c; ++c) {
            gn.scale[c] = gr.scale[c] = 0.5f + 0.1f * float(c);
            gn.shift[c] = gr.shift[c] = 0.3f - 0.05f * float(c);
        }
        tensor<float> y(s), yr(s), dx(s), dxr(s);
        gn.forward(x, y.view());
        gr.forward(x, yr.view());
        // fp32 lane sums against double: a few ulp (measured: y 1.4e-7, dx 1.5e-7, inv_std 4e-8
        // relative, diff_scale 3e-6, diff_shift 5e-7 on the scale of 1e-9 absolute + relative)
        CHECK(test::worst_error(y, yr, 1e-6, 1e-6) <= 1.0);
        CHECK(test::worst_error(gn.saved_mean(), gr.saved_mean(), 0.0, 1e-7) <= 1.0);
        CHECK(test::worst_error(gn.saved_inv_std(), gr.saved_inv_std(), 0.0, 1e-6) <= 1.0);
        gn.backward(x, dy, dx.view());
        gr.backward(x, dy, dxr.view());
        CHECK(test::worst_error(dx, dxr, 1e-6, 1e-6) <= 1.0);
        CHECK(test::worst_error(gn.diff_scale, gr.diff_scale, 1e-5, 1e-5) <= 1.0);
        CHECK(test::worst_error(gn.diff_shift, gr.diff_shift, 2e-6, 2e-6) <= 1.0);
    }
    group_norm<affine, fp32, reference> fresh(4, 2);
    tensor<float> a(shape4{1, 4, 2, 2}, 1.f), b(a.shape());
    CHECK_THROWS_AS(fresh.backward(a, a, b.view()), state_error);
}

TEST_CASE("group_norm: a group with one far-off channel keeps its mean within 1e-6 of the group's spread",
          "[group_norm][reference][numerics]") {
    // 264 channels, channel 0 near 1e3 and the rest near 0.5: the group mean (4.3) is far below
    // the values' magnitude, so fp32 sums err on the scale of the spread (std 61), not of |mean|
    using reference = backend::reference::kernels;
    const shape4 s{3, 264, 7, 7};
    auto x = random_tensor(s, 41, 0.5, 1.0);
    const auto far = random_tensor(s, 42, 1e3, 1.0);
    for (index_t n = 0; n < s.n; ++n)
        for (index_t i = 0; i < s.spatial(); ++i) x[n * s.c * s.spatial() + i] = far[n * s.c * s.spatial() + i];
    for (index_t G : {index_t(1), index_t(2)}) {
        CAPTURE(G);
        group_norm<> gn(s.c, G);
        group_norm<affine, fp32, reference> gr(s.c, G);
        tensor<float> y(s), yr(s);
        gn.forward(x, y.view());
        gr.forward(x, yr.view());
        const auto m = gn.saved_mean(), mr = gr.saved_mean(), inv = gr.saved_inv_std();
        for (std::size_t g = 0; g < m.size(); ++g) {
            CAPTURE(g, m[g], mr[g], 1.0 / double(inv[g]));
            CHECK(std::abs(double(m[g]) - double(mr[g])) <= 1e-6 / double(inv[g]));
        }
        // x - mean in fp32 carries ulp(1e3) = 6.1e-5: over the group std, 2 ulp of that at most
        double atol = 0;
        for (float v : inv) atol = std::max(atol, 2 * 6.1e-5 * double(v));
        CHECK(test::worst_error(y, yr, atol, 1e-6) <= 1.0);
    }
}
