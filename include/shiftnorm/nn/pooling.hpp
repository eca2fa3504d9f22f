// SPDX-License-Identifier: MIT
// Pooling layers: max and average over k x k windows, and global average pooling.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "shiftnorm/nn/conv2d.hpp"
#include "shiftnorm/nn/module.hpp"

namespace shiftnorm::nn {

namespace detail {
inline window2d pool_window(const char* where, index_t kernel, index_t stride, index_t padding) {
    if (kernel <= 0) shiftnorm::detail::fail(where, "kernel", "> 0", kernel);
    if (stride <= 0) shiftnorm::detail::fail(where, "stride", "> 0", stride);
    if (padding < 0 || 2 * padding > kernel)
        shiftnorm::detail::fail(where, "padding", "in [0, kernel/2] (PyTorch's limit)", padding);
    return window2d{kernel, kernel, stride, stride, padding, padding, 1, 1};
}
inline shape4 pool_shape(const char* where, const window2d& g, const shape4& s) {
    const index_t oh = g.out_h(s.h), ow = g.out_w(s.w);
    if (oh <= 0 || ow <= 0) shiftnorm::detail::fail<shape_error>(where, "src spatial size", "at least the kernel", s);
    return {s.n, s.c, oh, ow};
}
}  // namespace detail

//! Max pooling (nn.MaxPool2d, padding counts as -inf, floor output size). Saves the argmax
//! (an int32 offset in the plane) per output for backward; ties pick the first maximum in
//! row-major window order, as PyTorch's CPU kernel does.
class max_pool2d : public module {
public:
    max_pool2d(index_t kernel, index_t stride, index_t padding = 0)
        : geo_(nn::detail::pool_window("max_pool2d", kernel, stride, padding)) {}

    shape4 output_shape(const shape4& s) const override { return nn::detail::pool_shape("max_pool2d", geo_, s); }

    const tensor<float>& forward(const tensor<float>& src, mode) override {
        const shape4 is = src.shape(), os = output_shape(is);
        nn::detail::ensure_shape(dst_, os);
        argmax_.resize(std::size_t(os.numel()));
        src_shape_ = is;
        const index_t planes = is.n * is.c;
SHIFTNORM_OMP(omp parallel for schedule(static))
        for (index_t p = 0; p < planes; ++p) {
            const float* x = src.data() + p * is.h * is.w;
            float* y = dst_.data() + p * os.h * os.w;
            std::int32_t* am = argmax_.data() + p * os.h * os.w;
            for (index_t oh = 0; oh < os.h; ++oh)
                for (index_t ow = 0; ow < os.w; ++ow) {
                    float best = -std::numeric_limits<float>::infinity();
                    std::int32_t bi = -1;
                    for (index_t i = 0; i < geo_.kh; ++i) {
                        const index_t ih = oh * geo_.sh - geo_.ph + i;
                        if (ih < 0 || ih >= is.h) continue;
                        for (index_t j = 0; j < geo_.kw; ++j) {
                            const index_t iw = ow * geo_.sw - geo_.pw + j;
                            if (iw < 0 || iw >= is.w) continue;
                            const float v = x[ih * is.w + iw];
                            if (v > best || bi < 0 || v != v) {
                                best = v;
                                bi = std::int32_t(ih * is.w + iw);
                                if (v != v) break;
                            }
                        }
                    }
                    y[oh * os.w + ow] = best;
                    am[oh * os.w + ow] = bi;
                }
        }
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        if (argmax_.empty()) throw state_error("max_pool2d::backward: backward called before forward");
        nn::detail::check_diff_dst("max_pool2d::backward", dst_.shape(), diff_dst);
        nn::detail::ensure_shape(diff_src_, src_shape_);
        diff_src_.fill(0.0f);
        const shape4 is = src_shape_, os = dst_.shape();
        const index_t planes = is.n * is.c;
SHIFTNORM_OMP(omp parallel for schedule(static))
        for (index_t p = 0; p < planes; ++p) {
            float* dx = diff_src_.data() + p * is.h * is.w;
            const float* dy = diff_dst.data() + p * os.h * os.w;
            const std::int32_t* am = argmax_.data() + p * os.h * os.w;
            for (index_t i = 0; i < os.h * os.w; ++i) dx[am[i]] += dy[i];
        }
        return diff_src_;
    }

    std::string describe() const override {
        return shiftnorm::detail::concat("max_pool2d(k", geo_.kh, ", s", geo_.sh, ", p", geo_.ph, ")");
    }

private:
    window2d geo_;
    shape4 src_shape_{};
    std::vector<std::int32_t> argmax_;
    tensor<float> dst_, diff_src_;
};

//! Average pooling (nn.AvgPool2d with count_include_pad=True: the divisor is always k*k).
class avg_pool2d : public module {
public:
    avg_pool2d(index_t kernel, index_t stride, index_t padding = 0)
        : geo_(nn::detail::pool_window("avg_pool2d", kernel, stride, padding)) {}

    shape4 output_shape(const shape4& s) const override { return nn::detail::pool_shape("avg_pool2d", geo_, s); }

