// SPDX-License-Identifier: MIT
// Work memory of the corruptions: image-sized buffers kept per thread and reused across calls.
#pragma once

#include <algorithm>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace shiftnorm::corrupt::detail {

//! Per-thread cache of freed large blocks (scratch_allocator). A corruption of a 224x224 image
//! allocates several 1.2 MB work buffers (float64 work image, filter passes); under glibc's
//! defaults such blocks are mmap'ed or trimmed back to the kernel when freed, so every call
//! page-faults them in again: measured 2026-12-03 through the Python package, 224x224, ImageNet
//! table, severity 3: gaussian_blur 6.6 ms per image under the default malloc against 1.35 ms
//! with MALLOC_TRIM_THRESHOLD_ / MALLOC_MMAP_THRESHOLD_ raised (glass_blur 10.0 / 1.9 ms,
//! elastic_transform 13.6 / 2.7 ms). Blocks of at least `min_bytes` go through this cache: at
//! most `max_blocks` and `max_bytes` are kept per thread (the smallest freed first beyond that);
//! the rest goes to operator new / delete. Each block carries its capacity in a 64-byte header,
//! so a block freed by another thread than the one that allocated it is handled alike. Keep
//! scratch vectors in automatic storage: one in static or thread_local storage could be freed
//! after its thread's pool is gone.
class scratch_pool {
public:
    static constexpr std::size_t min_bytes = std::size_t(1) << 16;
    static constexpr std::size_t max_blocks = 16;
    static constexpr std::size_t max_bytes = std::size_t(256) << 20;
    static constexpr std::size_t header = 64;

    scratch_pool() { free_.reserve(max_blocks + 1); }  // give() never reallocates: noexcept
    scratch_pool(const scratch_pool&) = delete;
    scratch_pool& operator=(const scratch_pool&) = delete;
    ~scratch_pool() {
        for (const block& b : free_) release(b.base);
    }

    //! The calling thread's pool.
    static scratch_pool& local() {
        thread_local scratch_pool pool;
        return pool;
    }

    //! At least `bytes` bytes (64-byte aligned): the smallest cached block that fits, else a new one.
    void* take(std::size_t bytes) {
        std::size_t best = free_.size();
        for (std::size_t i = 0; i < free_.size(); ++i)
            if (free_[i].cap >= bytes && (best == free_.size() || free_[i].cap < free_[best].cap)) best = i;
        if (best < free_.size()) {
            char* base = free_[best].base;
            cached_ -= free_[best].cap;
            free_.erase(free_.begin() + std::ptrdiff_t(best));
            return base + header;
        }
        char* base = static_cast<char*>(::operator new(bytes + header, std::align_val_t(64)));
        *reinterpret_cast<std::size_t*>(base) = bytes;
        return base + header;
    }

    //! Returns a block of take() to this thread's cache (or frees it beyond the limits).
    void give(void* p) {
        char* base = static_cast<char*>(p) - header;
        const std::size_t cap = *reinterpret_cast<std::size_t*>(base);
        if (cap > max_bytes) return release(base);
        free_.push_back({base, cap});
        cached_ += cap;
        while (free_.size() > max_blocks || cached_ > max_bytes) {
            const auto smallest = std::min_element(free_.begin(), free_.end(),
                                                   [](const block& a, const block& b) { return a.cap < b.cap; });
            cached_ -= smallest->cap;
            release(smallest->base);
            free_.erase(smallest);
        }
    }

    //! Frees every cached block.
    void clear() {
        for (const block& b : free_) release(b.base);
        free_.clear();
        cached_ = 0;
    }

    std::size_t cached_blocks() const { return free_.size(); }
    std::size_t cached_bytes() const { return cached_; }

private:
    struct block {
        char* base;
        std::size_t cap;
    };
    static void release(char* base) { ::operator delete(base, std::align_val_t(64)); }
    std::vector<block> free_;
    std::size_t cached_ = 0;
};

//! std::allocator for the corruptions' work buffers: blocks of scratch_pool::min_bytes and more
//! come from (and go back to) the calling thread's scratch_pool, smaller ones from operator new.
template <class T>
struct scratch_allocator {
    using value_type = T;
    scratch_allocator() noexcept = default;
    template <class U>
    scratch_allocator(const scratch_allocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        if (n > std::size_t(-1) / 2 / sizeof(T)) throw std::bad_array_new_length();
        const std::size_t bytes = n * sizeof(T);
        if (bytes >= scratch_pool::min_bytes) return static_cast<T*>(scratch_pool::local().take(bytes));
        return static_cast<T*>(::operator new(bytes, std::align_val_t(alignof(T) > 16 ? alignof(T) : 16)));
    }
    void deallocate(T* p, std::size_t n) noexcept {
        if (n * sizeof(T) >= scratch_pool::min_bytes) return scratch_pool::local().give(p);
        ::operator delete(p, std::align_val_t(alignof(T) > 16 ? alignof(T) : 16));
    }
    template <class U>
    bool operator==(const scratch_allocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const scratch_allocator<U>&) const noexcept { return false; }
};

//! A std::vector whose image-sized storage is reused across calls (scratch_allocator).
template <class T>
using scratch_vector = std::vector<T, scratch_allocator<T>>;

//! scratch_allocator whose value-initialisation leaves the elements default-initialised (for
//! arithmetic types: not zeroed by the size constructor or resize).
template <class T>
struct scratch_allocator_uninit : scratch_allocator<T> {
    scratch_allocator_uninit() noexcept = default;
    template <class U>
    scratch_allocator_uninit(const scratch_allocator_uninit<U>&) noexcept {}
    template <class U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
        ::new (static_cast<void*>(p)) U;
    }
    template <class U, class... A>
    void construct(U* p, A&&... a) {
        ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
    }
};

//! A scratch_vector whose elements start uninitialised: for work buffers every element of which
//! is written before it is read (a 224x224 defocus_blur zeroed 0.3 MB of them per image).
template <class T>
using scratch_buffer = std::vector<T, scratch_allocator_uninit<T>>;

}  // namespace shiftnorm::corrupt::detail

namespace shiftnorm::corrupt {

//! Frees the work memory the corruptions keep for the calling thread (detail::scratch_pool: at
//! most 16 blocks and 256 MiB per thread, freed anyway when the thread ends). For a long-lived
//! thread that corrupted large images once and goes on with other work.
inline void release_work_memory() { detail::scratch_pool::local().clear(); }

}  // namespace shiftnorm::corrupt
