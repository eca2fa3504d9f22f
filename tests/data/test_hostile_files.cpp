// SPDX-License-Identifier: MIT
// Hostile input (issue 10): a FIFO, a directory, a symlink loop or a dangling symlink in place of
// a data or weights file is an io_error naming the path and what was found, raised without opening
// the file (so a FIFO never blocks); a symlink to a regular file is read normally.
#include <catch2/catch.hpp>

#if defined(__unix__) || defined(__APPLE__)

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shiftnorm/data/cifar.hpp"
#include "shiftnorm/data/file.hpp"
#include "shiftnorm/data/idx.hpp"
#include "shiftnorm/data/image_folder.hpp"
#include "shiftnorm/data/image_io.hpp"
#include "shiftnorm/data/npy.hpp"
#include "shiftnorm/data/safetensors.hpp"

using namespace shiftnorm;
namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

//! A fresh temporary directory, removed with everything in it at scope exit.
struct temp_dir {
    fs::path path;
    explicit temp_dir(const std::string& tag)
        : path(fs::temp_directory_path() / ("shiftnorm_" + tag + "_" + std::to_string(::getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string operator/(const std::string& name) const { return (path / name).string(); }
};

//! Safety net so that a reader that wrongly open()s a FIFO fails the test instead of hanging it:
//! after a grace period, a writer end is opened and closed again and again (non-blocking), which
//! releases a reader blocked in open() and hands it an empty stream.
class fifo_unblocker {
public:
    explicit fifo_unblocker(std::vector<std::string> fifos) : fifos_(std::move(fifos)), t_([this] { run(); }) {}
    ~fifo_unblocker() {
        {
            std::lock_guard<std::mutex> l(m_);
            done_ = true;
        }
        cv_.notify_all();
        t_.join();
    }

private:
    void run() {
        using namespace std::chrono_literals;
        std::unique_lock<std::mutex> l(m_);
        if (cv_.wait_for(l, 2s, [this] { return done_; })) return;
        while (!cv_.wait_for(l, 50ms, [this] { return done_; }))
            for (const auto& f : fifos_) {
                const int fd = ::open(f.c_str(), O_WRONLY | O_NONBLOCK);
                if (fd >= 0) ::close(fd);
            }
    }
    std::vector<std::string> fifos_;
    std::mutex m_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread t_;
};

//! A directory holding every kind of non-regular file under `name` + a suffix.
struct hostile_tree {
    temp_dir dir{"hostile_files"};
    std::string fifo, directory, loop, dangling, regular, link_to_regular;
    hostile_tree() {
        fifo = dir / "fifo.bin";
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        directory = dir / "directory.bin";
        fs::create_directory(directory);
        loop = dir / "loop_a.bin";
        fs::create_symlink(dir / "loop_b.bin", loop);
        fs::create_symlink(loop, dir / "loop_b.bin");
        dangling = dir / "dangling.bin";
        fs::create_symlink(dir / "nowhere.bin", dangling);
        regular = dir / "regular.bin";
        std::ofstream(regular, std::ios::binary) << "0123456789";
        link_to_regular = dir / "link.bin";
        fs::create_symlink(regular, link_to_regular);
    }
};

//! `read(path)` must throw io_error naming `path` and `found` for every hostile kind of path.
void check_rejects(const hostile_tree& t, const std::function<void(const std::string&)>& read) {
    fifo_unblocker guard({t.fifo});
    const struct {
        const std::string& path;
        const char* found;
    } cases[] = {{t.fifo, "is a FIFO"},
                 {t.directory, "is a directory"},
                 {t.loop, "cannot be resolved (symlink loop?)"},
                 {t.dangling, "dangling symlink"}};
    for (const auto& c : cases) {
        INFO("path " << c.path);
        CHECK_THROWS_AS(read(c.path), io_error);
        CHECK_THROWS_WITH(read(c.path), Contains(c.path) && Contains(c.found) && Contains("expected a regular file"));
    }
}

}  // namespace

TEST_CASE("require_regular_file names what it found instead of a regular file", "[data][file][hostile]") {
    const hostile_tree t;
    check_rejects(t, [](const std::string& p) { data::require_regular_file(p, "test file"); });
    CHECK_THROWS_WITH(data::require_regular_file(t.fifo, "weights file"), Contains("weights file '" + t.fifo + "'"));
    CHECK_THROWS_WITH(data::require_regular_file(t.dir / "absent.bin"), Contains("does not exist"));
    CHECK(data::require_regular_file(t.regular) == 10);
    CHECK(data::require_regular_file(t.link_to_regular) == 10);  // symlinks to regular files are fine
    const auto bytes = data::read_regular_file(t.link_to_regular, "test file");
    CHECK(std::string(bytes.begin(), bytes.end()) == "0123456789");
    CHECK_THROWS_WITH(data::read_regular_file(t.regular, "test file", 9),
                      Contains(t.regular) && Contains("10 bytes") && Contains("at most 9"));
    check_rejects(t, [](const std::string& p) { data::read_regular_file(p, "test file"); });
}

TEST_CASE("every file reader of data/ rejects a FIFO, a directory and a symlink loop", "[data][file][hostile]") {
    const hostile_tree t;
    SECTION("npy") { check_rejects(t, [](const std::string& p) { data::read_npy(p); }); }
    SECTION("read_file_bytes") { check_rejects(t, [](const std::string& p) { data::read_file_bytes(p); }); }
    SECTION("safetensors (weights)") { check_rejects(t, [](const std::string& p) { data::read_safetensors(p); }); }
    SECTION("read_binary_file") { check_rejects(t, [](const std::string& p) { data::read_binary_file(p, "x"); }); }
    SECTION("IDX") { check_rejects(t, [](const std::string& p) { data::read_idx(p); }); }
    SECTION("read_maybe_gzip") { check_rejects(t, [](const std::string& p) { data::read_maybe_gzip(p); }); }
    SECTION("image") { check_rejects(t, [](const std::string& p) { data::read_image(p); }); }
}

TEST_CASE("directory loaders reject non-regular files in place of their data files", "[data][file][hostile]") {
    temp_dir d("hostile_dirs");
    SECTION("CIFAR-10: test_batch.bin is a FIFO") {
        const std::string f = d / "test_batch.bin";
        REQUIRE(::mkfifo(f.c_str(), 0600) == 0);
        fifo_unblocker guard({f});
        CHECK_THROWS_WITH(data::load_cifar10_bin(d.path.string(), false), Contains(f) && Contains("is a FIFO"));
    }
    SECTION("CIFAR-100: test.bin is a directory") {
        fs::create_directory(d / "test.bin");
        CHECK_THROWS_WITH(data::load_cifar100_bin(d.path.string(), false),
                          Contains(d / "test.bin") && Contains("is a directory"));
    }
    SECTION("MNIST: the images file is a FIFO, the labels file a symlink loop") {
        const std::string im = d / "t10k-images-idx3-ubyte.gz";
        REQUIRE(::mkfifo(im.c_str(), 0600) == 0);
        fs::create_symlink(d / "t10k-labels-idx1-ubyte", d / "t10k-labels-idx1-ubyte");
        fifo_unblocker guard({im});
        CHECK_THROWS_WITH(data::load_mnist_dir(d.path.string(), false), Contains(im) && Contains("is a FIFO"));
        fs::remove(im);
        std::vector<std::uint8_t> ok = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7};
        std::ofstream(im, std::ios::binary).write(reinterpret_cast<const char*>(ok.data()), std::streamsize(ok.size()));
        CHECK_THROWS_WITH(data::load_mnist_dir(d.path.string(), false),
                          Contains("t10k-labels-idx1-ubyte") && Contains("symlink loop"));
    }
    SECTION("image folder: a FIFO or a symlink loop named like an image") {
        fs::create_directories(d.path / "cls");
        const std::uint8_t px[3] = {1, 2, 3};
        data::write_png(d / "cls/a.png", px, 1, 1, 3);
        REQUIRE(data::load_image_folder(d.path.string()).size() == 1);
        const std::string f = d / "cls/b.png";
        REQUIRE(::mkfifo(f.c_str(), 0600) == 0);
        {
            fifo_unblocker guard({f});
            CHECK_THROWS_WITH(data::load_image_folder(d.path.string()), Contains(f) && Contains("is a FIFO"));
        }
        fs::remove(f);
        fs::create_symlink(d / "cls/c.jpg", d / "cls/c.jpg");
        CHECK_THROWS_WITH(data::load_image_folder(d.path.string()), Contains("c.jpg") && Contains("symlink loop"));
        fs::remove(d / "cls/c.jpg");
        fs::create_symlink(d / "loop", d / "loop");  // an unresolvable entry where class folders are listed
        CHECK_THROWS_WITH(data::load_image_folder(d.path.string()), Contains(d / "loop") && Contains("symlink loop"));
        fs::remove(d / "loop");
        fs::create_symlink(d / "cls/a.png", d / "cls/d.png");  // a symlink to an image is an image
        CHECK(data::load_image_folder(d.path.string()).size() == 2);
    }
}

#endif  // POSIX
