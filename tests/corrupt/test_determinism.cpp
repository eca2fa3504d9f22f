// SPDX-License-Identifier: MIT
// Seeded reproducibility: same seed gives bit-identical output for any thread count and batch split.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>
#if defined(_OPENMP) && defined(__unix__)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include "shiftnorm/corrupt.hpp"

namespace sc = shiftnorm::corrupt;

namespace {
std::vector<std::uint8_t> synthetic_batch(std::size_t n, int h, int w, int c, std::uint64_t seed) {
    sc::generator g(seed);
    std::vector<std::uint8_t> v(n * h * w * c);
    // smooth gradients plus noise, so blurs and edges have something to act on
    for (std::size_t i = 0; i < n; ++i)
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x)
                for (int k = 0; k < c; ++k)
                    v[((i * h + y) * w + x) * c + k] =
                        static_cast<std::uint8_t>((x * 7 + y * 3 + k * 50 + i * 13) % 200 + g.randint(0, 56));
    return v;
}
}  // namespace

TEST_CASE("every corruption is bit-identical across thread counts and batch splits", "[corrupt][determinism]") {
    const std::size_t n = 7;
    const auto src = synthetic_batch(n, 32, 32, 3, 1);
    const sc::const_batch_view in{src.data(), n, 32, 32, 3};
    for (sc::corruption c : sc::all_corruptions()) {
        const int s = 3;
        std::vector<std::uint8_t> a(src.size()), b(src.size()), d(src.size()), e(src.size());
        sc::corrupt_batch(c, s, in, {a.data(), n, 32, 32, 3}, 99, {}, 1);
        sc::corrupt_batch(c, s, in, {b.data(), n, 32, 32, 3}, 99, {}, 2);
        sc::corrupt_batch(c, s, in, {d.data(), n, 32, 32, 3}, 99, {}, 5);
        // the same data set in two chunks, the second seeded with its global offset
        const std::size_t k = 3, sz = in.image_size();
        sc::corrupt_batch(c, s, {src.data(), k, 32, 32, 3}, {e.data(), k, 32, 32, 3}, 99, {}, 2, 0);
        sc::corrupt_batch(c, s, {src.data() + k * sz, n - k, 32, 32, 3}, {e.data() + k * sz, n - k, 32, 32, 3}, 99, {},
                          3, k);
        INFO(sc::name_of(c));
        CHECK(a == b);
        CHECK(a == d);
        CHECK(a == e);
        // the single-image entry point gives image i's bytes with index i
        const sc::image one = sc::corrupt(c, s, in[4], 99, {}, 4);
        CHECK(std::equal(one.data(), one.data() + sz, a.data() + 4 * sz));
        // a different seed changes stochastic corruptions and leaves deterministic ones alone
        std::vector<std::uint8_t> f(src.size());
        sc::corrupt_batch(c, s, in, {f.data(), n, 32, 32, 3}, 100, {}, 2);
        if (sc::is_deterministic(c)) CHECK(a == f);
        else CHECK(a != f);
    }
}

TEST_CASE("frost with a texture bank is seeded too", "[corrupt][determinism]") {
    sc::frost_textures bank;
    sc::generator g(5);
    for (int t = 0; t < 3; ++t) bank.add(sc::detail::procedural_frost(300, 280, 3, 40, g));
    const auto src = synthetic_batch(4, 32, 32, 3, 2);
    sc::corrupt_options opt;
    opt.frost = &bank;
    std::vector<std::uint8_t> a(src.size()), b(src.size());
    sc::corrupt_batch(sc::corruption::frost, 5, {src.data(), 4, 32, 32, 3}, {a.data(), 4, 32, 32, 3}, 7, opt, 1);
    sc::corrupt_batch(sc::corruption::frost, 5, {src.data(), 4, 32, 32, 3}, {b.data(), 4, 32, 32, 3}, 7, opt, 3);
    CHECK(a == b);
}

