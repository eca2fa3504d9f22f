// SPDX-License-Identifier: MIT
// Crash consistency of checkpoints: a child process (this executable, hidden test case
// [crash_child]) resumes a 1-epoch checkpoint, trains epoch 2 and is killed by SHIFTNORM_FAULT_AT
// at every step of the save; the checkpoint left behind must recover to a consistent pair (epoch
// 1 or 2, values equal to what was saved), resume to the same result as an uninterrupted run and
// leave no temporaries. Also: older checkpoints (no digest) resume, and mismatched pairs, modified
// weights and a missing optimizer state are io_errors naming the files.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "shiftnorm/core/fault.hpp"
#include "shiftnorm/models/cifar_resnet.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/train/checkpoint.hpp"
#include "shiftnorm/train/trainer.hpp"

using namespace shiftnorm;
namespace fs = std::filesystem;

namespace {

using bn = batch_norm<population>;

data::image_dataset crash_dataset() {
    // Two classes of 8x8 gray images: bright top half vs bright bottom half, plus noise.
    data::image_dataset ds;
    ds.channels = 1;
    ds.height = ds.width = 8;
    ds.classes = data::numbered_classes(2);
    std::mt19937 g(5);
    std::uniform_int_distribution<int> noise(0, 60);
    for (index_t i = 0; i < 48; ++i) {
        const int label = int(i % 2);
        ds.labels.push_back(label);
        for (int y = 0; y < 8; ++y)
            for (int x = 0; x < 8; ++x) ds.pixels.push_back(std::uint8_t(((y < 4) == (label == 0) ? 180 : 40) + noise(g)));
    }
    return ds;
}

nn::sequential make_net() {
    auto n = models::small_resnet<bn>(8, 4, 2, 1);
    nn::rng_type g(7);
    n.reset_parameters(g);
    return n;
}

train::fit_options crash_options(const std::string& ck, std::ostream& log) {
    train::fit_options o;
    o.epochs = 3;
    o.batch_size = 16;
    o.seed = 3;
    o.augment.pad = 1;
    o.augment.flip = true;
    o.checkpoint = ck;
    o.log = &log;
    return o;
}

//! What load_checkpoint puts into a fresh network and optimizer.
struct snapshot {
    int epoch = 0;
    data::safetensors_file weights;  // state_dict of the loaded network
    std::vector<std::vector<float>> momentum;
    long long steps = 0;
};

snapshot load_snapshot(const std::string& ck) {
    auto net = make_net();
    std::ostringstream log;
    train::sgd opt(net.parameters(), crash_options(ck, log).optimizer);
    snapshot s;
    s.epoch = train::load_checkpoint(net, opt, ck);
    s.weights = train::state_dict(net);
    s.momentum = opt.momentum_buffers();
    s.steps = opt.steps();
    return s;
}

bool same_tensors(const data::safetensors_file& a, const data::safetensors_file& b) {
    if (a.tensors.size() != b.tensors.size()) return false;
    for (const auto& kv : a.tensors) {
        auto it = b.tensors.find(kv.first);
        if (it == b.tensors.end() || it->second.dtype != kv.second.dtype || it->second.shape != kv.second.shape ||
            it->second.bytes != kv.second.bytes)
            return false;
    }
    return true;
}

void check_same(const snapshot& got, const snapshot& want) {
    CHECK(got.epoch == want.epoch);
    CHECK(same_tensors(got.weights, want.weights));
    CHECK(got.momentum == want.momentum);
    CHECK(got.steps == want.steps);
}

//! Files of an interrupted save still in `dir` (temporaries, pending optimizer state).
std::vector<std::string> leftovers(const fs::path& dir) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string n = e.path().filename().string();
        if (n.size() >= 4 && (n.compare(n.size() - 4, 4, ".tmp") == 0 || n.find(".pending") != std::string::npos))
            v.push_back(n);
    }
    return v;
}

std::string self_exe() {
    std::vector<char> buf(4096);
    const ::ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
    REQUIRE(n > 0);
    return std::string(buf.data(), std::size_t(n));
}

