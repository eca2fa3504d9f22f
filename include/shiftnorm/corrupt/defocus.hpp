// SPDX-License-Identifier: MIT
// defocus_blur's kernel (the reference's blurred disk) and its plan, kept per thread, and its two
// fast float32 paths: the folded kernel, and the disk's row runs (integer box sums, then the
// small alias blur).
#pragma once

#include <algorithm>
#include <type_traits>
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
//! rows are not centred runs, or that reflects is left to the fold (disk_ok false). The fold
//! needs non-negative weights whose zeros are symmetric (fold_ok).
struct defocus_plan {
    std::vector<double> kernel;  // the reference's (2R+1)^2 kernel, row-major
    int R = 0;
    double weight_sum = 0.0;          // sum of the kernel's weights
    std::vector<int> tap_dy, tap_dx;  // the kernel's non-zero taps in row-major order (the
    std::vector<double> tap_w;        // reference's), as offsets from the centre, and weights
    int re = 0;                       // the half-width of the non-zero taps
    // the folded kernel (fast_defocus_fold_u8)
    bool fold_ok = false;             // non-negative weights, zeros symmetric in both axes
    std::size_t folded_terms = 0;     // the quadrant's non-zero weights
    double asymmetry_u = 0.0;         // max |w(d, e) / w(+-d, +-e) - 1| in units of u = 2^-24
    // the disk's runs (fast_defocus_disk_u8)
    bool disk_ok = false;
    int rd = 0;                 // the disk's half extent
    int rg = 0;                 // G's half-width
    std::vector<int> run_w;     // per disk row dy = -rd..rd: half-width of its run of ones, -1 if none
    int wmax = 0;               // the widest run's half-width
    std::vector<float> g;       // G's taps from the centre: g[0], g[1] (= g[-1]), ...
    float inv_s = 0.0f;         // float(1 / s)
    double theta_u = 0.0;

