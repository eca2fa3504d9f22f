// SPDX-License-Identifier: MIT
// The engine in the child of a fork: one thread there (core/omp.hpp), so no wait on the parent's
// OpenMP team, which GNU libgomp does not carry across fork.
#include <catch2/catch.hpp>

#if defined(_OPENMP) && defined(__unix__)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include "shiftnorm/engine.hpp"

using namespace shiftnorm;

namespace {
// a convolution's training forward and backward (parallel over images) on a fixed batch
tensor<float> conv_step(nn::conv2d& conv, const tensor<float>& x) {
    const tensor<float>& y = conv.forward(x, nn::mode::train);
    tensor<float> dy(y.shape());
    for (index_t i = 0; i < dy.size(); ++i) dy.data()[i] = float(i % 7) - 3.0f;
    return conv.backward(dy);
}
}  // namespace

TEST_CASE("the engine in a forked child runs on one thread and finishes", "[nn][threads]") {
    const int before = nn::num_threads();
    nn::set_num_threads(2);
    nn::conv2d conv(4, 8, 3, 1, 1);
    nn::rng_type g(3);
    conv.reset_parameters(g);
    tensor<float> x(shape4{16, 4, 12, 12});
    std::mt19937 r(5);
    std::normal_distribution<float> nd;
    for (auto& v : x) v = nd(r);
    const tensor<float> want = conv_step(conv, x);  // the parent's team has run
    REQUIRE(nn::num_threads() == 2);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::alarm(60);  // a hang ends the child with SIGALRM instead of the test run
        const bool one = nn::num_threads() == 1;  // from the fork handler alone
        const tensor<float> got = conv_step(conv, x);
        nn::set_num_threads(2);  // kept at one thread in the child
        const bool still_one = nn::num_threads() == 1;
        const tensor<float> again = conv_step(conv, x);
        bool same = got.shape() == want.shape() && again.shape() == want.shape();
        for (index_t i = 0; same && i < got.size(); ++i) same = got.data()[i] == want.data()[i] && again.data()[i] == want.data()[i];
        ::_exit(one && still_one && detail::forked_child.load() && same ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    INFO("child status " << status);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(nn::num_threads() == 2);  // the parent keeps its threads
    nn::set_num_threads(before);
}
#endif
