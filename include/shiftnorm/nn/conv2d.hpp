// SPDX-License-Identifier: MIT
// 2-D convolution (stride, padding, dilation, groups) as im2col (or its implicit, shifted form) + GEMM.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "shiftnorm/backend/channel_pass.hpp"
#include "shiftnorm/nn/activation.hpp"
#include "shiftnorm/nn/conv_phases.hpp"
#include "shiftnorm/nn/conv_shifted.hpp"
#include "shiftnorm/nn/conv_winograd.hpp"
#include "shiftnorm/nn/gemm.hpp"
#include "shiftnorm/nn/im2col.hpp"
#include "shiftnorm/nn/init.hpp"
#include "shiftnorm/nn/module.hpp"
#include "shiftnorm/nn/visit.hpp"

namespace shiftnorm::nn {

//! How a convolution computes its forward, input gradient and weight gradient.
//!  - automatic: Winograd where it runs (winograd_eligible: 3x3, pad 1, stride 1, channels per
//!    group multiples of 16, AVX-512), otherwise direct. The forward, the input gradient and the
//!    weight gradient use F(4x4, 3x3) on every plane (planar on planes 21-32 pixels wide, where
//!    the weight gradient reads the planar input transform and a pixel-major dy transform); the
//!    input gradient of stride-2 3x3 / 1x1 windows on even planes runs on its four phases
//!    (nn/conv_phases.hpp; since 2026-12-05, other bits than direct's col2im);
//!  - direct: im2col / shifted windows + GEMM (every product of the definition, summed in the
//!    order of the im2col rows; bit-identical to the materialized im2col + GEMM);
//!  - winograd: as automatic, and a value_error at forward for a shape it cannot run;
//!    (direct and winograd_2x2 keep the column path's input gradient for stride-2 windows)
//!  - winograd_2x2: as automatic with F(2x2, 3x3) for every Winograd product (the bits of
//!    shiftnorm 0.2.0), direct where Winograd cannot run. (Version 0.3.0 ran F(2x2, 3x3) on the
//!    planar planes and F(4x4, 3x3) on the others.)
enum class conv_algorithm { automatic, direct, winograd, winograd_2x2 };

namespace detail {
//! One plane of an epilogue: y[i] = relu?(normalize_value(y[i], m, a, b) + add[i]), each step
//! when its flag is set, in place.
template <bool Coef, bool Add, bool Relu>
inline void epilogue_plane(float* SHIFTNORM_RESTRICT y, const float* SHIFTNORM_RESTRICT add, index_t P, float m,
                           float a, float b) {
    for (index_t i = 0; i < P; ++i) {
        float v = y[i];
        if constexpr (Coef) v = backend::normalize_value(v, m, a, b);
        if constexpr (Add) v = v + add[i];
        if constexpr (Relu) v = relu_value(v);
        y[i] = v;
    }
}
//! The epilogue `e` over one image's C planes of P values y (in place); `add` that image's
//! planes of e.add (or null).
inline void apply_epilogue(float* y, const float* add, index_t C, index_t P, const epilogue& e) {
    using plane_fn = void (*)(float*, const float*, index_t, float, float, float);
    static constexpr plane_fn table[8] = {
        epilogue_plane<false, false, false>, epilogue_plane<false, false, true>, epilogue_plane<false, true, false>,
        epilogue_plane<false, true, true>,   epilogue_plane<true, false, false>, epilogue_plane<true, false, true>,
        epilogue_plane<true, true, false>,   epilogue_plane<true, true, true>};
    const plane_fn f = table[(e.coef ? 4 : 0) + (add ? 2 : 0) + (e.relu ? 1 : 0)];
    for (index_t c = 0; c < C; ++c) {
        const backend::channel_coef<float> k = e.coef ? e.coef[c] : backend::channel_coef<float>{};
        f(y + c * P, add ? add + c * P : nullptr, P, k.mean, k.a, k.b);
    }
}
}  // namespace detail

//! Convolution options, PyTorch's nn.Conv2d arguments, and the algorithm.
struct conv2d_options {
    index_t in_channels = 0, out_channels = 0;
    index_t kernel = 3, stride = 1, padding = 0, dilation = 1, groups = 1;
    bool bias = false;
    conv_algorithm algorithm = conv_algorithm::automatic;
};

//! 2-D convolution (cross-correlation, as PyTorch): dst[n,o] = sum_c w[o,c] * src[n,c] + b[o].
//! weight is OIHW [out, in/groups, k, k] (PyTorch's layout and name `weight`), bias [out].
//! Forward: per image and group, im2col into a per-thread buffer [in/g*k*k, OH*OW] and one
//! row-major GEMM; a 1x1 stride-1 unpadded convolution multiplies src in place. Same/stride-1
//! windows (3x3 pad 1, 5x5 pad 2, ...) on the AVX-512 kernel skip the column matrix: the GEMM reads
//! shifted windows of the zero-padded planes (nn/conv_shifted.hpp; same bits as im2col + GEMM).
//! Backward: diff_weight += diff_dst * col^T (on AVX-512 accumulated transposed, col * diff_dst^T:
//! nn::detail::weight_grad_t, or weight_grad_shifted on planes of 12 columns and more, same bits);
//! diff_src = col2im(weight^T * diff_dst), or for same/stride-1 windows on AVX-512 the same-window
//! convolution of diff_dst with the flipped, transposed weights (another summation order), and
//! for stride-2 3x3 / 1x1 windows on even planes (automatic, winograd) four stride-1
//! convolutions of diff_dst, one per phase of diff_src (nn/conv_phases.hpp).
//! With conv_algorithm::automatic (default), 3x3 pad-1 stride-1 windows with channels per group
//! multiples of 16 run all three products on Winograd F(2x2, 3x3) instead (nn/conv_winograd.hpp).
//! Images run in parallel (OpenMP) with per-thread weight-gradient partials summed in a fixed
//! order (deterministic for a fixed thread count). Cost: 2*N*OH*OW*out*in/g*k*k flops forward,
//! twice that backward.
class conv2d : public module {
public:
    std::vector<float> weight, bias, diff_weight, diff_bias;

