// SPDX-License-Identifier: MIT
// CUDA error checking, RAII device/pinned buffers and device_tensor (tensor_view of device memory).
#pragma once

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/tensor.hpp"

namespace shiftnorm::backend::cuda {

//! A CUDA runtime call failed. The message names the call, the file and line, the error's
//! name and cudaGetErrorString; code() is the cudaError_t.
class cuda_error : public error {
public:
    cuda_error(cudaError_t code, const char* call, const char* file, int line)
        : error(shiftnorm::detail::concat(file, ':', line, ": CUDA call '", call, "' failed: ", cudaGetErrorName(code),
                                          " (", cudaGetErrorString(code), ')')),
          code_(code) {}
    cudaError_t code() const { return code_; }

private:
    cudaError_t code_;
};

namespace detail {
inline void check_cuda(cudaError_t code, const char* call, const char* file, int line) {
    if (code != cudaSuccess) {
        (void)cudaGetLastError();  // clear a sticky-free error so later calls do not re-report it
        throw cuda_error(code, call, file, line);
    }
}
}  // namespace detail

}  // namespace shiftnorm::backend::cuda

//! Evaluates a cudaError_t expression and throws backend::cuda::cuda_error when it failed.
#define SHIFTNORM_CUDA_CHECK(call) ::shiftnorm::backend::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)

namespace shiftnorm::backend::cuda {

//! Where device memory comes from: a pair of functions and their context, so a host framework can
//! hand shiftnorm its own pool (PyTorch's caching allocator: c10::cuda::CUDACachingAllocator's
//! raw_alloc / raw_delete). `allocate` returns nullptr or throws on failure; `deallocate` must
//! not throw. The default is cudaMalloc / cudaFree.
struct device_allocator {
    void* (*allocate)(std::size_t bytes, void* ctx) = nullptr;
    void (*deallocate)(void* p, std::size_t bytes, void* ctx) = nullptr;
    void* ctx = nullptr;

    static void* cuda_allocate(std::size_t bytes, void*) {
        void* p = nullptr;
        SHIFTNORM_CUDA_CHECK(cudaMalloc(&p, bytes));
        return p;
    }
    static void cuda_deallocate(void* p, std::size_t, void*) { (void)cudaFree(p); }
    static device_allocator cuda() { return {&cuda_allocate, &cuda_deallocate, nullptr}; }
};

namespace detail {
inline std::atomic<const device_allocator*>& allocator_slot() {
    static const device_allocator fallback = device_allocator::cuda();
    static std::atomic<const device_allocator*> slot{&fallback};
    return slot;
}
}  // namespace detail

//! Installs the allocator every device_buffer allocated from now on uses (nullptr: back to
//! cudaMalloc / cudaFree). `a` must outlive every buffer it allocated: a buffer frees its memory
//! with the allocator that allocated it, whatever is installed by then.
inline void set_device_allocator(const device_allocator* a) {
    if (a && (!a->allocate || !a->deallocate))
        shiftnorm::detail::fail("set_device_allocator", "allocator", "both allocate and deallocate set", "a null function");
    static const device_allocator fallback = device_allocator::cuda();
    detail::allocator_slot().store(a ? a : &fallback);
}
//! The allocator in use.
inline const device_allocator& current_device_allocator() { return *detail::allocator_slot().load(); }

//! Owning, uninitialised device array of trivially copyable T (from the current
//! device_allocator: cudaMalloc / cudaFree unless set_device_allocator installed another).
//! Move-only. Transfers take a stream; the *_sync helpers wait for it.
template <class T>
class device_buffer {
    static_assert(std::is_trivially_copyable_v<T>, "device_buffer<T> requires a trivially copyable T");

public:
    device_buffer() = default;
    explicit device_buffer(std::size_t count) { allocate(count); }
    device_buffer(const device_buffer&) = delete;
    device_buffer& operator=(const device_buffer&) = delete;
    device_buffer(device_buffer&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), alloc_(o.alloc_) {}
    device_buffer& operator=(device_buffer&& o) noexcept {
        if (this != &o) {
            release();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
            alloc_ = o.alloc_;
        }
        return *this;
    }
    ~device_buffer() { release(); }

    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    std::size_t bytes() const { return size_ * sizeof(T); }
    bool empty() const { return size_ == 0; }

