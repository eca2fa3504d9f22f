// SPDX-License-Identifier: MIT
// CUDA channel_moments against the CPU backend and the double reference (moments, first argmin/argmax).
#include <catch2/catch.hpp>

#include <limits>
#include <type_traits>
#include <utility>

#include "backend/cuda_parity.cuh"

using namespace shiftnorm;
namespace cu = shiftnorm::backend::cuda;

namespace {
//! First flat NCHW offset of the minimum and maximum of channel c (double reference).
void naive_first_extremes(const tensor<float>& x, index_t c, index_t& argmin, index_t& argmax) {
    const shape4& s = x.shape();
    const index_t hw = s.spatial();
    double mn = INFINITY, mx = -INFINITY;
    argmin = argmax = -1;
    for (index_t n = 0; n < s.n; ++n)
        for (index_t i = 0; i < hw; ++i) {
            const index_t k = (n * s.c + c) * hw + i;
            if (x[k] < mn) mn = x[k], argmin = k;
            if (x[k] > mx) mx = x[k], argmax = k;
        }
}

//! channel_moments<true> through launch_channel_reduce with a forced schedule.
std::vector<cu::channel_partial<double>> moments_on_path(const tensor<float>& x, cu::detail::reduce_path path) {
    const shape4& s = x.shape();
    auto d = cu::device_tensor<float>::from_host(x);
    cu::device_buffer<cu::channel_partial<double>> out(std::size_t(s.c));
    cu::reduce_workspace ws;
    using epi = cu::detail::store_partial_epilogue<double>;
    const cu::detail::moments_policy<float, double, true, epi> pol{d.data(), s.spatial(), epi{out.data(), s.c, s.spatial()}};
    cu::detail::launch_channel_reduce<float>(d.data(), nullptr, s, pol, ws, nullptr, path);
    return out.to_vector_sync(nullptr);
}

void check_moments(const tensor<float>& x, cu::detail::reduce_path path = cu::detail::reduce_path::automatic) {
    const shape4& s = x.shape();
    const auto gpu = moments_on_path(x, path);
    std::vector<double> mean, var;
    test::naive_channel_moments(test::to_double(x), s, mean, var);
    REQUIRE(gpu.size() == std::size_t(s.c));
    for (index_t c = 0; c < s.c; ++c) {
        INFO("shape " << s << " channel " << c << " path " << int(path));
        const auto cpu = backend::cpu::channel_moments<true>(tensor_view<const float>(x.view()), c);
        const auto& g = gpu[std::size_t(c)].m;
        CHECK(g.count == double(s.per_channel()));
        // fp32 tile sums (both backends): 1e-9 relative to |mean| plus 1e-6 of the spread
        CHECK(std::abs(g.mean - mean[c]) <= 1e-9 * std::abs(mean[c]) + 1e-6 * std::sqrt(var[c]) + 1e-12);
        CHECK(std::abs(g.variance(variance_kind::biased) - var[c]) <= 1e-6 * var[c] + 1e-12);
        CHECK(g.min == cpu.min);
        CHECK(g.max == cpu.max);
        index_t amin, amax;
        naive_first_extremes(x, c, amin, amax);
        CHECK(gpu[std::size_t(c)].argmin == amin);
        CHECK(gpu[std::size_t(c)].argmax == amax);
    }
}
}  // namespace

TEST_CASE("cuda channel_moments matches the reference on hostile inputs", "[cuda][moments]") {
    unsigned seed = 1;
    for (shape4 s : test::parity_shapes()) {
        check_moments(test::hostile_tensor(s, seed++));
        check_moments(test::hostile_tensor(s, seed++, -5e3));
    }
}

TEST_CASE("cuda channel_moments reports the FIRST argmin/argmax under ties, across chunks", "[cuda][moments][ties]") {
    for (shape4 s : {shape4{64, 2, 32, 32}, shape4{3, 4, 5, 5}, shape4{128, 3, 1, 1}}) check_moments(test::tied_tensor(s, 9));
}

TEST_CASE("cuda channel_moments handles more channels than grid.y allows and unaligned views", "[cuda][moments]") {
    check_moments(test::random_tensor(shape4{2, 70000, 1, 1}, 5, 1.0, 2.0));
    // an unaligned (offset by one float) device view takes the scalar path
    const shape4 s{4, 3, 8, 8};
    const auto x = test::random_tensor(s, 21, -3.0, 0.5);
    cu::device_buffer<float> buf(std::size_t(s.numel() + 1));
    buf.upload(x.data(), std::size_t(s.numel()));
    cu::device_buffer<float> shifted(std::size_t(s.numel() + 1));
    SHIFTNORM_CUDA_CHECK(cudaMemcpy(shifted.data() + 1, x.data(), std::size_t(s.numel()) * sizeof(float),
                                    cudaMemcpyHostToDevice));
    const auto a = cu::channel_moments<true, float>(tensor_view<const float>(buf.data(), s));
    const auto b = cu::channel_moments<true, float>(tensor_view<const float>(shifted.data() + 1, s));
    for (index_t c = 0; c < s.c; ++c) {
        // vector and scalar paths group the fp32 shifted sums differently: agree to fp32 rounding
        CHECK(a[c].m.mean == Approx(b[c].m.mean).epsilon(1e-9));
        CHECK(a[c].m.m2 == Approx(b[c].m.m2).epsilon(1e-6));
        CHECK(a[c].argmin == b[c].argmin);
        CHECK(a[c].argmax == b[c].argmax);
    }
}

