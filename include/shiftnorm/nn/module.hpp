// SPDX-License-Identifier: MIT
// The layer interface of the training engine: forward/backward on owned NCHW tensors, named parameters.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "shiftnorm/backend/channel_pass.hpp"
#include "shiftnorm/config.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/omp.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/nn/init.hpp"

namespace shiftnorm::nn {

//! What a forward call is for. Explicit, never guessed from the batch size (house style):
//!  - train:   batch statistics, dropout active, running buffers updated;
//!  - eval:    population statistics, dropout off;
//!  - rectify: test-time adaptation pass, normalization layers call forward_rectify;
//!  - batch:   inference with the statistics of the batch being classified (seed 003's "B"):
//!             dropout off, normalization layers call forward_batch (batch statistics, the
//!             stored running buffers untouched) and backward differentiates THROUGH those
//!             statistics. Layers without statistics behave as in eval.
enum class mode { train, eval, rectify, batch };

//! Whether every layer treats the images of a batch independently in mode `m`, so that an image's
//! result does not depend on the batch it comes in (nn::infer splits batches on this): true for
//! mode::eval only (stored statistics, dropout off; linear layers then keep each image's bits
//! independent of the batch, see nn/linear.hpp).
//! train, rectify and batch modes compute statistics over the whole batch.
inline bool per_image_mode(mode m) { return m == mode::eval; }

inline const char* to_string(mode m) {
    return m == mode::train ? "train" : m == mode::eval ? "eval" : m == mode::rectify ? "rectify" : "batch";
}

//! What a parameter is; the optimizer may treat kinds differently (e.g. no weight decay on
//! normalization parameters) and checkpoints store every kind.
enum class param_kind { weight, bias, norm_weight, norm_bias, buffer };

//! A named float tensor of a module, as PyTorch names it (`layer1.0.conv1.weight`, OIHW shape).
//! `grad` is null for buffers (running statistics). Pointers stay valid while the module lives.
struct param_ref {
    std::string name;
    std::vector<std::int64_t> shape;
    float* value = nullptr;
    float* grad = nullptr;
    index_t size = 0;
    param_kind kind = param_kind::weight;
};

//! A named 64-bit integer buffer (`bn1.num_batches_tracked`).
struct counter_ref {
    std::string name;
    long long* value = nullptr;
};

//! Everything a module exposes for optimizers and checkpoints, in registration order.
struct param_set {
    std::vector<param_ref> params;
    std::vector<counter_ref> counters;

    //! Parameters with gradients (what an optimizer updates).
    std::vector<param_ref> trainable() const {
        std::vector<param_ref> out;
        for (const auto& p : params)
            if (p.grad) out.push_back(p);
        return out;
    }
    index_t trainable_count() const {
        index_t n = 0;
        for (const auto& p : params)
            if (p.grad) n += p.size;
        return n;
    }
};

inline std::string join_name(const std::string& prefix, const std::string& name) {
    if (prefix.empty()) return name;
    if (name.empty()) return prefix;
    return prefix + "." + name;
}

//! What a layer that takes an epilogue (module::forward_epilogue: conv2d, residual, sequential)
//! applies to its output after computing it, per image while it is in cache (inference fusion,
//! nn::infer), in this order: `coef` (one entry per channel, or null) the per-channel map of a
//! folded normalization layer (backend::normalize_value); `add` (a tensor of the output's shape
//! `add_shape`, or null) a residual's other branch, added as residual does (y + add); with `relu`,
//! a ReLU (nn::relu_value).
struct epilogue {
    const backend::channel_coef<float>* coef = nullptr;
    std::size_t coef_size = 0;
    bool relu = false;
    const float* add = nullptr;
    shape4 add_shape{};
};

//! What a layer's backward folds in (module::backward_fused; a residual's backward asks its body,
//! so that its add needs no pass of its own): `add` (of the input's shape) is added to the input
//! gradient, diff_src + add in that order (as residual's add, rounded once). Same bits as the
//! plain backward followed by the add.
struct backward_fusion {
    const tensor<float>* add = nullptr;
};

//! A layer. It owns its output (`forward` returns a reference to it) and its input gradient
//! (`backward` returns a reference to it). `forward` remembers the address of `src`: the caller
//! keeps `src` alive and unchanged until the matching `backward` (a sequential network does so
//! naturally, each input being the previous layer's owned output).
//! Parameter gradients accumulate across backward calls until zero_grad().
class module {
public:
    virtual ~module() = default;

