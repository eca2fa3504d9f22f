// SPDX-License-Identifier: MIT
// Seed 002's protocol parts: the statistics table (fill, select, fallback, save/load, refusal of
// a table for another network), the test EMA source, the stream order, and the stream benchmark
// wiring (a detector that is always right gives the oracle, one that says clean gives the source).
#include <catch2/catch.hpp>

#include <filesystem>
#include <random>
#include <set>

#include "eval/eval_fixtures.hpp"
#include "shiftnorm/eval/dynamic_bn.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/train/checkpoint.hpp"

using namespace shiftnorm;

namespace {
using test::net_of;
using test::tinted;
std::vector<float> logits(nn::module& net, const data::image_dataset& ds, nn::mode m = nn::mode::eval) {
    std::vector<index_t> idx(std::size_t(ds.size()));
    for (index_t i = 0; i < ds.size(); ++i) idx[std::size_t(i)] = i;
    const auto& z = net.forward(eval::batch_of(ds, idx, data::normalization{}), m);
    return std::vector<float>(z.data(), z.data() + z.numel());
}
std::vector<index_t> all_of(const data::image_dataset& ds) {
    std::vector<index_t> idx(std::size_t(ds.size()));
    for (index_t i = 0; i < ds.size(); ++i) idx[std::size_t(i)] = i;
    return idx;
}
std::string temp_file(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("shiftnorm_dynbn_" + name)).string();
}
}  // namespace

TEST_CASE("table entries equal rectification from the same batch; the source is the fallback", "[dynamic][table]") {
    auto table = net_of<eval::table_bn>();
    auto rect = net_of<batch_norm<rectified>>();
    auto pop = net_of<batch_norm<population>>();
    const auto ds = tinted(40);
    const auto noisy = corrupt::corrupted_copy(ds, corrupt::corruption::gaussian_noise, 3, 0, {});
    const auto x = eval::batch_of(noisy, all_of(noisy), data::normalization{});
    eval::fill_table_entry(table, 0, x);
    rect.forward(x, nn::mode::rectify);
    // after filling, the source statistics are selected again
    CHECK(logits(table, ds) == logits(pop, ds));
    eval::select_domain(table, 0);
    CHECK(logits(table, noisy) == logits(rect, noisy));
    eval::select_domain(table, 5);  // no entry: source statistics
    CHECK(logits(table, noisy) == logits(pop, noisy));
    CHECK_THROWS_AS(eval::fill_table_entry(table, -1, x), value_error);
}

TEST_CASE("a table saved and loaded gives the same outputs; a table of another network is refused", "[dynamic][table][io]") {
    auto a = net_of<eval::table_bn>();
    const auto ds = tinted(30);
    eval::fill_table_entry(a, 0, eval::batch_of(corrupt::corrupted_copy(ds, corrupt::corruption::brightness, 2, 0, {}), all_of(ds), {}));
    eval::fill_table_entry(a, 1, eval::batch_of(corrupt::corrupted_copy(ds, corrupt::corruption::contrast, 4, 0, {}), all_of(ds), {}));
    const std::string path = temp_file("table.safetensors");
    eval::save_table(a, {"brightness", "contrast"}, path);
    auto b = net_of<eval::table_bn>();
    const auto keys = eval::load_table(b, path);
    CHECK(keys == std::vector<std::string>{"brightness", "contrast"});
    for (int id : {-1, 0, 1}) {
        eval::select_domain(a, id), eval::select_domain(b, id);
        CHECK(logits(a, ds) == logits(b, ds));
    }
    const auto layers = eval::table_layers(a);
    REQUIRE(!layers.empty());
    CHECK(layers.front().first == "bn1");
    // another network (deeper): the error names both layer lists
    auto deeper = net_of<eval::table_bn>(14);
    try {
        eval::load_table(deeper, path);
        FAIL("no error");
    } catch (const io_error& e) {
        CHECK_THAT(e.what(), Catch::Contains("do not match the network") && Catch::Contains("layer3.1.bn2"));
    }
    // a tampered file: wrong channel count, stray tensor, NaN: refused, the network unchanged
    auto f = data::read_safetensors(path);
    auto bad = f;
    bad.put_f32("bn1.table.contrast.mean", {3}, std::vector<float>(3, 0.f).data());
    CHECK_THROWS_WITH(eval::table_from_safetensors(b, bad, "t"), Catch::Contains("channels"));
    bad = f;
    bad.put_f32("bn1.table.fog.mean", {4}, std::vector<float>(4, 0.f).data());
    CHECK_THROWS_WITH(eval::table_from_safetensors(b, bad, "t"), Catch::Contains("belong to no"));
    bad = f;
    bad.put_f32("bn1.table.contrast.var", {4}, std::vector<float>(4, std::nanf("")).data());
    CHECK_THROWS_AS(eval::table_from_safetensors(b, bad, "t"), io_error);
    eval::select_domain(b, 1), eval::select_domain(a, 1);
    CHECK(logits(a, ds) == logits(b, ds));
    bad = f;
    bad.metadata["shiftnorm.kind"] = "spectral_detector";
    CHECK_THROWS_WITH(eval::table_from_safetensors(b, bad, "t"), Catch::Contains("stats_table"));
    CHECK_THROWS_AS(eval::save_table(a, {"bad.key"}, path), value_error);
    std::filesystem::remove(path);
}

