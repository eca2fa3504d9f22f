// SPDX-License-Identifier: MIT
// CPU schedule policies: channel-major and plane-streaming layers compute the same math.
#include <catch2/catch.hpp>

#include <cstring>

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
