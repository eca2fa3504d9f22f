// SPDX-License-Identifier: MIT
// defocus_blur's kernel (the reference's blurred disk), kept per thread, and its fast float32 path
// through the disk's row runs: integer box sums, then the small alias blur.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "shiftnorm/corrupt/fast_filters.hpp"
#include "shiftnorm/corrupt/filters.hpp"
#include "shiftnorm/corrupt/image.hpp"
#include "shiftnorm/corrupt/kernel_attributes.hpp"
#include "shiftnorm/corrupt/scratch.hpp"

SHIFTNORM_FP_EXACT_BEGIN

namespace shiftnorm::corrupt::detail {

//! The reference's aliased disk: 1 where X^2 + Y^2 <= r^2 on the grid L = -8..8 (or -r..r when
//! r > 8; side n), else 0; row-major.
struct aliased_disk {
    int n = 0;
    std::vector<float> d;
    explicit aliased_disk(double radius) {
        const double lo = radius <= 8 ? -8.0 : -radius;  // np.arange(-r, r + 1)
        n = radius <= 8 ? 17 : static_cast<int>(std::ceil((radius + 1 - lo)));
        d.resize(static_cast<std::size_t>(n) * n);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) {
                const double Y = lo + i, X = lo + j;
                d[static_cast<std::size_t>(i) * n + j] = (X * X + Y * Y) <= radius * radius ? 1.0f : 0.0f;
            }
    }
};

//! The side of the alias blur's kernel: 3, or 5 when r > 8.
inline int disk_blur_ksize(double radius) { return radius <= 8 ? 3 : 5; }

//! The reference's disk(radius, alias_blur): the aliased disk, normalised, then cv2.GaussianBlur
//! with a ksize x ksize kernel of sigma alias_blur and BORDER_REFLECT_101; float32 like the
//! reference. Returns the (2R+1)^2 kernel row-major and R through `half_width`.
SHIFTNORM_FP_EXACT inline std::vector<double> disk_kernel(double radius, double alias_blur, int& half_width) {
    const aliased_disk disk_grid(radius);
    const int n = disk_grid.n, ksize = disk_blur_ksize(radius);
    std::vector<float> disk = disk_grid.d;
    float sum = 0.0f;
    for (const float v : disk) sum += v;
    for (float& v : disk) v /= sum;
    // Separable GaussianBlur in float32 (OpenCV: rows then columns), reflect-101 border.
    const auto g = cv_gaussian_kernel(ksize, alias_blur);
    std::vector<float> gk(g.begin(), g.end());
    const int r = ksize / 2;
    std::vector<float> tmp(disk.size()), out(disk.size());
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            float s = 0.0f;
            for (int t = -r; t <= r; ++t) s += gk[t + r] * disk[i * n + border_index(j + t, n, border::mirror)];
            tmp[i * n + j] = s;
        }
    for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
            float s = 0.0f;
            for (int t = -r; t <= r; ++t) s += gk[t + r] * tmp[border_index(i + t, n, border::mirror) * n + j];
            out[i * n + j] = s;
        }
    half_width = (n - 1) / 2;
    return std::vector<double>(out.begin(), out.end());
}

