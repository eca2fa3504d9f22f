// SPDX-License-Identifier: MIT
// batch_norm / group_norm against golden values computed with torch.nn.BatchNorm2d and
// torch.nn.GroupNorm 1.13 (tests/golden/make_norm_golden.py, float64, CPU).
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <string>

#include "shiftnorm/shiftnorm.hpp"
#include "support/reference.hpp"

using namespace shiftnorm;

namespace {
const std::map<std::string, std::vector<double>>& golden() {
    static const auto g = [] {
        std::map<std::string, std::vector<double>> m;
        std::ifstream f(std::string(SHIFTNORM_TEST_DATA_DIR) + "/norm_torch.txt");
        REQUIRE(f.good());
        std::string line;
        std::getline(f, line);  // provenance comment
        std::string name;
        std::size_t count = 0;
        while (f >> name >> count) {
            auto& v = m[name];
            v.resize(count);
            for (auto& e : v) f >> e;
        }
        return m;
    }();
    return g;
}
const std::vector<double>& get(const std::string& k) {
    const auto it = golden().find(k);
    REQUIRE(it != golden().end());
    return it->second;
}
tensor<float> make(shape4 s, const std::vector<double>& v) {
    REQUIRE(std::size_t(s.numel()) == v.size());
    tensor<float> t(s);
    for (std::size_t i = 0; i < v.size(); ++i) t[index_t(i)] = float(v[i]);
    return t;
}
tensor<float> upstream(shape4 s) {
    tensor<float> t(s);
    for (index_t i = 0; i < t.numel(); ++i) t[i] = float(std::sin(0.37 * double(i) + 0.1));
    return t;
}
}  // namespace

TEST_CASE("batch_norm matches torch.nn.BatchNorm2d 1.13 (train, eval, backward, running stats)", "[batch_norm][torch]") {
    for (auto [tag, s] : {std::pair<std::string, shape4>{"bn", {2, 3, 4, 5}}, {"bn_offset", {4, 2, 3, 3}},
                          {"bn_n1", {1, 2, 3, 2}}}) {
        INFO(tag);
        batch_norm<population> bn(s.c);
        const auto& w = get(tag + ".weight");
        const auto& b = get(tag + ".bias");
        for (index_t c = 0; c < s.c; ++c) bn.scale[c] = float(w[c]), bn.shift[c] = float(b[c]);
        auto x = make(s, get(tag + ".x"));
        auto dy = upstream(s);
        tensor<float> y(s), dx(s);
        bn.forward_training(x, y.view());
        bn.backward(x, dy, dx.view());
        // the |mean|/std = 1e3 case: fp32 inputs carry 6e-5 absolute resolution
        const double atol = tag == "bn_offset" ? 2e-4 : 1e-5;
        CHECK(test::worst_error(y, get(tag + ".y"), atol, 1e-5) <= 1.0);
        CHECK(test::worst_error(dx, get(tag + ".dx"), 10 * atol, 1e-4) <= 1.0);
        CHECK(test::worst_error(bn.diff_scale, get(tag + ".dweight"), 10 * atol, 1e-4) <= 1.0);
        CHECK(test::worst_error(bn.diff_shift, get(tag + ".dbias"), 1e-5, 1e-5) <= 1.0);
        CHECK(test::worst_error(bn.source.running.stats.mean, get(tag + ".running_mean"), 1e-5, 1e-6) <= 1.0);
        CHECK(test::worst_error(bn.source.running.stats.var, get(tag + ".running_var"), 1e-5, 1e-5) <= 1.0);
        bn.forward_inference(x, y.view());
        CHECK(test::worst_error(y, get(tag + ".y_eval"), 1e-4, 1e-5) <= 1.0);
    }
}

TEST_CASE("group_norm matches torch.nn.GroupNorm 1.13 (group, instance, layer)", "[group_norm][torch]") {
    for (auto [tag, s, G] : {std::tuple<std::string, shape4, index_t>{"gn2", {2, 4, 3, 3}, 2},
                             {"in", {2, 3, 2, 2}, 3}, {"ln", {3, 2, 2, 3}, 1}}) {
        INFO(tag);
        group_norm<> gn(s.c, G);
        const auto& w = get(tag + ".weight");
        const auto& b = get(tag + ".bias");
        for (index_t c = 0; c < s.c; ++c) gn.scale[c] = float(w[c]), gn.shift[c] = float(b[c]);
        auto x = make(s, get(tag + ".x"));
        auto dy = upstream(s);
        tensor<float> y(s), dx(s);
        gn.forward(x, y.view());
        gn.backward(x, dy, dx.view());
        CHECK(test::worst_error(y, get(tag + ".y"), 1e-5, 1e-5) <= 1.0);
        CHECK(test::worst_error(dx, get(tag + ".dx"), 1e-4, 1e-4) <= 1.0);
        CHECK(test::worst_error(gn.diff_scale, get(tag + ".dweight"), 1e-4, 1e-4) <= 1.0);
        CHECK(test::worst_error(gn.diff_shift, get(tag + ".dbias"), 1e-5, 1e-5) <= 1.0);
    }
}
