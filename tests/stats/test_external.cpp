// SPDX-License-Identifier: MIT
// Rectification on externally owned buffers (torch's running_mean/var): NCHW and NHWC views, in place.
#include <catch2/catch.hpp>

#include <limits>

#include "shiftnorm/shiftnorm.hpp"
#include "shiftnorm/stats/external.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
using test::random_tensor;

namespace {
//! NCHW -> NHWC copy (what torch.channels_last stores).
std::vector<float> to_nhwc(const tensor<float>& x) {
    const auto s = x.shape();
    std::vector<float> out(std::size_t(s.numel()));
    for (index_t n = 0; n < s.n; ++n)
        for (index_t c = 0; c < s.c; ++c)
            for (index_t h = 0; h < s.h; ++h)
                for (index_t w = 0; w < s.w; ++w)
                    out[std::size_t(((n * s.h + h) * s.w + w) * s.c + c)] = x.data()[((n * s.c + c) * s.h + h) * s.w + w];
    return out;
}
}  // namespace

TEST_CASE("external: moments in NCHW and NHWC match the double reference", "[external]") {
    for (shape4 s : {shape4{8, 3, 32, 32}, shape4{5, 16, 7, 7}, shape4{2, 4, 1, 1}, shape4{1, 2, 3, 5}}) {
        const auto x = random_tensor(s, 3, 1e3, 2.0);  // large offset: cancellation would show
        std::vector<double> m, v;
        test::naive_channel_moments(test::to_double(x), s, m, v);
        const auto nhwc = to_nhwc(x);
        const auto a = external_channel_moments({x.data(), s, memory_layout::nchw});
        const auto b = external_channel_moments({nhwc.data(), s, memory_layout::nhwc});
        REQUIRE(a.size() == std::size_t(s.c));
        for (index_t c = 0; c < s.c; ++c) {
            CHECK(a[c].mean == Approx(m[c]).epsilon(1e-12));
            CHECK(b[c].mean == Approx(m[c]).epsilon(1e-12));
            CHECK(a[c].variance(variance_kind::biased) == Approx(v[c]).epsilon(1e-5));
            CHECK(b[c].variance(variance_kind::biased) == Approx(v[c]).epsilon(1e-5));
            CHECK(a[c].count == s.per_channel());
        }
    }
}

TEST_CASE("external: rectify writes the same statistics as batch_norm<rectified> into the caller's buffers",
          "[external]") {
    const shape4 s{6, 4, 5, 5};
    const auto x = random_tensor(s, 9, 0.5, 1.5);
    for (adapt_what what : {adapt_what::both, adapt_what::mean_only, adapt_what::var_only})
        for (double prior : {0.0, 16.0})
            for (rectify_pass pass : {rectify_pass::batch, rectify_pass::adapted}) {
                batch_norm<rectified> bn(4);
                for (index_t c = 0; c < 4; ++c) {
                    bn.source.running.stats.mean[c] = 0.1f * float(c);
                    bn.source.running.stats.var[c] = 1.0f + 0.5f * float(c);
                }
                bn.source.options.what = what;
                bn.source.options.prior = prior;
                bn.source.options.pass = pass;
                std::vector<float> mean = bn.source.running.stats.mean, var = bn.source.running.stats.var;
                const float* const mean_addr = mean.data();
                tensor<float> y(s);
                bn.forward_rectify(x, y.view());
                const auto r = rectify_external({x.data(), s}, {mean.data(), var.data(), 4}, bn.source.options);
                CHECK(mean.data() == mean_addr);  // in place, no re-allocation
                for (index_t c = 0; c < 4; ++c) {
                    CHECK(mean[c] == bn.source.adapted.mean[c]);
                    CHECK(var[c] == bn.source.adapted.var[c]);
                    CHECK(r.stored.mean[c] == mean[c]);
                }
                // the pass statistics normalize exactly as the layer's rectification forward
                const auto ref = test::naive_bn(test::to_double(x), s,
                                                std::vector<double>(r.pass.mean.begin(), r.pass.mean.end()),
                                                std::vector<double>(r.pass.var.begin(), r.pass.var.end()),
                                                std::vector<double>(4, 1.0), std::vector<double>(4, 0.0), bn.opt.eps);
                CHECK(test::worst_error(test::to_double(y), ref, 1e-5, 1e-5) <= 1.0);
            }
}

