// SPDX-License-Identifier: MIT
// Weather corruptions: snow (own motion-blur kernel), fog (plasma fractal) and spatter (water / mud).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "shiftnorm/corrupt/blur.hpp"
#include "shiftnorm/corrupt/filters.hpp"
#include "shiftnorm/corrupt/frost.hpp"
#include "shiftnorm/corrupt/geometry.hpp"
#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/params.hpp"
#include "shiftnorm/corrupt/rng.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt {

namespace detail {

//! One row of a plasma phase: o[j] = ((a[j] + b[j]) + (c[j] + d[j])) / 4 + wibble * (lo + range * u[j]),
//! i.e. the reference's `array / 4 + wibble * np.random.uniform(-wibble, wibble)` of a sum of
//! four neighbours, every operation rounded as numpy's. One body, a plain and an AVX-512 build.
SHIFTNORM_KERNEL_BODY void plasma_row_body(double* o, const double* a, const double* b, const double* c,
                                           const double* d, const double* u, std::size_t n, double wibble,
                                           double lo, double range) {
    for (std::size_t j = 0; j < n; ++j) o[j] = ((a[j] + b[j]) + (c[j] + d[j])) / 4 + wibble * (lo + range * u[j]);
}
SHIFTNORM_FP_EXACT inline void plasma_row_plain(double* o, const double* a, const double* b, const double* c,
                                                const double* d, const double* u, std::size_t n, double wibble,
                                                double lo, double range) {
    plasma_row_body(o, a, b, c, d, u, n, wibble, lo, range);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void plasma_row_avx512(
    double* o, const double* a, const double* b, const double* c, const double* d, const double* u, std::size_t n,
    double wibble, double lo, double range) {
    plasma_row_body(o, a, b, c, d, u, n, wibble, lo, range);
}
#endif
inline void plasma_row(double* o, const double* a, const double* b, const double* c, const double* d, const double* u,
                       std::size_t n, double wibble, double lo, double range) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return plasma_row_avx512(o, a, b, c, d, u, n, wibble, lo, range);
#endif
    plasma_row_plain(o, a, b, c, d, u, n, wibble, lo, range);
}

//! The reference's `m -= m.min(); m / m.max()` on n values (all zero when the maximum is 0): min
//! and max are exact in any order, so eight running values each (vectorized; one running value
//! is a chain of dependent comparisons), then the shift and the division as numpy rounds them.
//! One body, a plain and an AVX-512 build.
SHIFTNORM_KERNEL_BODY void plasma_normalize_body(double* m, std::size_t n) {
    if (n == 0) return;
    double lo[8], hi[8];
    for (int k = 0; k < 8; ++k) lo[k] = m[0], hi[k] = 0.0;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) lo[k] = m[i + k] < lo[k] ? m[i + k] : lo[k];
    for (; i < n; ++i) lo[0] = m[i] < lo[0] ? m[i] : lo[0];
    double mn = lo[0];
    for (int k = 1; k < 8; ++k) mn = lo[k] < mn ? lo[k] : mn;
    for (i = 0; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; ++k) {
            const double v = m[i + k] = m[i + k] - mn;
            hi[k] = v > hi[k] ? v : hi[k];
        }
    for (; i < n; ++i) {
        const double v = m[i] = m[i] - mn;
        hi[0] = v > hi[0] ? v : hi[0];
    }
    double mx = hi[0];
    for (int k = 1; k < 8; ++k) mx = hi[k] > mx ? hi[k] : mx;
    if (mx > 0)
        for (i = 0; i < n; ++i) m[i] = m[i] / mx;
    else
        for (i = 0; i < n; ++i) m[i] = 0.0;
}
SHIFTNORM_FP_EXACT inline void plasma_normalize_plain(double* m, std::size_t n) { plasma_normalize_body(m, n); }
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void plasma_normalize_avx512(double* m, std::size_t n) {
    plasma_normalize_body(m, n);
}
#endif
inline void plasma_normalize(double* m, std::size_t n) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return plasma_normalize_avx512(m, n);
#endif
    plasma_normalize_plain(m, n);
}

