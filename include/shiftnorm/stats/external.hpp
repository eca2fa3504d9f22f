// SPDX-License-Identifier: MIT
// Rectification on statistics another framework owns: non-owning views of BN buffers and activations.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "shiftnorm/backend/cpu/stream.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/omp.hpp"
#include "shiftnorm/core/tensor.hpp"
#include "shiftnorm/stats/rectified.hpp"

namespace shiftnorm {

//! Memory order of an activation tensor owned by someone else: NCHW (PyTorch's default,
//! `torch.contiguous_format`) or NHWC (`torch.channels_last`). Shapes are always given as
//! (N, C, H, W), whatever the memory order, as torch reports them.
enum class memory_layout { nchw, nhwc };

//! A read-only, non-owning view of an activation batch in either memory order. An NHWC batch is
//! read as the contiguous NCHW tensor (N*H*W, C, 1, 1): same per-channel values, no copy.
struct activation_view {
    const float* data = nullptr;
    shape4 shape{};  //!< (N, C, H, W) in the framework's logical order
    memory_layout layout = memory_layout::nchw;

    //! The view the CPU kernels read (NCHW-contiguous; NHWC folded into the batch axis).
    tensor_view<const float> kernel_view() const {
        if (layout == memory_layout::nchw) return {data, shape};
        return {data, shape4{shape.n * shape.h * shape.w, shape.c, 1, 1}};
    }
};

//! Non-owning view of one BN layer's running statistics in a framework's own buffers
//! (torch's `running_mean` / `running_var`, unbiased variance): rectification writes them in
//! place, nothing is copied or re-allocated.
struct external_stats {
    float* mean = nullptr;
    float* var = nullptr;
    index_t channels = 0;