    const tensor<float>& forward(const tensor<float>& src, mode) override {
        const shape4 is = src.shape(), os = output_shape(is);
        nn::detail::ensure_shape(dst_, os);
        src_shape_ = is;
        const float inv = 1.0f / float(geo_.kh * geo_.kw);
        const index_t planes = is.n * is.c;
SHIFTNORM_OMP(omp parallel for schedule(static))
        for (index_t p = 0; p < planes; ++p) {
            const float* x = src.data() + p * is.h * is.w;
            float* y = dst_.data() + p * os.h * os.w;
            for (index_t oh = 0; oh < os.h; ++oh)
                for (index_t ow = 0; ow < os.w; ++ow) {
                    float s = 0.0f;
                    for (index_t i = 0; i < geo_.kh; ++i) {
                        const index_t ih = oh * geo_.sh - geo_.ph + i;
                        if (ih < 0 || ih >= is.h) continue;
                        for (index_t j = 0; j < geo_.kw; ++j) {
                            const index_t iw = ow * geo_.sw - geo_.pw + j;
                            if (iw >= 0 && iw < is.w) s += x[ih * is.w + iw];
                        }
                    }
                    y[oh * os.w + ow] = s * inv;
                }
        }
        forwarded_ = true;
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        if (!forwarded_) throw state_error("avg_pool2d::backward: backward called before forward");
        nn::detail::check_diff_dst("avg_pool2d::backward", dst_.shape(), diff_dst);
        nn::detail::ensure_shape(diff_src_, src_shape_);
        diff_src_.fill(0.0f);
        const shape4 is = src_shape_, os = dst_.shape();
        const float inv = 1.0f / float(geo_.kh * geo_.kw);
        const index_t planes = is.n * is.c;
SHIFTNORM_OMP(omp parallel for schedule(static))
        for (index_t p = 0; p < planes; ++p) {
            float* dx = diff_src_.data() + p * is.h * is.w;
            const float* dy = diff_dst.data() + p * os.h * os.w;
            for (index_t oh = 0; oh < os.h; ++oh)
                for (index_t ow = 0; ow < os.w; ++ow) {
                    const float g = dy[oh * os.w + ow] * inv;
                    for (index_t i = 0; i < geo_.kh; ++i) {
                        const index_t ih = oh * geo_.sh - geo_.ph + i;
                        if (ih < 0 || ih >= is.h) continue;
                        for (index_t j = 0; j < geo_.kw; ++j) {
                            const index_t iw = ow * geo_.sw - geo_.pw + j;
                            if (iw >= 0 && iw < is.w) dx[ih * is.w + iw] += g;
                        }
                    }
                }
        }
        return diff_src_;
    }

    std::string describe() const override {
        return shiftnorm::detail::concat("avg_pool2d(k", geo_.kh, ", s", geo_.sh, ", p", geo_.ph, ")");
    }

private:
    window2d geo_;
    shape4 src_shape_{};
    bool forwarded_ = false;
    tensor<float> dst_, diff_src_;
};

//! Global average pooling: dst[n, c, 0, 0] = mean over (h, w) of src[n, c] (AdaptiveAvgPool2d(1)).
class global_avg_pool : public module {
public:
    shape4 output_shape(const shape4& s) const override {
        if (s.h * s.w <= 0) shiftnorm::detail::fail<shape_error>("global_avg_pool", "src", "a non-empty plane", s);
        return {s.n, s.c, 1, 1};
    }

    const tensor<float>& forward(const tensor<float>& src, mode) override {
        const shape4 is = src.shape();
        nn::detail::ensure_shape(dst_, output_shape(is));
        src_shape_ = is;
        const index_t hw = is.h * is.w, planes = is.n * is.c;
        // eight planes at a time, each summed in its own order (the bits of one plane after the
        // other: eight independent dependency chains instead of one), groups over the threads
        const float* x = src.data();
        float* y = dst_.data();
SHIFTNORM_OMP(omp parallel for schedule(static) if (nn::detail::worth_threads(planes * hw)))
        for (index_t p0 = 0; p0 < planes; p0 += 8) {
            const index_t m = std::min<index_t>(8, planes - p0);
            double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (index_t i = 0; i < hw; ++i)
                for (index_t k = 0; k < m; ++k) s[k] += x[(p0 + k) * hw + i];
            for (index_t k = 0; k < m; ++k) y[p0 + k] = float(s[k] / double(hw));
        }
        forwarded_ = true;
        return dst_;
    }

    const tensor<float>& backward(const tensor<float>& diff_dst) override {
        if (!forwarded_) throw state_error("global_avg_pool::backward: backward called before forward");
        nn::detail::check_diff_dst("global_avg_pool::backward", dst_.shape(), diff_dst);
        nn::detail::ensure_shape(diff_src_, src_shape_);
        const index_t hw = src_shape_.h * src_shape_.w, planes = src_shape_.n * src_shape_.c;
        const float* dy = diff_dst.data();
        float* dx = diff_src_.data();
SHIFTNORM_OMP(omp parallel for schedule(static) if (nn::detail::worth_threads(planes * hw)))
        for (index_t p = 0; p < planes; ++p) std::fill(dx + p * hw, dx + (p + 1) * hw, dy[p] / float(hw));
        return diff_src_;
    }

    std::string describe() const override { return "global_avg_pool"; }

private:
    shape4 src_shape_{};
    bool forwarded_ = false;
    tensor<float> dst_, diff_src_;
};

}  // namespace shiftnorm::nn