//! The reference's plasma_fractal (diamond-square, after FLHerne/mapgen): a mapsize x mapsize
//! height map (mapsize a power of two) in [0, 1]; the random offsets start at 100 * U(-100, 100)
//! and shrink by `decay` per level. Draw order follows the numpy code (per level: the squares'
//! centres, then the diamonds on the corner rows, then those on the centre rows, each row-major).
//! Computed on compact grids: at a level with g x g squares, K holds the corners and D the
//! centres (neighbours wrapping around); the diamonds on the corner and centre rows are computed
//! a row at a time and interleaved with K and D into the next level's 2g x 2g corners. Each row
//! of a phase draws its g uniforms in one loop, then combines them (plasma_row): the same values,
//! drawn in the same order and rounded the same way, as one draw per element in the reference's
//! loops. Work memory besides the map: half its size (K and D).
SHIFTNORM_FP_EXACT inline scratch_vector<double> plasma_fractal(int mapsize, double decay, generator& gen) {
    const int n = mapsize;
    const std::size_t half = static_cast<std::size_t>(std::max(n / 2, 1));
    // work memory: the map (which also takes each level's next corners), the corners K and the
    // centres D, a quarter of the map each; rows for the draws and the diamonds
    scratch_vector<double> m(static_cast<std::size_t>(n) * n, 0.0);
    scratch_vector<double> K(half * half, 0.0), D(half * half);
    scratch_vector<double> u(half), shifted0(half), shifted1(half), diamonds(half);
    double wibble = 100.0;
    for (std::size_t G = 1; 2 * G <= static_cast<std::size_t>(n); G *= 2) {
        const double lo = -wibble, range = wibble - lo;  // uniform(-wibble, wibble) = lo + (hi - lo) u
        // each phase draws its G x G uniforms row by row (numpy's row-major order)
        const auto draw_row = [&] {
            for (std::size_t k = 0; k < G; ++k) u[k] = gen.uniform();
            return u.data();
        };
        const auto row = [G](scratch_vector<double>& v, std::size_t i) { return &v[(i == G ? 0 : i) * G]; };
        // a row's right neighbours (out[j] = r[j + 1]) or left neighbours (r[j - 1]), wrapping
        const auto right_of = [G](const double* r, scratch_vector<double>& out) {
            std::copy(r + 1, r + G, out.data()), out[G - 1] = r[0];
            return out.data();
        };
        const auto left_of = [G](const double* r, scratch_vector<double>& out) {
            out[0] = r[G - 1], std::copy(r, r + G - 1, out.data() + 1);
            return out.data();
        };
        // the next level's corners: rows 2i (K, then the corner rows' diamonds, alternating) and
        // 2i + 1 (the centre rows' diamonds, then D, alternating)
        const std::size_t G2 = 2 * G;
        double* out = m.data();
        // fillsquares: centre (i, j) = (K[i][j] + K[i+1][j]) + (K[i][j+1] + K[i+1][j+1])
        for (std::size_t i = 0; i < G; ++i) {
            const double* k0 = row(K, i);
            const double* k1 = row(K, i + 1);
            plasma_row(row(D, i), k0, k1, right_of(k0, shifted0), right_of(k1, shifted1), draw_row(), G, wibble, lo,
                       range);
        }
        // filldiamonds, corner rows: (D[i][j] + D[i-1][j]) + (K[i][j] + K[i][j+1])
        for (std::size_t i = 0; i < G; ++i) {
            const double* k0 = row(K, i);
            plasma_row(diamonds.data(), row(D, i), row(D, i == 0 ? G - 1 : i - 1), k0, right_of(k0, shifted0),
                       draw_row(), G, wibble, lo, range);
            double* e = out + 2 * i * G2;
            for (std::size_t j = 0; j < G; ++j) e[2 * j] = k0[j], e[2 * j + 1] = diamonds[j];
        }
        // filldiamonds, centre rows: (D[i][j] + D[i][j-1]) + (K[i][j] + K[i+1][j])
        for (std::size_t i = 0; i < G; ++i) {
            const double* d0 = row(D, i);
            plasma_row(diamonds.data(), d0, left_of(d0, shifted0), row(K, i), row(K, i + 1), draw_row(), G, wibble, lo,
                       range);
            double* f = out + (2 * i + 1) * G2;
            for (std::size_t j = 0; j < G; ++j) f[2 * j] = diamonds[j], f[2 * j + 1] = d0[j];
        }
        if (G2 < static_cast<std::size_t>(n))  // the next level's corners back into K
            std::copy(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(G2 * G2), K.begin());
        wibble /= decay;
    }
    plasma_normalize(m.data(), m.size());
    return m;
}

//! Canny's non-maximum suppression of one row of w pixels, without branches: m points at the
//! row's magnitudes inside a plane of row pitch pw with a zero border (m[-1], m[w], m[+-pw] are
//! read), gx / gy are the row's Sobel gradients; st[x] = 0 (not kept: magnitude <= low, or not a
//! maximum along the gradient's direction, quantised as OpenCV does: horizontal, vertical or
//! one of the diagonals), 1 (kept, <= high) or 2 (kept, > high). Integers only (no byte
//! lanes: GCC vectorizes a loop by its narrowest type, and 64 byte lanes would leave a 32 px row
//! to the scalar remainder loop).
SHIFTNORM_KERNEL_BODY void canny_nms_row_body(const int* m, std::size_t pw, const int* gx, const int* gy, int w,
                                              int low, int high, int* st) {
    const int* up = m - pw;
    const int* dn = m + pw;
    for (int x = 0; x < w; ++x) {
        const int v = m[x], l = m[x - 1], r = m[x + 1];
        const int ul = up[x - 1], uc = up[x], ur = up[x + 1], dl = dn[x - 1], dc = dn[x], dr = dn[x + 1];
        const int ax = gx[x] < 0 ? -gx[x] : gx[x], ay = gy[x] < 0 ? -gy[x] : gy[x];
        const double xs = ax, ys = ay;
        const double tg22 = xs * 0.4142135623730950488, tg67 = tg22 + 2 * xs;
        const int horizontal = (v > l) & (v >= r);
        const int vertical = (v > uc) & (v >= dc);
        const int neg = (gx[x] ^ gy[x]) < 0;  // s = -1: (y - 1, x + 1) and (y + 1, x - 1)
        const int diagonal = neg ? (v > ur) & (v > dl) : (v > ul) & (v > dr);
        const int below22 = ys < tg22, above67 = ys > tg67;
        const int along = below22 ? horizontal : above67 ? vertical : diagonal;
        const int keep = (v > low) & along;
        st[x] = keep * (1 + (v > high));
    }
}
SHIFTNORM_KERNEL_TWINS(canny_nms_row,
                       (const int* m, std::size_t pw, const int* gx, const int* gy, int w, int low, int high, int* st),
                       (m, pw, gx, gy, w, low, high, st))

