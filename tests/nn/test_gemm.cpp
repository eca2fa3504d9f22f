// SPDX-License-Identifier: MIT
// nn::detail::gemm (and the AVX-512 kernel it dispatches to) against a double-precision reference.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "shiftnorm/nn/gemm.hpp"

using namespace shiftnorm;

namespace {
struct gemm_case {
    index_t M, N, K;
    bool trans_a, trans_b, accumulate;
};

//! Worst |C - ref| / (sum_k |a_k b_k| + |c0|): the error relative to the magnitude of the terms.
double worst_error(const gemm_case& s, bool use_avx512) {
    std::mt19937 g(unsigned(s.M * 131 + s.N * 7 + s.K));
    std::normal_distribution<float> d(0.0f, 1.0f);
    // leading dimensions wider than the matrices: strided rows must be honoured
    const index_t lda = (s.trans_a ? s.M : s.K) + 3, ldb = (s.trans_b ? s.K : s.N) + 5, ldc = s.N + 2;
    std::vector<float> A(std::size_t((s.trans_a ? s.K : s.M) * lda)), B(std::size_t((s.trans_b ? s.N : s.K) * ldb)),
        C(std::size_t(s.M * ldc));
    for (auto& v : A) v = d(g);
    for (auto& v : B) v = d(g);
    for (auto& v : C) v = d(g);
    const std::vector<float> C0 = C;
    if (use_avx512) {
#if defined(SHIFTNORM_HAS_AVX512_GEMM)
        nn::detail::gemm_avx512(s.trans_a, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, s.accumulate, C.data(), ldc);
#endif
    } else {
        nn::detail::gemm(s.trans_a, s.trans_b, s.M, s.N, s.K, 1.0f, A.data(), lda, B.data(), ldb,
                         s.accumulate ? 1.0f : 0.0f, C.data(), ldc);
    }
    double worst = 0;
    for (index_t i = 0; i < s.M; ++i)
        for (index_t j = 0; j < s.N; ++j) {
            double ref = s.accumulate ? C0[std::size_t(i * ldc + j)] : 0.0, mag = std::fabs(ref);
            for (index_t k = 0; k < s.K; ++k) {
                const double a = s.trans_a ? A[std::size_t(k * lda + i)] : A[std::size_t(i * lda + k)];
                const double b = s.trans_b ? B[std::size_t(j * ldb + k)] : B[std::size_t(k * ldb + j)];
                ref += a * b;
                mag += std::fabs(a * b);
            }
            worst = std::max(worst, std::fabs(ref - C[std::size_t(i * ldc + j)]) / (mag + 1e-30));
        }
    // the padding columns of C past N are never written
    for (index_t i = 0; i < s.M; ++i)
        for (index_t j = s.N; j < ldc; ++j)
            if (C[std::size_t(i * ldc + j)] != C0[std::size_t(i * ldc + j)]) return 1.0;
    return worst;
}

const gemm_case cases[] = {
    // convolution shapes: forward W[Og x K] * col[K x P], input gradient W^T * diff_dst
    {16, 1024, 144, false, false, false}, {32, 256, 288, false, false, false}, {64, 64, 576, false, false, true},
    {16, 1024, 27, false, false, false},  {144, 1024, 16, true, false, false}, {576, 64, 64, true, false, false},
    // every tail: rows not a multiple of 8, columns not a multiple of 16 / 32 / 48, K past a k block
    {1, 1, 1, false, false, false},       {7, 15, 3, false, false, true},      {9, 17, 300, false, false, false},
    {12, 49, 100, false, false, true},    {13, 95, 257, true, false, true},    {5, 81, 600, true, false, false},
    {3, 7, 0, false, false, false},       {3, 7, 0, false, false, true},
    // weight-gradient shapes (op(B) = B^T: Eigen's path)
    {16, 144, 1024, false, true, true},   {64, 576, 64, false, true, true},    {16, 27, 1024, false, true, false},
    {7, 13, 37, false, true, false},      {1, 1, 5, false, true, true},        {5, 11, 0, false, true, false},
    {6, 9, 33, true, true, true}};
}  // namespace

TEST_CASE("gemm matches a double reference on convolution shapes and every tail", "[nn][gemm]") {
    for (const auto& s : cases) {
        INFO("M " << s.M << " N " << s.N << " K " << s.K << " trans_a " << s.trans_a << " trans_b " << s.trans_b
                  << " accumulate " << s.accumulate);
        // float32 accumulation over K terms: error bound ~ K * 2^-24 relative to sum |a b|
        const double bound = 4.0 * std::max<index_t>(s.K, 1) * 6e-8;
        CHECK(worst_error(s, false) <= bound);
    }
}