//! What defocus_blur needs of one (radius, alias_blur): the reference's kernel and, where it
//! applies, the fast path's decomposition. The reference kernel k is, up to its float32
//! rounding, kappa = G * (D / s): the aliased disk D (s ones) correlated with the separable alias
//! blur G (g = the reference's float32 taps). Where D's ones, widened by G's half-width, stay
//! inside the grid (no reflection in the kernel's own blur), correlating an image with kappa is
//! box sums of D's row runs (exact integers), then G, then 1/s. `theta_u` measures
//! max |k / kappa - 1| over the taps in units of u = 2^-24 (a float32 rounding of a few terms:
//! 1.6 for the ImageNet table's severity 3); a kernel whose zeros differ from kappa's, whose disk
//! rows are not centred runs, or that reflects is left to the other paths (disk_ok false).
struct defocus_plan {
    std::vector<double> kernel;  // the reference's (2R+1)^2 kernel, row-major
    int R = 0;
    bool disk_ok = false;
    int rd = 0;                 // the disk's half extent
    int rg = 0;                 // G's half-width
    std::vector<int> run_w;     // per disk row dy = -rd..rd: half-width of its run of ones, -1 if none
    int wmax = 0;               // the widest run's half-width
    std::vector<float> g;       // G's taps from the centre: g[0], g[1] (= g[-1]), ...
    float inv_s = 0.0f;         // float(1 / s)
    double theta_u = 0.0;
    double weight_sum = 0.0;    // sum of the reference kernel's weights
    std::vector<int> tap_dy, tap_dx;  // the kernel's non-zero taps in row-major order (the
    std::vector<double> tap_w;        // reference's), as offsets from the centre, and weights

    defocus_plan(double radius, double alias_blur) {
        kernel = disk_kernel(radius, alias_blur, R);
        for (int i = 0; i <= 2 * R; ++i)
            for (int j = 0; j <= 2 * R; ++j)
                if (const double v = kernel[static_cast<std::size_t>(i) * (2 * R + 1) + j]; v != 0.0)
                    tap_dy.push_back(i - R), tap_dx.push_back(j - R), tap_w.push_back(v), weight_sum += v;
        const aliased_disk disk(radius);
        const int n = disk.n, c = (n - 1) / 2, ksize = disk_blur_ksize(radius);
        if (n % 2 == 0 || n != 2 * R + 1) return;
        rg = ksize / 2;
        const std::vector<double> g64 = cv_gaussian_kernel(ksize, alias_blur);
        for (int t = 0; t <= rg; ++t) g.push_back(static_cast<float>(g64[static_cast<std::size_t>(rg + t)]));
        for (int t = 1; t <= rg; ++t)  // G symmetric in float32 (its taps are)
            if (static_cast<float>(g64[static_cast<std::size_t>(rg - t)]) != g[static_cast<std::size_t>(t)]) return;
        // D's rows: centred runs of ones
        int s = 0, top = n, bottom = -1;
        std::vector<int> w(static_cast<std::size_t>(n), -1);
        for (int i = 0; i < n; ++i) {
            int j0 = n, j1 = -1, ones = 0;
            for (int j = 0; j < n; ++j)
                if (disk.d[static_cast<std::size_t>(i) * n + j] != 0.0f) j0 = std::min(j0, j), j1 = std::max(j1, j), ++ones;
            if (ones == 0) continue;
            if (ones != j1 - j0 + 1 || c - j0 != j1 - c) return;
            w[static_cast<std::size_t>(i)] = j1 - c, s += ones, top = std::min(top, i), bottom = std::max(bottom, i);
        }
        if (s == 0) return;
        rd = std::max(c - top, bottom - c);
        for (int i = 0; i < n; ++i) wmax = std::max(wmax, w[static_cast<std::size_t>(i)]);
        rd = std::max(rd, wmax);
        if (rd + rg > c) return;  // G widens the disk past the grid: the reference's blur reflects there
        run_w.assign(w.begin() + (c - rd), w.begin() + (c + rd + 1));
        inv_s = static_cast<float>(1.0 / s);
        // kappa against the reference kernel. Weights whose float32 computation underflowed in the
        // reference (an alias blur of sigma 0.1 makes taps of ~1e-45) differ from kappa by far more
        // than a rounding, relatively, but by nothing in the sum: up to `tiny` in all, times 255,
        // which for any value v >= 1/2 (values below are never near an integer but 0, and truncate
        // to 0 either way) is within 2 * 255 * tiny * v, one u when that is below u.
        double tiny = 0.0;
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < n; ++j) {
                double kappa = 0.0;
                for (int u = -rg; u <= rg; ++u)
                    for (int t = -rg; t <= rg; ++t) {
                        const int ii = i + u, jj = j + t;
                        if (ii < 0 || ii >= n || jj < 0 || jj >= n) continue;
                        kappa += static_cast<double>(g[static_cast<std::size_t>(std::abs(u))]) *
                                 static_cast<double>(g[static_cast<std::size_t>(std::abs(t))]) *
                                 disk.d[static_cast<std::size_t>(ii) * n + jj];
                    }
                kappa /= s;
                const double k = kernel[static_cast<std::size_t>(i) * n + j];
                if ((k == 0.0) != (kappa == 0.0) || k < 0.0) return;
                if (k == 0.0) continue;
                if (const double rel = std::fabs(k / kappa - 1.0) * std::ldexp(1.0, 24); rel <= 64.0 || kappa > 1e-30)
                    theta_u = std::max(theta_u, rel);
                else
                    tiny += std::fabs(k - kappa);
            }
        if (tiny > 0.0) {
            if (2.0 * 255.0 * tiny > std::ldexp(1.0, -24)) return;
            theta_u += 1.0;
        }
        disk_ok = true;
    }
};