//! Canny's Sobel pass over one row of w pixels: u, c, d the rows above, at and below in a plane
//! with one replicated border column on each side (column x of the image is column x + 1 of the
//! rows); gx, gy the gradients, m the L1 magnitude (six arrays that do not overlap: __restrict, or
//! GCC 12 gives up on the 15 overlap checks and runs the loop scalar). Integer arithmetic (ints,
//! not bytes: canny_nms_row): every twin gives the same values.
SHIFTNORM_KERNEL_BODY void canny_sobel_row_body(const int* __restrict u, const int* __restrict c,
                                                const int* __restrict d, int w, int* __restrict gxr,
                                                int* __restrict gyr, int* __restrict mr) {
    for (int x = 0; x < w; ++x) {
        const int gx = (u[x + 2] + 2 * c[x + 2] + d[x + 2]) - (u[x] + 2 * c[x] + d[x]);
        const int gy = (d[x] + 2 * d[x + 1] + d[x + 2]) - (u[x] + 2 * u[x + 1] + u[x + 2]);
        gxr[x] = gx, gyr[x] = gy, mr[x] = (gx < 0 ? -gx : gx) + (gy < 0 ? -gy : gy);
    }
}
SHIFTNORM_KERNEL_TWINS(canny_sobel_row, (const int* u, const int* c, const int* d, int w, int* gxr, int* gyr, int* mr),
                       (u, c, d, w, gxr, gyr, mr))

//! OpenCV Canny(img, low, high) with aperture 3 and the L1 gradient norm, as a state plane: Sobel
//! with replicated borders, non-maximum suppression by quantised direction, hysteresis over
//! 8-neighbours. img: h x w byte values held in ints. Returns (h + 2) x (w + 2) values, row pitch
//! w + 2, pixel (y, x) at (y + 1) (w + 2) + x + 1: 2 on edges, 0 or 1 elsewhere, 0 on the
//! one-pixel border (so the hysteresis reads every neighbour without an index check). The Sobel
//! pass reads a border-padded copy and the suppression a zero-bordered magnitude plane.
SHIFTNORM_FP_EXACT inline scratch_vector<int> canny_state(const int* img, int h, int w, int low, int high) {
    const std::size_t pw = static_cast<std::size_t>(w) + 2;
    const std::size_t n = static_cast<std::size_t>(h) * static_cast<std::size_t>(w);
    const auto pad = padded_plane(img, h, w, 1, border::nearest);
    scratch_buffer<int> dx(n), dy(n);
    scratch_vector<int> mag(pw * (static_cast<std::size_t>(h) + 2), 0);
    for (int y = 0; y < h; ++y) {
        const int* u = &pad[static_cast<std::size_t>(y) * pw];  // row y - 1
        canny_sobel_row(u, u + pw, u + 2 * pw, w, &dx[static_cast<std::size_t>(y) * w],
                        &dy[static_cast<std::size_t>(y) * w], &mag[static_cast<std::size_t>(y + 1) * pw + 1]);
    }
    // non-maximum suppression, branch-free per row (canny_nms_row) into the bordered plane
    scratch_vector<int> state(pw * (static_cast<std::size_t>(h) + 2), 0);
    for (int y = 0; y < h; ++y)
        canny_nms_row(&mag[static_cast<std::size_t>(y + 1) * pw + 1], pw, &dx[static_cast<std::size_t>(y) * w],
                      &dy[static_cast<std::size_t>(y) * w], w, low, high, &state[static_cast<std::size_t>(y + 1) * pw + 1]);
    // hysteresis: every pixel enters the stack at most once (strong, or weak turned strong); the
    // closure does not depend on the order the stack is worked in
    scratch_buffer<std::ptrdiff_t> stack(state.size() + 1);
    std::size_t top = 0;
    for (std::size_t i = 0; i < state.size(); ++i) {  // branch-free listing of the strong pixels
        stack[top] = static_cast<std::ptrdiff_t>(i);
        top += state[i] == 2;
    }
    const std::ptrdiff_t p = static_cast<std::ptrdiff_t>(pw);
    const std::ptrdiff_t around[8] = {-p - 1, -p, -p + 1, -1, 1, p - 1, p, p + 1};
    int* st = state.data();
    while (top > 0) {
        const std::ptrdiff_t at = stack[--top];
        for (const std::ptrdiff_t o : around)
            if (st[at + o] == 1) {
                st[at + o] = 2;
                stack[top++] = at + o;
            }
    }
    return state;
}

//! OpenCV Canny(img, low, high) (canny_state) of an h x w byte plane: 255 on edges, 0 elsewhere.
SHIFTNORM_FP_EXACT inline scratch_vector<std::uint8_t> canny(const scratch_vector<std::uint8_t>& img, int h, int w,
                                                            int low, int high) {
    const scratch_buffer<int> wide(img.begin(), img.end());
    const scratch_vector<int> state = canny_state(wide.data(), h, w, low, high);
    const std::size_t pw = static_cast<std::size_t>(w) + 2;
    scratch_vector<std::uint8_t> out(img.size());
    for (int y = 0; y < h; ++y) {
        const int* s = &state[static_cast<std::size_t>(y + 1) * pw + 1];
        std::uint8_t* o = &out[static_cast<std::size_t>(y) * w];
        for (int x = 0; x < w; ++x) o[x] = s[x] == 2 ? 255 : 0;
    }
    return out;
}

