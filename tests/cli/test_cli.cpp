// SPDX-License-Identifier: MIT
// The CLI subcommands end to end on a tiny synthetic CIFAR-10 binary set and a narrow ResNet-20:
// adapt's variants share one baseline without contaminating each other, GroupNorm networks run
// without rectification, analyze writes Figs. 2/3, train --resume recovers an interrupted
// checkpoint save, and bad input is a clear usage or I/O error.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cmd_adapt.hpp"
#include "cmd_advbn.hpp"
#include "cmd_analyze.hpp"
#include "cmd_divergence.hpp"
#include "cmd_eval.hpp"
#include "cmd_train.hpp"
#include "shiftnorm/train/checkpoint.hpp"

namespace fs = std::filesystem;
using namespace shiftnorm;

namespace {

//! Silences std::cout / std::cerr for the scope (the subcommands print tables and progress).
struct quiet {
    std::ostringstream sink;
    std::streambuf* out = std::cout.rdbuf(sink.rdbuf());
    std::streambuf* err = std::cerr.rdbuf(sink.rdbuf());
    ~quiet() {
        std::cout.rdbuf(out);
        std::cerr.rdbuf(err);
    }
};

//! A temporary directory with a CIFAR-10 test_batch.bin of n class-tinted noise images and
//! weights of a width-4 ResNet-20 trained on them for a few epochs, and of its GroupNorm twin.
struct fixture {
    static int next_id() {
        static int id = 0;
        return id++;
    }
    fs::path dir = fs::temp_directory_path() / ("shiftnorm_cli_" + std::to_string(::getpid()) + "_" + std::to_string(next_id()));
    std::string bn_weights, gn_weights;

    explicit fixture(int n = 120, bool train_networks = true) {
        fs::remove_all(dir);
        fs::create_directories(dir / "data");
        std::mt19937 g(7);
        std::vector<unsigned char> bin;
        for (int i = 0; i < n; ++i) {
            const int label = i % 10;
            bin.push_back(static_cast<unsigned char>(label));
            for (int c = 0; c < 3; ++c)
                for (int q = 0; q < 1024; ++q) {
                    const int v = 40 + 15 * label + 30 * c + int(g() % 60);
                    bin.push_back(static_cast<unsigned char>(std::min(v, 255)));
                }
        }
        std::ofstream((dir / "data" / "test_batch.bin").string(), std::ios::binary)
            .write(reinterpret_cast<const char*>(bin.data()), std::streamsize(bin.size()));
        if (!train_networks) return;
        models::model_spec s;
        s.name = "resnet20";
        s.width = 4;
        const auto ds = data::load_cifar10_bin((dir / "data").string(), false);
        auto trained = [&](nn::module& net) {  // a few epochs on the tinted images: well above chance
            nn::rng_type rng(3);
            net.reset_parameters(rng);
            train::fit_options o;
            o.epochs = 4;
            o.batch_size = 20;
            o.schedule.lr = 0.05;
            o.norm = data::normalization::imagenet();
            std::ostringstream log;
            o.log = &log;
            train::fit(net, ds, nullptr, o);
            return data::encode_safetensors(train::state_dict(net));
        };
        {
            auto net = models::make_model<batch_norm<population>>(s);
            bn_weights = (dir / "bn.safetensors").string();
            data::write_file_atomic(bn_weights, trained(net));
        }
        {
            s.norm.groups = 2;
            auto net = models::make_model<group_norm<>>(s);
            gn_weights = (dir / "gn.safetensors").string();
            data::write_file_atomic(gn_weights, trained(net));
        }
    }
    ~fixture() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string data() const { return "cifar10:" + (dir / "data").string(); }
    std::string out(const std::string& name) const { return (dir / name).string(); }
};

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in);
    std::vector<std::string> v;
    for (std::string l; std::getline(in, l);) v.push_back(l);
    return v;
}

//! adapt_cells.csv rows of one model label, with the label column removed.
std::vector<std::string> cells_of(const std::string& csv, const std::string& label) {
    std::vector<std::string> v;
    for (const auto& l : read_lines(csv))
        if (l.rfind(label + ",", 0) == 0) v.push_back(l.substr(label.size()));
    return v;
}

