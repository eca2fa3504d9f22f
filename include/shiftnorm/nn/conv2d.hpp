// SPDX-License-Identifier: MIT
// 2-D convolution (stride, padding, dilation, groups) as im2col + Eigen GEMM, forward and backward.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "shiftnorm/nn/gemm.hpp"
#include "shiftnorm/nn/init.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

//! Geometry of a 2-D convolution or pooling window (PyTorch semantics: floor division).
struct window2d {
    index_t kh = 1, kw = 1;  //!< kernel extent
    index_t sh = 1, sw = 1;  //!< stride
    index_t ph = 0, pw = 0;  //!< zero padding on each side
    index_t dh = 1, dw = 1;  //!< dilation

    index_t out_h(index_t h) const { return (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1; }
    index_t out_w(index_t w) const { return (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1; }
    bool identity_1x1() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

namespace detail {

//! Output columns [lo, hi) of one kernel tap whose input column lies inside [0, W).
inline void valid_range(index_t W, index_t OW, index_t s, index_t p, index_t off, index_t& lo, index_t& hi) {
    const index_t a = p - off;  // ow * s >= a
    lo = a <= 0 ? 0 : (a + s - 1) / s;
    const index_t b = W - 1 + p - off;  // ow * s <= b
    hi = b < 0 ? 0 : std::min(OW, b / s + 1);
    if (hi < lo) hi = lo;
}

//! True for stride-1, dilation-1 "same" windows (OH = H, OW = W: kernel 2p+1), where every
//! im2col row is the input plane shifted by one flat offset: one contiguous copy per row plus
//! zeroed borders, instead of one short copy per output row (3-4x faster on 8x8-32x32 planes).
inline bool same_stride1(const window2d& g, index_t H, index_t W, index_t OH, index_t OW) {
    return g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && OH == H && OW == W;
}

//! Valid flat range [lo, hi) of tap (i, j) in a same/stride-1 row, and its flat offset d.
inline void same_tap_range(const window2d& g, index_t H, index_t W, index_t i, index_t j, index_t& lo, index_t& hi,
                           index_t& d) {
    const index_t di = i - g.ph, dj = j - g.pw;
    d = di * W + dj;
    lo = std::max<index_t>(0, -di) * W;
    hi = std::min<index_t>(H, H - di) * W;
    lo = std::max(lo, -d);
    hi = std::min(hi, H * W - d);
    if (hi < lo) hi = lo;
}

//! Zeroes, in a same/stride-1 row of tap column offset dj, the columns whose input is padding.
inline void zero_border_columns(float* row, index_t H, index_t W, index_t dj) {
    if (dj < 0)
        for (index_t h = 0; h < H; ++h)
            for (index_t w = 0; w < -dj && w < W; ++w) row[h * W + w] = 0.0f;
    else if (dj > 0)
        for (index_t h = 0; h < H; ++h)
            for (index_t w = std::max<index_t>(0, W - dj); w < W; ++w) row[h * W + w] = 0.0f;
}

//! im2col of one image's C channels (caffe layout): col is [C*kh*kw, OH*OW] row-major, row
//! (c*kh + i)*kw + j holds the input under tap (i, j) of channel c, zero where it is padding.
inline void im2col(const float* x, index_t C, index_t H, index_t W, const window2d& g, index_t OH, index_t OW,
                   float* col) {
    const index_t P = OH * OW;
    if (same_stride1(g, H, W, OH, OW)) {
        for (index_t c = 0; c < C; ++c)
            for (index_t i = 0; i < g.kh; ++i)
                for (index_t j = 0; j < g.kw; ++j) {
                    float* row = col + ((c * g.kh + i) * g.kw + j) * P;
                    const float* xs = x + c * H * W;
                    index_t lo, hi, d;
                    same_tap_range(g, H, W, i, j, lo, hi, d);
                    for (index_t f = 0; f < lo; ++f) row[f] = 0.0f;
                    for (index_t f = lo; f < hi; ++f) row[f] = xs[f + d];
                    for (index_t f = hi; f < P; ++f) row[f] = 0.0f;
                    zero_border_columns(row, H, W, j - g.pw);
                }
        return;
    }
    for (index_t c = 0; c < C; ++c) {
        const float* xc = x + c * H * W;
        for (index_t i = 0; i < g.kh; ++i)
            for (index_t j = 0; j < g.kw; ++j) {
                float* row = col + ((c * g.kh + i) * g.kw + j) * P;
                index_t lo, hi;
                valid_range(W, OW, g.sw, g.pw, j * g.dw, lo, hi);
                for (index_t oh = 0; oh < OH; ++oh) {
                    float* r = row + oh * OW;
                    const index_t ih = oh * g.sh - g.ph + i * g.dh;
                    // Plain loops, not memset/memcpy: rows are short (8-32 floats) on CIFAR shapes.
                    if (ih < 0 || ih >= H) {
                        for (index_t ow = 0; ow < OW; ++ow) r[ow] = 0.0f;
                        continue;
                    }
                    const float* xr = xc + ih * W - g.pw + j * g.dw;
                    for (index_t ow = 0; ow < lo; ++ow) r[ow] = 0.0f;
                    if (g.sw == 1)
                        for (index_t ow = lo; ow < hi; ++ow) r[ow] = xr[ow];
                    else
                        for (index_t ow = lo; ow < hi; ++ow) r[ow] = xr[ow * g.sw];
                    for (index_t ow = hi; ow < OW; ++ow) r[ow] = 0.0f;
                }
            }
    }
}

//! Adjoint of im2col: x = col2im(col). In the same/stride-1 case x is overwritten (the
//! centre tap covers every pixel and is stored first; `col` is scratch: its padding columns
//! are zeroed); otherwise col is accumulated into x, which the caller zeroes.
inline void col2im(float* col, index_t C, index_t H, index_t W, const window2d& g, index_t OH, index_t OW,
                   float* x) {
    const index_t P = OH * OW;
    if (same_stride1(g, H, W, OH, OW)) {
        for (index_t c = 0; c < C; ++c) {
            float* xs = x + c * H * W;
            const float* centre = col + ((c * g.kh + g.ph) * g.kw + g.pw) * P;
            for (index_t f = 0; f < P; ++f) xs[f] = centre[f];
            for (index_t i = 0; i < g.kh; ++i)
                for (index_t j = 0; j < g.kw; ++j) {
                    if (i == g.ph && j == g.pw) continue;
                    float* row = col + ((c * g.kh + i) * g.kw + j) * P;
                    index_t lo, hi, d;
                    same_tap_range(g, H, W, i, j, lo, hi, d);
                    zero_border_columns(row, H, W, j - g.pw);
                    for (index_t f = lo; f < hi; ++f) xs[f + d] += row[f];
                }
        }
        return;
    }
    for (index_t c = 0; c < C; ++c) {
        float* xc = x + c * H * W;
        for (index_t i = 0; i < g.kh; ++i)
            for (index_t j = 0; j < g.kw; ++j) {
                const float* row = col + ((c * g.kh + i) * g.kw + j) * P;
                index_t lo, hi;
                valid_range(W, OW, g.sw, g.pw, j * g.dw, lo, hi);
                for (index_t oh = 0; oh < OH; ++oh) {
                    const index_t ih = oh * g.sh - g.ph + i * g.dh;
                    if (ih < 0 || ih >= H) continue;
                    const float* r = row + oh * OW;
                    float* xr = xc + ih * W - g.pw + j * g.dw;
                    if (g.sw == 1)
                        for (index_t ow = lo; ow < hi; ++ow) xr[ow] += r[ow];
                    else
                        for (index_t ow = lo; ow < hi; ++ow) xr[ow * g.sw] += r[ow];
                }
            }
    }
}

}  // namespace detail

//! Convolution options, PyTorch's nn.Conv2d arguments.
struct conv2d_options {
    index_t in_channels = 0, out_channels = 0;
    index_t kernel = 3, stride = 1, padding = 0, dilation = 1, groups = 1;
    bool bias = false;
};

//! 2-D convolution (cross-correlation, as PyTorch): dst[n,o] = sum_c w[o,c] * src[n,c] + b[o].
//! weight is OIHW [out, in/groups, k, k] (PyTorch's layout and name `weight`), bias [out].
//! Forward: per image and group, im2col into a per-thread buffer [in/g*k*k, OH*OW] and one
//! row-major Eigen GEMM; a 1x1 stride-1 unpadded convolution multiplies src in place.
//! Backward recomputes the columns (no k*k-times larger cache): diff_weight += diff_dst * col^T
//! (on AVX-512 accumulated transposed, col * diff_dst^T: nn::detail::weight_grad_t),
//! diff_col = weight^T * diff_dst, col2im into diff_src. Images run in parallel (OpenMP) with
//! per-thread weight-gradient partials summed in a fixed order (deterministic for a fixed
//! thread count). Cost: 2*N*OH*OW*out*in/g*k*k flops forward, twice that backward.
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

    const tensor<float>& forward(const tensor<float>& src, mode) override {
        const shape4 os = output_shape(src.shape());
        nn::detail::ensure_shape(dst_, os);
        src_ = &src;
        const shape4 is = src.shape();
        const index_t G = opt_.groups, Cg = is.c / G, Og = os.c / G, K = Cg * geo_.kh * geo_.kw, P = os.h * os.w;
        const bool direct = geo_.identity_1x1();
        prepare_buffers(direct ? 0 : K * P);
        const float* x = src.data();
        float* y = dst_.data();
SHIFTNORM_OMP(omp parallel for schedule(static))
        for (index_t n = 0; n < is.n; ++n) {
            float* col = direct ? nullptr : cols_[std::size_t(nn::detail::thread_id())].data();
            for (index_t g = 0; g < G; ++g) {
                const float* xg = x + (n * is.c + g * Cg) * is.h * is.w;
                if (!direct) nn::detail::im2col(xg, Cg, is.h, is.w, geo_, os.h, os.w, col);
                float* yg = y + (n * os.c + g * Og) * P;
                nn::detail::gemm(false, false, Og, P, K, 1.0f, weight.data() + g * Og * K, K, direct ? xg : col, P,
                                 0.0f, yg, P);
                if (opt_.bias)
                    for (index_t o = 0; o < Og; ++o) {
                        const float b = bias[std::size_t(g * Og + o)];
                        for (index_t i = 0; i < P; ++i) yg[o * P + i] += b;
                    }
            }
        }
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        nn::detail::check_forwarded("conv2d::backward", src_);
        nn::detail::check_diff_dst("conv2d::backward", dst_.shape(), diff_dst);
        const shape4 is = src_->shape(), os = dst_.shape();
        const index_t G = opt_.groups, Cg = is.c / G, Og = os.c / G, K = Cg * geo_.kh * geo_.kw, P = os.h * os.w;
        const bool direct = geo_.identity_1x1();
        if (input_grad_) nn::detail::ensure_shape(diff_src_, is);
        prepare_buffers(direct ? 0 : K * P);
        const int T = int(cols_.size());
        const bool want_w = param_grad_;
        if (!want_w && !input_grad_) return diff_dst;
        if (dws_.size() != std::size_t(T)) dws_.resize(std::size_t(T)), dyts_.resize(std::size_t(T));
        // weight-gradient partials per thread: [G][Og x K], or transposed [G][K x Og] (weight_grad_t)
        const bool transposed = nn::detail::weight_grad_transposed();
        if (want_w)
            for (std::size_t t = 0; t < std::size_t(T); ++t) {
                dws_[t].assign(weight.size(), 0.0f);
                if (transposed) dyts_[t].resize(std::size_t(Og * P));
            }
        const bool same = nn::detail::same_stride1(geo_, is.h, is.w, os.h, os.w);
        const float* x = src_->data();
        const float* dy = diff_dst.data();
        float* dx = input_grad_ ? diff_src_.data() : nullptr;
SHIFTNORM_OMP(omp parallel for schedule(static))
        for (index_t n = 0; n < is.n; ++n) {
            const std::size_t t = std::size_t(nn::detail::thread_id());
            float* col = direct ? nullptr : cols_[t].data();
            float* dcol = direct ? nullptr : dcols_[t].data();
            for (index_t g = 0; g < G; ++g) {
                const float* xg = x + (n * is.c + g * Cg) * is.h * is.w;
                const float* dyg = dy + (n * os.c + g * Og) * P;
                if (want_w) {
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
                    if (direct) {
                        nn::detail::gemm(true, false, K, P, Og, 1.0f, wg, K, dyg, P, 0.0f, dxg, P);
                    } else {
                        // diff_col [K, P] = weight_g^T * diff_dst_g, scattered back by col2im.
                        nn::detail::gemm(true, false, K, P, Og, 1.0f, wg, K, dyg, P, 0.0f, dcol, P);
                        if (!same) std::fill(dxg, dxg + Cg * is.h * is.w, 0.0f);
                        nn::detail::col2im(dcol, Cg, is.h, is.w, geo_, os.h, os.w, dxg);
                    }
                }
            }
        }
        if (!want_w) return diff_src_;
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
    void prepare_buffers(index_t col_size) {
        const std::size_t T = std::size_t(std::max(1, nn::detail::max_threads()));
        if (cols_.size() != T) {
            cols_.resize(T);
            dcols_.resize(T);
        }
        for (std::size_t t = 0; t < T; ++t) {
            if (index_t(cols_[t].size()) < col_size) cols_[t].resize(std::size_t(col_size));
            if (input_grad_ && index_t(dcols_[t].size()) < col_size) dcols_[t].resize(std::size_t(col_size));
        }
    }

    conv2d_options opt_;
    window2d geo_;
    const tensor<float>* src_ = nullptr;
    tensor<float> dst_, diff_src_;
    std::vector<std::vector<float>> cols_, dcols_, dws_, dyts_;
};

}  // namespace shiftnorm::nn