TEST_CASE("corrupt_batch: shares whose thread cannot start run on the calling thread", "[corrupt][determinism]") {
    // a starter that fails (std::system_error, as std::thread does at a thread limit) from the
    // k-th share on: every share still runs once, the bytes are those of one thread
    const std::size_t n = 7;
    std::vector<std::uint8_t> src(n * 32 * 32 * 3);
    sc::generator g(5);
    for (auto& x : src) x = static_cast<std::uint8_t>(g.randint(0, 256));
    const sc::const_batch_view in{src.data(), n, 32, 32, 3};
    std::vector<std::uint8_t> want(src.size());
    sc::corrupt_batch(sc::corruption::snow, 3, in, {want.data(), n, 32, 32, 3}, 11, {}, 1);
    for (int threads : {2, 3, 5})
        for (int fail_from : {1, 2, 4}) {
            CAPTURE(threads, fail_from);
            std::atomic<int> started{0};
            const auto starter = [&](auto& work, int t) {
                if (t >= fail_from)
                    throw std::system_error(std::make_error_code(std::errc::resource_unavailable_try_again));
                ++started;
                return std::thread(std::ref(work), t);
            };
            std::vector<std::uint8_t> got(src.size(), 0);
            sc::detail::corrupt_batch_with(sc::corruption::snow, 3, in, {got.data(), n, 32, 32, 3}, 11, {}, threads, 0,
                                           starter);
            CHECK(got == want);
            CHECK(started.load() == std::max(0, std::min(threads, fail_from) - 1));
            // run_shares itself: each share exactly once
            std::vector<std::atomic<int>> runs(static_cast<std::size_t>(threads));
            auto count = [&](int t) { ++runs[static_cast<std::size_t>(t)]; };
            sc::detail::run_shares(threads, count, starter);
            for (int t = 0; t < threads; ++t) CHECK(runs[static_cast<std::size_t>(t)].load() == 1);
        }
}

#if defined(_OPENMP) && defined(__unix__)
TEST_CASE("corrupt_batch in the child of a fork runs on threads of its own", "[corrupt][determinism]") {
    // the parent's batch runs on OpenMP's team; in a forked child (a DataLoader worker) GNU libgomp
    // would wait forever for the parent's team, so the child's batch must take its own threads
    const std::size_t n = 6;
    const auto src = synthetic_batch(n, 32, 32, 3, 4);
    const sc::const_batch_view in{src.data(), n, 32, 32, 3};
    std::vector<std::uint8_t> want(src.size());
    sc::corrupt_batch(sc::corruption::gaussian_blur, 2, in, {want.data(), n, 32, 32, 3}, 3, {}, 2);
    CHECK_FALSE(shiftnorm::detail::forked_child.load());
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::alarm(60);  // a hang ends the child with SIGALRM instead of the test run
        std::vector<std::uint8_t> got(src.size());
        sc::corrupt_batch(sc::corruption::gaussian_blur, 2, in, {got.data(), n, 32, 32, 3}, 3, {}, 2);
        ::_exit(shiftnorm::detail::forked_child.load() && got == want ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("child status " << status);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK_FALSE(shiftnorm::detail::forked_child.load());  // the parent keeps its team
}
#endif

#if defined(_OPENMP)
TEST_CASE("run_images_team: every image once, a member's exception kept", "[corrupt][determinism]") {
    for (int nt : {2, 3, 5})
        for (std::size_t n : {std::size_t(1), std::size_t(2), std::size_t(5), std::size_t(31), std::size_t(32),
                              std::size_t(33), std::size_t(100), std::size_t(1000)}) {
            CAPTURE(nt, n);
            std::vector<std::atomic<int>> runs(n);
            auto one = [&](std::size_t i) { ++runs[i]; };
            std::vector<std::exception_ptr> errors(static_cast<std::size_t>(nt));
            sc::detail::run_images_team(nt, n, one, errors);
            for (std::size_t i = 0; i < n; ++i) CHECK(runs[i].load() == 1);
            for (const auto& e : errors) CHECK(!e);
            // image 0 throws: that member keeps the exception and stops; every image runs at most once
            std::vector<std::atomic<int>> again(n);
            auto bad = [&](std::size_t i) {
                ++again[i];
                if (i == 0) throw std::runtime_error("image 0");
            };
            std::vector<std::exception_ptr> errs(static_cast<std::size_t>(nt));
            sc::detail::run_images_team(nt, n, bad, errs);
            CHECK(std::count_if(errs.begin(), errs.end(), [](const std::exception_ptr& e) { return bool(e); }) == 1);
            CHECK(again[0].load() == 1);
            for (std::size_t i = 0; i < n; ++i) CHECK(again[i].load() <= 1);
        }
}
#endif