std::vector<std::string> base_args(const fixture& f, const std::string& weights) {
    return {"--model", "resnet20", "--width", "4", "--weights", weights, "--data", f.data(), "--threads", "1"};
}

std::vector<std::string> operator+(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

TEST_CASE("adapt: variants in one run equal separate runs, cell by cell", "[cli][adapt]") {
    fixture f;
    const std::vector<std::string> common = {"--corruptions", "gaussian_noise,contrast", "--severities", "2,5",
                                             "--samples", "16", "--baseline", "none", "--name", "net"};
    {
        quiet q;
        REQUIRE(cli::cmd_adapt(base_args(f, f.bn_weights) + common +
                               std::vector<std::string>{"--variants", "both,var,mean,both/front,both/end", "--out", f.out("multi")}) == 0);
        REQUIRE(cli::cmd_adapt(base_args(f, f.bn_weights) + common + std::vector<std::string>{"--out", f.out("single")}) == 0);
        REQUIRE(cli::cmd_adapt(base_args(f, f.bn_weights) + common +
                               std::vector<std::string>{"--adapt", "var", "--out", f.out("single_var")}) == 0);
        REQUIRE(cli::cmd_adapt(base_args(f, f.bn_weights) + common +
                               std::vector<std::string>{"--layers", "front", "--out", f.out("single_front")}) == 0);
    }
    const auto multi = f.out("multi") + "/adapt_cells.csv";
    // (clean + 2 corruptions x 2 severities), before and after, for each row
    const auto both = cells_of(multi, "net");
    REQUIRE(both.size() == 10);
    CHECK(both == cells_of(f.out("single") + "/adapt_cells.csv", "net"));
    CHECK(cells_of(multi, "net [var only]") == cells_of(f.out("single_var") + "/adapt_cells.csv", "net [var only]"));
    CHECK(cells_of(multi, "net [front third]") == cells_of(f.out("single_front") + "/adapt_cells.csv", "net [front third]"));
    // the settings do differ: mean-only and var-only rectification give different accuracies
    CHECK(cells_of(multi, "net [mean only]") != cells_of(multi, "net [var only]"));
    CHECK(fs::exists(f.out("multi") + "/accuracy_per_corruption.png"));
}

TEST_CASE("adapt: a K sweep with several draws writes the sweep table", "[cli][adapt]") {
    fixture f;
    {
        quiet q;
        REQUIRE(cli::cmd_adapt(base_args(f, f.bn_weights) +
                               std::vector<std::string>{"--corruptions", "gaussian_noise", "--severities", "3", "--samples",
                                                        "2,8", "--draws", "3", "--out", f.out("sweep")}) == 0);
    }
    const auto lines = read_lines(f.out("sweep") + "/adapt_k_sweep.csv");
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "variant,k,draws,acc,acc_std_over_draws,mce,mce_std_over_draws");
    CHECK(lines[1].rfind("both/all,2,3,", 0) == 0);
    CHECK(lines[2].rfind("both/all,8,3,", 0) == 0);
    CHECK(fs::exists(f.out("sweep") + "/accuracy_vs_k.png"));
}

TEST_CASE("adapt: a GroupNorm network is evaluated without rectification", "[cli][adapt]") {
    fixture f;
    {
        quiet q;
        REQUIRE(cli::cmd_adapt(base_args(f, f.gn_weights) +
                               std::vector<std::string>{"--norm", "group:2", "--corruptions", "fog", "--severities", "1-5",
                                                        "--out", f.out("gn")}) == 0);
    }
    std::ifstream in(f.out("gn") + "/adapt.json");
    std::stringstream js;
    js << in.rdbuf();
    CHECK(js.str().find("\"after\": null") != std::string::npos);
    CHECK(js.str().find("group:2 norm") != std::string::npos);
    // BN weights do not load into the GroupNorm network (no running statistics there)
    quiet q;
    CHECK_THROWS_AS(cli::cmd_adapt(base_args(f, f.bn_weights) +
                                   std::vector<std::string>{"--norm", "group:2", "--corruptions", "fog", "--out", f.out("gn2")}),
                    shiftnorm::error);
}