    explicit conv2d(const conv2d_options& o) : opt_(o) {
        const char* where = "conv2d";
        if (o.in_channels <= 0) shiftnorm::detail::fail<shape_error>(where, "in_channels", "> 0", o.in_channels);
        if (o.out_channels <= 0) shiftnorm::detail::fail<shape_error>(where, "out_channels", "> 0", o.out_channels);
        if (o.groups <= 0 || o.in_channels % o.groups || o.out_channels % o.groups)
            shiftnorm::detail::fail<shape_error>(where, "groups", "a positive divisor of in and out channels",
                                                 o.groups);
        if (o.kernel <= 0 || o.stride <= 0 || o.dilation <= 0 || o.padding < 0)
            shiftnorm::detail::fail(where, "kernel/stride/dilation/padding", "positive (padding >= 0)",
                                    shiftnorm::detail::concat(o.kernel, "/", o.stride, "/", o.dilation, "/", o.padding));
        geo_ = window2d{o.kernel, o.kernel, o.stride, o.stride, o.padding, o.padding, o.dilation, o.dilation};
        weight.assign(std::size_t(o.out_channels * (o.in_channels / o.groups) * o.kernel * o.kernel), 0.0f);
        diff_weight.assign(weight.size(), 0.0f);
        if (o.bias) {
            bias.assign(std::size_t(o.out_channels), 0.0f);
            diff_bias.assign(bias.size(), 0.0f);
        }
    }
    conv2d(index_t in, index_t out, index_t kernel, index_t stride = 1, index_t padding = 0, bool with_bias = false,
           index_t groups = 1)
        : conv2d(conv2d_options{in, out, kernel, stride, padding, 1, groups, with_bias}) {}

    const conv2d_options& options() const { return opt_; }
    //! Picks the algorithm of the following calls (conv_algorithm; the weights are unchanged).
    void set_algorithm(conv_algorithm a) {
        opt_.algorithm = a;
        wu_kept_ = false;
    }

    //! While the weights are promised constant (module::set_constant_weights: nn::infer around
    //! its chunks) the forward's Winograd weight transform is kept from one call to the next;
    //! switching the promise on or off drops it.
    void set_constant_weights(bool on) override {
        constant_weights_ = on;
        wu_kept_ = false;
    }
    const window2d& window() const { return geo_; }

    shape4 output_shape(const shape4& s) const override {
        if (s.c != opt_.in_channels) shiftnorm::detail::fail<shape_error>("conv2d", "src channels", opt_.in_channels, s.c);
        const index_t oh = geo_.out_h(s.h), ow = geo_.out_w(s.w);
        if (oh <= 0 || ow <= 0)
            shiftnorm::detail::fail<shape_error>("conv2d", "src spatial size", "at least the dilated kernel", s);
        return {s.n, opt_.out_channels, oh, ow};
    }

