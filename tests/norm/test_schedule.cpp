// SPDX-License-Identifier: MIT
// Backends of the layers: channel-major and plane-streaming compute the same math, and agree with
// the layer instantiated on the naive double-precision backend (backend::reference::kernels).
#include <catch2/catch.hpp>

#include <cstring>

#include "shiftnorm/backend/reference/kernels.hpp"
#include "shiftnorm/shiftnorm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;
namespace cpu = shiftnorm::backend::cpu;

namespace {
bool same_bits(const tensor<float>& a, const tensor<float>& b) {
    return std::memcmp(a.data(), b.data(), std::size_t(a.numel()) * sizeof(float)) == 0;
}

//! forward_training, backward, forward_inference of a layer type; outputs in (y, dx, yi).
template <class Layer>
void run(const tensor<float>& x, const tensor<float>& dy, tensor<float>& y, tensor<float>& dx, tensor<float>& yi,
         std::vector<float>& dscale) {
    const index_t C = x.shape().c;
    Layer l(C);
    for (index_t c = 0; c < C; ++c) l.scale[c] = 0.8f + 0.1f * float(c), l.shift[c] = 0.3f - 0.05f * float(c);
    l.forward_training(x, y.view());
    l.backward(x, dy, dx.view());
    dscale.assign(l.diff_scale.begin(), l.diff_scale.end());
    l.forward_inference(x, yi.view());
}
}  // namespace

TEST_CASE("auto_schedule picks channel-major only for planes of 64 KiB whose channel fits 1 MiB", "[norm][schedule]") {
    CHECK_FALSE(cpu::auto_schedule::channel_major(shape4{128, 16, 32, 32}, 4));
    CHECK_FALSE(cpu::auto_schedule::channel_major(shape4{50, 64, 112, 112}, 4));  // channel 2.5 MB
    CHECK(cpu::auto_schedule::channel_major(shape4{8, 4, 128, 128}, 4));
    CHECK_FALSE(cpu::auto_schedule::channel_major(shape4{32, 4, 128, 128}, 4));  // channel 2 MiB
    CHECK(cpu::plane_streaming::channel_major(shape4{8, 4, 128, 128}, 4) == false);
    CHECK(cpu::channel_major_schedule::channel_major(shape4{2, 2, 1, 1}, 4));
    STATIC_REQUIRE(cpu::is_schedule_v<cpu::auto_schedule>);
    STATIC_REQUIRE_FALSE(cpu::is_schedule_v<int>);
}

TEST_CASE("batch_norm: both schedules match the double reference, bit for bit at 32x32 planes", "[norm][schedule]") {
    using cm = batch_norm<population, affine, fp32, cpu::channel_major_schedule>;
    using ps = batch_norm<population, affine, fp32, cpu::plane_streaming>;
    for (const shape4 s : {shape4{6, 3, 32, 32}, shape4{4, 5, 28, 28}, shape4{3, 4, 7, 7}, shape4{2, 3, 45, 45}}) {
        const auto x = test::random_tensor(s, 21, 4.0, 2.0), dy = test::random_tensor(s, 22, 0.0, 1.0);
        tensor<float> y0(s), dx0(s), yi0(s), y1(s), dx1(s), yi1(s);
        std::vector<float> ds0, ds1;
        run<cm>(x, dy, y0, dx0, yi0, ds0);
        run<ps>(x, dy, y1, dx1, yi1, ds1);
        // forward against the naive double reference, for both schedules
        std::vector<double> mean, var, g, b;
        const auto xd = test::to_double(x);
        test::naive_channel_moments(xd, s, mean, var);
        for (index_t c = 0; c < s.c; ++c) g.push_back(double(0.8f + 0.1f * float(c))), b.push_back(double(0.3f - 0.05f * float(c)));
        const auto ref = test::naive_bn(xd, s, mean, var, g, b, 1e-5);
        CHECK(test::worst_error(y0, ref, 1e-5, 1e-5) <= 1.0);
        CHECK(test::worst_error(y1, ref, 1e-5, 1e-5) <= 1.0);
        // the two schedules agree to rounding everywhere...
        CHECK(test::worst_error(dx0, test::to_double(dx1), 1e-5, 1e-5) <= 1.0);
        CHECK(test::worst_error(yi0, test::to_double(yi1), 1e-6, 1e-6) <= 1.0);
        // ...and exactly where one plane is one fp32 tile (1024 values) in both
        if (s.spatial() == 1024) {
            CHECK(same_bits(y0, y1));
            CHECK(same_bits(dx0, dx1));
            CHECK(same_bits(yi0, yi1));
            CHECK(ds0 == ds1);
        }
    }
}

TEST_CASE("robust_norm: both schedules give the same forward and backward", "[norm][schedule]") {
    using cm = robust_norm<affine, fp32, cpu::channel_major_schedule>;
    using ps = robust_norm<affine, fp32, cpu::plane_streaming>;
    for (const shape4 s : {shape4{6, 3, 32, 32}, shape4{3, 4, 7, 7}, shape4{2, 3, 30, 30}}) {
        const auto x = test::random_tensor(s, 31, -2.0, 3.0), dy = test::random_tensor(s, 32, 0.0, 1.0);
        tensor<float> y0(s), dx0(s), yi0(s), y1(s), dx1(s), yi1(s);
        std::vector<float> ds0, ds1;
        run<cm>(x, dy, y0, dx0, yi0, ds0);
        run<ps>(x, dy, y1, dx1, yi1, ds1);
        // min / max are exact in both orders, the mean differs by rounding at most
        CHECK(test::worst_error(y0, test::to_double(y1), 1e-5, 1e-5) <= 1.0);
        CHECK(test::worst_error(dx0, test::to_double(dx1), 1e-5, 1e-5) <= 1.0);
        CHECK(test::worst_error(yi0, test::to_double(yi1), 1e-6, 1e-6) <= 1.0);
        if (s.spatial() == 1024) CHECK(same_bits(dx0, dx1));
    }
}

