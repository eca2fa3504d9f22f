// SPDX-License-Identifier: MIT
// adversarial_stats (AdvBN perturbation): forward formula, gradients vs central differences, PGD.
#include <catch2/catch.hpp>

#include "shiftnorm/shiftnorm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using test::random_tensor;

namespace {
double w(std::size_t i) { return std::sin(0.9 * double(i)) + 0.3; }
// reference f_adv in double
std::vector<double> ref_adv(const std::vector<double>& x, shape4 s, const std::vector<double>& dm,
                            const std::vector<double>& ds, perturbation_kind k, bool clamp) {
    std::vector<double> mean, var;
    test::naive_channel_moments(x, s, mean, var);
    std::vector<double> y(x.size());
    for (index_t n = 0; n < s.n; ++n)
        for (index_t c = 0; c < s.c; ++c)
            for (index_t i = 0; i < s.spatial(); ++i) {
                const std::size_t j = std::size_t((n * s.c + c) * s.spatial() + i);
                const double sd = std::sqrt(var[c]);
                double v = k == perturbation_kind::multiplicative
                               ? ds[c] * (x[j] - mean[c]) + dm[c] * mean[c]
                               : (x[j] - mean[c]) * (sd + ds[c]) / sd + mean[c] + dm[c];
                y[j] = clamp ? std::max(v, 0.0) : v;
            }
    return y;
}
}  // namespace

TEST_CASE("adversarial_stats gradients match central differences", "[adversarial][grad]") {
    shape4 s{3, 2, 3, 3};
    for (auto kind : {perturbation_kind::multiplicative, perturbation_kind::additive})
        for (bool clamp : {false, true}) {
            auto x = random_tensor(s, 31, clamp ? 0.3 : 1.5, 1.0);
            adversarial_stats adv(2, kind, clamp);
            adv.d_mu = {kind == perturbation_kind::multiplicative ? 1.3f : 0.2f, kind == perturbation_kind::multiplicative ? 0.8f : -0.1f};
            adv.d_sigma = {kind == perturbation_kind::multiplicative ? 0.6f : 0.3f, kind == perturbation_kind::multiplicative ? 1.4f : -0.2f};
            tensor<float> y(s), dy(s), dx(s);
            for (index_t i = 0; i < dy.numel(); ++i) dy[i] = float(w(std::size_t(i)));
            adv.forward(x, y.view());
            std::vector<double> dm(adv.d_mu.begin(), adv.d_mu.end()), ds(adv.d_sigma.begin(), adv.d_sigma.end());
            const auto xd = test::to_double(x);
            CHECK(test::worst_error(y, ref_adv(xd, s, dm, ds, kind, clamp), 1e-5, 1e-5) <= 1.0);
            adv.backward(x, y, dy, dx.view());
            auto loss = [&](const std::vector<double>& xv, const std::vector<double>& a, const std::vector<double>& b) {
                const auto yv = ref_adv(xv, s, a, b, kind, clamp);
                double l = 0;
                for (std::size_t i = 0; i < yv.size(); ++i) l += yv[i] * w(i);
                return l;
            };
            INFO("kind " << int(kind) << " clamp " << clamp);
            CHECK(test::worst_error(dx, test::numeric_gradient(xd, [&](const std::vector<double>& v) { return loss(v, dm, ds); }, 1e-6), 1e-4, 1e-3) <= 1.0);
            CHECK(test::worst_error(adv.diff_d_mu, test::numeric_gradient(dm, [&](const std::vector<double>& v) { return loss(xd, v, ds); }), 1e-4, 1e-3) <= 1.0);
            CHECK(test::worst_error(adv.diff_d_sigma, test::numeric_gradient(ds, [&](const std::vector<double>& v) { return loss(xd, dm, v); }), 1e-4, 1e-3) <= 1.0);
        }
}

TEST_CASE("adversarial_stats: identity start and PGD projection", "[adversarial]") {
    shape4 s{2, 2, 2, 2};
    auto x = random_tensor(s, 2, 1.0, 1.0);
    adversarial_stats adv(2);
    tensor<float> y(s);
    adv.forward(x, y.view());
    CHECK(test::worst_error(y, x, 1e-5, 1e-6) <= 1.0);  // d = 1: identity
    adv.diff_d_mu = {1.f, -1.f};
    adv.diff_d_sigma = {-2.f, 0.f};
    for (int i = 0; i < 10; ++i) adv.pgd_step(0.2, 1.1);
    CHECK(adv.d_mu[0] == Approx(2.1));
    CHECK(adv.d_mu[1] == Approx(-0.1));
    CHECK(adv.d_sigma[0] == Approx(-0.1));
    CHECK(adv.d_sigma[1] == 1.f);
    CHECK_THROWS_AS(adv.pgd_step(-1, 1), value_error);
}

TEST_CASE("adversarial_stats: ReLU-dead features stay exactly 0 where the perturbation keeps them there",
          "[adversarial]") {
    // ReLU features: many exact zeros. Multiplicative d_mu == d_sigma maps f = 0 to
    // d * (0 - mu) + d * mu = 0 for ANY mu: the output must be exactly 0 (masked in backward),
    // whatever the rounding of the batch mean; the reference computes exactly 0 there.
    shape4 s{3, 4, 5, 7};
    auto x = random_tensor(s, 11, 0.3, 1.0);
    for (auto& v : x) v = std::max(v, 0.0f);  // like a ReLU output: about a third exact zeros
    for (const float d : {1.0f, 1.4f, 0.6f, 1.6000001f, 2.1f}) {
        INFO("d_mu = d_sigma = " << d);
        adversarial_stats adv(s.c, perturbation_kind::multiplicative, /*clamp_relu=*/true);  // AdvBN's
        adv.d_mu.assign(std::size_t(s.c), d);
        adv.d_sigma.assign(std::size_t(s.c), d);
        tensor<float> y(s);
        adv.forward(x, y.view());
        index_t zeros = 0, exact = 0;
        for (index_t i = 0; i < x.numel(); ++i)
            if (x.data()[i] == 0.0f) {
                ++zeros;
                exact += y.data()[i] == 0.0f;
            }
        REQUIRE(zeros > 50);
        CHECK(exact == zeros);
        // and their gradient contributions are masked: a diff_dst that is nonzero ONLY on the dead
        // pixels gives zero gradients for d_mu and d_sigma
        tensor<float> dy(s, 0.0f);
        for (index_t i = 0; i < x.numel(); ++i)
            if (x.data()[i] == 0.0f) dy.data()[i] = 1.0f;
        adv.backward(x, y, dy, tensor_view<float>());
        for (index_t c = 0; c < s.c; ++c) {
            CHECK(adv.diff_d_mu[std::size_t(c)] == 0.0f);
            CHECK(adv.diff_d_sigma[std::size_t(c)] == 0.0f);
        }
    }
}