    channel_stats<float> read() const {
        channel_stats<float> s(channels);
        for (index_t c = 0; c < channels; ++c) s.mean[std::size_t(c)] = mean[c], s.var[std::size_t(c)] = var[c];
        return s;
    }
    void write(const channel_stats<float>& s) const {
        for (index_t c = 0; c < channels; ++c) mean[c] = s.mean[std::size_t(c)], var[c] = s.var[std::size_t(c)];
    }
};

namespace detail {
inline void check_activation(const char* where, const activation_view& x, index_t channels) {
    if (x.data == nullptr && x.shape.numel() > 0) fail(where, "x.data", "a non-null pointer", "null");
    if (x.shape.n < 0 || x.shape.c < 0 || x.shape.h < 0 || x.shape.w < 0)
        fail<shape_error>(where, "x.shape", "non-negative extents", concat(x.shape.n, "x", x.shape.c, "x", x.shape.h, "x", x.shape.w));
    if (x.shape.c != channels) fail<shape_error>(where, "x channels", channels, x.shape.c);
}
}  // namespace detail

//! Per-channel moments (double accumulators) of an activation batch in either memory order:
//! the same kernels and schedule choice as batch_norm's training forward, channels spread over
//! the OpenMP threads (each channel's reduction runs in a fixed order, so the result does not
//! depend on the thread count).
inline std::vector<moments<double>> external_channel_moments(const activation_view& x) {
    detail::check_activation("external_channel_moments", x, x.shape.c);
    const tensor_view<const float> v = x.kernel_view();
    std::vector<moments<double>> m(std::size_t(v.shape().c));
    if (v.shape().numel() == 0) return m;
    if (backend::cpu::prefer_channel_major(v.shape(), sizeof(float))) {
        const index_t C = v.shape().c;
        SHIFTNORM_OMP(omp parallel for schedule(static))
        for (index_t c = 0; c < C; ++c) m[std::size_t(c)] = backend::cpu::channel_moments<false>(v, c);
    } else {
        backend::cpu::stream_channel_moments(v, m);
    }
    return m;
}

//! What one rectification step leaves behind: the statistics the layer normalizes with in the
//! pass (what later layers see) and the statistics it stores (already written to the buffers
//! when rectify_external returns, unless the caller asked to defer).
struct external_rectify_result {
    channel_stats<float> pass;
    channel_stats<float> stored;
};

//! One BN layer's rectification step (seed 000) on buffers another framework owns: moments of
//! `x` (the layer's input, k target samples), the adapted statistics per `options` (what, prior,
//! variance) computed from the source statistics currently in `running`, and the pass statistics
//! (options.pass: the batch mean and biased variance by default, PyTorch's train-mode forward).
//! Writes the stored statistics into `running` unless `write` is false (a caller that needs the
//! layer to normalize with the pass statistics through the same buffers writes them later).
//! A disabled layer (options.enabled false) returns its source statistics for both.
//! Throws shape_error for a channel mismatch, numeric_error for non-finite moments (the buffers
//! are left untouched), value_error when the unbiased variance has fewer than 2 values.
inline external_rectify_result rectify_external(const activation_view& x, const external_stats& running,
                                                const rectify_options& options, bool write = true) {
    if (running.mean == nullptr || running.var == nullptr)
        detail::fail("rectify_external", "running", "non-null mean and var buffers", "null");
    detail::check_activation("rectify_external", x, running.channels);
    const channel_stats<float> source = running.read();
    if (!options.enabled) return {source, source};
    const auto m = external_channel_moments(x);
    for (std::size_t c = 0; c < m.size(); ++c)
        if (!std::isfinite(m[c].mean) || !std::isfinite(m[c].m2))
            throw numeric_error(detail::concat("rectify_external: channel ", c,
                                               " of the input has non-finite moments (NaN or Inf in the batch); "
                                               "the layer's statistics were left unchanged"));
    external_rectify_result r;
    r.stored = detail::rectify_stats(source, m, x.shape.n, options);
    r.pass = options.pass == rectify_pass::batch ? channel_stats<float>::from_moments(m, variance_kind::biased)
                                                 : detail::rectify_pass_stats(source, m, x.shape.n, options);
    if (write) running.write(r.stored);
    return r;
}

//! Non-owning per-channel affine parameters in another framework's tensors (torch's BN `weight`
//! and `bias`); a null pointer means 1 (scale) or 0 (shift).
struct external_affine {
    const float* scale = nullptr;
    const float* shift = nullptr;
};

//! Batch normalization on buffers another framework owns: dst = scale * (x - mean) /
//! sqrt(var + eps) + shift, per channel, in x's memory order (an NHWC x gives an NHWC dst).
//! `dst` holds x.shape.numel() floats and must not overlap x. The same folded coefficients as
//! batch_norm's forward (mean, a = scale / sqrt(var + eps), b = shift).
inline void normalize_external(const activation_view& x, float* dst, const channel_stats<float>& s,
                               const external_affine& affine, double eps = 1e-5) {
    detail::check_activation("normalize_external", x, s.channels());
    const std::size_t n = std::size_t(x.shape.numel());
    if (n == 0) return;
    if (dst == nullptr) detail::fail("normalize_external", "dst", "a non-null pointer", "null");
    if (!(dst + n <= x.data || x.data + n <= dst))
        detail::fail("normalize_external", "dst", "a buffer that does not overlap x", "an overlapping buffer");
    if (!(eps >= 0.0)) detail::fail("normalize_external", "eps", ">= 0", eps);
    const std::size_t C = std::size_t(s.channels());
    std::vector<backend::channel_coef<float>> coef(C);
    for (std::size_t c = 0; c < C; ++c) {
        coef[c].mean = s.mean[c];
        coef[c].a = float((affine.scale ? double(affine.scale[c]) : 1.0) / std::sqrt(double(s.var[c]) + eps));
        coef[c].b = affine.shift ? affine.shift[c] : 0.f;
    }
    const tensor_view<const float> v = x.kernel_view();
    backend::cpu::stream_normalize(v.data(), dst, v.shape(), coef.data());
}

}  // namespace shiftnorm