//! The distance transform's terms from two finished rows: pre[x] = min(row[x], r1[x] + a,
//! r1[x -+ 1] + b, r1[x -+ 2] + c, r2[x -+ 1] + c) (r1 the nearer row, r2 the farther; the rows
//! carry two border values on each side). One body, a plain and an AVX-512 build.
SHIFTNORM_KERNEL_BODY void dt_rows_min_body(const double* row, const double* r1, const double* r2, double* pre, int w,
                                            double a, double b, double c) {
    for (int x = 0; x < w; ++x) {
        double best = row[x];
        best = std::min(best, r2[x - 1] + c);
        best = std::min(best, r2[x + 1] + c);
        best = std::min(best, r1[x - 2] + c);
        best = std::min(best, r1[x - 1] + b);
        best = std::min(best, r1[x] + a);
        best = std::min(best, r1[x + 1] + b);
        best = std::min(best, r1[x + 2] + c);
        pre[x] = best;
    }
}
SHIFTNORM_FP_EXACT inline void dt_rows_min_plain(const double* row, const double* r1, const double* r2, double* pre,
                                                 int w, double a, double b, double c) {
    dt_rows_min_body(row, r1, r2, pre, w, a, b, c);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void dt_rows_min_avx512(
    const double* row, const double* r1, const double* r2, double* pre, int w, double a, double b, double c) {
    dt_rows_min_body(row, r1, r2, pre, w, a, b, c);
}
#endif
inline void dt_rows_min(const double* row, const double* r1, const double* r2, double* pre, int w, double a, double b,
                        double c) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return dt_rows_min_avx512(row, r1, r2, pre, w, a, b, c);
#endif
    dt_rows_min_plain(row, r1, r2, pre, w, a, b, c);
}

//! The plane of cv2.distanceTransform: (h + 4) x (w + 4) values, row pitch w + 4, pixel (y, x) at
//! (y + 2) (w + 4) + x + 2; a border of two "infinite" (1e9) values on every side, which never win
//! a minimum (the same result as skipping the neighbours outside the image). `seed(y, row)` fills
//! row y's w values: 0 where the distance is measured from, dt_infinity elsewhere.
constexpr double dt_infinity = 1e9;
template <class Seed>
inline scratch_buffer<double> dt_plane(int h, int w, Seed&& seed) {
    const std::size_t pw = static_cast<std::size_t>(w) + 4;
    scratch_buffer<double> d(pw * (static_cast<std::size_t>(h) + 4));
    std::fill_n(d.data(), 2 * pw, dt_infinity);
    std::fill_n(d.data() + (static_cast<std::size_t>(h) + 2) * pw, 2 * pw, dt_infinity);
    for (int y = 0; y < h; ++y) {
        double* row = &d[(static_cast<std::size_t>(y) + 2) * pw];
        row[0] = row[1] = row[w + 2] = row[w + 3] = dt_infinity;
        seed(y, row + 2);
    }
    return d;
}

//! A dt_plane row from a row of ints: row[x] = 0 where s[x] == at, dt_infinity elsewhere
//! (branch-free: edges fall where they fall, a branch would guess them wrong).
SHIFTNORM_KERNEL_BODY void dt_seed_row_body(const int* s, int at, int w, double* row) {
    for (int x = 0; x < w; ++x) row[x] = s[x] == at ? 0.0 : dt_infinity;
}
SHIFTNORM_KERNEL_TWINS(dt_seed_row, (const int* s, int at, int w, double* row), (s, at, w, row))

//! cv2.distanceTransform(src, DIST_L2, 5) on a dt_plane, in place: two-pass 5x5 chamfer distance
//! (weights 1, 1.4, 2.1969) from every zero pixel.
SHIFTNORM_FP_EXACT inline void chamfer_distance(double* d, int h, int w) {
    const double a = 1.0, b = 1.4, c = 2.1969;
    const std::ptrdiff_t pw = w + 4;
    // Each pass: the mask's terms from the two rows already final (vectorized, dt_rows_min),
    // then the in-row neighbour in scan order. The mask is symmetric in x, so both passes share
    // the row term; the minimum of finite values is exact in any order.
    scratch_buffer<double> pre(static_cast<std::size_t>(w));
    for (int y = 0; y < h; ++y) {
        double* row = d + (y + 2) * pw + 2;
        dt_rows_min(row, row - pw, row - 2 * pw, pre.data(), w, a, b, c);
        for (int x = 0; x < w; ++x) row[x] = std::min(pre[static_cast<std::size_t>(x)], row[x - 1] + a);
    }
    for (int y = h - 1; y >= 0; --y) {
        double* row = d + (y + 2) * pw + 2;
        dt_rows_min(row, row + pw, row + 2 * pw, pre.data(), w, a, b, c);
        for (int x = w - 1; x >= 0; --x) row[x] = std::min(pre[static_cast<std::size_t>(x)], row[x + 1] + a);
    }
}

