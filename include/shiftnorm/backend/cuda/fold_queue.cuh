// SPDX-License-Identifier: MIT
// Per-call device records (e.g. a training batch's statistics) copied to the host without a
// synchronization and folded there later, in call order.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <utility>

#include "shiftnorm/backend/cuda/device_buffer.cuh"

namespace shiftnorm::backend::cuda {

//! A ring of `Slots` pinned host slots of `count` records each. push() queues an asynchronous
//! copy of a call's records on the call's stream (after folding the copies already done, and
//! waiting for the oldest when every slot is busy); drain() waits for all and folds them, oldest
//! first. `fold(const Record*, std::size_t count)` is the caller's host update. Move-only; the
//! destructor waits for copies still in flight (their pinned slots are freed with it).
template <class Record, std::size_t Slots = 8>
class fold_queue {
public:
    static constexpr std::size_t slots = Slots;

    fold_queue() = default;
    fold_queue(const fold_queue&) = delete;
    fold_queue& operator=(const fold_queue&) = delete;
    fold_queue(fold_queue&& o) noexcept
        : host_(std::move(o.host_)), done_(std::move(o.done_)), count_(o.count_), head_(o.head_),
          pending_(std::exchange(o.pending_, 0)) {}
    fold_queue& operator=(fold_queue&& o) noexcept {
        if (this != &o) {
            wait_all();
            host_ = std::move(o.host_);
            done_ = std::move(o.done_);
            count_ = o.count_;
            head_ = o.head_;
            pending_ = std::exchange(o.pending_, 0);
        }
        return *this;
    }
    ~fold_queue() { wait_all(); }

    //! Records per call (allocates the pinned slots; only while nothing is pending).
    void reserve(std::size_t count) {
        host_.reserve_discard(Slots * count);
        count_ = count;
    }
    std::size_t pending() const { return pending_; }

    template <class Fold>
    void push(const device_buffer<Record>& src, cudaStream_t stream, Fold&& fold) {
        while (pending_ > 0 && done_[head_].query()) fold_oldest(fold);
        if (pending_ == Slots) fold_oldest(fold);
        const std::size_t slot = (head_ + pending_) % Slots;
        src.download(host_.data() + slot * count_, count_, stream);
        done_[slot].record(stream);
        ++pending_;
    }
    template <class Fold>
    void drain(Fold&& fold) {
        while (pending_ > 0) fold_oldest(fold);
    }

private:
    template <class Fold>
    void fold_oldest(Fold& fold) {
        done_[head_].synchronize();
        const Record* p = host_.data() + head_ * count_;
        head_ = (head_ + 1) % Slots;
        --pending_;
        fold(p, count_);
    }
    void wait_all() noexcept {
        for (const auto& e : done_) e.synchronize_noexcept();
    }

    pinned_buffer<Record> host_;
    std::array<event, Slots> done_;
    std::size_t count_ = 0, head_ = 0, pending_ = 0;
};

}  // namespace shiftnorm::backend::cuda