    void reset_parameters(rng_type& g) override {
        // torchvision ResNet init: kaiming_normal_(mode='fan_out', nonlinearity='relu').
        kaiming_normal(weight, opt_.out_channels / opt_.groups * opt_.kernel * opt_.kernel, g);
        if (opt_.bias) std::fill(bias.begin(), bias.end(), 0.0f);
    }

    const tensor<float>& forward(const tensor<float>& src, mode m) override { return forward_epilogue(src, m, {}); }

    //! Any epilogue of out_channels coefficients (an added tensor is checked at forward).
    bool takes_epilogue(const epilogue& e) const override {
        return !e.coef || index_t(e.coef_size) == opt_.out_channels;
    }
    //! forward, then per image (while its planes are in cache) the epilogue `e`: the per-channel
    //! map of a folded normalization layer (e.coef[o], backend::normalize_value), the add of a
    //! residual (e.add) and a ReLU (relu_value), each when given, in that order: the bits of
    //! running those layers after the convolution.
    //! Inference fusion only (nn::infer): backward is the convolution's alone.
    const tensor<float>& forward_epilogue(const tensor<float>& src, mode, const epilogue& e) override {
        if (e.coef && index_t(e.coef_size) != opt_.out_channels)
            shiftnorm::detail::fail<shape_error>("conv2d::forward", "epilogue channels", opt_.out_channels, e.coef_size);
        const shape4 os = output_shape(src.shape());
        if (e.add && e.add_shape != os) shiftnorm::detail::fail<shape_error>("conv2d::forward", "epilogue add", os, e.add_shape);
        nn::detail::ensure_shape(dst_, os);
        src_ = &src;
        const shape4 is = src.shape();
        const index_t G = opt_.groups, Cg = is.c / G, Og = os.c / G, K = Cg * geo_.kh * geo_.kw, P = os.h * os.w;
        const bool direct = geo_.identity_1x1();
        const bool wino = use_winograd(Cg, Og, is, os);
        const bool shifted = !wino && nn::detail::use_shifted(geo_, is.h, is.w, os.h, os.w);
        if (shifted && set_geometry(sg_, off_, Cg, is.h, is.w)) pads_zeroed_ = dyts_zeroed_ = false;
        prepare_buffers(direct || shifted || wino ? 0 : K * P, 0, shifted ? Og * sg_.cols : 0, 0);
        if (shifted) zero_once(pads_, pads_zeroed_);
        if (wino) {
            wg_ = nn::detail::make_winograd(Cg, Og, is.h, is.w, winograd_tile());
            // kept while the weights are promised constant (the chunks of one nn::infer call)
            if (!(wu_kept_ && wu_geo_.m == wg_.m && wu_geo_.planar == wg_.planar && wu_geo_.C == Cg && wu_geo_.K == Og)) {
                transform_weights(weight.data(), Og, Cg, wg_, wu_);
                wu_kept_ = constant_weights_, wu_geo_ = wg_;
            }
        }
        const float* x = src.data();
        float* y = dst_.data();
        // Winograd runs the images of a step in one call per group (nb: the geometry's GEMM
        // batch, F(4x4, 3x3) on small planes); everything else one image a step
        const index_t nb = wino ? std::min(wg_.nb, std::max<index_t>(is.n, 1)) : 1;
        if (wino) wg_.nb = nb;
        nn::detail::for_image_steps(is.n, nb, [&](std::size_t t, index_t n0, index_t count) {
            float* col = direct || shifted || wino ? nullptr : cols_[t].data();
            if (wino) wbufs_[t].prepare(wg_);
            if (wino)
                for (index_t g = 0; g < G; ++g)
                    nn::detail::winograd_conv_images(x + (n0 * is.c + g * Cg) * is.h * is.w, is.c * is.h * is.w, count,
                                                     wu_.data() + g * wg_.points() * Cg * Og, wg_, wbufs_[t],
                                                     y + (n0 * os.c + g * Og) * P, os.c * P);
            for (index_t n = n0; n < n0 + count; ++n) {
                for (index_t g = 0; g < G; ++g) {
                    const float* xg = x + (n * is.c + g * Cg) * is.h * is.w;
                    float* yg = y + (n * os.c + g * Og) * P;
                    const float* wg = weight.data() + g * Og * K;
                    if (wino) {  // the step's images ran above
                    } else if (shifted) {
                        nn::detail::copy_planes(xg, sg_, pads_[t].data());
                        nn::detail::conv_forward_shifted(Og, K, wg, pads_[t].data(), off_.data(), sg_, wides_[t].data(), yg);
                    } else {
                        if (!direct) nn::detail::im2col(xg, Cg, is.h, is.w, geo_, os.h, os.w, col);
                        nn::detail::gemm(false, false, Og, P, K, 1.0f, wg, K, direct ? xg : col, P, 0.0f, yg, P);
                    }
                    if (opt_.bias)
                        for (index_t o = 0; o < Og; ++o) {
                            const float b = bias[std::size_t(g * Og + o)];
                            for (index_t i = 0; i < P; ++i) yg[o * P + i] += b;
                        }
                }
                if (e.coef || e.add || e.relu)
                    nn::detail::apply_epilogue(y + n * os.c * P, e.add ? e.add + n * os.c * P : nullptr, os.c, P, e);
            }
        });
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override { return backward_with(diff_dst, nullptr); }

    //! Folds a residual's add into the input gradient (backward_fusion): each step's images get it
    //! as soon as their input gradients are final, while in cache, instead of a pass of its own.
    //! Needs the input gradient.
    bool takes_backward_fusion(const backward_fusion& f) const override {
        return f.add && input_grad_ && src_ && f.add->shape() == src_->shape();
    }
    const tensor<float>& backward_fused(const tensor<float>& diff_dst, const backward_fusion& f) override {
        if (!takes_backward_fusion(f)) return module::backward_fused(diff_dst, f);
        return backward_with(diff_dst, f.add->data());
    }

private:
    //! backward; with `add` (of the input's shape) diff_src += add, image step by image step.
    const tensor<float>& backward_with(const tensor<float>& diff_dst, const float* add) {
        nn::detail::check_forwarded("conv2d::backward", src_);
        nn::detail::check_diff_dst("conv2d::backward", dst_.shape(), diff_dst);
        const shape4 is = src_->shape(), os = dst_.shape();
        const index_t G = opt_.groups, Cg = is.c / G, Og = os.c / G, K = Cg * geo_.kh * geo_.kw, P = os.h * os.w;
        const bool direct = geo_.identity_1x1();
        const bool shifted = nn::detail::use_shifted(geo_, is.h, is.w, os.h, os.w);
        // the weight gradient on the shifted windows only where the garbage columns cost little
        // (planes of 12 columns and more: bench_conv_wgrad), the input gradient on all of them
        const bool want_w = param_grad_;
        // the weight gradient in the Winograd domain where the forward runs on it
        const bool wino_w = want_w && use_winograd(Cg, Og, is, os);
        const bool shifted_w = shifted && !wino_w && is.w >= nn::detail::shifted_wgrad_min_width;
        // the input gradient is a same-window convolution of diff_dst (Og planes in, Cg out)
        const bool wino_d = shifted && input_grad_ && use_winograd(Og, Cg, is, os);
        const bool shifted_d = shifted && input_grad_ && !wino_d;
        // a stride-2 input gradient as four stride-1 convolutions of diff_dst (nn/conv_phases.hpp)
        // (automatic and winograd: direct and winograd_2x2 keep col2im's sums, their earlier bits)
        const bool phase_algorithm =
            opt_.algorithm == conv_algorithm::automatic || opt_.algorithm == conv_algorithm::winograd;
        const bool phase_d = !shifted && input_grad_ && phase_algorithm &&
                             nn::detail::use_phase_dgrad(geo_, is.h, is.w, os.h, os.w);
        if (shifted && set_geometry(sg_, off_, Cg, is.h, is.w)) pads_zeroed_ = dyts_zeroed_ = false;
        if (shifted_d && set_geometry(sgd_, offd_, Og, is.h, is.w)) dpads_zeroed_ = false;
        if (phase_d && (pgd_.O != Og || pgd_.C != Cg || pgd_.OH != os.h || pgd_.OW != os.w)) {
            pgd_ = nn::detail::make_phase_geometry(Og, Cg, os.h, os.w, geo_);
            dpads_zeroed_ = false;
        }
        if (input_grad_) nn::detail::ensure_shape(diff_src_, is);
        prepare_buffers(direct || shifted_w || wino_w ? 0 : K * P, direct || shifted || phase_d ? 0 : K * P,
                        shifted_d ? Cg * sg_.cols : phase_d ? pgd_.wide_size() : 0,
                        shifted_d ? sgd_.buffer_size() : phase_d ? pgd_.pad_size() : 0);
        if (phase_d) {
            if (pgd_.padded()) zero_once(dpads_, dpads_zeroed_);
            nn::detail::phase_weights(weight.data(), G, pgd_, wphase_);
        }
        if (shifted && input_grad_) {
            if (shifted_d) zero_once(dpads_, dpads_zeroed_);
            wflip_.resize(weight.size());
            nn::detail::flip_transpose_weights(weight.data(), G, Og, Cg, geo_.kh, geo_.kw, wflip_.data());
        }
        if (wino_d) {
            wgd_ = nn::detail::make_winograd(Og, Cg, is.h, is.w, winograd_tile());
            transform_weights(wflip_.data(), Cg, Og, wgd_, wud_);
        }
        const int T = int(cols_.size());
        if (!want_w && !input_grad_) return diff_dst;
        if (wino_w) {
            // winograd_weight_grad_images: planar input transforms with F(4x4, 3x3) only
            wgw_ = nn::detail::make_winograd(Cg, Og, is.h, is.w, winograd_tile(), winograd_tile() == 4);
            if (dus_.size() != std::size_t(T)) dus_.resize(std::size_t(T));
        }
        if (dws_.size() != std::size_t(T)) dws_.resize(std::size_t(T)), dyts_.resize(std::size_t(T));
        // weight-gradient partials per thread: [G][Og x K], or transposed [G][K x Og] (weight_grad_t)
        const bool transposed = nn::detail::weight_grad_transposed();
        if (wino_w) {
            // each thread allocates and zeroes its own Winograd-domain partials [G][16][Cg x Og]
SHIFTNORM_OMP(omp parallel for schedule(static, 1) num_threads(T))
            for (int t = 0; t < T; ++t) dus_[std::size_t(t)].assign(std::size_t(G * wgw_.points() * Cg * Og), 0.0f);
        } else if (want_w) {
            bool dyts_grown = false;
            const std::size_t n_dyt = std::size_t(Og * (shifted_w ? sg_.cols : P));
            // each thread allocates and zeroes its own partials (first touch: see prepare_buffers)
SHIFTNORM_OMP(omp parallel for schedule(static, 1) num_threads(T) reduction(|| : dyts_grown))
            for (int t = 0; t < T; ++t) {
                dws_[std::size_t(t)].assign(weight.size(), 0.0f);
                if (transposed && dyts_[std::size_t(t)].size() != n_dyt) {
                    dyts_[std::size_t(t)].resize(n_dyt);
                    dyts_grown = true;
                }
            }
            if (dyts_grown) dyts_zeroed_ = false;
        }
        if (shifted_w) zero_once(dyts_, dyts_zeroed_);
        if (shifted_w) zero_once(pads_, pads_zeroed_);
        const bool same = nn::detail::same_stride1(geo_, is.h, is.w, os.h, os.w);
        const float* x = src_->data();
        const float* dy = diff_dst.data();
        float* dx = input_grad_ ? diff_src_.data() : nullptr;
        // images per step: the larger Winograd GEMM batch of the input and the weight gradient
        // (F(4x4, 3x3) on small planes; both geometries then take it), else 1
        const index_t nb = std::min(std::max(wino_d ? wgd_.nb : 1, wino_w ? wgw_.nb : 1), std::max<index_t>(is.n, 1));
        if (wino_d) wgd_.nb = nb;
        if (wino_w) wgw_.nb = nb;
        nn::detail::for_image_steps(is.n, nb, [&](std::size_t t, index_t n0, index_t count) {
            float* col = direct || shifted_w || wino_w ? nullptr : cols_[t].data();
            float* dcol = direct || shifted ? nullptr : dcols_[t].data();
            if (wino_w) wbufs_w_[t].prepare(wgw_);
            if (wino_w)
                for (index_t g = 0; g < G; ++g)
                    nn::detail::winograd_weight_grad_images(x + (n0 * is.c + g * Cg) * is.h * is.w, is.c * is.h * is.w,
                                                            dy + (n0 * os.c + g * Og) * P, os.c * P, count, wgw_,
                                                            wbufs_w_[t], dus_[t].data() + g * wgw_.points() * Cg * Og);
            if (wino_d) {
                wbufs_d_[t].prepare(wgd_);
                for (index_t g = 0; g < G; ++g)
                    nn::detail::winograd_conv_images(dy + (n0 * os.c + g * Og) * P, os.c * P, count,
                                                     wud_.data() + g * wgd_.points() * Cg * Og, wgd_, wbufs_d_[t],
                                                     dx + (n0 * is.c + g * Cg) * is.h * is.w, is.c * is.h * is.w);
            }
            for (index_t n = n0; n < n0 + count; ++n)
                for (index_t g = 0; g < G; ++g) {
                    const float* xg = x + (n * is.c + g * Cg) * is.h * is.w;
                    const float* dyg = dy + (n * os.c + g * Og) * P;
                    if (wino_w) {  // the step's images ran above
                    } else if (want_w && shifted_w) {
                        nn::detail::copy_planes(xg, sg_, pads_[t].data());
                        nn::detail::weight_grad_shifted(Og, K, dyg, pads_[t].data(), off_.data(), sg_, dyts_[t].data(),
                                                        dws_[t].data() + g * Og * K, true);
                    } else if (want_w) {
                        if (!direct) nn::detail::im2col(xg, Cg, is.h, is.w, geo_, os.h, os.w, col);
                        // diff_weight_g += diff_dst_g [Og, P] * col^T [P, K] (or its transpose)
                        if (transposed)
                            nn::detail::weight_grad_t(Og, K, P, dyg, P, direct ? xg : col, P, dyts_[t].data(),
                                                      dws_[t].data() + g * Og * K);
                        else
                            nn::detail::gemm(false, true, Og, K, P, 1.0f, dyg, P, direct ? xg : col, P, 1.0f,
                                             dws_[t].data() + g * Og * K, K);
                    }
                    if (dx) {
                        const float* wg = weight.data() + g * Og * K;
                        float* dxg = dx + (n * is.c + g * Cg) * is.h * is.w;
                        if (wino_d) {  // the step's images ran above
                        } else if (direct) {
                            nn::detail::gemm(true, false, K, P, Og, 1.0f, wg, K, dyg, P, 0.0f, dxg, P);
                        } else if (phase_d) {
                            if (pgd_.padded()) nn::detail::phase_copy_planes(dyg, pgd_, dpads_[t].data());
                            nn::detail::phase_input_grad(pgd_, wphase_.data() + g * Og * K,
                                                         pgd_.padded() ? dpads_[t].data() : dyg, wides_[t].data(), dxg);
                        } else if (shifted) {
                            // diff_src_g = the same-window convolution of diff_dst_g with the flipped,
                            // transposed weights, on the shifted windows of the padded diff_dst planes
                            nn::detail::copy_planes(dyg, sgd_, dpads_[t].data());
                            nn::detail::conv_forward_shifted(Cg, Og * geo_.kh * geo_.kw, wflip_.data() + g * Og * K,
                                                             dpads_[t].data(), offd_.data(), sgd_, wides_[t].data(), dxg);
                        } else {
                            // diff_col [K, P] = weight_g^T * diff_dst_g, scattered back by col2im.
                            nn::detail::gemm(true, false, K, P, Og, 1.0f, wg, K, dyg, P, 0.0f, dcol, P);
                            if (!same) std::fill(dxg, dxg + Cg * is.h * is.w, 0.0f);
                            nn::detail::col2im(dcol, Cg, is.h, is.w, geo_, os.h, os.w, dxg);
                        }
                    }
                }
            if (dx && add) {  // the step's input gradients are final: the residual's add while in cache
                const index_t per = is.c * is.h * is.w;
                nn::detail::add_fused_grad(dx + n0 * per, add + n0 * per, count * per);
            }
        });
        if (!want_w) return diff_src_;
        if (wino_w) {
            // threads in order (deterministic for a thread count), then back to 3x3 taps once
            std::vector<float>& sum = dus_[0];
            for (int t = 1; t < T; ++t)
                for (std::size_t i = 0; i < sum.size(); ++i) sum[i] += dus_[std::size_t(t)][i];
            for (index_t g = 0; g < G; ++g)
                if (wgw_.m == 4)
                    nn::detail::winograd_weight_grad_finish_f4(sum.data() + g * 36 * Cg * Og, Og, Cg,
                                                               diff_weight.data() + g * Og * K);
                else
                    nn::detail::winograd_weight_grad_finish(sum.data() + g * 16 * Cg * Og, Og, Cg,
                                                            diff_weight.data() + g * Og * K);
        } else
        for (const auto& d : dws_)  // threads in order: deterministic for a thread count
            if (transposed)
                for (index_t g = 0; g < G; ++g)
                    for (index_t o = 0; o < Og; ++o)
                        for (index_t k = 0; k < K; ++k) diff_weight[std::size_t((g * Og + o) * K + k)] += d[std::size_t(g * Og * K + k * Og + o)];
            else
                for (std::size_t i = 0; i < weight.size(); ++i) diff_weight[i] += d[i];
        if (opt_.bias)
            for (index_t n = 0; n < os.n; ++n)
                for (index_t o = 0; o < os.c; ++o) {
                    nn::detail::cvec_map v(dy + (n * os.c + o) * P, P);
                    diff_bias[std::size_t(o)] += v.sum();
                }
        return input_grad_ ? diff_src_ : diff_dst;
    }

public:
    void collect(const std::string& prefix, param_set& out) override {
        out.params.push_back({join_name(prefix, "weight"),
                              {opt_.out_channels, opt_.in_channels / opt_.groups, opt_.kernel, opt_.kernel},
                              weight.data(), diff_weight.data(), index_t(weight.size()), param_kind::weight});
        if (opt_.bias)
            out.params.push_back({join_name(prefix, "bias"), {opt_.out_channels}, bias.data(), diff_bias.data(),
                                  index_t(bias.size()), param_kind::bias});
    }

    std::string describe() const override {
        return shiftnorm::detail::concat("conv2d(", opt_.in_channels, "->", opt_.out_channels, ", k", opt_.kernel,
                                         ", s", opt_.stride, ", p", opt_.padding,
                                         opt_.groups > 1 ? shiftnorm::detail::concat(", g", opt_.groups) : "",
                                         opt_.bias ? ", bias" : "", ")");
    }

private:
    //! Per-thread buffers: im2col columns, input-gradient columns, and for the shifted path the
    //! padded planes and the wide GEMM output. Grown, never shrunk (no reallocation per batch).
    void prepare_buffers(index_t col_size, index_t dcol_size, index_t wide_size, index_t dpad_size) {
        const std::size_t T = std::size_t(std::max(1, nn::detail::max_threads()));
        if (cols_.size() != T) {
            wbufs_.resize(T);
            wbufs_d_.resize(T);
            wbufs_w_.resize(T);
            cols_.resize(T);
            dcols_.resize(T);
            pads_.resize(T);
            dpads_.resize(T);
            wides_.resize(T);
        }
        const index_t pad_size = sg_.C > 0 ? sg_.buffer_size() : 0;
        auto grow = [](std::vector<float>& v, index_t n) {
            if (index_t(v.size()) >= n) return false;
            v.resize(std::size_t(n));
            return true;
        };
        // Thread t allocates and first-touches its own buffers. Measured 2026-12-03 (2-core VM,
        // docs/benchmarks.md): with every buffer allocated by the calling thread, the other thread
        // spent ~20% longer in the GEMM for the same images (the slowness followed the buffer set,
        // not the images or the core; most likely where the host placed pages first touched by the
        // other vCPU), and `shiftnorm eval` at 2 threads ran at 2230 instead of 2765 img/s.
        bool pads_grown = false, dpads_grown = false;
SHIFTNORM_OMP(omp parallel for schedule(static, 1) num_threads(int(T)) reduction(|| : pads_grown, dpads_grown))
        for (std::size_t t = 0; t < T; ++t) {
            grow(cols_[t], col_size);
            if (input_grad_) grow(dcols_[t], dcol_size);
            if (grow(pads_[t], pad_size)) pads_grown = true;
            if (input_grad_ && grow(dpads_[t], dpad_size)) dpads_grown = true;
            grow(wides_[t], wide_size);
        }
        if (pads_grown) pads_zeroed_ = false;
        if (dpads_grown) dpads_zeroed_ = false;
    }

    //! Whether this call's convolution of Cin planes into Cout planes (the forward: Cg -> Og; the
    //! input gradient: Og -> Cg) runs on Winograd; a value_error when it was asked for and cannot.
    bool use_winograd(index_t Cin, index_t Cout, const shape4& is, const shape4& os) const {
        if (opt_.algorithm == conv_algorithm::direct) return false;
        const bool ok = nn::detail::winograd_eligible(geo_, Cin, Cout, is.h, is.w, os.h, os.w);
        if (!ok && opt_.algorithm == conv_algorithm::winograd)
            shiftnorm::detail::fail("conv2d (algorithm winograd)", "convolution",
                                    "3x3, padding 1, stride 1, dilation 1, channels per group multiples of 16, and "
                                    "an AVX-512 CPU",
                                    shiftnorm::detail::concat(describe(), " on ", is, nn::detail::weight_grad_transposed()
                                                                                      ? ""
                                                                                      : " (no AVX-512 kernel)"));
        return ok;
    }
    //! The output tile of this layer's Winograd: F(4x4, 3x3), or F(2x2, 3x3) for winograd_2x2.
    int winograd_tile() const { return opt_.algorithm == conv_algorithm::winograd_2x2 ? 2 : 4; }
    //! u[g] = the Winograd transform (for geometry wg's tile and layout) of each group's
    //! Kout x Cin x 3 x 3 weights w[g].
    void transform_weights(const float* w, index_t Kout, index_t Cin, const nn::detail::winograd_geometry& wg,
                           std::vector<float>& u) const {
        const index_t G = opt_.groups, n = wg.points() * Cin * Kout;
        u.resize(std::size_t(G * n));
        for (index_t g = 0; g < G; ++g)
            if (wg.m == 4)
                nn::detail::winograd_weights_f4(w + g * Kout * Cin * 9, Kout, Cin, u.data() + g * n, wg.planar);
            else
                nn::detail::winograd_weights(w + g * Kout * Cin * 9, Kout, Cin, u.data() + g * n, wg.planar);
    }

    //! The padded-plane geometry and im2col row offsets of a shifted path (the forward and weight
    //! gradient over the Cg input planes, the input gradient over the Og planes of diff_dst) for
    //! this input size; true when they changed (the buffers' zeros must then be written again).
    bool set_geometry(nn::detail::shifted_geometry& sg, std::vector<index_t>& off, index_t C, index_t H, index_t W) {
        if (sg.C == C && sg.H == H && sg.W == W) return false;
        sg = nn::detail::make_shifted(C, H, W, geo_);
        nn::detail::shifted_offsets(sg, off);
        return true;
    }
    //! Zeroes every thread's buffer once (then each image writes only what it changes).
    static void zero_once(std::vector<std::vector<float>>& buffers, bool& zeroed) {
        if (zeroed) return;
        const int T = int(buffers.size());
SHIFTNORM_OMP(omp parallel for schedule(static, 1) num_threads(std::max(T, 1)))
        for (int t = 0; t < T; ++t) std::fill(buffers[std::size_t(t)].begin(), buffers[std::size_t(t)].end(), 0.0f);
        zeroed = true;
    }

    conv2d_options opt_;
    window2d geo_;
    const tensor<float>* src_ = nullptr;
    tensor<float> dst_, diff_src_;
    std::vector<std::vector<float>> cols_, dcols_, dws_, dyts_, pads_, dpads_, wides_;
    nn::detail::shifted_geometry sg_, sgd_;  // set by set_geometry (C = 0: not yet)
    std::vector<index_t> off_, offd_;
    std::vector<float> wflip_;  // flipped, transposed weights of the shifted input gradient
    nn::detail::phase_geometry pgd_;  // the stride-2 phases' input gradient (O = 0: not yet)
    std::vector<float> wphase_;       // its per-phase weights (nn::detail::phase_weights)
    // Winograd: the geometry, transformed weights and per-thread buffers of the forward and of the
    // input gradient (kept apart: their channel counts differ)
    nn::detail::winograd_geometry wg_, wgd_;
    std::vector<float> wu_, wud_;
    // wu_ kept while the weights are promised constant: for this tile, layout and channel counts
    bool constant_weights_ = false, wu_kept_ = false;
    nn::detail::winograd_geometry wu_geo_;  // the geometry wu_ was transformed for
    std::vector<nn::detail::winograd_buffers> wbufs_, wbufs_d_;
    // Winograd weight gradient: its (pixel-major) geometry, buffers, per-thread partials
    nn::detail::winograd_geometry wgw_;
    std::vector<nn::detail::winograd_buffers> wbufs_w_;
    std::vector<std::vector<float>> dus_;
    // The shifted paths' buffers hold zeros outside what each image writes (plane borders, slack,
    // the garbage rows of dy^T); reset when a geometry or a buffer changes.
    bool pads_zeroed_ = false, dpads_zeroed_ = false, dyts_zeroed_ = false;
};

//! Sets the algorithm of every convolution in the tree under `root`; returns how many it set.
inline std::size_t set_conv_algorithm(module& root, conv_algorithm a) {
    std::size_t n = 0;
    for (conv2d* c : find_all<conv2d>(root)) c->set_algorithm(a), ++n;
    return n;
}

//! "auto" | "direct" | "winograd" | "winograd-2x2" (what the CLI's --conv takes); value_error
//! otherwise.
inline conv_algorithm parse_conv_algorithm(const std::string& s) {
    if (s == "auto" || s == "automatic") return conv_algorithm::automatic;
    if (s == "direct") return conv_algorithm::direct;
    if (s == "winograd") return conv_algorithm::winograd;
    if (s == "winograd-2x2") return conv_algorithm::winograd_2x2;
    throw value_error("convolution algorithm '" + s + "': expected auto, direct, winograd or winograd-2x2");
}

}  // namespace shiftnorm::nn