TEST_CASE("cuda channel_moments rejects empty, strided and host inputs before launching", "[cuda][moments][errors]") {
    cu::device_tensor<float> empty(shape4{0, 3, 4, 4});
    CHECK_THROWS_AS((cu::channel_moments<false, float>(tensor_view<const float>(empty.view()))), shape_error);
    auto host = test::random_tensor(shape4{2, 2, 2, 2}, 1);
    CHECK_THROWS_AS((cu::channel_moments<false, float>(tensor_view<const float>(host.view()))), value_error);
}

TEST_CASE("cuda channel moments stay accurate with large per-image offsets", "[cuda][moments][numerics]") {
    // image 0 near 0, all others near 3e4: the variance must not drown in the offsets' squares
    const shape4 s{512, 3, 4, 4};
    auto x = test::random_tensor(s, 21, 0.0, 1.0);
    for (index_t n = 1; n < s.n; ++n)
        for (index_t i = 0; i < s.c * s.spatial(); ++i) x.data()[n * s.c * s.spatial() + i] += 3e4f + float(n % 7);
    std::vector<double> mean, var;
    test::naive_channel_moments(test::to_double(x), s, mean, var);
    auto xd = test::to_device(x);
    shiftnorm::batch_norm<population> cpu(s.c);
    cu::batch_norm<population> gpu(s.c);
    tensor<float> y(s);
    cu::device_tensor<float> yd(s);
    gpu.forward_training(xd.view(), yd.view());
    const auto inv_std = gpu.saved_inv_std();
    for (index_t c = 0; c < s.c; ++c) {
        INFO("channel " << c);
        CHECK(1.0 / (double(inv_std[c]) * double(inv_std[c])) - 1e-5 == Approx(var[c]).epsilon(1e-5));
    }
}

TEST_CASE("cuda channel reductions: the block, warp and thread schedules all match the reference", "[cuda][moments][schedule]") {
    using cu::detail::reduce_path;
    unsigned seed = 40;
    // scalar (H*W odd) and vector paths, one image, many channels, ties, several loads per lane
    for (shape4 s : {shape4{3, 300, 7, 7}, shape4{2, 140, 4, 4}, shape4{1, 150, 5, 5}, shape4{50, 7, 7, 7},
                     shape4{2, 70000, 1, 1}, shape4{4, 3, 64, 64}}) {
        for (reduce_path path : {reduce_path::block, reduce_path::warp, reduce_path::thread, reduce_path::lanes2,
                                 reduce_path::lanes4, reduce_path::lanes8, reduce_path::lanes16}) {
            check_moments(test::hostile_tensor(s, seed++), path);
            check_moments(test::hostile_tensor(s, seed++, -5e3), path);
        }
    }
    for (reduce_path path : {reduce_path::block, reduce_path::warp, reduce_path::thread, reduce_path::lanes2,
                             reduce_path::lanes4, reduce_path::lanes8, reduce_path::lanes16})
        check_moments(test::tied_tensor(shape4{9, 140, 3, 3}, 11), path);
    // the automatic choice among the small-channel schedules, on the H200's 132 SMs (the rule's
    // fitted table in schedule.cuh): lanes per channel, 32 = the warp path, 0 = not small
    using cu::detail::small_channel_lanes;
    CHECK(small_channel_lanes({1, 4096, 64}, 132) == 8);
    CHECK(small_channel_lanes({1, 8192, 16}, 132) == 4);
    CHECK(small_channel_lanes({1, 12800, 49}, 132) == 4);
    CHECK(small_channel_lanes({1, 25600, 49}, 132) == 2);
    CHECK(small_channel_lanes({1, 51200, 49}, 132) == 1);
    CHECK(small_channel_lanes({1, 102400, 49}, 132) == 1);
    CHECK(small_channel_lanes({2, 264, 8}, 132) == 32);
    CHECK(small_channel_lanes({3, 264, 49}, 132) == 0);  // 147 values: the warp path decides
    // the thread schedule calls the moments policy's collective-free init
    using moments_pol = cu::detail::moments_policy<float, double, true, cu::detail::store_partial_epilogue<double>>;
    STATIC_REQUIRE(cu::detail::has_init_alone<moments_pol>::value);
    STATIC_REQUIRE_FALSE(cu::detail::has_init_alone<int>::value);
    // ... and its alone() variant, which sums whole 64-value tiles in double (in fp32 the
    // variance of [3,300,7,7] was up to 2.8e-6 off on an H200, outside the 1e-6 checked above)
    using alone_pol = decltype(cu::detail::alone_policy(std::declval<const moments_pol&>()));
    STATIC_REQUIRE(std::is_same<alone_pol, cu::detail::moments_policy<float, double, true,
                                                                      cu::detail::store_partial_epilogue<double>, double>>::value);
    // the automatic choice: many small channels take the warp path, few large ones the block path
    const int sms = cu::detail::sm_count();
    CHECK(cu::detail::use_warp_reduce(cu::detail::channel_geometry{50, 2048, 49}, sms) == (2048 >= sms));
    CHECK_FALSE(cu::detail::use_warp_reduce(cu::detail::channel_geometry{128, 16, 256}, sms));
}