//! cv2.distanceTransform(src, DIST_L2, 5) (chamfer_distance): the distance of every non-zero pixel
//! of the h x w plane src to the nearest zero pixel, h x w.
SHIFTNORM_FP_EXACT inline scratch_vector<double> distance_transform(const scratch_vector<std::uint8_t>& src, int h, int w) {
    const scratch_buffer<int> wide(src.begin(), src.end());
    scratch_buffer<double> d =
        dt_plane(h, w, [&](int y, double* row) { dt_seed_row(&wide[static_cast<std::size_t>(y) * w], 0, w, row); });
    chamfer_distance(d.data(), h, w);
    const std::size_t pw = static_cast<std::size_t>(w) + 4;
    scratch_vector<double> out(src.size());
    for (int y = 0; y < h; ++y)
        std::copy_n(&d[(static_cast<std::size_t>(y) + 2) * pw + 2], static_cast<std::size_t>(w),
                    &out[static_cast<std::size_t>(y) * w]);
    return out;
}

//! cv2.equalizeHist's table for a uint8 plane of n values with histogram `hist` (n > 0): lut[v]
//! for every byte v. A plane of one value maps to itself.
SHIFTNORM_FP_EXACT inline void equalize_lut(const int* hist, int n, std::uint8_t* lut) {
    int i = 0;
    while (!hist[i]) ++i;
    if (hist[i] == n) {
        for (int v = 0; v < 256; ++v) lut[v] = static_cast<std::uint8_t>(v);
        return;
    }
    const double scale = 255.0 / (n - hist[i]);
    std::fill_n(lut, 256, std::uint8_t{0});
    int sum = 0;
    for (++i; i < 256; ++i) {
        sum += hist[i];
        const double r = std::nearbyint(sum * scale);
        lut[i] = static_cast<std::uint8_t>(std::clamp(r, 0.0, 255.0));
    }
}

//! The histogram of n values in 0-255 (bytes, or bytes held in ints) into hist[256], in four
//! partial histograms so that runs of one value do not wait on the same counter.
template <class T>
inline void byte_histogram(const T* v, std::size_t n, int* hist) {
    int part[4][256] = {};
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) ++part[0][v[i]], ++part[1][v[i + 1]], ++part[2][v[i + 2]], ++part[3][v[i + 3]];
    for (; i < n; ++i) ++part[0][v[i]];
    for (int k = 0; k < 256; ++k) hist[k] = part[0][k] + part[1][k] + part[2][k] + part[3][k];
}

}  // namespace detail

namespace detail {
//! snow's blend of one row of w pixels: with x_k = float32(x / 255), gray = the float32 luma (c = 3)
//! or x_0, v = blend x_k + rest max(x_k, 1.5 gray + 0.5) in float32, out = unit_to_u8(v + s[x])
//! (s: both flake layers, float64). One body, a plain and an AVX-512 build.
SHIFTNORM_KERNEL_BODY void snow_row_body(const std::uint8_t* x, const double* s, float blend, float rest, int w, int c,
                                         std::uint8_t* d) {
    if (c == 3) {
        for (int i = 0; i < w; ++i) {
            const float r = static_cast<float>(byte_unit(x[3 * i])), g = static_cast<float>(byte_unit(x[3 * i + 1])),
                        b = static_cast<float>(byte_unit(x[3 * i + 2]));
            const float gray = 0.299f * r + 0.587f * g + 0.114f * b;
            const float hi = gray * 1.5f + 0.5f;
            d[3 * i] = unit_to_u8(static_cast<double>(blend * r + rest * (r < hi ? hi : r)) + s[i]);
            d[3 * i + 1] = unit_to_u8(static_cast<double>(blend * g + rest * (g < hi ? hi : g)) + s[i]);
            d[3 * i + 2] = unit_to_u8(static_cast<double>(blend * b + rest * (b < hi ? hi : b)) + s[i]);
        }
    } else {
        for (int i = 0; i < w; ++i) {
            const float r = static_cast<float>(byte_unit(x[i]));
            const float hi = r * 1.5f + 0.5f;
            d[i] = unit_to_u8(static_cast<double>(blend * r + rest * (r < hi ? hi : r)) + s[i]);
        }
    }
}
SHIFTNORM_FP_EXACT inline void snow_row_plain(const std::uint8_t* x, const double* s, float blend, float rest, int w,
                                              int c, std::uint8_t* d) {
    snow_row_body(x, s, blend, rest, w, c, d);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void snow_row_avx512(const std::uint8_t* x,
                                                                                   const double* s, float blend,
                                                                                   float rest, int w, int c,
                                                                                   std::uint8_t* d) {
    snow_row_body(x, s, blend, rest, w, c, d);
}
#endif
inline void snow_row(const std::uint8_t* x, const double* s, float blend, float rest, int w, int c, std::uint8_t* d) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return snow_row_avx512(x, s, blend, rest, w, c, d);
#endif
    snow_row_plain(x, s, blend, rest, w, c, d);
}
}  // namespace detail