    defocus_plan(double radius, double alias_blur) {
        kernel = disk_kernel(radius, alias_blur, R);
        const int K = 2 * R + 1;
        bool non_negative = true, zeros_symmetric = true;
        for (int i = 0; i < K; ++i)
            for (int j = 0; j < K; ++j) {
                const double v = kernel[static_cast<std::size_t>(i) * K + j];
                const double q = kernel[static_cast<std::size_t>(R + std::abs(i - R)) * K + (R + std::abs(j - R))];
                zeros_symmetric = zeros_symmetric && ((v == 0.0) == (q == 0.0));
                if (v == 0.0) continue;
                tap_dy.push_back(i - R), tap_dx.push_back(j - R), tap_w.push_back(v), weight_sum += v;
                re = std::max({re, std::abs(i - R), std::abs(j - R)});
                non_negative = non_negative && v > 0.0;
                asymmetry_u = std::max(asymmetry_u, std::fabs(q - v) / v * std::ldexp(1.0, 24));
            }
        for (int dd = 0; dd <= re; ++dd)
            for (int e = 0; e <= re; ++e) folded_terms += kernel[static_cast<std::size_t>(R + dd) * K + (R + e)] != 0.0;
        fold_ok = non_negative && zeros_symmetric;
        disk_ok = plan_disk(radius, alias_blur);
    }

private:
    bool plan_disk(double radius, double alias_blur) {
        const aliased_disk disk(radius);
        const int n = disk.n, c = (n - 1) / 2, ksize = disk_blur_ksize(radius);
        if (n % 2 == 0 || n != 2 * R + 1) return false;
        rg = ksize / 2;
        const std::vector<double> g64 = cv_gaussian_kernel(ksize, alias_blur);
        for (int t = 0; t <= rg; ++t) g.push_back(static_cast<float>(g64[static_cast<std::size_t>(rg + t)]));
        for (int t = 1; t <= rg; ++t)  // G symmetric in float32 (its taps are)
            if (static_cast<float>(g64[static_cast<std::size_t>(rg - t)]) != g[static_cast<std::size_t>(t)]) return false;
        // D's rows: centred runs of ones
        int s = 0, top = n, bottom = -1;
        std::vector<int> w(static_cast<std::size_t>(n), -1);
        for (int i = 0; i < n; ++i) {
            int j0 = n, j1 = -1, ones = 0;
            for (int j = 0; j < n; ++j)
                if (disk.d[static_cast<std::size_t>(i) * n + j] != 0.0f) j0 = std::min(j0, j), j1 = std::max(j1, j), ++ones;
            if (ones == 0) continue;
            if (ones != j1 - j0 + 1 || c - j0 != j1 - c) return false;
            w[static_cast<std::size_t>(i)] = j1 - c, s += ones, top = std::min(top, i), bottom = std::max(bottom, i);
        }
        if (s == 0) return false;
        rd = std::max(c - top, bottom - c);
        for (int i = 0; i < n; ++i) wmax = std::max(wmax, w[static_cast<std::size_t>(i)]);
        rd = std::max(rd, wmax);
        if (rd + rg > c) return false;  // G widens the disk past the grid: the reference's blur reflects there
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
                if ((k == 0.0) != (kappa == 0.0) || k < 0.0) return false;
                if (k == 0.0) continue;
                if (const double rel = std::fabs(k / kappa - 1.0) * std::ldexp(1.0, 24); rel <= 64.0 || kappa > 1e-30)
                    theta_u = std::max(theta_u, rel);
                else
                    tiny += std::fabs(k - kappa);
            }
        if (tiny > 0.0) {
            if (2.0 * 255.0 * tiny > std::ldexp(1.0, -24)) return false;
            theta_u += 1.0;
        }
        return true;
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

//! src padded by P pixels on every side with reflect-101 (OpenCV's BORDER_REFLECT_101, the
//! reference's filter2D border) into rows of (W + 2 P) C values of T.
template <class T>
SHIFTNORM_FP_EXACT void pad_reflect101(const_image_view src, int P, T* out) {
    const int H = src.height, W = src.width, C = src.channels;
    const std::size_t n = static_cast<std::size_t>(W) * C, pw = (static_cast<std::size_t>(W) + 2 * P) * C;
    std::vector<std::size_t> left_src(static_cast<std::size_t>(P) + 1), right_src(left_src.size());  // mirrored columns
    for (int e = 1; e <= P; ++e)
        left_src[static_cast<std::size_t>(e)] = static_cast<std::size_t>(border_index(-e, W, border::mirror)) * C,
        right_src[static_cast<std::size_t>(e)] = static_cast<std::size_t>(border_index(W - 1 + e, W, border::mirror)) * C;
    for (int y = 0; y < H + 2 * P; ++y) {
        const std::uint8_t* s = src.data + static_cast<std::size_t>(border_index(y - P, H, border::mirror)) * n;
        T* p = out + static_cast<std::size_t>(y) * pw;
        if constexpr (std::is_same_v<T, float>)
            widen_row(s, p + static_cast<std::size_t>(P) * C, n);
        else
            std::copy(s, s + n, p + static_cast<std::size_t>(P) * C);
        for (int e = 1; e <= P; ++e) {
            const std::uint8_t* l = s + left_src[static_cast<std::size_t>(e)];
            const std::uint8_t* r = s + right_src[static_cast<std::size_t>(e)];
            T* pl = p + static_cast<std::size_t>(P - e) * C;
            T* pr = p + static_cast<std::size_t>(P + W - 1 + e) * C;
            for (int c = 0; c < C; ++c) pl[c] = static_cast<T>(l[c]), pr[c] = static_cast<T>(r[c]);
        }
    }
}

//! The reference arithmetic (filters.hpp filter2d: float64, the kernel's taps in row-major order
//! from 0.0, each product rounded before its addition) for the values the fast paths leave
//! undecided, over their padded image (T: bytes or the same integers as float; pad P, rows of pw
//! values): a whole row, vectorized, or chosen values.
template <class T>
struct defocus_reference {
    const defocus_plan& plan;
    const T* pad;
    std::size_t pw, n, rows;
    int P, C;
    std::vector<std::size_t> tap_off;  // the taps as offsets from tap (0, 0) of output (y, 0)
    scratch_vector<double> pad64;      // the padded image in float64 units, made when a row needs it
    std::vector<const double*> src64;

