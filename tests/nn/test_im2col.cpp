// SPDX-License-Identifier: MIT
// im2col / col2im (nn/im2col.hpp), every path (same/stride-1 rows, the AVX-512 stride-2 rows, the
// scalar rows) against the definition written as plain loops: the same bits.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "shiftnorm/nn/im2col.hpp"
#include "support/conv_reference.hpp"

using namespace shiftnorm;
namespace d = shiftnorm::nn::detail;
using shiftnorm::test::randn;

namespace {
//! Calls f(col index, x index) for every (tap, output pixel) whose input lies inside the plane,
//! in (c, i, j, oh, ow) order: the definition of im2col and, read backwards, of col2im.
template <class F>
void for_each_tap(index_t C, index_t H, index_t W, const nn::window2d& g, index_t OH, index_t OW, F&& f) {
    for (index_t c = 0; c < C; ++c)
        for (index_t i = 0; i < g.kh; ++i)
            for (index_t j = 0; j < g.kw; ++j)
                for (index_t oh = 0; oh < OH; ++oh)
                    for (index_t ow = 0; ow < OW; ++ow) {
                        const index_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
                        if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                            f(std::size_t((((c * g.kh + i) * g.kw + j) * OH + oh) * OW + ow),
                              std::size_t((c * H + ih) * W + iw));
                    }
}

//! col[(c kh + i) kw + j][oh OW + ow] = x[c][oh sh - ph + i dh][ow sw - pw + j dw] or 0.
std::vector<float> naive_im2col(const std::vector<float>& x, index_t C, index_t H, index_t W, const nn::window2d& g,
                                index_t OH, index_t OW) {
    std::vector<float> col(std::size_t(C * g.kh * g.kw * OH * OW), 0.0f);
    for_each_tap(C, H, W, g, OH, OW, [&](std::size_t k, std::size_t p) { col[k] = x[p]; });
    return col;
}

//! x += the adjoint, taps in (c, i, j, oh, ow) order.
void naive_col2im(const std::vector<float>& col, index_t C, index_t H, index_t W, const nn::window2d& g, index_t OH,
                  index_t OW, std::vector<float>& x) {
    for_each_tap(C, H, W, g, OH, OW, [&](std::size_t k, std::size_t p) { x[p] += col[k]; });
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}
}  // namespace

TEST_CASE("im2col and col2im give the bits of the definition on every path", "[nn][im2col]") {
    struct geo {
        index_t k, s, p, dil;
    };
    // stride 2 (the AVX-512 rows up to 16 output columns, scalar beyond), stride 1 (same rows or
    // general), dilation 2 (scalar), 1x1 projections, paddings 0-2
    const geo geos[] = {{3, 2, 1, 1}, {1, 2, 0, 1}, {5, 2, 2, 1}, {3, 2, 0, 1}, {2, 2, 0, 1},
                        {3, 1, 1, 1}, {3, 1, 0, 1}, {3, 2, 1, 2}, {7, 2, 3, 1}};
    const index_t sizes[] = {1, 2, 7, 13, 14, 28, 31, 32, 33, 40};
    int stride2_fast = 0;
    for (const auto& ge : geos)
        for (index_t h : {index_t(5), index_t(14)})
            for (index_t w : sizes) {
                const nn::window2d g{ge.k, ge.k, ge.s, ge.s, ge.p, ge.p, ge.dil, ge.dil};
                const index_t C = 3, OH = g.out_h(h), OW = g.out_w(w);
                if (OH <= 0 || OW <= 0) continue;
                INFO("k " << ge.k << " s " << ge.s << " p " << ge.p << " dil " << ge.dil << ", " << h << "x" << w);
                if (d::stride2_rows(g, OW)) ++stride2_fast;
                auto x = randn(std::size_t(C * h * w), unsigned(h * 100 + w));
                x[1] = std::numeric_limits<float>::quiet_NaN();  // copied as is
                std::vector<float> col(std::size_t(C * ge.k * ge.k * OH * OW), 123.0f);  // every entry written
                d::im2col(x.data(), C, h, w, g, OH, OW, col.data());
                CHECK(same_bits(col, naive_im2col(x, C, h, w, g, OH, OW)));

                auto dcol = randn(col.size(), unsigned(h * 7 + w));
                const bool same = d::same_stride1(g, h, w, OH, OW);
                // the general path accumulates into x (start from values, -0 included: lanes no tap
                // reaches keep their bits); the same/stride-1 path overwrites x
                std::vector<float> dx = same ? std::vector<float>(x.size(), 0.0f) : randn(x.size(), 5);
                if (!same) dx[0] = -0.0f;
                std::vector<float> expect = dx;
                naive_col2im(dcol, C, h, w, g, OH, OW, expect);
                auto scratch = dcol;  // the same/stride-1 col2im zeroes padding columns of its input
                d::col2im(scratch.data(), C, h, w, g, OH, OW, dx.data());
                if (same) {
                    // a different summation order (centre tap first): compare values, not bits
                    for (std::size_t i = 0; i < dx.size(); ++i) REQUIRE(dx[i] == Approx(expect[i]).margin(1e-5));
                } else {
                    CHECK(same_bits(dx, expect));
                }
            }
    if (d::avx512_gemm_available())
        CHECK(stride2_fast > 20);  // the AVX-512 stride-2 rows really ran
    else
        WARN("no AVX-512 on this CPU / in this build: only the scalar rows were compared");
}
