// SPDX-License-Identifier: MIT
// libFuzzer target: the IDX (MNIST) readers on arbitrary bytes (see fuzz_safetensors.cpp for what
// counts as a finding). Three readers see every input:
//   - data::parse_idx on the bytes (in memory, plain IDX only);
//   - data::read_idx, the file reader with the gzip path (zlib's gzread), on a per-process
//     memory file holding the bytes (read_idx only takes a path; see temp_file);
//   - data::read_maybe_gzip + parse_idx on the same file.
// They must agree: the file reader accepts exactly the inputs that the whole-file path accepts,
// with the same array, and for a plain (non-gzip) input that is also what parse_idx says.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "shiftnorm/data/idx.hpp"

namespace {
namespace sd = shiftnorm::data;

//! The per-process file read_idx reads: an anonymous memory file (memfd, named by its
//! /proc/self/fd path; nothing on disk, nothing left behind), or TMPDIR/shiftnorm-fuzz-idx-<pid>.bin
//! where memfd_create is unavailable. Rewriting a file on a disk file system per input is slow
//! (ext4 flushes a file truncated and rewritten), a memfd is not.
struct temp_file {
    int fd = -1;
    std::string path;
    temp_file() {
        fd = ::memfd_create("shiftnorm-fuzz-idx", MFD_CLOEXEC);
        if (fd >= 0) {
            path = "/proc/self/fd/" + std::to_string(fd);
        } else {
            const char* dir = std::getenv("TMPDIR");
            path = std::string(dir && *dir ? dir : "/tmp") + "/shiftnorm-fuzz-idx-" + std::to_string(::getpid()) + ".bin";
            fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            FUZZ_CHECK(fd >= 0);
            std::atexit([] { std::remove(get().path.c_str()); });
        }
    }
    static temp_file& get() {
        static temp_file f;
        return f;
    }
    void write(const std::uint8_t* data, std::size_t size) {
        FUZZ_CHECK(::ftruncate(fd, 0) == 0);
        std::size_t done = 0;
        while (done < size) {
            const ::ssize_t w = ::pwrite(fd, data + done, size - done, ::off_t(done));
            FUZZ_CHECK(w > 0);
            done += std::size_t(w);
        }
    }
};

bool same(const std::optional<sd::idx_array>& a, const std::optional<sd::idx_array>& b) {
    if (a.has_value() != b.has_value()) return false;
    return !a || (a->dims == b->dims && a->bytes == b->bytes);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::vector<std::uint8_t> bytes(data, data + size);
    std::optional<sd::idx_array> in_memory, from_file, whole_file;
    try {
        in_memory = sd::parse_idx(bytes, "fuzz");
        FUZZ_CHECK(!in_memory->dims.empty() && in_memory->bytes.size() + 4 + 4 * in_memory->dims.size() == size);
    } catch (const shiftnorm::error&) {
    }

    temp_file& file = temp_file::get();
    file.write(data, size);
    const std::string& path = file.path;
    try {
        from_file = sd::read_idx(path);
    } catch (const shiftnorm::error&) {
    }
    try {
        whole_file = sd::parse_idx(sd::read_maybe_gzip(path), "fuzz (gunzipped)");
    } catch (const shiftnorm::error&) {
    }
    FUZZ_CHECK(same(from_file, whole_file));
    const bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzip) FUZZ_CHECK(same(from_file, in_memory));
    return 0;
}
