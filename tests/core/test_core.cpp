// SPDX-License-Identifier: MIT
// Core: tensor / view access and checks, moments accumulator (Welford, Chan, shifted sums).
#include <catch2/catch.hpp>

#include <random>

#include "shiftnorm/shiftnorm.hpp"

using namespace shiftnorm;

TEST_CASE("tensor and tensor_view: shape, strides, checked access", "[core]") {
    tensor<float> t(shape4{2, 3, 4, 5}, 0.f);
    CHECK(t.numel() == 120);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    t(1, 2, 3, 4) = 7.f;
    CHECK(t[119] == 7.f);
    auto v = t.view();
    CHECK(v.is_contiguous());
    CHECK(v.strides().n == 60);
    CHECK_THROWS_AS(v.at(2, 0, 0, 0), shape_error);
    CHECK_THROWS_WITH(v.at(0, 3, 0, 0), Catch::Contains("'c'") && Catch::Contains("got 3"));
    CHECK_THROWS_AS(v(0, 0, 0, -1), shape_error);  // tests build with SHIFTNORM_CHECKED=1
    tensor<float> copy = t;
    CHECK(copy(1, 2, 3, 4) == 7.f);
    CHECK_THROWS_AS(t.reshape(shape4{1, 1, 1, 7}), shape_error);
    t.reshape(shape4{120, 1, 1, 1});
    CHECK(t.shape().n == 120);
    CHECK_THROWS_AS(tensor<float>(shape4{-1, 1, 1, 1}), shape_error);
    tensor<float> empty(shape4{0, 3, 2, 2});
    CHECK(empty.empty());
    // strided view (every other channel) deep-copied
    tensor_view<const float> sv(copy.data(), shape4{2, 2, 4, 5}, strides4{60, 40, 5, 1});
    CHECK_FALSE(sv.is_contiguous());
    auto d = tensor<float>::from(sv);
    CHECK(d(1, 1, 3, 4) == 7.f);
}

TEST_CASE("tensor::resize keeps the storage when it is large enough; moves leave an empty tensor", "[core]") {
    tensor<float> t(shape4{8, 4, 6, 6}, 1.f);
    const float* p = t.data();
    CHECK(t.capacity() == 8 * 4 * 36);
    t.resize(shape4{3, 4, 6, 6});  // a smaller batch: same storage, no allocation
    CHECK(t.data() == p);
    CHECK(t.numel() == 3 * 4 * 36);
    CHECK(t.capacity() == 8 * 4 * 36);
    CHECK(t.end() - t.begin() == t.numel());
    t.resize(shape4{8, 4, 6, 6});  // back to the capacity: still the same storage
    CHECK(t.data() == p);
    t.resize(shape4{9, 4, 6, 6});  // larger: new storage of exactly that size
    CHECK(t.capacity() == 9 * 4 * 36);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    CHECK_THROWS_AS(t.resize(shape4{-1, 1, 1, 1}), shape_error);
    tensor<float> u = std::move(t);
    CHECK(u.capacity() == 9 * 4 * 36);
    CHECK(t.numel() == 0);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    CHECK(t.capacity() == 0);
    t.resize(shape4{1, 1, 2, 2});  // a moved-from tensor allocates again
    CHECK(t.data() != nullptr);
    CHECK(t.numel() == 4);
    tensor<float> c = u;  // a copy holds numel() elements, not the capacity
    u.resize(shape4{1, 1, 1, 1});
    tensor<float> c2 = u;
    CHECK(c2.capacity() == 1);
    CHECK(c.capacity() == 9 * 4 * 36);
}

TEST_CASE("moments: Welford update, Chan merge and shifted sums agree", "[core][moments]") {
    std::mt19937 g(3);
    std::normal_distribution<double> nd(1e3, 1.0);
    std::vector<double> xs(1000);
    for (auto& x : xs) x = nd(g);
    double mean = 0, m2 = 0;
    for (double x : xs) mean += x;
    mean /= 1000;
    for (double x : xs) m2 += (x - mean) * (x - mean);
    using op = welford_op<double>;
    moments<double> a, b, all;
    for (int i = 0; i < 1000; ++i) {
        (i < 300 ? a : b) = op::reduce(i < 300 ? a : b, xs[i]);
        all = op::reduce(all, xs[i]);
    }
    const auto merged = op::combine(a, b);
    CHECK(merged.count == 1000);
    CHECK(merged.mean == Approx(mean).epsilon(1e-14));
    CHECK(merged.m2 == Approx(m2).epsilon(1e-10));
    CHECK(all.m2 == Approx(m2).epsilon(1e-10));
    CHECK(merged.variance(variance_kind::unbiased) == Approx(m2 / 999).epsilon(1e-10));
    CHECK(merged.variance(variance_kind::biased) == Approx(m2 / 1000).epsilon(1e-10));
    CHECK(op::combine(moments<double>{}, a).mean == a.mean);  // empty partials are neutral
    double s1 = 0, s2 = 0;
    for (double x : xs) s1 += x - 1000.0, s2 += (x - 1000.0) * (x - 1000.0);
    const auto sh = op::from_shifted_sums(1000, 1000.0, s1, s2, all.min, all.max);
    CHECK(sh.m2 == Approx(m2).epsilon(1e-9));
    CHECK(moments<double>{}.variance(variance_kind::unbiased) == 0);
    moments<double> one = op::reduce({}, 5.0);
    CHECK(one.variance(variance_kind::unbiased) == 0);
    CHECK(one.range() == 0);
}

TEST_CASE("error messages name argument, expected and actual", "[core][errors]") {
    try {
        detail::fail<shape_error>("where", "arg", 3, 4);
        FAIL("no throw");
    } catch (const shape_error& e) {
        CHECK(std::string(e.what()) == "where: argument 'arg' expected 3, got 4");
    }
}