TEST_CASE("build_stats_table draws from the training split, one key per corruption (or severity)", "[dynamic][table]") {
    auto net = net_of<eval::table_bn>();
    const auto train = tinted(50, 9);
    eval::table_build_options o;
    o.corruptions = {corrupt::corruption::gaussian_noise, corrupt::corruption::contrast};
    o.k = 20;
    auto keys = eval::build_stats_table(net, train, o);
    CHECK(keys == std::vector<std::string>{"gaussian_noise", "contrast"});
    for (const auto& [name, l] : eval::table_layers(net)) CHECK(l->impl.source.entries.size() == 2);
    const auto first = logits((eval::select_domain(net, 1), net), train);
    keys = eval::build_stats_table(net, train, o);  // deterministic
    CHECK(logits((eval::select_domain(net, 1), net), train) == first);
    o.per_severity = true, o.severities = {1, 5};
    keys = eval::build_stats_table(net, train, o);
    CHECK(keys == std::vector<std::string>{"gaussian_noise:1", "gaussian_noise:5", "contrast:1", "contrast:5"});
    o.k = 1;
    CHECK_THROWS_AS(eval::build_stats_table(net, train, o), value_error);
    o.k = 51;
    CHECK_THROWS_AS(eval::build_stats_table(net, train, o), value_error);
}

TEST_CASE("test EMA: momentum 1 is the batch's statistics, 0 the source, state carries across batches", "[dynamic][ema]") {
    const auto ds = tinted(20);
    const auto x = eval::batch_of(ds, all_of(ds), {});
    auto ema = net_of<batch_norm<test_ema>>();
    auto pop = net_of<batch_norm<population>>();
    auto set_m = [&](double m) {
        for (auto* l : nn::find_all<nn::norm_layer<batch_norm<test_ema>>>(ema)) l->impl.source.momentum = m, l->impl.source.reset();
    };
    set_m(0.0);
    ema.forward(x, nn::mode::rectify);
    CHECK(logits(ema, ds) == logits(pop, ds));
    // momentum 1: memoryless (only the last batch counts), and not the source
    const auto other = eval::batch_of(tinted(20, 77), all_of(ds), {});
    set_m(1.0);
    ema.forward(x, nn::mode::rectify);
    const auto only_x = logits(ema, ds);
    CHECK(only_x != logits(pop, ds));
    set_m(1.0);
    ema.forward(other, nn::mode::rectify);
    ema.forward(x, nn::mode::rectify);
    CHECK(logits(ema, ds) == only_x);
    // momentum 0.5: two passes differ from one (the state carries)
    set_m(0.5);
    ema.forward(x, nn::mode::rectify);
    const auto once = logits(ema, ds);
    ema.forward(x, nn::mode::rectify);
    CHECK(logits(ema, ds) != once);
    set_m(0.5);
    ema.forward(x, nn::mode::rectify);
    CHECK(logits(ema, ds) == once);  // reset() restarts from the source
}

