// SPDX-License-Identifier: MIT
// Inference over a large batch, run depth-first in chunks of images (cache-sized activations).
#pragma once

#include <algorithm>
#include <cstring>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! Images per chunk that `infer` uses for inputs of `src` shape with `threads` threads when asked
//! for 0 (automatic): an input chunk of about 2^17 floats (512 KiB), at least 4 images per thread,
//! never more than the batch. CIFAR (3x32x32) gives 42 images, ImageNet (3x224x224) 4 per thread.
//! Measured on ResNet-56 eval, 1 thread (docs/engine.md): 16-64 images are equally fast (~1.0x),
//! 4 images 0.8x (per-call overheads), 128 images 0.85x and 500 images 0.48x (activations leave the
//! cache and a first batch page-faults its buffers in).
inline index_t infer_chunk(const shape4& src, int threads) {
    const index_t per_image = std::max<index_t>(1, src.c * src.h * src.w);
    const index_t budget = index_t(1) << 17;  // floats of one input chunk
    index_t chunk = std::max<index_t>(budget / per_image, index_t(4) * std::max(1, threads));
    return std::max<index_t>(1, std::min(chunk, src.n));
}

//! dst = net(src) in mode `m`. In a per-image mode (eval) the batch runs depth-first in chunks
//! of `chunk` images (0: infer_chunk), each chunk through the whole network before the next:
//! every layer's activations stay chunk-sized (cache-resident for CIFAR shapes; no page faults
//! of a 500-image batch's fresh buffers), and the result is identical to one forward call over
//! the whole batch (every eval-mode layer computes each image on its own; a test checks the
//! bits for the reference networks). Other modes run one forward over the whole batch.
//! In eval mode the network runs with inference fusion (module::set_inference_fusion: each
//! convolution applies the normalization and ReLU after it in its own pass, a residual its
//! ReLU; same bits). `dst` is resized to the network's output shape; backward must not follow
//! (containers that fused refuse it; the network's saved state is that of the last chunk).
inline const tensor<float>& infer(module& net, const tensor<float>& src, mode m, tensor<float>& dst,
                                  index_t chunk = 0) {
    const shape4 s = src.shape();
    if (chunk < 0) shiftnorm::detail::fail("nn::infer", "chunk", ">= 0", chunk);
    // inference fusion for the calls below (module::set_inference_fusion), off again on return
    // and the promise that the weights stay as they are until it returns (module::set_constant_weights)
    struct fusion_scope {
        module& net;
        explicit fusion_scope(module& n) : net(n) {
            net.set_inference_fusion(true);
            net.set_constant_weights(true);
        }
        ~fusion_scope() {
            net.set_constant_weights(false);
            net.set_inference_fusion(false);
        }
    } fusion(net);
    if (chunk == 0 && s.n > 0) chunk = infer_chunk(s, detail::max_threads());
    if (!per_image_mode(m) || s.n <= chunk) {
        const tensor<float>& y = net.forward(src, m);
        detail::ensure_shape(dst, y.shape());
        std::copy_n(y.data(), y.numel(), dst.data());
        return dst;
    }
    const index_t img = s.c * s.h * s.w;
    tensor<float> part;
    for (index_t b = 0; b < s.n; b += chunk) {
        const index_t n = std::min(chunk, s.n - b);
        detail::ensure_shape(part, {n, s.c, s.h, s.w});
        std::memcpy(part.data(), src.data() + b * img, std::size_t(n * img) * sizeof(float));
        const tensor<float>& y = net.forward(part, m);
        const shape4 ys = y.shape();
        if (b == 0) detail::ensure_shape(dst, {s.n, ys.c, ys.h, ys.w});
        const index_t out = ys.c * ys.h * ys.w;
        std::memcpy(dst.data() + b * out, y.data(), std::size_t(n * out) * sizeof(float));
    }
    return dst;
}

}  // namespace shiftnorm::nn