//! Snow: a zoomed, thresholded normal field motion-blurred along a random angle in [-135, -45)
//! degrees (own kernel, no ImageMagick) and added twice (as is and rotated by 180 degrees) to a
//! brightened, greyed copy of the image. Draws H*W normals, then one uniform angle.
SHIFTNORM_FP_EXACT inline void snow(const_image_view src, image_view dst, int severity, generator& gen,
                 param_table table = param_table::cifar, filter_arithmetic arithmetic = filter_arithmetic::fast) {
    const snow_params p = snow_params_for(table, severity);
    detail::check_pair("snow", src, dst);
    const int H = src.height, W = src.width, C = src.channels;
    detail::scratch_vector<double> field(static_cast<std::size_t>(H) * W);
    gen.normals(field.data(), field.size(), p.loc, p.scale);
    const detail::scratch_vector<double> layer = detail::clipped_zoom<double>(field, H, W, 1, p.zoom);
    image flakes(H, W, 1);
    // np.clip(where(layer < threshold, 0, layer), 0, 1) * 255 truncated to a byte (NaN -> 0)
    for (std::size_t i = 0; i < layer.size(); ++i)
        flakes.data()[i] = detail::unit_to_u8(layer[i] < p.threshold ? 0.0 : layer[i]);
    const double angle = gen.uniform(-135.0, -45.0);
    const image blurred = detail::motion_blur_u8(flakes.view(), p.blur_radius, p.blur_sigma, angle, arithmetic);
    // the flakes as they are and rotated by 180 degrees, per row, then the blend pass
    std::vector<double> flake_row(static_cast<std::size_t>(W));
    const std::uint8_t* bl = blurred.data();
    const double* unit = detail::unit_values();  // b / 255.0 for every byte b
    for (int y = 0; y < H; ++y) {
        const std::uint8_t* a = bl + static_cast<std::size_t>(y) * W;
        const std::uint8_t* b = bl + static_cast<std::size_t>(H - 1 - y) * W;
        for (int x = 0; x < W; ++x) flake_row[x] = unit[a[x]] + unit[b[W - 1 - x]];
        const std::size_t at = static_cast<std::size_t>(y) * W * C;
        detail::snow_row(src.data + at, flake_row.data(), static_cast<float>(p.blend), static_cast<float>(1 - p.blend),
                         W, C, dst.data + at);
    }
}

namespace detail {
//! fog's pass over n values of a row: d = unit_to_u8((x / 255 + add) * mx / den), each operation
//! rounded as the reference's. One body, a plain and an AVX-512 build.
SHIFTNORM_KERNEL_BODY void fog_row_body(const std::uint8_t* x, const double* add, double mx, double den,
                                        std::uint8_t* d, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const double v = byte_unit(x[i]) + add[i];
        d[i] = unit_to_u8(v * mx / den);
    }
}
SHIFTNORM_FP_EXACT inline void fog_row_plain(const std::uint8_t* x, const double* add, double mx, double den,
                                             std::uint8_t* d, std::size_t n) {
    fog_row_body(x, add, mx, den, d, n);
}
#if defined(SHIFTNORM_CORRUPT_AVX512)
SHIFTNORM_FP_EXACT_TARGET(SHIFTNORM_AVX512_KERNEL_ISA) inline void fog_row_avx512(const std::uint8_t* x, const double* add, double mx,
                                                                double den, std::uint8_t* d, std::size_t n) {
    fog_row_body(x, add, mx, den, d, n);
}
#endif
inline void fog_row(const std::uint8_t* x, const double* add, double mx, double den, std::uint8_t* d, std::size_t n) {
#if defined(SHIFTNORM_CORRUPT_AVX512)
    if (avx512_kernels_available()) return fog_row_avx512(x, add, mx, den, d, n);
#endif
    fog_row_plain(x, add, mx, den, d, n);
}
}  // namespace detail

//! Fog: adds strength * plasma fractal (mapsize = next power of two >= max(H, W), cropped) to
//! every channel and rescales by max / (max + strength).
SHIFTNORM_FP_EXACT inline void fog(const_image_view src, image_view dst, int severity, generator& gen,
                param_table table = param_table::cifar) {
    const fog_params p = fog_params_for(table, severity);
    detail::check_pair("fog", src, dst);
    int n = 1;
    while (n < std::max(src.height, src.width)) n *= 2;
    if (n < 2) n = 2;
    const auto plasma = detail::plasma_fractal(n, p.decay, gen);
    const int H = src.height, W = src.width, C = src.channels;
    const std::size_t row = static_cast<std::size_t>(W) * C;
    // max(x / 255) = max(x) / 255 (division is monotonic and correctly rounded)
    const double mx = static_cast<double>(*std::max_element(src.data, src.data + row * H)) / 255.0;
    const double den = mx + p.strength;
    // one pass per row: x / 255 + strength * plasma, times mx / (mx + strength), clipped to
    // [0, 1] and truncated to a byte; each operation rounded as the reference's (vectorizes)
    std::vector<double> add(row);
    for (int y = 0; y < H; ++y) {
        const double* pl = &plasma[static_cast<std::size_t>(y) * n];
        if (C == 3)
            for (int x = 0; x < W; ++x) {
                const double a = p.strength * pl[x];
                add[3 * static_cast<std::size_t>(x)] = a, add[3 * static_cast<std::size_t>(x) + 1] = a;
                add[3 * static_cast<std::size_t>(x) + 2] = a;
            }
        else
            for (int x = 0; x < W; ++x) add[static_cast<std::size_t>(x)] = p.strength * pl[x];
        detail::fog_row(src.data + static_cast<std::size_t>(y) * row, add.data(), mx, den,
                        dst.data + static_cast<std::size_t>(y) * row, row);
    }
}

namespace detail {
//! spatter's liquid bytes, held in ints (the row kernels that read them then have no byte lanes:
//! canny_nms_row): d = unit_to_u8(v < threshold ? 0 : v), np.uint8(liquid * 255) of the
//! thresholded field (values >= 0; NaN -> 0).
SHIFTNORM_KERNEL_BODY void spatter_liquid_u8_body(const double* v, double threshold, int* d, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        double t = v[i] < threshold ? 0.0 : v[i];
        t = t > 0.0 ? t : 0.0;
        t = t < 1.0 ? t : 1.0;
        d[i] = static_cast<int>(t * 255.0);  // unit_to_u8's value
    }
}
SHIFTNORM_KERNEL_TWINS(spatter_liquid_u8, (const double* v, double threshold, int* d, std::size_t n),
                       (v, threshold, d, n))