TEST_CASE("the AVX-512 kernel itself matches the reference (skipped without AVX-512F)", "[nn][gemm]") {
    if (!nn::detail::avx512_gemm_available()) {
        WARN("no AVX-512F on this CPU: the kernel is not used here");
        return;
    }
    for (const auto& s : cases) {
        if (s.trans_b) continue;
        INFO("M " << s.M << " N " << s.N << " K " << s.K << " trans_a " << s.trans_a << " accumulate "
                  << s.accumulate);
        CHECK(worst_error(s, true) <= 4.0 * std::max<index_t>(s.K, 1) * 6e-8);
    }
}

TEST_CASE("the AVX-512 kernel: every element is one in-order FMA chain, whatever tile holds it", "[nn][gemm]") {
    if (!nn::detail::avx512_gemm_available()) {
        WARN("no AVX-512F on this CPU: the kernel is not used here");
        return;
    }
#if defined(SHIFTNORM_HAS_AVX512_GEMM)
    // the 48-, 32- and 16-column tiles, the 16-row tiles of the 16-column strip with 8-row and
    // shorter rests, the masked tail, k blocks of 256
    const gemm_case chains[] = {{16, 16, 98, true, false, true},   {40, 16, 49, false, false, false},
                                {32, 64, 300, true, false, true},  {17, 80, 33, false, false, false},
                                {24, 112, 513, false, false, true}, {9, 31, 7, true, false, false}};
    for (const auto& s : chains) {
        INFO("M " << s.M << " N " << s.N << " K " << s.K << " trans_a " << s.trans_a << " accumulate " << s.accumulate);
        std::mt19937 g(unsigned(s.M * 31 + s.N + s.K));
        std::normal_distribution<float> d(0.0f, 1.0f);
        const index_t lda = (s.trans_a ? s.M : s.K) + 1, ldb = s.N + 3, ldc = s.N + 1;
        std::vector<float> A(std::size_t((s.trans_a ? s.K : s.M) * lda)), B(std::size_t(s.K * ldb)), C(std::size_t(s.M * ldc));
        for (auto& v : A) v = d(g);
        for (auto& v : B) v = d(g);
        for (auto& v : C) v = d(g);
        const std::vector<float> C0 = C;
        nn::detail::gemm_avx512(s.trans_a, s.M, s.N, s.K, A.data(), lda, B.data(), ldb, s.accumulate, C.data(), ldc);
        index_t differ = 0;
        for (index_t i = 0; i < s.M; ++i)
            for (index_t j = 0; j < s.N; ++j) {
                float c = s.accumulate ? C0[std::size_t(i * ldc + j)] : 0.0f;
                for (index_t k = 0; k < s.K; ++k)
                    c = std::fma(s.trans_a ? A[std::size_t(k * lda + i)] : A[std::size_t(i * lda + k)],
                                 B[std::size_t(k * ldb + j)], c);
                differ += std::memcmp(&c, &C[std::size_t(i * ldc + j)], sizeof c) != 0;
            }
        CHECK(differ == 0);
    }
#endif
}

TEST_CASE("transpose: exact on full 16x16 tiles (AVX-512 where available) and on every tail", "[nn][gemm]") {
    std::mt19937 g(3);
    std::normal_distribution<float> d;
    for (const auto& rc : std::vector<std::pair<index_t, index_t>>{
             {16, 16}, {32, 48}, {64, 32}, {17, 33}, {5, 16}, {16, 7}, {1, 1}, {0, 4}, {48, 31}}) {
        const index_t R = rc.first, C = rc.second, ldi = C + 3, ldo = R + 5;
        std::vector<float> in(std::size_t(std::max<index_t>(1, R * ldi))), out(std::size_t(std::max<index_t>(1, C * ldo)), -1.0f);
        for (auto& v : in) v = d(g);
        nn::detail::transpose(in.data(), R, C, ldi, out.data(), ldo);
        INFO(R << " x " << C);
        bool ok = true;
        for (index_t r = 0; r < R; ++r)
            for (index_t c = 0; c < C; ++c) ok = ok && out[std::size_t(c * ldo + r)] == in[std::size_t(r * ldi + c)];
        for (index_t c = 0; c < C; ++c)  // padding of the output rows untouched
            for (index_t r = R; r < ldo; ++r) ok = ok && out[std::size_t(c * ldo + r)] == -1.0f;
        CHECK(ok);
    }
}