//! defocus_plan kept per thread for the last 8 (radius, alias_blur) pairs: a batch, or a data
//! set's severity, builds its plan once (the kernel alone was 7% of a 32x32 defocus_blur image).
//! The reference stays valid until this thread's next call.
inline const defocus_plan& defocus_plan_cached(double radius, double alias_blur) {
    struct entry {
        double radius, alias_blur;
        defocus_plan plan;
    };
    thread_local std::vector<entry> cache;
    for (const entry& e : cache)
        if (e.radius == radius && e.alias_blur == alias_blur) return e.plan;
    if (cache.size() >= 8) cache.erase(cache.begin());
    cache.push_back({radius, alias_blur, defocus_plan(radius, alias_blur)});
    return cache.back().plan;
}

//! One padded row's run sums: h[w L + q] = x[q - w C] + ... + x[q + w C] (the C-interleaved
//! channel's 2w + 1 pixels around q) for w = 0..wmax and q in [0, L); x (int32: the loops stay
//! 16 lanes wide) has wmax C values of margin on both sides. Integers: exact.
SHIFTNORM_KERNEL_BODY void disk_run_sums_body(const std::int32_t* x, std::size_t L, int C, int wmax, std::int32_t* h) {
    for (std::size_t q = 0; q < L; ++q) h[q] = x[q];
    for (int w = 1; w <= wmax; ++w) {
        const std::int32_t* prev = h + static_cast<std::size_t>(w - 1) * L;
        std::int32_t* cur = h + static_cast<std::size_t>(w) * L;
        const std::int32_t* lo = x - static_cast<std::ptrdiff_t>(w) * C;
        const std::int32_t* hi = x + static_cast<std::ptrdiff_t>(w) * C;
        for (std::size_t q = 0; q < L; ++q) cur[q] = prev[q] + (lo[q] + hi[q]);
    }
}

//! out[q] = u[q] for q in [0, n): bytes widened to int32.
SHIFTNORM_KERNEL_BODY void disk_widen_body(const std::uint8_t* u, std::size_t n, std::int32_t* out) {
    for (std::size_t q = 0; q < n; ++q) out[q] = u[q];
}

//! b[q] = rows[0][q] + rows[1][q] + ... (the box sum of the disk's rows; integers: exact), four
//! rows per pass over b.
SHIFTNORM_KERNEL_BODY void disk_box_body(const std::int32_t* const* rows, int count, std::size_t L, std::int32_t* b) {
    int k = 0;
    if (count >= 2) {
        const std::int32_t *r0 = rows[0], *r1 = rows[1];
        for (std::size_t q = 0; q < L; ++q) b[q] = r0[q] + r1[q];
        k = 2;
    } else {
        const std::int32_t* r0 = rows[0];
        for (std::size_t q = 0; q < L; ++q) b[q] = r0[q];
        k = 1;
    }
    for (; k + 4 <= count; k += 4) {
        const std::int32_t *r0 = rows[k], *r1 = rows[k + 1], *r2 = rows[k + 2], *r3 = rows[k + 3];
        for (std::size_t q = 0; q < L; ++q) b[q] += (r0[q] + r1[q]) + (r2[q] + r3[q]);
    }
    for (; k < count; ++k) {
        const std::int32_t* r0 = rows[k];
        for (std::size_t q = 0; q < L; ++q) b[q] += r0[q];
    }
}