TEST_CASE("external: deferred write, disabled layers, and hostile inputs", "[external]") {
    const shape4 s{4, 2, 3, 3};
    const auto x = random_tensor(s, 4);
    std::vector<float> mean{1.f, 2.f}, var{3.f, 4.f};
    rectify_options o;
    const auto r = rectify_external({x.data(), s}, {mean.data(), var.data(), 2}, o, /*write=*/false);
    CHECK(mean == std::vector<float>{1.f, 2.f});
    CHECK(r.stored.mean[0] != 1.f);

    o.enabled = false;
    const auto d = rectify_external({x.data(), s}, {mean.data(), var.data(), 2}, o);
    CHECK(d.pass.mean == mean);
    CHECK(d.stored.var == var);
    o.enabled = true;

    CHECK_THROWS_AS(rectify_external({x.data(), s}, {mean.data(), var.data(), 3}, o), shape_error);
    CHECK_THROWS_AS(rectify_external({x.data(), s}, {nullptr, var.data(), 2}, o), value_error);
    CHECK_THROWS_AS(rectify_external({nullptr, s}, {mean.data(), var.data(), 2}, o), value_error);

    auto bad = x;
    bad.data()[7] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(rectify_external({bad.data(), s}, {mean.data(), var.data(), 2}, o), numeric_error);
    CHECK(mean == std::vector<float>{1.f, 2.f});  // untouched on error

    // one value per channel: the unbiased variance is undefined
    const shape4 one{1, 2, 1, 1};
    CHECK_THROWS_AS(rectify_external({x.data(), one}, {mean.data(), var.data(), 2}, o), value_error);
    o.what = adapt_what::mean_only;  // the mean alone is fine
    CHECK_NOTHROW(rectify_external({x.data(), one}, {mean.data(), var.data(), 2}, o));

    // an empty batch: nothing to estimate
    const shape4 empty{0, 2, 3, 3};
    o.what = adapt_what::both;
    std::vector<float> m2{1.f, 2.f}, v2{3.f, 4.f};
    CHECK_THROWS_AS(rectify_external({x.data(), empty}, {m2.data(), v2.data(), 2}, o), value_error);
}

TEST_CASE("external: normalize in NCHW and NHWC against the double reference", "[external]") {
    const shape4 s{3, 5, 4, 6};
    const auto x = random_tensor(s, 21, 2.0, 3.0);
    channel_stats<float> st(5);
    std::vector<float> gamma(5), beta(5);
    for (int c = 0; c < 5; ++c) st.mean[c] = 1.5f + 0.1f * c, st.var[c] = 2.0f + c, gamma[c] = 0.5f + c, beta[c] = -0.3f * c;
    const auto ref = test::naive_bn(test::to_double(x), s, std::vector<double>(st.mean.begin(), st.mean.end()),
                                    std::vector<double>(st.var.begin(), st.var.end()),
                                    std::vector<double>(gamma.begin(), gamma.end()),
                                    std::vector<double>(beta.begin(), beta.end()), 1e-5);
    std::vector<float> y(std::size_t(s.numel()));
    normalize_external({x.data(), s}, y.data(), st, {gamma.data(), beta.data()});
    CHECK(test::worst_error(y, ref, 1e-5, 1e-5) <= 1.0);
    // NHWC in, NHWC out: the same values, permuted
    const auto xh = to_nhwc(x);
    tensor<float> ref_t(s);
    for (std::size_t i = 0; i < ref.size(); ++i) ref_t.data()[i] = float(ref[i]);
    const auto ref_h = to_nhwc(ref_t);
    std::vector<float> yh(y.size());
    normalize_external({xh.data(), s, memory_layout::nhwc}, yh.data(), st, {gamma.data(), beta.data()});
    CHECK(test::worst_error(yh, ref_h, 1e-5, 1e-5) <= 1.0);
    // no affine: scale 1, shift 0
    normalize_external({x.data(), s}, y.data(), st, {});
    CHECK(y[0] == Approx((x.data()[0] - st.mean[0]) / std::sqrt(st.var[0] + 1e-5)).epsilon(1e-6));
    // hostile: aliasing, channel mismatch, negative eps
    CHECK_THROWS_AS(normalize_external({x.data(), s}, const_cast<float*>(x.data()) + 3, st, {}), value_error);
    CHECK_THROWS_AS(normalize_external({x.data(), s}, y.data(), channel_stats<float>(4), {}), shape_error);
    CHECK_THROWS_AS(normalize_external({x.data(), s}, y.data(), st, {}, -1.0), value_error);
}