//! cv2.blur(dist, (3, 3)).astype(np.uint8) for one row of w values: rows r0-r2 of the reflect-101
//! padded distances (one border column on each side), the nine values summed in row order from
//! 0.0, divided by 9, truncated (the distances are in [0, 20]; held in ints).
SHIFTNORM_KERNEL_BODY void spatter_box3_u8_body(const double* r0, const double* r1, const double* r2, int w, int* o) {
    for (int x = 0; x < w; ++x) {
        double s = 0.0;
        s += r0[x], s += r0[x + 1], s += r0[x + 2];
        s += r1[x], s += r1[x + 1], s += r1[x + 2];
        s += r2[x], s += r2[x + 1], s += r2[x + 2];
        o[x] = static_cast<int>(s / 9.0);
    }
}
SHIFTNORM_KERNEL_TWINS(spatter_box3_u8, (const double* r0, const double* r1, const double* r2, int w, int* o),
                       (r0, r1, r2, w, o))

//! cv2.filter2D(CV_8U) of one row with the emboss kernel {{-2, -1, 0}, {-1, 1, 1}, {0, 1, 2}},
//! rounded and saturated: u, c, d the reflect-101 padded rows above, at and below (bytes held in
//! ints).
SHIFTNORM_KERNEL_BODY void spatter_emboss_row_body(const int* u, const int* c, const int* d, int w, int* o) {
    for (int x = 0; x < w; ++x) {
        const int v = -2 * u[x] - u[x + 1] - c[x] + c[x + 1] + c[x + 2] + d[x + 1] + 2 * d[x + 2];
        o[x] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
}
SHIFTNORM_KERNEL_TWINS(spatter_emboss_row, (const int* u, const int* c, const int* d, int w, int* o),
                       (u, c, d, w, o))

//! m = float32(liquid * float32(cv2.blur(emboss, (3, 3)))) for one row: r0-r2 the reflect-101
//! padded emboss rows (integers 0-255, so their sum is exact in any order and s / 9 is the
//! reference's float64 mean), lq the liquid bytes.
SHIFTNORM_KERNEL_BODY void spatter_m_row_body(const int* r0, const int* r1, const int* r2, const int* lq, int w,
                                              float* m) {
    for (int x = 0; x < w; ++x) {
        const int s = r0[x] + r0[x + 1] + r0[x + 2] + r1[x] + r1[x + 1] + r1[x + 2] + r2[x] + r2[x + 1] + r2[x + 2];
        m[x] = static_cast<float>(lq[x]) * static_cast<float>(static_cast<double>(s) / 9.0);
    }
}
SHIFTNORM_KERNEL_TWINS(spatter_m_row,
                       (const int* r0, const int* r1, const int* r2, const int* lq, int w, float* m),
                       (r0, r1, r2, lq, w, m))

//! The water's blend over n pixels of c channels: mi = m / mmax * intensity, then
//! unit_to_u8(x / 255 + mi * colour[k]) per channel (colour: the three water colours for c = 3,
//! the grey water value for every channel otherwise), numpy's order of operations.
SHIFTNORM_KERNEL_BODY void spatter_water_body(const float* m, const std::uint8_t* x, double mmax, double intensity,
                                              const double* colour, int c, std::uint8_t* d, std::size_t n) {
    if (c == 3) {
        const double c0 = colour[0], c1 = colour[1], c2 = colour[2];
        for (std::size_t i = 0; i < n; ++i) {
            const double mi = static_cast<double>(m[i]) / mmax * intensity;
            d[3 * i] = unit_to_u8(byte_unit(x[3 * i]) + mi * c0);
            d[3 * i + 1] = unit_to_u8(byte_unit(x[3 * i + 1]) + mi * c1);
            d[3 * i + 2] = unit_to_u8(byte_unit(x[3 * i + 2]) + mi * c2);
        }
    } else {
        const double g = colour[0];
        for (std::size_t i = 0; i < n; ++i) {
            const double v = static_cast<double>(m[i]) / mmax * intensity * g;
            for (int k = 0; k < c; ++k)
                d[i * c + k] = unit_to_u8(byte_unit(x[i * c + k]) + v);
        }
    }
}
SHIFTNORM_KERNEL_TWINS(spatter_water,
                       (const float* m, const std::uint8_t* x, double mmax, double intensity, const double* colour,
                        int c, std::uint8_t* d, std::size_t n),
                       (m, x, mmax, intensity, colour, c, d, n))
}  // namespace detail