    //! Reallocates to exactly `count` elements when the size differs; contents are discarded.
    void resize_discard(std::size_t count) {
        if (count == size_) return;
        release();
        allocate(count);
    }
    //! Grows (discarding contents) to at least `count` elements; returns whether it reallocated.
    bool reserve_discard(std::size_t count) {
        if (count <= size_) return false;
        release();
        allocate(count);
        return true;
    }

    void zero(cudaStream_t stream = nullptr) {
        if (size_) SHIFTNORM_CUDA_CHECK(cudaMemsetAsync(data_, 0, bytes(), stream));
    }
    //! Host -> device copy of `count` <= size() elements (asynchronous for pinned `host`).
    void upload(const T* host, std::size_t count, cudaStream_t stream = nullptr) {
        check_count("device_buffer::upload", count);
        if (count) SHIFTNORM_CUDA_CHECK(cudaMemcpyAsync(data_, host, count * sizeof(T), cudaMemcpyHostToDevice, stream));
    }
    //! Device -> host copy of `count` <= size() elements (asynchronous for pinned `host`).
    void download(T* host, std::size_t count, cudaStream_t stream = nullptr) const {
        check_count("device_buffer::download", count);
        if (count) SHIFTNORM_CUDA_CHECK(cudaMemcpyAsync(host, data_, count * sizeof(T), cudaMemcpyDeviceToHost, stream));
    }
    //! Resizes to v.size() and copies v in; waits for the copy (v may be released afterwards).
    void assign_sync(const std::vector<T>& v, cudaStream_t stream = nullptr) {
        resize_discard(v.size());
        upload(v.data(), v.size(), stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
    }
    //! Copies the whole buffer to a host vector, waiting for `stream`.
    std::vector<T> to_vector_sync(cudaStream_t stream = nullptr) const {
        std::vector<T> v(size_);
        download(v.data(), size_, stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
        return v;
    }

private:
    void allocate(std::size_t count) {
        if (count == 0) return;
        alloc_ = &current_device_allocator();
        void* p = alloc_->allocate(count * sizeof(T), alloc_->ctx);
        if (!p)
            throw std::bad_alloc();
        data_ = static_cast<T*>(p);
        size_ = count;
    }
    void release() noexcept {
        if (data_) alloc_->deallocate(data_, bytes(), alloc_->ctx);  // never throws from a destructor
        data_ = nullptr;
        size_ = 0;
    }
    void check_count(const char* where, std::size_t count) const {
        if (count > size_)
            shiftnorm::detail::fail<shape_error>(where, "count", shiftnorm::detail::concat("<= ", size_), count);
    }

    T* data_ = nullptr;
    std::size_t size_ = 0;
    const device_allocator* alloc_ = nullptr;  //!< the allocator that allocated data_
};

//! Owning page-locked host array (cudaMallocHost): the staging area of asynchronous copies.
template <class T>
class pinned_buffer {
    static_assert(std::is_trivially_copyable_v<T>, "pinned_buffer<T> requires a trivially copyable T");

public:
    pinned_buffer() = default;
    pinned_buffer(const pinned_buffer&) = delete;
    pinned_buffer& operator=(const pinned_buffer&) = delete;
    pinned_buffer(pinned_buffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
    pinned_buffer& operator=(pinned_buffer&& o) noexcept {
        if (this != &o) {
            release();
            data_ = std::exchange(o.data_, nullptr);
            size_ = std::exchange(o.size_, 0);
        }
        return *this;
    }
    ~pinned_buffer() { release(); }

    //! Grows (discarding contents) to at least `count` elements.
    void reserve_discard(std::size_t count) {
        if (count <= size_) return;
        release();
        void* p = nullptr;
        SHIFTNORM_CUDA_CHECK(cudaMallocHost(&p, count * sizeof(T)));
        data_ = static_cast<T*>(p);
        size_ = count;
    }
    T* data() { return data_; }
    const T* data() const { return data_; }
    std::size_t size() const { return size_; }
    T& operator[](std::size_t i) { return data_[i]; }
    const T& operator[](std::size_t i) const { return data_[i]; }

private:
    void release() noexcept {
        if (data_) (void)cudaFreeHost(data_);
        data_ = nullptr;
        size_ = 0;
    }
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

//! RAII CUDA event (timing disabled), created on first record(): tells when a staging buffer
//! may be reused. synchronize() on a never-recorded event returns at once.
class event {
public:
    event() = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;
    event(event&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
    event& operator=(event&& o) noexcept {
        if (this != &o) {
            if (e_) (void)cudaEventDestroy(e_);
            e_ = std::exchange(o.e_, nullptr);
        }
        return *this;
    }
    ~event() {
        if (e_) (void)cudaEventDestroy(e_);
    }
    void record(cudaStream_t stream) {
        if (!e_) SHIFTNORM_CUDA_CHECK(cudaEventCreateWithFlags(&e_, cudaEventDisableTiming));
        SHIFTNORM_CUDA_CHECK(cudaEventRecord(e_, stream));
    }
    void synchronize() const {
        if (e_) SHIFTNORM_CUDA_CHECK(cudaEventSynchronize(e_));
    }
    //! Whether the work recorded last is done (true before any record); does not wait.
    bool query() const {
        if (!e_) return true;
        const cudaError_t r = cudaEventQuery(e_);
        if (r == cudaErrorNotReady) return false;
        SHIFTNORM_CUDA_CHECK(r);
        return true;
    }
    //! synchronize() for destructors: errors are left to the next checked call.
    void synchronize_noexcept() const noexcept {
        if (e_) (void)cudaEventSynchronize(e_);
    }
    //! Makes `stream` wait (on the device) for the work recorded last; no-op before any record.
    void wait_on(cudaStream_t stream) const {
        if (e_) SHIFTNORM_CUDA_CHECK(cudaStreamWaitEvent(stream, e_, 0));
    }
    //! record() for destructors: errors are left to the next checked call.
    void record_noexcept(cudaStream_t stream) noexcept {
        if (!e_ && cudaEventCreateWithFlags(&e_, cudaEventDisableTiming) != cudaSuccess) e_ = nullptr;
        if (e_) (void)cudaEventRecord(e_, stream);
    }

private:
    cudaEvent_t e_ = nullptr;
};

//! Orders the calls of one layer across streams. A layer's device workspaces (coefficients,
//! staging, reduction scratch) are shared by all its calls, so a call on stream B must not start
//! before the work the layer queued on stream A is done: scope(B) makes B wait for A's last work
//! on the device (cudaStreamWaitEvent: no host synchronization), and records B's work at the
//! end of the call. Calls on one stream are ordered by the stream itself (no wait is added).
class stream_order {
public:
    class scope {
    public:
        scope(stream_order& o, cudaStream_t s) : o_(o), s_(s) {
            if (o_.used_ && o_.last_ != s_) o_.done_.wait_on(s_);
        }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;
        ~scope() {
            o_.done_.record_noexcept(s_);
            o_.last_ = s_;
            o_.used_ = true;
        }

    private:
        stream_order& o_;
        cudaStream_t s_;
    };
    //! Guard for one call on `s`: const auto order = order_.enter(stream);
    scope enter(cudaStream_t s) { return scope(*this, s); }

private:
    event done_;
    cudaStream_t last_ = nullptr;
    bool used_ = false;
};

//! Owning, contiguous NCHW tensor in device memory; view() gives a tensor_view<T> whose data
//! pointer is a DEVICE pointer (never dereference it on the host).
template <class T>
class device_tensor {
public:
    using value_type = T;

    device_tensor() = default;
    explicit device_tensor(shape4 shape) : shape_(shape) {
        if (!shape.valid()) shiftnorm::detail::fail<shape_error>("device_tensor", "shape", "non-negative extents", shape);
        buf_.resize_discard(std::size_t(shape.numel()));
    }
    //! Copies a contiguous host view to a new device tensor and waits for the copy.
    static device_tensor from_host(const tensor_view<const T>& host, cudaStream_t stream = nullptr) {
        device_tensor d(host.shape());
        d.copy_from_host(host, stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
        return d;
    }
    static device_tensor from_host(const tensor<T>& host, cudaStream_t stream = nullptr) {
        return from_host(host.view(), stream);
    }

    //! Host -> device copy of a contiguous view of the same shape (asynchronous when pinned).
    void copy_from_host(const tensor_view<const T>& host, cudaStream_t stream = nullptr) {
        if (host.shape() != shape_) shiftnorm::detail::fail<shape_error>("device_tensor::copy_from_host", "host", shape_, host.shape());
        if (!host.is_contiguous())
            shiftnorm::detail::fail<shape_error>("device_tensor::copy_from_host", "host", "a contiguous view", "a strided view");
        buf_.upload(host.data(), std::size_t(numel()), stream);
    }
    //! Device -> host copy into a new tensor; waits for `stream`.
    tensor<T> to_host(cudaStream_t stream = nullptr) const {
        tensor<T> t(shape_);
        buf_.download(t.data(), std::size_t(numel()), stream);
        SHIFTNORM_CUDA_CHECK(cudaStreamSynchronize(stream));
        return t;
    }
    void zero(cudaStream_t stream = nullptr) { buf_.zero(stream); }

    T* data() { return buf_.data(); }
    const T* data() const { return buf_.data(); }
    const shape4& shape() const { return shape_; }
    index_t numel() const { return shape_.numel(); }
    bool empty() const { return shape_.empty(); }
    tensor_view<T> view() { return {data(), shape_}; }
    tensor_view<const T> view() const { return {data(), shape_}; }

private:
    device_buffer<T> buf_;
    shape4 shape_{};
};

namespace detail {

//! Throws value_error unless `p` is device (or managed) memory: a host pointer handed to a
//! kernel would otherwise fault asynchronously with an unhelpful message. A driver query per
//! call, so only in checked builds (debug, or SHIFTNORM_CHECKED=1); release builds trust views.
inline void check_device_pointer(const char* where, const char* arg, const void* p) {
    if constexpr (!SHIFTNORM_CHECKED) {
        (void)where, (void)arg, (void)p;
        return;
    }
    cudaPointerAttributes a{};
    SHIFTNORM_CUDA_CHECK(cudaPointerGetAttributes(&a, p));
    if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
        shiftnorm::detail::fail(where, arg, "a device (or managed) pointer",
                                a.type == cudaMemoryTypeHost ? "pinned host memory" : "host memory");
}

//! Number of SMs of the current device (the grid-size target of the launch plans), queried
//! once per device and cached (no attribute query per launch).
inline int sm_count() {
    constexpr int max_devices = 64;
    static std::atomic<int> cache[max_devices] = {};
    int dev = 0;
    SHIFTNORM_CUDA_CHECK(cudaGetDevice(&dev));
    if (dev >= 0 && dev < max_devices)
        if (const int c = cache[dev].load(std::memory_order_relaxed); c > 0) return c;
    int n = 0;
    SHIFTNORM_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
    n = n > 0 ? n : 1;
    if (dev >= 0 && dev < max_devices) cache[dev].store(n, std::memory_order_relaxed);
    return n;
}

}  // namespace detail
}  // namespace shiftnorm::backend::cuda