std::string quoted(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

struct temp_dir {
    fs::path path;
    explicit temp_dir(const std::string& name)
        : path(fs::temp_directory_path() / ("shiftnorm_" + name + "_" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

void copy_dir(const fs::path& from, const fs::path& to) {
    fs::create_directories(to);
    fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

}  // namespace

// Run by the crash test in a child process: resume the checkpoint named by
// SHIFTNORM_TEST_CRASH_CKPT and train epoch 2; SHIFTNORM_FAULT_AT kills it during the save.
TEST_CASE("crash child: resume and save epoch 2", "[.][crash_child]") {
    const char* ck = std::getenv("SHIFTNORM_TEST_CRASH_CKPT");
    REQUIRE(ck != nullptr);
    nn::set_num_threads(1);
    std::ostringstream log;
    auto o = crash_options(ck, log);
    o.resume = true;
    o.stop_after_epoch = 2;
    auto net = make_net();
    train::fit(net, crash_dataset(), nullptr, o);
}

TEST_CASE("a checkpoint save killed at every step recovers a consistent pair and resumes", "[train][checkpoint][crash]") {
    nn::set_num_threads(1);  // bitwise comparisons across processes
    const auto ds = crash_dataset();
    temp_dir root("crash");
    std::ostringstream log;

    auto straight = make_net();  // the uninterrupted 3-epoch run
    train::fit(straight, ds, nullptr, crash_options("", log));

    // The first save (epoch 1), the starting point of every crash.
    const fs::path base = root.path / "epoch1";
    fs::create_directories(base);
    auto first = make_net();
    auto o1 = crash_options((base / "ck.safetensors").string(), log);
    o1.stop_after_epoch = 1;
    REQUIRE(train::fit(first, ds, nullptr, o1).size() == 1);
    const snapshot s1 = load_snapshot((base / "ck.safetensors").string());
    CHECK(s1.epoch == 1);
    CHECK(same_tensors(s1.weights, train::state_dict(first)));  // loaded = what was in memory at the save
    REQUIRE(leftovers(base).empty());

    // An uninterrupted second save: what a crash after the commit point must leave.
    const fs::path ref = root.path / "epoch2";
    copy_dir(base, ref);
    {
        auto net = make_net();
        auto o = crash_options((ref / "ck.safetensors").string(), log);
        o.resume = true;
        o.stop_after_epoch = 2;
        REQUIRE(train::fit(net, ds, nullptr, o).size() == 1);
        const snapshot s = load_snapshot((ref / "ck.safetensors").string());
        CHECK(same_tensors(s.weights, train::state_dict(net)));
    }
    const snapshot s2 = load_snapshot((ref / "ck.safetensors").string());
    CHECK(s2.epoch == 2);

    const std::string exe = self_exe();
    const auto& steps = train::checkpoint_save_steps();
    std::size_t commit = 0;
    while (commit < steps.size() && steps[commit] != "checkpoint.weights.renamed") ++commit;
    REQUIRE(commit < steps.size());
    for (std::size_t k = 0; k < steps.size(); ++k) {
        const std::string& step = steps[k];
        // every other step by number (the k-th fault point of the child), the others by name
        const std::string at = k % 2 ? std::to_string(k + 1) : step;
        INFO("crash at " << step << " (SHIFTNORM_FAULT_AT=" << at << ")");
        const fs::path dir = root.path / ("step" + std::to_string(k));
        const std::string ck = (dir / "ck.safetensors").string();
        copy_dir(base, dir);
        const std::string cmd = "SHIFTNORM_FAULT_AT=" + quoted(at) + " SHIFTNORM_TEST_CRASH_CKPT=" + quoted(ck) + " " +
                                quoted(exe) + " '[crash_child]' > " + quoted((root.path / ("child" + std::to_string(k) + ".log")).string()) +
                                " 2>&1";
        const int status = std::system(cmd.c_str());
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == fault::exit_code);  // the child did reach the step and died there

        // What the crash left: temporaries while a file was being written, a pending optimizer
        // state between its rename and its promotion.
        const auto left = leftovers(dir);
        const bool writing = step.find(".tmp_") != std::string::npos;
        const bool pending = step == "checkpoint.optim.renamed" || step == "checkpoint.weights.tmp_partial" ||
                             step == "checkpoint.weights.tmp_synced" || step == "checkpoint.weights.renamed";
        CHECK(left.size() == std::size_t(writing) + std::size_t(pending));

        // Recovery (on a copy) yields the pair of epoch 1 before the commit point and of epoch 2
        // from it on, with exactly the saved values.
        const bool committed = k >= commit;
        const fs::path inspect = root.path / ("inspect" + std::to_string(k));
        copy_dir(dir, inspect);
        const auto rec = train::recover_checkpoint((inspect / "ck.safetensors").string());
        CHECK(rec.completed == (step == "checkpoint.weights.renamed"));
        CHECK(rec.removed.size() + std::size_t(rec.completed) == left.size());
        CHECK(leftovers(inspect).empty());
        check_same(load_snapshot((inspect / "ck.safetensors").string()), committed ? s2 : s1);
        CHECK(train::recover_checkpoint((inspect / "ck.safetensors").string()).any() == false);  // idempotent

        // --resume (its own recovery) continues with the next epoch and ends where the
        // uninterrupted run ends, bit for bit, with no temporaries left.
        std::ostringstream rlog;
        auto o = crash_options(ck, rlog);
        o.resume = true;
        auto net = make_net();
        const auto hist = train::fit(net, ds, nullptr, o);
        REQUIRE(hist.size() == (committed ? 1u : 2u));
        CHECK(hist.front().epoch == (committed ? 3 : 2));
        CHECK(rlog.str().find("resumed from " + ck + " after epoch " + (committed ? "2" : "1")) != std::string::npos);
        if (rec.completed) CHECK(rlog.str().find("completed the interrupted save") != std::string::npos);
        if (!rec.removed.empty()) CHECK(rlog.str().find("removed stale") != std::string::npos);
        CHECK(same_tensors(train::state_dict(net), train::state_dict(straight)));
        CHECK(leftovers(dir).empty());
        CHECK(load_snapshot(ck).epoch == 3);
    }
}

TEST_CASE("checkpoints of older versions resume; inconsistent pairs are io_errors naming the files", "[train][checkpoint]") {
    nn::set_num_threads(1);
    const auto ds = crash_dataset();
    temp_dir root("ckpt_compat");
    std::ostringstream log;
    const std::string ck = (root.path / "ck.safetensors").string();
    auto o1 = crash_options(ck, log);
    o1.stop_after_epoch = 1;
    auto first = make_net();
    train::fit(first, ds, nullptr, o1);
    const auto w1 = data::read_safetensors(ck);
    const auto opt1 = data::read_safetensors(ck + ".optim");
    REQUIRE(w1.metadata.count("weights_digest"));
    CHECK(w1.metadata.at("weights_digest") == opt1.metadata.at("weights_digest"));
    CHECK(w1.metadata.at("weights_digest") == train::weights_digest(w1));
    CHECK(w1.contains("layer1.0.conv1.weight"));  // still a plain state dict with PyTorch names
    CHECK_FALSE(w1.contains("optimizer.conv1.weight.momentum_buffer"));

    auto expect_error = [&](const std::vector<std::string>& words) {
        auto net = make_net();
        train::sgd opt(net.parameters(), o1.optimizer);
        try {
            train::load_checkpoint(net, opt, ck);
            FAIL("load_checkpoint accepted an inconsistent pair");
        } catch (const io_error& e) {
            for (const auto& w : words) CHECK_THAT(e.what(), Catch::Contains(w));
        }
    };

    SECTION("a pair written without digests (older versions) resumes when the epochs agree") {
        auto w = w1;
        auto o = opt1;
        w.metadata.erase("weights_digest");
        o.metadata.erase("weights_digest");
        data::write_safetensors(ck, w);
        data::write_safetensors(ck + ".optim", o);
        auto straight = make_net();
        train::fit(straight, ds, nullptr, crash_options("", log));
        auto o2 = crash_options(ck, log);
        o2.resume = true;
        auto net = make_net();
        const auto hist = train::fit(net, ds, nullptr, o2);
        REQUIRE(hist.size() == 2);
        CHECK(same_tensors(train::state_dict(net), train::state_dict(straight)));
        // ... and an older pair whose epochs differ (the original bug) is refused clearly.
        o.metadata["epochs_done"] = "2";
        data::write_safetensors(ck, w);
        data::write_safetensors(ck + ".optim", o);
        expect_error({ck + "'", ck + ".optim'", "epoch 1", "epoch 2"});
    }
    SECTION("optimizer state of other weights with the same epoch") {
        auto o = opt1;
        o.metadata["weights_digest"] = "0123456789abcdef";
        data::write_safetensors(ck + ".optim", o);
        expect_error({ck + ".optim'", "0123456789abcdef", w1.metadata.at("weights_digest")});
    }
    SECTION("weights modified after the save") {
        auto w = w1;
        w.tensors.at("conv1.weight").bytes[0] ^= 1;
        data::write_safetensors(ck, w);
        expect_error({ck + "'", "modified or corrupt"});
    }
    SECTION("a missing optimizer state") {
        fs::remove(ck + ".optim");
        expect_error({ck + ".optim'", "does not exist"});
    }
    SECTION("stale temporaries and a pending state of other weights are removed; a new save succeeds") {
        for (const auto& t : train::checkpoint_files(ck).temporaries()) std::ofstream(t) << "torn";
        auto o = opt1;
        o.metadata["weights_digest"] = "0123456789abcdef";
        data::write_safetensors(ck + ".optim.pending", o);
        auto o2 = crash_options(ck, log);
        o2.stop_after_epoch = 1;  // a fresh run (no --resume) overwriting the checkpoint
        auto net = make_net();
        train::fit(net, ds, nullptr, o2);
        CHECK(leftovers(root.path).empty());
        const snapshot s = load_snapshot(ck);
        CHECK(s.epoch == 1);
        CHECK(same_tensors(s.weights, train::state_dict(first)));
    }
}
