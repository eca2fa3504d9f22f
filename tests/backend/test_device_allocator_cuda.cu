// SPDX-License-Identifier: MIT
// device_allocator hook: device_buffer takes memory from an installed allocator and frees it there.
#include <catch2/catch.hpp>

#include "shiftnorm/cuda.cuh"

using namespace shiftnorm::backend::cuda;

namespace {
struct counting {
    int allocs = 0, frees = 0;
    std::size_t live = 0;
};
void* count_alloc(std::size_t bytes, void* ctx) {
    auto* c = static_cast<counting*>(ctx);
    ++c->allocs;
    c->live += bytes;
    return device_allocator::cuda_allocate(bytes, nullptr);
}
void count_free(void* p, std::size_t bytes, void* ctx) {
    auto* c = static_cast<counting*>(ctx);
    ++c->frees;
    c->live -= bytes;
    device_allocator::cuda_deallocate(p, bytes, nullptr);
}
void* null_alloc(std::size_t, void*) { return nullptr; }
}  // namespace

TEST_CASE("device_buffer allocates through the installed device_allocator", "[cuda][allocator]") {
    counting c;
    const device_allocator a{&count_alloc, &count_free, &c};
    set_device_allocator(&a);
    {
        device_buffer<float> b(1000);
        CHECK(c.allocs == 1);
        CHECK(c.live == 4000);
        b.assign_sync(std::vector<float>(10, 2.f));  // resize: one free, one allocation
        CHECK(c.allocs == 2);
        CHECK(b.to_vector_sync() == std::vector<float>(10, 2.f));
        set_device_allocator(nullptr);  // later buffers use cudaMalloc; b still frees through `a`
        device_buffer<float> other(16);
        CHECK(c.allocs == 2);
    }
    CHECK(c.frees == 2);
    CHECK(c.live == 0);

    const device_allocator failing{&null_alloc, &count_free, &c};
    set_device_allocator(&failing);
    CHECK_THROWS_AS(device_buffer<float>(8), std::bad_alloc);
    set_device_allocator(nullptr);
    const device_allocator half{&count_alloc, nullptr, &c};
    CHECK_THROWS_AS(set_device_allocator(&half), shiftnorm::value_error);
}