    defocus_reference(const defocus_plan& p, const T* padded, std::size_t pitch, std::size_t values, std::size_t padded_rows,
                      int pad_width, int channels)
        : plan(p), pad(padded), pw(pitch), n(values), rows(padded_rows), P(pad_width), C(channels) {}

    void list_taps() {
        if (!tap_off.empty()) return;
        for (std::size_t k = 0; k < plan.tap_w.size(); ++k)
            tap_off.push_back(static_cast<std::size_t>(plan.tap_dy[k] + P) * pw + static_cast<std::size_t>(plan.tap_dx[k] + P) * C);
    }
    //! acc_row[0, n): row y's values.
    void whole_row(int y, double* acc_row) {
        list_taps();
        const double* unit = unit_values();
        if (pad64.empty()) {
            pad64.resize(pw * rows);
            for (std::size_t i = 0; i < pad64.size(); ++i) pad64[i] = unit[static_cast<int>(pad[i])];
            src64.resize(tap_off.size());
        }
        for (std::size_t k = 0; k < tap_off.size(); ++k) src64[k] = &pad64[static_cast<std::size_t>(y) * pw + tap_off[k]];
        tap_sum_row(src64.data(), plan.tap_w.data(), static_cast<int>(tap_off.size()), acc_row, static_cast<int>(n));
    }
    //! acc_out[p] for p in [0, m): the values idx[p] of row y.
    void values(int y, const std::uint32_t* idx, std::size_t m, double* acc_out) {
        list_taps();
        const double* unit = unit_values();
        const T* row0 = pad + static_cast<std::size_t>(y) * pw;
        exact_tap_sums(
            m, tap_off.size(), [&](std::size_t k) { return plan.tap_w[k]; },
            [&](std::size_t p, std::size_t k) { return unit[static_cast<int>(row0[idx[p] + tap_off[k]])]; }, acc_out);
    }
    //! Row y's bytes from its float32 values v (decide_row).
    void decide(int y, const float* v, float band, std::uint8_t* dst, std::uint32_t* near, double* acc) {
        decide_row(
            v, n, band, dst, near, acc, [&](double* a) { whole_row(y, a); },
            [&](const std::uint32_t* idx, std::size_t m, double* a) { values(y, idx, m, a); }, unit_byte);
    }
};

//! defocus_blur's filter in float32: the reference's (2R+1)^2 kernel (float32 values), with
//! OpenCV's BORDER_REFLECT_101. The kernel is symmetric in both axes (an aliased disk blurred
//! by a gaussian), up to the float32 rounding of its blur: the float32 pass takes the quadrant
//! dy, dx >= 0 and folds each pair of rows y - d, y + d and columns x - e, x + e before
//! multiplying (a quarter of the products). The values within the band of an integer are
//! computed again as the reference computes them (float64, taps in row-major order from 0.0,
//! each product rounded before its addition: filters.hpp filter2d).
//! The error bound (relative: fast_band_for): the folded sums add integers (exact) and the
//! weights are non-negative float32 values (the reference's), so a term carries its product's
//! rounding, the additions of tap_sum_additions(m) for the m <= (re + 1)^2 products, and the
//! kernel's asymmetry: the fold multiplies the pixel at (-d, -e) by the weight at (d, e), which
//! differs from the reference's by up to 2.8 u relative (ImageNet severity 5; measured per
//! kernel, rounded up). At the largest value, 255 S with S the sum of the kernel's weights
//! (1.013 for the ImageNet table's radius 8: the reference's blur of the disk reflects at the
//! grid's edge). Returns false, having written nothing, for a kernel with a negative weight,
//! zeros that are not symmetric (defocus_plan::fold_ok), or a band that would pass max_fast_band.
SHIFTNORM_FP_EXACT inline bool fast_defocus_fold_u8(const_image_view src, image_view dst, const defocus_plan& plan) {
    if (!plan.fold_ok) return false;
    const int H = src.height, W = src.width, C = src.channels, R = plan.R, K = 2 * R + 1, re = plan.re;
    const std::vector<double>& kernel = plan.kernel;
    const float band = fast_band_for(tap_sum_additions(plan.folded_terms) + 1.0 + std::ceil(plan.asymmetry_u));
    if (!fast_band_usable(band, 255.0 * plan.weight_sum)) return false;
    const std::size_t n = static_cast<std::size_t>(W) * C, pw = (static_cast<std::size_t>(W) + 2 * re) * C;
    const std::size_t rows = static_cast<std::size_t>(H) + 2 * re;
    scratch_buffer<float> pad(pw * rows), fold(pw * static_cast<std::size_t>(re + 1)), out(n);
    pad_reflect101(src, re, pad.data());
    defocus_reference<float> ref(plan, pad.data(), pw, n, rows, re, C);
    std::vector<std::uint32_t> near(n);
    std::vector<double> acc(n);
    // The quadrant's taps, row d of the kernel reading fold row d (the rows y - d and y + d
    // added; fixed addresses) or, for d = 0, the padded row y itself: built once, the d = 0 taps'
    // pointers set per row (their a[] entries are the first taps, zero_taps of them).
    sym_taps t;
    std::size_t zero_taps = 0;
    for (int d = 0; d <= re; ++d) {
        const float* centre = (d == 0 ? pad.data() : &fold[static_cast<std::size_t>(d) * pw]) + static_cast<std::size_t>(re) * C;
        for (int e = 0; e <= re; ++e) {
            const float wv = static_cast<float>(kernel[static_cast<std::size_t>(R + d) * K + (R + e)]);
            const std::size_t before = t.size();
            if (e == 0) t.add(wv, centre, nullptr);
            else t.add(wv, centre - static_cast<std::ptrdiff_t>(e) * C, centre + static_cast<std::ptrdiff_t>(e) * C);
            if (d == 0) zero_taps += t.size() - before;
        }
    }
    std::vector<std::ptrdiff_t> zero_a(zero_taps), zero_b(zero_taps);  // their offsets from pad row 0
    for (std::size_t k = 0; k < zero_taps; ++k)
        zero_a[k] = t.a[k] - pad.data(), zero_b[k] = t.b[k] == nullptr ? 0 : t.b[k] - pad.data();
    for (int y = 0; y < H; ++y) {
        const float* row = &pad[static_cast<std::size_t>(y + re) * pw];
        for (std::size_t k = 0; k < zero_taps; ++k) {
            t.a[k] = row + zero_a[k];
            if (t.b[k] != nullptr) t.b[k] = row + zero_b[k];
        }
        for (int d = 1; d <= re; ++d)
            add_rows(&pad[static_cast<std::size_t>(y + re - d) * pw], &pad[static_cast<std::size_t>(y + re + d) * pw],
                     &fold[static_cast<std::size_t>(d) * pw], pw);
        sym_rows(t, out.data(), n);
        ref.decide(y, out.data(), band, dst.data + static_cast<std::size_t>(y) * n, near.data(), acc.data());
    }
    return true;
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
    pad_reflect101(src, P, pad.data());
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
    defocus_reference<std::uint8_t> ref(plan, pad.data(), pw, n, rows, P, C);
    std::vector<std::uint32_t> near(n);
    std::vector<double> acc(n);
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
        ref.decide(y, out.data(), band, dst.data + static_cast<std::size_t>(y) * n, near.data(), acc.data());
    }
    return true;
}

}  // namespace shiftnorm::corrupt::detail

SHIFTNORM_FP_EXACT_END