    //! Shape of dst for a src of shape `src`; throws shape_error for an unsupported src.
    virtual shape4 output_shape(const shape4& src) const = 0;
    virtual const tensor<float>& forward(const tensor<float>& src, mode m) = 0;
    //! Gradient of the loss with respect to the src of the last forward call, given diff_dst
    //! (shape of the last dst). With input gradients switched off (set_input_grad(false)) the
    //! returned tensor is unspecified; parameter gradients are still accumulated.
    virtual const tensor<float>& backward(const tensor<float>& diff_dst) = 0;
    //! Appends this module's parameters, named under `prefix`.
    virtual void collect(const std::string& prefix, param_set& out) { (void)prefix, (void)out; }
    //! Re-initializes the parameters from `g` (Kaiming for convolutions, PyTorch defaults for
    //! linear layers, ones/zeros for normalization). Containers recurse in registration order.
    virtual void reset_parameters(rng_type& g) { (void)g; }
    //! One-line description for printing the architecture.
    virtual std::string describe() const = 0;
    //! Calls f on each direct child module, in registration order (containers override it;
    //! nn/visit.hpp walks the whole tree with it).
    virtual void for_each_child(const std::function<void(module&)>& f) { (void)f; }
    //! Whether backward must compute diff_src (false for the first layer of a network).
    virtual void set_input_grad(bool on) { input_grad_ = on; }
    bool input_grad() const { return input_grad_; }
    //! Whether backward accumulates parameter gradients (default true). Off, layers with
    //! parameters skip that work (a convolution its weight GEMM and im2col): for passes that
    //! only need the input gradient, e.g. an attack through a network. Applies to the whole
    //! subtree (containers pass it to their children through for_each_child).
    virtual void set_param_grad(bool on) {
        param_grad_ = on;
        for_each_child([on](module& c) { c.set_param_grad(on); });
    }
    bool param_grad() const { return param_grad_; }

    //! Inference fusion (nn::infer turns it on around its forward calls): containers may then
    //! run a convolution with the normalization and ReLU that follow it in one pass (conv2d's
    //! epilogue), and a residual with its ReLU; same bits as the layers one by one, but the
    //! skipped layers keep no state, so backward must not follow such a forward (containers throw
    //! state_error). Applies to the whole subtree.
    virtual void set_inference_fusion(bool on) {
        for_each_child([on](module& c) { c.set_inference_fusion(on); });
    }
    //! Whether forward_train_relu runs this layer's mode::train forward with a ReLU after it
    //! fused into its passes (a batch norm on a CPU schedule without an observer). Default false.
    virtual bool takes_train_relu() const { return false; }
    //! The mode::train forward followed by a ReLU (nn::relu's bits), for a container that then
    //! skips that ReLU layer in forward and backward: this layer's next backward takes the ReLU's
    //! output gradient. Only when takes_train_relu().
    virtual const tensor<float>& forward_train_relu(const tensor<float>& src) {
        (void)src;
        throw state_error("module::forward_train_relu: this layer cannot run a ReLU after it (takes_train_relu)");
    }
    //! Whether forward_train_add_relu runs this layer's mode::train forward with a residual's
    //! add and the ReLU after it fused into its passes (a batch norm on a CPU schedule without an
    //! observer, the last layer of a residual's body). Default false.
    virtual bool takes_train_add_relu() const { return false; }
    //! dst = relu(forward(src, mode::train) + add) (the bits of the layer, a residual's add and
    //! nn::relu one by one); `add` has the output's shape. The next backward takes the gradient of
    //! the layer's own output (the caller applies the ReLU's mask and the add's branches). Only
    //! when takes_train_add_relu().
    virtual const tensor<float>& forward_train_add_relu(const tensor<float>& src, const tensor<float>& add) {
        (void)src, (void)add;
        throw state_error(
            "module::forward_train_add_relu: this layer cannot run an add and a ReLU after it (takes_train_add_relu)");
    }
    //! Whether the next backward_fused(diff, f) can fold `f` (backward_fusion) into its passes,
    //! given the last forward. Default false: the caller runs the passes itself.
    virtual bool takes_backward_fusion(const backward_fusion& f) const {
        (void)f;
        return false;
    }
    //! backward with `f` folded in (only when takes_backward_fusion(f)); the result equals backward
    //! followed by the add, bit for bit.
    virtual const tensor<float>& backward_fused(const tensor<float>& diff_dst, const backward_fusion& f) {
        (void)diff_dst, (void)f;
        throw state_error("module::backward_fused: this layer folds nothing into its backward (takes_backward_fusion)");
    }
    //! A promise that the parameters do not change while it is on (nn::infer turns it on around
    //! its chunks): layers may then keep what they derive from their weights between forward
    //! calls (conv2d its Winograd weight transform). Turning it on or off drops what was kept.
    //! Applies to the whole subtree.
    virtual void set_constant_weights(bool on) {
        for_each_child([on](module& c) { c.set_constant_weights(on); });
    }
    //! When forward in mode `m` is a per-channel map y = backend::normalize_value(x, k[c].mean,
    //! k[c].a, k[c].b) that may be folded into the layer before it: fills k (one entry per
    //! channel) and returns true. Default false (normalization layers: norm_modes::fold).
    virtual bool inference_affine(mode m, std::vector<backend::channel_coef<float>>& k) {
        (void)m, (void)k;
        return false;
    }
    //! Whether forward_epilogue applies `e` (default: no epilogue at all). A layer that takes any
    //! epilogue takes a ReLU alone ({nullptr, 0, true}): containers ask that first.
    virtual bool takes_epilogue(const epilogue& e) const {
        (void)e;
        return false;
    }
    //! forward followed by the epilogue `e` (only when takes_epilogue(e)); the result equals
    //! forward then the folded layers, bit for bit. Inference only: backward is not defined
    //! for the folded layers.
    virtual const tensor<float>& forward_epilogue(const tensor<float>& src, mode m, const epilogue& e) {
        (void)src, (void)m, (void)e;
        throw state_error("module::forward_epilogue: this layer takes no epilogue (check takes_epilogue)");
    }