TEST_CASE("the stream holds every batch once, and switches cells every B batches", "[dynamic][stream]") {
    std::vector<std::vector<std::vector<index_t>>> cb(3);
    for (std::size_t c = 0; c < 3; ++c)
        for (index_t b = 0; b < 6; ++b) cb[c].push_back({index_t(c * 100 + b)});
    for (index_t B : {1, 2, 0}) {
        const auto s = eval::detail::make_stream(cb, {0, 1, 2}, B, 7);
        REQUIRE(s.size() == 18);
        std::set<index_t> seen;
        for (const auto& b : s) seen.insert(b.idx.front());
        CHECK(seen.size() == 18);
        // runs of one cell are exactly B long (a whole cell for B = 0) unless two rounds meet
        std::size_t run = 1, longest = 1;
        for (std::size_t i = 1; i < s.size(); ++i) {
            run = s[i].cell == s[i - 1].cell ? run + 1 : 1;
            longest = std::max(longest, run);
        }
        if (B == 0) CHECK(longest == 6);
        else CHECK(longest <= std::size_t(2 * B));
        // within a cell the batches keep their order
        std::vector<index_t> last(3, -1);
        for (const auto& b : s) {
            CHECK(b.idx.front() > last[b.cell]);
            last[b.cell] = b.idx.front();
        }
    }
}

TEST_CASE("stream benchmark: a detector that is always right equals the oracle, one that says clean the source",
          "[dynamic][stream]") {
    auto table = net_of<eval::table_bn>();
    auto batch = net_of<batch_norm<batch_stats>>();
    auto ema = net_of<batch_norm<test_ema>>();
    const auto train = tinted(40, 2), test = tinted(30, 3);
    eval::table_build_options to;
    to.corruptions = {corrupt::corruption::gaussian_noise};
    to.k = 20;
    const auto keys = eval::build_stats_table(table, train, to);
    eval::test_cells_options co;
    co.corruptions = to.corruptions, co.severities = {2, 4};
    const auto cells = eval::make_test_cells(test, co);
    REQUIRE(cells.size() == 2);
    spectral::detector_options dopt;
    dopt.hidden = {4, 4};
    spectral::detector det(3, 16, 16, {"clean", "gaussian_noise"}, dopt);
    auto force = [&](int cls) {  // zero weights, the bias picks the class for every image
        for (auto& p : det.network().parameters().params) std::fill(p.value, p.value + p.size, 0.0f);
        det.network().parameters().params.back().value[cls] = 10.0f;
    };
    eval::stream_options so;
    so.batch = 8, so.switch_every = {1, 0};
    force(1);
    auto r = eval::run_stream_benchmark({table, batch, ema}, det, keys, test, cells, so);
    // corrupted cells: always right; clean cells: always wrong (says gaussian_noise)
    CHECK(r.corrupted[4][0] == r.corrupted[3][0]);
    CHECK(r.cells[4].get("gaussian_noise", 2) == r.cells[3].get("gaussian_noise", 2));
    CHECK(r.corrupted[0][0] != r.corrupted[3][0]);
    force(0);
    r = eval::run_stream_benchmark({table, batch, ema}, det, keys, test, cells, so);
    CHECK(r.corrupted[4][0] == r.corrupted[0][0]);
    CHECK(r.clean[4] == r.clean[0]);
    CHECK(r.detector_batch_accuracy == Approx(0.5).margin(0.05));  // clean batches right, corrupted wrong
    // a threshold above every confidence: all batches fall back to the source
    force(1);
    so.threshold = 1.0;
    r = eval::run_stream_benchmark({table, batch, ema}, det, keys, test, cells, so);
    CHECK(r.fallback_rate == 1.0);
    CHECK(r.corrupted[4][0] == r.corrupted[0][0]);
    // the test batch method equals normalizing each batch with its own statistics, in any order
    CHECK(r.corrupted[1][0] == r.corrupted[1][1]);
    // images of another size than the detector's
    spectral::detector other(3, 8, 8, {"clean", "gaussian_noise"}, dopt);
    CHECK_THROWS_AS(eval::run_stream_benchmark({table, batch, ema}, other, keys, test, cells, so), shape_error);
}
