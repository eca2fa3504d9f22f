// SPDX-License-Identifier: MIT
// The corruptions' per-thread work memory (corrupt/scratch.hpp).
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "shiftnorm/corrupt.hpp"

namespace sc = shiftnorm::corrupt;
using sc::detail::scratch_pool;
using sc::detail::scratch_vector;

TEST_CASE("scratch_pool reuses freed blocks within its limits", "[corrupt][scratch]") {
    scratch_pool pool;
    void* a = pool.take(1 << 20);
    CHECK(reinterpret_cast<std::uintptr_t>(a) % 64 == 0);
    std::memset(a, 1, 1 << 20);  // the whole block is usable
    pool.give(a);
    CHECK(pool.cached_blocks() == 1);
    CHECK(pool.cached_bytes() == std::size_t(1) << 20);
    // a request that fits takes the cached block, a larger one a new block
    void* b = pool.take((1 << 20) - 100);
    CHECK(b == a);
    CHECK(pool.cached_blocks() == 0);
    void* c = pool.take(2 << 20);
    CHECK(c != a);
    pool.give(b);
    pool.give(c);
    // the smallest fitting block is chosen
    void* d = pool.take(1 << 19);
    CHECK(d == a);
    pool.give(d);
    // never more than max_blocks cached: the smallest are freed first
    std::vector<void*> many;
    for (std::size_t i = 0; i < scratch_pool::max_blocks + 4; ++i) many.push_back(pool.take((i + 3) << 16));
    for (void* p : many) pool.give(p);
    CHECK(pool.cached_blocks() == scratch_pool::max_blocks);
    CHECK(pool.cached_bytes() <= scratch_pool::max_bytes);
    // a block larger than the whole budget is not kept
    void* huge = pool.take(scratch_pool::max_bytes + 1);
    const std::size_t before = pool.cached_blocks();
    pool.give(huge);
    CHECK(pool.cached_blocks() == before);
}

TEST_CASE("scratch_vector: small and large vectors, freed on another thread", "[corrupt][scratch]") {
    // sizes far above the other tests' images: the only cached block that fits is this test's own
    scratch_vector<double> small(10, 1.5), large(3000000, 2.5);
    CHECK(small[9] == 1.5);
    CHECK(large[2999999] == 2.5);
    const double* first = large.data();
    large = scratch_vector<double>();  // back to this thread's pool
    scratch_vector<double> again(2999000, 0.0);
    CHECK(again.data() == first);  // the same block, no new pages
    CHECK(again[2998999] == 0.0);    // value-initialized all the same
    // a block allocated here and freed by another thread goes to that thread's pool, safely
    auto moved = std::make_unique<scratch_vector<float>>(300000, 3.0f);
    std::thread t([&] {
        moved.reset();
        scratch_vector<float> v(300000, 4.0f);
        CHECK(v[299999] == 4.0f);
    });
    t.join();
}

TEST_CASE("release_work_memory empties the calling thread's cache", "[corrupt][scratch]") {
    { scratch_vector<double> v(1 << 18, 1.0); }
    CHECK(scratch_pool::local().cached_blocks() >= 1);
    sc::release_work_memory();
    CHECK(scratch_pool::local().cached_blocks() == 0);
    CHECK(scratch_pool::local().cached_bytes() == 0);
    scratch_vector<double> w(1 << 18, 2.0);  // and the pool works on
    CHECK(w.back() == 2.0);
}

TEST_CASE("corruptions give the same bytes on reused work memory", "[corrupt][scratch]") {
    // the first call allocates fresh buffers, later calls reuse them dirty: same bytes each time
    sc::image img(64, 64, 3);
    for (std::size_t i = 0; i < img.size(); ++i) img.data()[i] = std::uint8_t((i * 37) % 251);
    for (const char* name : {"gaussian_blur", "glass_blur", "elastic_transform", "spatter", "defocus_blur"}) {
        CAPTURE(name);
        const sc::corruption c = sc::parse_corruption(name);
        std::vector<std::vector<std::uint8_t>> outs;
        for (int rep = 0; rep < 3; ++rep) {
            sc::image out(64, 64, 3);
            sc::generator gen(7);
            sc::corrupt_options opt;
            opt.table = sc::param_table::imagenet;
            sc::apply(c, 3, img.view(), out.view(), gen, opt);
            outs.emplace_back(out.data(), out.data() + out.size());
        }
        CHECK(outs[0] == outs[1]);
        CHECK(outs[0] == outs[2]);
    }
}