    void zero_grad() {
        param_set ps;
        collect("", ps);
        for (auto& p : ps.params)
            if (p.grad) std::fill(p.grad, p.grad + p.size, 0.0f);
    }
    param_set parameters() {
        param_set ps;
        collect("", ps);
        return ps;
    }

protected:
    bool input_grad_ = true;
    bool param_grad_ = true;
};

using module_ptr = std::unique_ptr<module>;

//! Moves a module (or passes a module_ptr through) into a module_ptr: lets containers accept
//! either `conv2d(...)` values or already boxed modules.
template <class M>
module_ptr boxed(M&& m) {
    using D = std::decay_t<M>;
    if constexpr (std::is_same_v<D, module_ptr>) {
        return std::move(m);
    } else {
        static_assert(std::is_base_of_v<module, D>, "boxed: not a shiftnorm::nn::module");
        return std::make_unique<D>(std::forward<M>(m));
    }
}

namespace detail {

//! dx[i] = dx[i] + add[i] over n values (backward_fusion's add, per image while dx is in cache;
//! single-threaded: called per image).
inline void add_fused_grad(float* SHIFTNORM_RESTRICT dx, const float* SHIFTNORM_RESTRICT add, index_t n) {
SHIFTNORM_OMP(omp simd)
    for (index_t i = 0; i < n; ++i) dx[i] = dx[i] + add[i];
}

//! Gives `t` shape `s`, reusing its storage when it is large enough (tensor::resize): no
//! allocation in steady state, nor when a smaller batch (a chunk, a last partial batch) follows.
inline void ensure_shape(tensor<float>& t, const shape4& s) {
    if (t.shape() != s) t.resize(s);
}

//! Checks that backward gets a diff_dst of the shape the last forward produced.
inline void check_diff_dst(const char* where, const shape4& expected, const tensor<float>& diff_dst) {
    if (diff_dst.shape() != expected) shiftnorm::detail::fail<shape_error>(where, "diff_dst", expected, diff_dst.shape());
}

inline void check_forwarded(const char* where, const tensor<float>* src) {
    if (src == nullptr) throw state_error(shiftnorm::detail::concat(where, ": backward called before forward"));
}

//! Whether an elementwise pass over n values is worth an OpenMP team (below it, forking costs
//! more than the loop): the `if` clause of the layers' parallel loops.
inline bool worth_threads(index_t n) { return n > (index_t(1) << 16); }

//! Threads the engine's parallel loops use (OpenMP's setting; 1 without OpenMP).
inline int max_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();
#else
    return 1;
#endif
}
inline int thread_id() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}
//! Threads in the current parallel team (1 outside a parallel region or without OpenMP).
inline int team_size() {
#if defined(_OPENMP)
    return omp_get_num_threads();
#else
    return 1;
#endif
}

//! Runs body(t, n0, count) over the n images of a batch in a parallel region: thread t of T takes
//! the contiguous images [t n / T, (t + 1) n / T) (parts differing by at most one image) in steps
//! of nb images (the last step of a part may be shorter). A static schedule over steps of nb
//! images instead gives one thread up to nb - 1 images more: 24 against 18 of a 42-image infer
//! chunk at nb = 8, the worker idle ~25% of ResNet-20 eval at 2 threads (2026-12-03). Where n / nb
//! steps split evenly over the threads (training batches of 128) the parts are those of the
//! static schedule. `body` must not throw (it runs inside the parallel region).
template <class Body>
inline void for_image_steps(index_t n, index_t nb, Body&& body) {
    nb = std::max<index_t>(nb, 1);
SHIFTNORM_OMP(omp parallel)
    {
        const index_t T = team_size(), t = thread_id();
        const index_t first = n * t / T, last = n * (t + 1) / T;
        for (index_t n0 = first; n0 < last; n0 += nb) body(std::size_t(t), n0, std::min(nb, last - n0));
    }
}

inline void set_threads(int n) {
#if defined(_OPENMP)
#if defined(__unix__)
    if (::shiftnorm::detail::forked_child.load(std::memory_order_relaxed)) n = std::min(n, 1);  // core/omp.hpp
#endif
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}

}  // namespace detail

//! Sets the number of threads of the engine (OpenMP; no-op in a build without OpenMP). In the
//! child of a fork the engine stays on one thread (core/omp.hpp: OpenMP's team does not survive
//! fork, more threads there would hang).
inline void set_num_threads(int n) { detail::set_threads(n); }
inline int num_threads() { return detail::max_threads(); }

}  // namespace shiftnorm::nn