//! Spatter: a blurred, thresholded normal "liquid" field; severities with mud = 0 add
//! pale-turquoise water with embossed edges (Canny, distance transform, histogram
//! equalisation as in the reference), mud = 1 paints brown mud where the blurred mask >= 0.8.
SHIFTNORM_FP_EXACT inline void spatter(const_image_view src, image_view dst, int severity, generator& gen,
                    param_table table = param_table::cifar) {
    const spatter_params p = spatter_params_for(table, severity);
    detail::check_pair("spatter", src, dst);
    const int H = src.height, W = src.width, C = src.channels;
    const std::size_t N = static_cast<std::size_t>(H) * W;
    detail::fimage liquid(H, W, 1);
    gen.normals(liquid.px.data(), liquid.px.size(), p.loc, p.scale);
    detail::gaussian_filter(liquid, p.sigma);
    if (p.mud == 0) {
        // np.uint8(liquid * 255) of the thresholded field
        detail::scratch_buffer<int> lq(N);
        detail::spatter_liquid_u8(liquid.px.data(), p.threshold, lq.data(), N);
        // 255 - Canny(lq, 50, 150), distanceTransform from its zeros (the edges), straight from
        // the Canny state plane
        const detail::scratch_vector<int> state = detail::canny_state(lq.data(), H, W, 50, 150);
        const std::size_t sw = static_cast<std::size_t>(W) + 2, dw = static_cast<std::size_t>(W) + 4;
        detail::scratch_buffer<double> plane = detail::dt_plane(
            H, W, [&](int y, double* row) { detail::dt_seed_row(&state[static_cast<std::size_t>(y + 1) * sw + 1], 2, W, row); });
        detail::chamfer_distance(plane.data(), H, W);
        // threshold(dist, 20, 20, THRESH_TRUNC), blur 3x3 (reflect-101), astype(uint8)
        detail::scratch_buffer<double> dist(N);
        for (int y = 0; y < H; ++y) {
            const double* r = &plane[static_cast<std::size_t>(y + 2) * dw + 2];
            double* o = &dist[static_cast<std::size_t>(y) * W];
            for (int x = 0; x < W; ++x) o[x] = std::min(r[x], 20.0);
        }
        const std::size_t pw = static_cast<std::size_t>(W) + 2;
        const auto dpad = detail::padded_plane(dist.data(), H, W, 1, detail::border::mirror);
        detail::scratch_buffer<int> du(N);
        for (int y = 0; y < H; ++y) {
            const double* r0 = &dpad[static_cast<std::size_t>(y) * pw];
            detail::spatter_box3_u8(r0, r0 + pw, r0 + 2 * pw, W, &du[static_cast<std::size_t>(y) * W]);
        }
        // equalizeHist
        int hist[256];
        detail::byte_histogram(du.data(), N, hist);
        std::uint8_t lut[256];
        detail::equalize_lut(hist, static_cast<int>(N), lut);
        for (auto& v : du) v = lut[v];
        // filter2D(CV_8U) with the emboss kernel, reflect-101; blur 3x3; times the liquid bytes
        const auto dp = detail::padded_plane(du.data(), H, W, 1, detail::border::mirror);
        detail::scratch_buffer<int> emb(N);
        for (int y = 0; y < H; ++y) {
            const int* u = &dp[static_cast<std::size_t>(y) * pw];
            detail::spatter_emboss_row(u, u + pw, u + 2 * pw, W, &emb[static_cast<std::size_t>(y) * W]);
        }
        const auto ep = detail::padded_plane(emb.data(), H, W, 1, detail::border::mirror);
        detail::scratch_buffer<float> m(N);
        for (int y = 0; y < H; ++y) {
            const int* r0 = &ep[static_cast<std::size_t>(y) * pw];
            detail::spatter_m_row(r0, r0 + pw, r0 + 2 * pw, &lq[static_cast<std::size_t>(y) * W], W,
                                  &m[static_cast<std::size_t>(y) * W]);
        }
        // the maximum (exact in any order; the values are >= +0): four running maxima
        float mx4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        std::size_t i4 = 0;
        for (; i4 + 4 <= N; i4 += 4)
            for (int k = 0; k < 4; ++k) mx4[k] = std::max(mx4[k], m[i4 + k]);
        for (; i4 < N; ++i4) mx4[0] = std::max(mx4[0], m[i4]);
        const double mmax = std::max(std::max(mx4[0], mx4[1]), std::max(mx4[2], mx4[3]));
        static constexpr double water[3] = {175 / 255.0, 238 / 255.0, 238 / 255.0};
        const double gray_water[1] = {0.299 * water[0] + 0.587 * water[1] + 0.114 * water[2]};
        if (mmax > 0)
            detail::spatter_water(m.data(), src.data, mmax, p.intensity, C == 3 ? water : gray_water, C, dst.data, N);
        else  // m / mmax * intensity * colour of a plane of zeros: nothing added
            for (std::size_t i = 0; i < N * C; ++i) dst.data[i] = detail::unit_to_u8(detail::byte_unit(src.data[i]));
    } else {
        for (double& v : liquid.px) v = v < p.threshold ? 0.0 : v;
        detail::fimage mask(H, W, 1);
        for (std::size_t i = 0; i < N; ++i) mask.px[i] = liquid.px[i] > p.threshold ? 1.0 : 0.0;
        detail::gaussian_filter(mask, p.intensity);
        static constexpr double mud[3] = {63 / 255.0, 42 / 255.0, 20 / 255.0};
        const double gray_mud = 0.299 * mud[0] + 0.587 * mud[1] + 0.114 * mud[2];
        detail::round_float32(mask.px.data(), N, 1.0);  // the reference's float32 mask
        for (std::size_t i = 0; i < N; ++i) {
            double mi = mask.px[i];
            if (mi < 0.8) mi = 0.0;
            for (int k = 0; k < C; ++k) {
                const double v = detail::byte_unit(src.data[i * C + k]);
                dst.data[i * C + k] = detail::unit_to_u8(v * (1 - mi) + (C == 3 ? mud[k] : gray_mud) * mi);
            }
        }
    }
}

}  // namespace shiftnorm::corrupt

SHIFTNORM_FP_EXACT_END