//! G along the row: h[x] = g[0] b[x] + g[1] (b[x - C] + b[x + C]) + ... (the integer pair sums
//! exact, each product rounded, then added in that order); b has rg C values of margin.
SHIFTNORM_KERNEL_BODY void disk_blur_row_body(const std::int32_t* b, std::size_t n, int C, const float* g, int rg, float* h) {
    for (std::size_t x = 0; x < n; ++x) h[x] = g[0] * static_cast<float>(b[x]);
    for (int t = 1; t <= rg; ++t) {
        const std::int32_t* lo = b - static_cast<std::ptrdiff_t>(t) * C;
        const std::int32_t* hi = b + static_cast<std::ptrdiff_t>(t) * C;
        const float gt = g[t];
        for (std::size_t x = 0; x < n; ++x) {
            const float p = gt * static_cast<float>(lo[x] + hi[x]);
            h[x] = h[x] + p;
        }
    }
}

//! G down the columns, then 1/s: out[x] = (g[0] h_0[x] + g[1] (h_-1[x] + h_1[x]) + ...) * inv_s,
//! rows[t] = h_{t - rg}.
SHIFTNORM_KERNEL_BODY void disk_blur_col_body(const float* const* rows, std::size_t n, const float* g, int rg, float inv_s,
                                              float* out) {
    const float* mid = rows[rg];
    for (std::size_t x = 0; x < n; ++x) out[x] = g[0] * mid[x];
    for (int t = 1; t <= rg; ++t) {
        const float* lo = rows[rg - t];
        const float* hi = rows[rg + t];
        const float gt = g[t];
        for (std::size_t x = 0; x < n; ++x) {
            const float p = gt * (lo[x] + hi[x]);
            out[x] = out[x] + p;
        }
    }
    for (std::size_t x = 0; x < n; ++x) out[x] = out[x] * inv_s;
}

SHIFTNORM_KERNEL_TWINS(disk_run_sums, (const std::int32_t* x, std::size_t L, int C, int wmax, std::int32_t* h), (x, L, C, wmax, h))
SHIFTNORM_KERNEL_TWINS(disk_widen, (const std::uint8_t* u, std::size_t n, std::int32_t* out), (u, n, out))
SHIFTNORM_KERNEL_TWINS(disk_box, (const std::int32_t* const* rows, int count, std::size_t L, std::int32_t* b), (rows, count, L, b))
SHIFTNORM_KERNEL_TWINS(disk_blur_row, (const std::int32_t* b, std::size_t n, int C, const float* g, int rg, float* h),
                       (b, n, C, g, rg, h))
SHIFTNORM_KERNEL_TWINS(disk_blur_col, (const float* const* rows, std::size_t n, const float* g, int rg, float inv_s, float* out),
                       (rows, n, g, rg, inv_s, out))