namespace {
//! Every mode of a batch_norm<Source> on backend B: training forward / backward, inference and
//! its backward, batch forward, and a rectify pass into a second layer; outputs appended to out.
template <class B>
void bn_modes(const tensor<float>& x, const tensor<float>& dy, std::vector<tensor<float>>& out,
              std::vector<std::vector<float>>& stats) {
    const shape4 s = x.shape();
    batch_norm<population, affine, fp32, B> l(s.c);
    for (index_t c = 0; c < s.c; ++c) l.scale[c] = 0.7f + 0.2f * float(c), l.shift[c] = 0.1f * float(c);
    auto next = [&]() -> tensor<float>& { return out.emplace_back(s); };
    l.forward_training(x, next().view());
    l.backward(x, dy, next().view());
    stats.push_back(l.diff_scale), stats.push_back(l.diff_shift);
    stats.push_back(l.source.running.stats.mean), stats.push_back(l.source.running.stats.var);
    l.forward_inference(x, next().view());
    l.backward_inference(x, dy, next().view());
    l.forward_batch(x, next().view());
    batch_norm<rectified, affine, fp32, B> r(s.c);
    r.forward_rectify(x, next().view());
    stats.push_back(r.source.adapted.mean), stats.push_back(r.source.adapted.var);
    batch_norm<batch_stats, no_affine, fp32, B> b(s.c);
    b.forward_inference(x, next().view());
}
template <class B>
void rn_modes(const tensor<float>& x, const tensor<float>& dy, std::vector<tensor<float>>& out,
              std::vector<std::vector<float>>& stats) {
    const shape4 s = x.shape();
    robust_norm<affine, fp32, B> l(s.c);
    for (index_t c = 0; c < s.c; ++c) l.scale[c] = 0.7f + 0.2f * float(c), l.shift[c] = 0.1f * float(c);
    auto next = [&]() -> tensor<float>& { return out.emplace_back(s); };
    l.forward_training(x, next().view());
    l.backward(x, dy, next().view());
    stats.push_back(l.diff_scale), stats.push_back(l.diff_shift), stats.push_back(l.running_mean),
        stats.push_back(l.running_range);
    for (auto v : {robust_inference::rn, robust_inference::rnt, robust_inference::rnm}) {
        l.forward_inference(x, next().view(), v);
        l.backward_inference(x, dy, next().view());
    }
}
}  // namespace

TEST_CASE("batch_norm and robust_norm on the CPU schedules agree with the reference backend in every mode",
          "[norm][schedule][reference]") {
    using reference = backend::reference::kernels;
    STATIC_REQUIRE(backend::is_channel_backend_v<reference>);
    STATIC_REQUIRE(backend::is_channel_backend_v<cpu::auto_schedule>);
    STATIC_REQUIRE_FALSE(backend::is_channel_backend_v<int>);
    for (const shape4 s : {shape4{6, 3, 32, 32}, shape4{4, 5, 28, 28}, shape4{7, 4, 7, 7}, shape4{2, 3, 130, 130},
                           shape4{1, 2, 1, 3}}) {
        CAPTURE(s.n, s.c, s.h, s.w);
        // a large offset (|mean|/std = 500) in every channel: the accumulators' shift at work
        const auto x = test::random_tensor(s, 41, 1000.0, 2.0), dy = test::random_tensor(s, 42, 0.3, 1.0);
        for (int layer = 0; layer < 2; ++layer) {
            CAPTURE(layer);
            std::vector<tensor<float>> o_auto, o_cm, o_ref;
            std::vector<std::vector<float>> s_auto, s_cm, s_ref;
            if (layer == 0) {
                bn_modes<cpu::auto_schedule>(x, dy, o_auto, s_auto);
                bn_modes<cpu::channel_major_schedule>(x, dy, o_cm, s_cm);
                bn_modes<reference>(x, dy, o_ref, s_ref);
            } else {
                rn_modes<cpu::auto_schedule>(x, dy, o_auto, s_auto);
                rn_modes<cpu::channel_major_schedule>(x, dy, o_cm, s_cm);
                rn_modes<reference>(x, dy, o_ref, s_ref);
            }
            REQUIRE(o_auto.size() == o_ref.size());
            for (std::size_t i = 0; i < o_ref.size(); ++i) {
                CAPTURE(i);
                // outputs of order 1..10 (gradients: 1/std = 0.5 times dy); the fp32 rounding of
                // x - mean at |x| = 1000 is 6e-5 absolute, times a <= 1 / 2
                CHECK(test::worst_error(o_auto[i], test::to_double(o_ref[i]), 1e-4, 1e-5) <= 1.0);
                CHECK(test::worst_error(o_cm[i], test::to_double(o_ref[i]), 1e-4, 1e-5) <= 1.0);
            }
            for (std::size_t i = 0; i < s_ref.size(); ++i) {
                CAPTURE(i);
                std::vector<double> r(s_ref[i].begin(), s_ref[i].end());
                CHECK(test::worst_error(s_auto[i], r, 1e-4, 1e-5) <= 1.0);
                CHECK(test::worst_error(s_cm[i], r, 1e-4, 1e-5) <= 1.0);
            }
        }
    }
}
