// SPDX-License-Identifier: MIT
// batch_norm with seed 003's reference convention (1 / (sqrt(var) + eps), unbiased batch variance).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <vector>

#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/norm/robust_norm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using bn_type = batch_norm<population>;

namespace {
//! y = gamma (x - mean) / (sqrt(var_unbiased) + eps) + beta per channel, in double.
std::vector<double> naive_reference_bn(const std::vector<double>& x, shape4 s, const std::vector<float>& g,
                                       const std::vector<float>& b, double eps) {
    std::vector<double> mean, var, y(x.size());
    test::naive_channel_moments(x, s, mean, var);
    const double m = double(s.per_channel());
    const index_t hw = s.spatial();
    for (index_t n = 0; n < s.n; ++n)
        for (index_t c = 0; c < s.c; ++c)
            for (index_t i = 0; i < hw; ++i) {
                const auto k = std::size_t((n * s.c + c) * hw + i);
                y[k] = g[c] * (x[k] - mean[c]) / (std::sqrt(var[c] * m / (m - 1)) + eps) + b[c];
            }
    return y;
}
}  // namespace

TEST_CASE("batch_norm reference convention: forward, gradient and inference vs double references", "[batch_norm][reference_bn]") {
    const double eps = 0.1;  // large, so that the placement of eps is visible at float precision
    for (shape4 s : {shape4{4, 3, 5, 7}, shape4{2, 2, 40, 40}}) {  // both CPU schedules
        bn_type bn(s.c);
        bn.opt.eps = eps;
        bn.opt.eps_at = bn_type::eps_placement::outside_sqrt;
        bn.opt.batch_variance = variance_kind::unbiased;
        for (index_t c = 0; c < s.c; ++c) bn.scale[c] = 0.5f + float(c), bn.shift[c] = -0.25f * float(c);
        const auto x = test::random_tensor(s, 9, 1.0, 2.0);
        tensor<float> y(s), dx(s);
        bn.forward_training(x, y.view());
        const auto xd = test::to_double(x);
        const auto ref = naive_reference_bn(xd, s, bn.scale, bn.shift, eps);
        CHECK(test::worst_error(y, ref, 1e-5, 1e-5) <= 1.0);
        // PyTorch's convention gives visibly different values at this eps: the check above can fail
        std::vector<double> mean, var;
        test::naive_channel_moments(xd, s, mean, var);
        const auto torch = test::naive_bn(xd, s, mean, var, {bn.scale.begin(), bn.scale.end()}, {bn.shift.begin(), bn.shift.end()}, eps);
        CHECK(test::worst_error(y, torch, 1e-5, 1e-5) > 10.0);

        // gradient of L = sum_k w_k y_k against central differences of the double reference
        tensor<float> w(s);
        for (index_t i = 0; i < w.numel(); ++i) w[i] = float(std::sin(0.37 * double(i) + 0.1));
        bn.backward(x, w, dx.view());
        const auto num = test::numeric_gradient(xd, [&](const std::vector<double>& v) {
            const auto yy = naive_reference_bn(v, s, bn.scale, bn.shift, eps);
            double l = 0;
            for (std::size_t k = 0; k < yy.size(); ++k) l += double(w[index_t(k)]) * yy[k];
            return l;
        });
        double scale = 0;
        for (double v : num) scale = std::max(scale, std::abs(v));
        CHECK(test::worst_error(dx, num, 1e-4 * scale, 1e-4) <= 1.0);

        // forward_batch has the same gradient; inference divides by sqrt(running_var) + eps
        tensor<float> yb(s), dxb(s);
        bn.forward_batch(x, yb.view());
        bn.backward(x, w, dxb.view());
        for (index_t i = 0; i < x.numel(); ++i) REQUIRE(dxb[i] == dx[i]);
        bn.forward_inference(x, y.view());
        for (index_t c = 0; c < s.c; ++c) {
            const double rm = bn.source.running.stats.mean[c], rv = bn.source.running.stats.var[c];
            const double want = bn.scale[c] * (double(x(1, c, 2, 3)) - rm) / (std::sqrt(rv) + eps) + bn.shift[c];
            CHECK(double(y(1, c, 2, 3)) == Approx(want).epsilon(1e-5));
        }
    }
}

TEST_CASE("norm_config::reference_bn configures batch_norm layers and is refused by others", "[batch_norm][reference_bn]") {
    nn::norm_config cfg;
    cfg.reference_bn = true;
    nn::norm_layer<bn_type> l(3, cfg);
    CHECK(l.impl.opt.eps_at == bn_type::eps_placement::outside_sqrt);
    CHECK(l.impl.opt.batch_variance == variance_kind::unbiased);
    nn::norm_layer<bn_type> d(3);
    CHECK(d.impl.opt.eps_at == bn_type::eps_placement::inside_sqrt);
    CHECK(d.impl.opt.batch_variance == variance_kind::biased);
    CHECK_THROWS_WITH(nn::norm_layer<group_norm<>>(4, cfg), Catch::Contains("reference_bn"));
    CHECK_THROWS_WITH(nn::norm_layer<robust_norm<>>(4, cfg), Catch::Contains("reference_bn"));
}