//! defocus_blur's filter in float32 through the disk (defocus_plan): per image row, the box sums
//! of the disk's centred runs over the reflect-101 padded image (run sums of every padded row
//! for each half-width, computed once per row and kept for the 2 rd + 1 output rows that read
//! them), then G along the row and down the columns, then 1 / s: about (2 rd + 1) + 2 (2 rg + 1)
//! operations per value against the (rd + rg + 1)^2 products of the folded kernel. The values
//! within the band of an integer are computed again as the reference computes them (float64,
//! the kernel's taps in row-major order from 0.0, each product rounded before its addition:
//! filters.hpp filter2d).
//! The error bound (relative: fast_band_for): the box sums are exact; G along the row rounds
//! each product and its rg additions (1 + rg per term), down the columns also each pair sum
//! (2 + rg, carrying the row's), the scaling rounds 1 / s and the product (2): 5 + 2 rg in all
//! against kappa, plus theta_u between kappa and the reference's kernel, plus 1 for kappa's own
//! float64 evaluation. Returns false, having written nothing, when the plan has no disk path or
//! the band would pass max_fast_band.
SHIFTNORM_FP_EXACT inline bool fast_defocus_disk_u8(const_image_view src, image_view dst, const defocus_plan& plan) {
    if (!plan.disk_ok) return false;
    const int H = src.height, W = src.width, C = src.channels, rd = plan.rd, rg = plan.rg, P = rd + rg;
    const float band = fast_band_for(5.0 + 2.0 * rg + std::ceil(plan.theta_u) + 1.0);
    if (!fast_band_usable(band, 255.0 * plan.weight_sum)) return false;
    const std::size_t n = static_cast<std::size_t>(W) * C, pw = (static_cast<std::size_t>(W) + 2 * P) * C;
    const std::size_t L = (static_cast<std::size_t>(W) + 2 * rg) * C;  // box sums for columns -rg .. W - 1 + rg
    const std::size_t rows = static_cast<std::size_t>(H) + 2 * P;
    // The kernels run over whole 16-value vectors (no scalar tails on 32-pixel rows): Lp and np
    // values per row, the ones past L and n computed from the next row's bytes or zeros, unused.
    const std::size_t Lp = (L + 15) / 16 * 16, np = (n + 15) / 16 * 16;
    // the image padded by P with reflect-101 (bytes: the run sums and the float64 values read it)
    scratch_buffer<std::uint8_t> pad(pw * rows + (Lp - L) + 16);
    std::fill(pad.begin() + static_cast<std::ptrdiff_t>(pw * rows), pad.end(), std::uint8_t(0));
    std::vector<std::size_t> left_src(static_cast<std::size_t>(P) + 1), right_src(left_src.size());
    for (int e = 1; e <= P; ++e)
        left_src[static_cast<std::size_t>(e)] = static_cast<std::size_t>(border_index(-e, W, border::mirror)) * C,
        right_src[static_cast<std::size_t>(e)] = static_cast<std::size_t>(border_index(W - 1 + e, W, border::mirror)) * C;
    for (std::size_t y = 0; y < rows; ++y) {
        const std::uint8_t* s = src.data + static_cast<std::size_t>(border_index(static_cast<int>(y) - P, H, border::mirror)) * n;
        std::uint8_t* p = &pad[y * pw];
        std::copy(s, s + n, p + static_cast<std::size_t>(P) * C);
        for (int e = 1; e <= P; ++e)
            for (int c = 0; c < C; ++c)
                p[static_cast<std::size_t>(P - e) * C + c] = s[left_src[static_cast<std::size_t>(e)] + c],
                p[static_cast<std::size_t>(P + W - 1 + e) * C + c] = s[right_src[static_cast<std::size_t>(e)] + c];
    }
    // rings: the run sums of 2 rd + 1 padded rows, the row-blurred box sums of 2 rg + 1 rows
    const std::size_t nd = 2 * static_cast<std::size_t>(rd) + 1, ng = 2 * static_cast<std::size_t>(rg) + 1;
    const std::size_t table = (static_cast<std::size_t>(plan.wmax) + 1) * Lp;
    scratch_buffer<std::int32_t> sums(nd * table);
    scratch_vector<std::int32_t> box(Lp + np - n + 2 * static_cast<std::size_t>(rg) * C);  // zeros past Lp
    scratch_buffer<float> blurred(ng * np), out(np);
    const std::size_t margin = static_cast<std::size_t>(plan.wmax) * C, wide_len = (Lp + 2 * margin + 15) / 16 * 16;
    scratch_buffer<std::int32_t> wide(wide_len);  // a padded row as int32, columns -rg - wmax ..
    std::vector<const std::int32_t*> box_rows(nd);
    std::vector<const float*> col_rows(ng);
    // the reference arithmetic for the undecided values (as fast_defocus_u8): the taps' offsets
    // into the padded image, when a row first needs them
    const std::vector<double>& tap_w = plan.tap_w;
    std::vector<std::size_t> tap_off;
    const auto list_taps = [&] {
        if (!tap_off.empty()) return;
        for (std::size_t k = 0; k < tap_w.size(); ++k)
            tap_off.push_back(static_cast<std::size_t>(plan.tap_dy[k] + P) * pw + static_cast<std::size_t>(plan.tap_dx[k] + P) * C);
    };
    const double* unit = unit_values();
    std::vector<std::uint32_t> near(n);
    std::vector<double> acc(n);
    scratch_vector<double> pad64;  // the padded image in float64 units, made when a row needs it
    std::vector<const double*> src64;
    std::size_t next_table = 0;  // the next padded row whose run sums are due
    for (int r = -rg; r < H + rg; ++r) {
        // box sums of image row r: padded rows r + rg .. r + rg + 2 rd (row dy of the disk at r + rg + rd + dy)
        const std::size_t first = static_cast<std::size_t>(r + rg);
        for (; next_table <= first + 2 * static_cast<std::size_t>(rd); ++next_table) {
            disk_widen(&pad[next_table * pw + static_cast<std::size_t>(rd) * C - margin], wide_len, wide.data());
            disk_run_sums(wide.data() + margin, Lp, C, plan.wmax, &sums[(next_table % nd) * table]);
        }
        int count = 0;
        std::size_t slot = first % nd;  // padded row first + dy's table: slot dy, from first's, cyclic
        for (std::size_t dy = 0; dy < nd; ++dy, slot = slot + 1 == nd ? 0 : slot + 1)
            if (const int w = plan.run_w[dy]; w >= 0)
                box_rows[static_cast<std::size_t>(count++)] = &sums[slot * table] + static_cast<std::size_t>(w) * Lp;
        disk_box(box_rows.data(), count, Lp, box.data());
        float* hrow = &blurred[static_cast<std::size_t>(r + rg) % ng * np];
        disk_blur_row(box.data() + static_cast<std::size_t>(rg) * C, np, C, plan.g.data(), rg, hrow);
        const int y = r - rg;  // the output row whose column blur this row completes
        if (y < 0) continue;
        for (std::size_t t = 0; t < ng; ++t) col_rows[t] = &blurred[(static_cast<std::size_t>(y) + t) % ng * np];
        disk_blur_col(col_rows.data(), np, plan.g.data(), rg, plan.inv_s, out.data());
        const std::uint8_t* row0 = &pad[static_cast<std::size_t>(y) * pw];  // tap (0, 0) of output (y, 0), as tap_off
        const auto whole_row = [&](double* acc_row) {  // filter2d's tap sums over row y
            list_taps();
            if (pad64.empty()) {
                pad64.resize(pw * rows);
                for (std::size_t i = 0; i < pad64.size(); ++i) pad64[i] = unit[pad[i]];
                src64.resize(tap_w.size());
            }
            for (std::size_t k = 0; k < tap_w.size(); ++k) src64[k] = &pad64[static_cast<std::size_t>(y) * pw + tap_off[k]];
            tap_sum_row(src64.data(), tap_w.data(), static_cast<int>(tap_w.size()), acc_row, static_cast<int>(n));
        };
        const auto values = [&](const std::uint32_t* idx, std::size_t m, double* acc_out) {
            list_taps();
            exact_tap_sums(
                m, tap_w.size(), [&](std::size_t k) { return tap_w[k]; },
                [&](std::size_t p, std::size_t k) { return unit[row0[idx[p] + tap_off[k]]]; }, acc_out);
        };
        decide_row(out.data(), n, band, dst.data + static_cast<std::size_t>(y) * n, near.data(), acc.data(), whole_row,
                   values, unit_byte);
    }
    return true;
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