TEST_CASE("adapt / analyze / eval: bad input is a clear error", "[cli][errors]") {
    fixture f;
    quiet q;
    const auto a = base_args(f, f.bn_weights);
    using cli::usage_error;
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--variants", "both,sideways"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--variants", "both/top"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--variants", "var,var/all"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--variants", "var", "--adapt", "mean"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--draws", "0"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--samples", "4,x"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--norm", "group:0"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--norm", "weird"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_eval(a + std::vector<std::string>{"--norm", "batchy"}), usage_error);
    // missing or malformed data
    auto missing = a;
    missing[7] = "cifar10:" + f.out("nowhere");
    CHECK_THROWS_AS(cli::cmd_adapt(missing), io_error);
    CHECK_THROWS_AS(cli::cmd_analyze(missing), io_error);
    {
        std::ofstream t(f.out("data") + "/test_batch.bin", std::ios::binary | std::ios::app);
        t << "xyz";  // a truncated trailing record
    }
    CHECK_THROWS_AS(cli::cmd_adapt(a + std::vector<std::string>{"--corruptions", "fog"}), io_error);
    fixture g;  // a valid data set again
    auto bw = base_args(g, g.out("nope.safetensors"));
    std::ofstream(g.out("nope.safetensors")) << "not a safetensors file";
    CHECK_THROWS_AS(cli::cmd_adapt(bw + std::vector<std::string>{"--corruptions", "fog"}), io_error);
    CHECK_THROWS_AS(cli::cmd_analyze(base_args(g, g.bn_weights) + std::vector<std::string>{"--what", "pictures"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_analyze(base_args(g, g.bn_weights) + std::vector<std::string>{"--layer", "20"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_analyze(base_args(g, g.bn_weights) + std::vector<std::string>{"--batch-size", "100"}), usage_error);
    CHECK_THROWS_AS(cli::cmd_analyze(base_args(g, g.gn_weights) + std::vector<std::string>{"--norm", "group:2"}), usage_error);
}

TEST_CASE("analyze: Fig. 2 and Fig. 3 tables per BN layer", "[cli][analyze]") {
    fixture f;
    {
        quiet q;
        REQUIRE(cli::cmd_analyze(base_args(f, f.bn_weights) +
                                 std::vector<std::string>{"--measurements", "4", "--batch-size", "16", "--severities", "1,5",
                                                          "--samples", "16", "--out", f.out("an")}) == 0);
    }
    const auto stats = read_lines(f.out("an") + "/bn_stat_differences.csv");
    REQUIRE(stats.size() == 1 + 19 * 4);  // header + 19 BN layers x 4 comparisons
    const auto cos = read_lines(f.out("an") + "/cosine_similarity.csv");
    REQUIRE(cos.size() == 1 + 2 * 19);  // header + 2 severities x 19 layers
    for (std::size_t i = 1; i < cos.size(); ++i) {
        std::stringstream ss(cos[i]);
        std::vector<std::string> col;
        for (std::string c; std::getline(ss, c, ',');) col.push_back(c);
        REQUIRE(col.size() == 8);
        const double before = std::stod(col[4]), after = std::stod(col[5]);
        CHECK(before >= -1.0);
        CHECK(before <= 1.0);
        CHECK(after >= -1.0);
        CHECK(after <= 1.0);
    }
    // layer 1 sees the input after one convolution: clean and corrupted batches of the same
    // images differ less in their means than batches of different images (Fig. 2's point)
    std::map<std::string, double> layer1;
    for (std::size_t i = 1; i <= 4; ++i) {
        const auto q1 = stats[i].find('"'), q2 = stats[i].find('"', q1 + 1);
        layer1[stats[i].substr(q1 + 1, q2 - q1 - 1)] = std::stod(stats[i].substr(q2 + 2));
    }
    CHECK(layer1.at("clean/corrupted, same content") < layer1.at("clean/corrupted, different content"));
    CHECK(fs::exists(f.out("an") + "/cosine_similarity.png"));
    CHECK(fs::exists(f.out("an") + "/bn_stat_diff_mean.png"));
}

TEST_CASE("train: --resume removes the leftovers of an interrupted save and continues; --out stays loadable by eval",
          "[cli][train]") {
    const fs::path dir = fs::temp_directory_path() / ("shiftnorm_cli_train_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "data");
    std::mt19937 g(11);
    auto batch = [&](const std::string& name, int n) {  // CIFAR-10 binary records of class-tinted noise
        std::vector<unsigned char> bin;
        for (int i = 0; i < n; ++i) {
            const int label = i % 10;
            bin.push_back(static_cast<unsigned char>(label));
            for (int q = 0; q < 3072; ++q) bin.push_back(static_cast<unsigned char>(40 + 15 * label + int(g() % 60)));
        }
        std::ofstream((dir / "data" / name).string(), std::ios::binary)
            .write(reinterpret_cast<const char*>(bin.data()), std::streamsize(bin.size()));
    };
    for (int b = 1; b <= 5; ++b) batch("data_batch_" + std::to_string(b) + ".bin", 8);
    batch("test_batch.bin", 10);
    const std::string ck = (dir / "net.safetensors").string();
    const std::vector<std::string> args = {"--model", "resnet20", "--width", "4", "--data", "cifar10:" + (dir / "data").string(),
                                           "--threads", "1", "--batch", "10", "--schedule", "constant", "--lr", "0.02",
                                           "--out", ck, "--progress", "1000"};
    {
        quiet q;
        REQUIRE(cli::cmd_train(args + std::vector<std::string>{"--epochs", "1"}) == 0);
    }
    // a save killed while writing the weights of epoch 2: torn temporaries, a pending state
    std::ofstream(ck + ".tmp") << "torn";
    std::ofstream(ck + ".optim.pending.tmp") << "torn";
    fs::copy_file(ck + ".optim", ck + ".optim.pending");
    std::string out;
    {
        quiet q;
        REQUIRE(cli::cmd_train(args + std::vector<std::string>{"--epochs", "2", "--resume"}) == 0);
        out = q.sink.str();
    }
    CHECK(out.find("removed stale " + ck + ".tmp") != std::string::npos);
    CHECK(out.find("resumed from " + ck + " after epoch 1") != std::string::npos);
    CHECK(out.find("== epoch 2/2") != std::string::npos);
    CHECK(out.find("== epoch 1/2") == std::string::npos);
    for (const auto& e : fs::directory_iterator(dir)) {
        INFO(e.path().string());
        CHECK(e.path().extension() != ".tmp");
        CHECK(e.path().extension() != ".pending");
    }
    const auto w = data::read_safetensors(ck), o = data::read_safetensors(ck + ".optim");
    CHECK(w.metadata.at("epochs_done") == "2");
    CHECK(o.metadata.at("weights_digest") == w.metadata.at("weights_digest"));
    {
        quiet q;  // the weights are still a plain state dict for eval --weights
        CHECK(cli::cmd_eval({"--model", "resnet20", "--width", "4", "--weights", ck, "--data", "cifar10:" + (dir / "data").string(),
                             "--threads", "1"}) == 0);
    }
    // a pair that does not belong together is refused with both file names
    auto bad = o;
    bad.metadata["epochs_done"] = "1";
    data::write_safetensors(ck + ".optim", bad);
    {
        quiet q;
        try {
            cli::cmd_train(args + std::vector<std::string>{"--epochs", "3", "--resume"});
            FAIL("an inconsistent checkpoint was resumed");
        } catch (const io_error& e) {
            CHECK_THAT(e.what(), Catch::Contains("'" + ck + "' is at epoch 2") && Catch::Contains("'" + ck + ".optim' at epoch 1"));
        }
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
}

TEST_CASE("adapt --c-dir: files written by corrupt give the same cells; wrong shape or labels are errors", "[cli][adapt][c-dir]") {
    fixture f;
    const std::string cdir = f.out("c");
    const std::vector<std::string> common = {"--corruptions", "gaussian_noise,contrast", "--samples", "16",
                                             "--baseline", "none", "--name", "net"};
    {
        quiet q;
        REQUIRE(cli::cmd_corrupt({"--data", f.data(), "--out", cdir, "--corruptions", "gaussian_noise,contrast", "--seed", "0",
                                  "--threads", "1"}) == 0);
        REQUIRE(cli::cmd_adapt(base_args(f, f.bn_weights) + common + std::vector<std::string>{"--out", f.out("gen")}) == 0);
        REQUIRE(cli::cmd_adapt(base_args(f, f.bn_weights) + common +
                               std::vector<std::string>{"--c-dir", cdir, "--out", f.out("file")}) == 0);
    }
    const auto gen = cells_of(f.out("gen") + "/adapt_cells.csv", "net");
    REQUIRE(gen.size() >= 10);
    CHECK(cells_of(f.out("file") + "/adapt_cells.csv", "net") == gen);

    auto run_with = [&](const std::string& what) {
        quiet q;
        try {
            cli::cmd_adapt(base_args(f, f.bn_weights) + common + std::vector<std::string>{"--c-dir", cdir, "--out", f.out("bad")});
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        FAIL("adapt accepted " << what);
        return std::string();
    };
    // labels in another order (e.g. an image folder's class order against the original test order)
    auto lab = data::read_npy(cdir + "/labels.npy");
    auto lab_bad = lab;
    std::swap(lab_bad.bytes[0], lab_bad.bytes[1]);
    REQUIRE(lab_bad.bytes[0] != lab_bad.bytes[1]);
    data::write_file_atomic(cdir + "/labels.npy", data::encode_npy(lab_bad.dtype, lab_bad.shape, lab_bad.bytes.data()));
    CHECK(run_with("permuted labels").find("not in the split's order") != std::string::npos);
    fs::remove(cdir + "/labels.npy");
    CHECK(run_with("a missing labels.npy").find("labels.npy") != std::string::npos);
    data::write_file_atomic(cdir + "/labels.npy", data::encode_npy(lab.dtype, lab.shape, lab.bytes.data()));
    // the same bytes declared NCHW
    auto arr = data::read_npy(cdir + "/contrast.npy");
    auto nchw = arr.shape;
    std::swap(nchw[1], nchw[3]);
    data::write_file_atomic(cdir + "/contrast.npy", data::encode_npy(arr.dtype, nchw, arr.bytes.data()));
    CHECK(run_with("an NCHW file").find("expected (") != std::string::npos);
}

// The guard of refactors: a small adapt run (variants, a K list, two draws, three corruptions)
// must reproduce, byte for byte, the cells and the K table stored in tests/golden (made by the
// code before the protocol moved into the library; gaussian_noise on the v1 noise stream, which
// the stored run used). To regenerate on purpose (a change of the
// numbers that is intended, said in the commit): SHIFTNORM_REGEN_GOLDEN=1 ./test_cli "[golden]".
TEST_CASE("adapt reproduces the stored reference run byte for byte", "[cli][adapt][golden]") {
    const std::string golden = SHIFTNORM_TEST_DATA_DIR;
    const bool regen = std::getenv("SHIFTNORM_REGEN_GOLDEN") != nullptr;
    fixture f(120, regen);  // the synthetic data; the weights come from tests/golden
    const std::string weights = golden + "/cli_resnet20_w4.safetensors";
    if (regen) fs::copy_file(f.bn_weights, weights, fs::copy_options::overwrite_existing);
    {
        quiet q;
        REQUIRE(cli::cmd_adapt(base_args(f, weights) +
                               std::vector<std::string>{"--variants", "both,var,mean,both/front", "--samples", "4,16", "--draws",
                                                        "2", "--corruptions", "gaussian_noise,contrast,fog", "--severities",
                                                        "1,3,5", "--baseline", "none", "--name", "net", "--noise-stream", "v1",
                                                        "--out", f.out("golden")}) == 0);
    }
    for (const char* file : {"adapt_cells.csv", "adapt_k_sweep.csv"}) {
        INFO(file);
        const std::string ours = f.out("golden") + "/" + file, ref = golden + "/cli_adapt_" + file;
        if (regen) fs::copy_file(ours, ref, fs::copy_options::overwrite_existing);
        const auto a = read_lines(ours), b = read_lines(ref);
        CHECK(a.size() >= 9);  // header + 4 variants x 2 K (the K table); 73 lines of cells
        CHECK(a == b);
    }
}

TEST_CASE("advbn: fine-tunes and resumes; eval, adapt and divergence read its output; bad input is a clear error",
          "[cli][advbn]") {
    fixture f;
    // the training split: the fixture's images as data_batch_1..5 (1 image each from 5 files is enough)
    for (int b = 1; b <= 5; ++b) fs::copy_file(f.dir / "data" / "test_batch.bin", f.dir / "data" / ("data_batch_" + std::to_string(b) + ".bin"));
    const std::string out = f.out("advbn.safetensors");
    const auto args = base_args(f, f.bn_weights) +
                      std::vector<std::string>{"--limit-train", "60", "--batch", "20", "--steps", "2", "--out", out, "--progress", "1000"};
    std::string log;
    {
        quiet q;
        REQUIRE(cli::cmd_advbn(args + std::vector<std::string>{"--epochs", "2", "--stop-after", "1"}) == 0);
        REQUIRE(cli::cmd_advbn(args + std::vector<std::string>{"--epochs", "2", "--resume"}) == 0);
        log = q.sink.str();
    }
    CHECK(log.find("resumed from " + out + " after epoch 1") != std::string::npos);
    CHECK(log.find("adversary") != std::string::npos);
    const auto ck = data::read_safetensors(out);
    CHECK(ck.metadata.at("epochs_done") == "2");
    CHECK(ck.tensors.count("advbn_aux.layer2.0.bn1.weight") == 1);
    CHECK(ck.tensors.count("advbn_aux.layer1.0.bn1.weight") == 0);  // the front has none
    {
        quiet q;
        CHECK(cli::cmd_eval(base_args(f, out)) == 0);
        CHECK(cli::cmd_eval(base_args(f, out) + std::vector<std::string>{"--bn-branch", "auxiliary"}) == 0);
        CHECK_THROWS_AS(cli::cmd_eval(base_args(f, f.bn_weights) + std::vector<std::string>{"--bn-branch", "auxiliary"}), io_error);
        const std::vector<std::string> d = {"--model", "resnet20", "--width", "4", "--data", f.data(), "--threads", "1",
                                            "--weights", f.bn_weights + "," + out, "--labels", "pretrained,advbn",
                                            "--from-stage", "layer2", "--corruptions", "gaussian_noise,fog", "--limit", "40",
                                            "--out", f.out("div/kl")};
        REQUIRE(cli::cmd_divergence(d) == 0);
    }
    const auto rows = read_lines(f.out("div/kl.csv"));
    CHECK(rows.size() == 1 + 2 * 2 * 6);  // header + 2 networks x 2 corruptions x 6 blocks of layer2, layer3
    CHECK(fs::file_size(f.out("div/kl.png")) > 1000);

    // a control resumed from an AdvBN checkpoint, another split, a missing stage: errors, nothing overwritten
    const auto before = fs::last_write_time(out);
    const auto bytes = fs::file_size(out);
    {
        quiet q;
        CHECK_THROWS_AS(cli::cmd_advbn(args + std::vector<std::string>{"--epochs", "3", "--resume", "--control"}), value_error);
        CHECK_THROWS_AS(cli::cmd_advbn(args + std::vector<std::string>{"--epochs", "3", "--resume", "--split-at", "layer2"}),
                        value_error);
        CHECK_THROWS_WITH(cli::cmd_advbn(args + std::vector<std::string>{"--split-at", "layer7"}),
                          Catch::Contains("no stage 'layer7'") && Catch::Contains("layer1, layer2, layer3"));
        CHECK_THROWS_AS(cli::cmd_advbn(args + std::vector<std::string>{"--eps", "0"}), cli::usage_error);
        CHECK_THROWS_AS(cli::cmd_advbn(args + std::vector<std::string>{"--variant", "sideways"}), cli::usage_error);
        CHECK_THROWS_AS(cli::cmd_advbn(base_args(f, f.bn_weights) + std::vector<std::string>{"--out", f.bn_weights}), cli::usage_error);
    }
    CHECK(fs::last_write_time(out) == before);
    CHECK(fs::file_size(out) == bytes);
}
