// SPDX-License-Identifier: MIT
// Checkpoints: module parameters <-> safetensors with PyTorch names; optimizer state for resuming;
// crash-consistent saving of the (weights, optimizer state) pair and recovery of an interrupted save.
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <ostream>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "shiftnorm/core/digest.hpp"
#include "shiftnorm/core/error.hpp"
#include "shiftnorm/core/fault.hpp"
#include "shiftnorm/data/file.hpp"
#include "shiftnorm/data/safetensors.hpp"
#include "shiftnorm/nn/module.hpp"
#include "shiftnorm/train/sgd.hpp"

namespace shiftnorm::train {

//! The module's state as a safetensors image: every parameter and buffer as F32 under its
//! PyTorch name, counters (num_batches_tracked) as I64 scalars. Loadable by
//! `model.load_state_dict(safetensors.torch.load_file(path))` for the same architecture.
inline data::safetensors_file state_dict(nn::module& net, std::map<std::string, std::string> metadata = {}) {
    data::safetensors_file f;
    f.metadata = std::move(metadata);
    f.metadata["format"] = "pt";
    const nn::param_set ps = net.parameters();
    for (const auto& p : ps.params) f.put_f32(p.name, p.shape, p.value);
    for (const auto& c : ps.counters) {
        const std::int64_t v = *c.value;
        f.put_i64(c.name, {}, &v);
    }
    return f;
}

//! What load_state_dict did: names missing from the file and names the module lacks.
struct load_report {
    std::vector<std::string> missing, unexpected;
    std::size_t loaded = 0;
};

//! Copies tensors of `f` into the module by name. Shapes must match exactly (shape_error naming
//! the tensor otherwise). strict: every parameter/buffer must be present and every tensor of
//! the file must be used (io_error listing the first offenders); counters may be absent
//! (PyTorch checkpoints predating num_batches_tracked). Tensors whose names start with one of
//! `ignore_prefixes` are skipped. Non-finite values (NaN/Inf) are refused with value_error
//! naming the tensor.
inline load_report load_state_dict(nn::module& net, const data::safetensors_file& f, bool strict = true,
                                   const std::vector<std::string>& ignore_prefixes = {}) {
    load_report r;
    nn::param_set ps = net.parameters();
    std::set<std::string> used;
    for (auto& p : ps.params) {
        auto it = f.tensors.find(p.name);
        if (it == f.tensors.end()) {
            r.missing.push_back(p.name);
            continue;
        }
        const auto& t = it->second;
        if (t.shape != p.shape) {
            std::string want, got;
            for (auto d : p.shape) want += (want.empty() ? "" : "x") + std::to_string(d);
            for (auto d : t.shape) got += (got.empty() ? "" : "x") + std::to_string(d);
            throw shape_error("load_state_dict: tensor '" + p.name + "' expected shape [" + want + "], got [" + got + "]");
        }
        const auto v = t.to_float(p.name);
        for (std::size_t i = 0; i < v.size(); ++i)  // NaN weights would only surface as "10% accuracy"
            if (!std::isfinite(v[i]))
                throw value_error(shiftnorm::detail::concat("load_state_dict: tensor '", p.name, "' holds the non-finite value ",
                                                            v[i], " at flat index ", i, "; refusing to load it"));
        std::copy(v.begin(), v.end(), p.value);
        used.insert(p.name);
        ++r.loaded;
    }
    for (auto& c : ps.counters) {
        auto it = f.tensors.find(c.name);
        if (it == f.tensors.end()) continue;
        const auto v = it->second.to_int64(c.name);
        if (v.size() != 1) throw shape_error("load_state_dict: counter '" + c.name + "' must be a scalar");
        *c.value = v[0];
        used.insert(c.name);
    }
    for (const auto& kv : f.tensors) {
        if (used.count(kv.first)) continue;
        bool ignored = false;
        for (const auto& pre : ignore_prefixes) ignored |= kv.first.rfind(pre, 0) == 0;
        if (!ignored) r.unexpected.push_back(kv.first);
    }
    if (strict && (!r.missing.empty() || !r.unexpected.empty())) {
        std::string msg = "load_state_dict: checkpoint does not match the network:";
        if (!r.missing.empty()) msg += " missing " + std::to_string(r.missing.size()) + " (first '" + r.missing[0] + "')";
        if (!r.unexpected.empty())
            msg += " unexpected " + std::to_string(r.unexpected.size()) + " (first '" + r.unexpected[0] + "')";
        throw io_error(msg + " -- wrong --model for these weights?");
    }
    return r;
}

inline load_report load_weights(nn::module& net, const std::string& path, bool strict = true) {
    return load_state_dict(net, data::read_safetensors(path), strict);
}

//! Adds the optimizer's momentum buffers (`optimizer.<param>.momentum_buffer`) to `f`.
inline void add_optimizer_state(data::safetensors_file& f, sgd& opt) {
    auto& bufs = opt.momentum_buffers();
    for (std::size_t i = 0; i < opt.params().size(); ++i)
        f.put_f32("optimizer." + opt.params()[i].name + ".momentum_buffer", {opt.params()[i].size}, bufs[i].data());
    f.metadata["optimizer_steps"] = std::to_string(opt.steps());
}

//! Restores momentum buffers written by add_optimizer_state (io_error when one is missing).
inline void load_optimizer_state(const data::safetensors_file& f, sgd& opt) {
    auto& bufs = opt.momentum_buffers();
    for (std::size_t i = 0; i < opt.params().size(); ++i) {
        const std::string name = "optimizer." + opt.params()[i].name + ".momentum_buffer";
        const auto v = f.at(name).to_float(name);
        if (v.size() != bufs[i].size())
            throw shape_error("load_optimizer_state: '" + name + "' has " + std::to_string(v.size()) + " values, expected " +
                              std::to_string(bufs[i].size()));
        bufs[i] = v;
    }
    auto it = f.metadata.find("optimizer_steps");
    opt.set_steps(it == f.metadata.end() ? 1 : std::stoll(it->second));
}

// ---------------------------------------------------------------------------------------------
// Training checkpoints: the pair (weights, optimizer state), saved crash-consistently.
//
// A checkpoint at PATH is two plain safetensors files: PATH (the state dict, PyTorch names, what
// `eval --weights` and safetensors.torch.load_file read) and PATH.optim (momentum buffers). Both
// carry the metadata `epochs_done` and `weights_digest` (a 64-bit FNV-1a digest of the weights'
// tensors), which ties the optimizer state to the exact weights it belongs to. A save writes,
// each file atomically (temporary + fsync + rename + directory fsync):
//   1. the new optimizer state to PATH.optim.pending,
//   2. the new weights to PATH              <- the commit point,
//   3. renames PATH.optim.pending to PATH.optim.
// A crash before 2 leaves the old pair (PATH, PATH.optim) intact plus stale files; a crash after
// 2 leaves the new weights whose optimizer state is PATH.optim.pending. recover_checkpoint(),
// run on --resume and before every save, finishes or rolls back such a save: it removes the
// temporaries (PATH.tmp, PATH.optim.tmp, PATH.optim.pending.tmp) and promotes
// PATH.optim.pending to PATH.optim when its digest and epoch match PATH, or removes it otherwise.
// Recovery is idempotent, so a crash during recovery is recovered by the next one. Checkpoints of
// older versions (no digest, no pending file) load when their epochs agree.
// ---------------------------------------------------------------------------------------------

//! The files of the checkpoint at `path`.
struct checkpoint_files {
    std::string weights, optim, pending;
    explicit checkpoint_files(const std::string& path)
        : weights(path), optim(path + ".optim"), pending(path + ".optim.pending") {}
    //! Temporaries an interrupted save can leave behind.
    std::vector<std::string> temporaries() const { return {weights + ".tmp", optim + ".tmp", pending + ".tmp"}; }
};

//! The fault-injection points of save_checkpoint(), in the order a save reaches them (the values
//! of SHIFTNORM_FAULT_AT, see fault::point; the k-th name is also reached as the number k when
//! the save is the first fault-instrumented operation of the process). A crash at any point up
//! to and including "checkpoint.weights.tmp_synced" leaves the previous checkpoint; from
//! "checkpoint.weights.renamed" on, the new one.
inline const std::vector<std::string>& checkpoint_save_steps() {
    static const std::vector<std::string> steps = {
        "checkpoint.begin",                 // stale files recovered, nothing of this save written
        "checkpoint.optim.tmp_partial",     // half of PATH.optim.pending.tmp written
        "checkpoint.optim.tmp_synced",      // PATH.optim.pending.tmp complete and fsynced
        "checkpoint.optim.renamed",         // renamed to PATH.optim.pending, directory not yet fsynced
        "checkpoint.weights.tmp_partial",   // half of PATH.tmp written
        "checkpoint.weights.tmp_synced",    // PATH.tmp complete and fsynced
        "checkpoint.weights.renamed",       // PATH replaced (commit), directory not yet fsynced
        "checkpoint.promote.renamed",       // PATH.optim.pending renamed to PATH.optim, not yet fsynced
        "checkpoint.end",                   // everything written and fsynced
    };
    return steps;
}

namespace detail {
//! False when nothing is at `p`; true for a regular file; io_error for anything else (a FIFO
//! would block an open forever, a directory or a symlink loop is a mistake to report).
inline bool file_exists(const std::string& p) {
    std::error_code ec;
    const auto st = std::filesystem::symlink_status(p, ec);
    if (ec || st.type() == std::filesystem::file_type::not_found) return false;
    data::require_regular_file(p, "checkpoint");
    return true;
}
inline int metadata_int(const data::safetensors_file& f, const char* key, const std::string& path) {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end()) throw io_error("'" + path + "': checkpoint lacks metadata '" + key + "' (not written by fit?)");
    try {
        std::size_t used = 0;
        const int v = std::stoi(it->second, &used);
        if (used != it->second.size()) throw std::invalid_argument("trailing characters");
        return v;
    } catch (const std::exception&) {
        throw io_error("'" + path + "': metadata '" + key + "' is not an integer: '" + it->second + "'");
    }
}
inline std::string metadata_or(const data::safetensors_file& f, const char* key, const std::string& fallback = "") {
    auto it = f.metadata.find(key);
    return it == f.metadata.end() ? fallback : it->second;
}
using shiftnorm::fnv1a;
inline void remove_file(const std::string& p) {
    if (std::remove(p.c_str()) != 0 && file_exists(p)) throw io_error("cannot remove stale checkpoint file '" + p + "'");
}
}  // namespace detail

//! Digest of a state dict's tensors (names, dtypes, shapes and bytes, in name order; metadata
//! excluded): 16 hex digits of 64-bit FNV-1a. Stored as `weights_digest` in both checkpoint files.
inline std::string weights_digest(const data::safetensors_file& f) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const auto& kv : f.tensors) {
        detail::fnv1a(h, kv.first.data(), kv.first.size() + 1);  // with the terminating NUL
        detail::fnv1a(h, kv.second.dtype.data(), kv.second.dtype.size() + 1);
        const std::uint64_t rank = kv.second.shape.size();
        detail::fnv1a(h, &rank, sizeof rank);
        for (const std::int64_t d : kv.second.shape) detail::fnv1a(h, &d, sizeof d);
        detail::fnv1a(h, kv.second.bytes.data(), kv.second.bytes.size());
    }
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
}

//! What recover_checkpoint() did.
struct checkpoint_recovery {
    std::vector<std::string> removed;  //!< stale temporaries / pending optimizer state deleted
    bool completed = false;            //!< an interrupted save was finished (pending state promoted)
    bool any() const { return completed || !removed.empty(); }
};

//! Brings the checkpoint at `path` to a consistent state after an interrupted save (see above):
//! removes stale temporaries, promotes PATH.optim.pending to PATH.optim when it belongs to the
//! weights at PATH (same `weights_digest` and `epochs_done`), removes it otherwise. Idempotent;
//! nothing to do when no save was interrupted. io_error naming the file when a pending state
//! cannot be read or a file cannot be removed or renamed.
inline checkpoint_recovery recover_checkpoint(const std::string& path) {
    const checkpoint_files cf(path);
    checkpoint_recovery r;
    for (const auto& t : cf.temporaries())
        if (detail::file_exists(t)) {
            detail::remove_file(t);
            r.removed.push_back(t);
        }
    if (detail::file_exists(cf.pending)) {
        bool belongs = false;
        if (detail::file_exists(cf.weights)) {
            const auto p = data::read_safetensors(cf.pending);
            const auto w = data::read_safetensors(cf.weights);
            const std::string dp = detail::metadata_or(p, "weights_digest"), dw = detail::metadata_or(w, "weights_digest");
            belongs = !dp.empty() && dp == dw && detail::metadata_or(p, "epochs_done") == detail::metadata_or(w, "epochs_done");
        }
        if (belongs) {
            data::rename_file_durable(cf.pending, cf.optim);
            r.completed = true;
        } else {
            detail::remove_file(cf.pending);
            r.removed.push_back(cf.pending);
        }
    }
    if (!r.removed.empty()) data::sync_parent_directory(path);
    return r;
}

//! Saves the training checkpoint at `path`: the state dict of `net` (PyTorch names) with
//! `metadata` to PATH and the optimizer state to PATH.optim, as a crash-consistent pair (see
//! above; `metadata` should hold `epochs_done`). Stale files of an interrupted earlier save are
//! recovered first. Fault-injection points: checkpoint_save_steps().
inline void save_checkpoint(const std::string& path, nn::module& net, sgd& opt,
                            const std::map<std::string, std::string>& metadata) {
    const checkpoint_files cf(path);
    recover_checkpoint(path);
    fault::point("checkpoint.begin");
    data::safetensors_file w = state_dict(net, metadata);
    const std::string digest = weights_digest(w);
    w.metadata["weights_digest"] = digest;
    data::safetensors_file o;
    o.metadata = metadata;
    o.metadata["weights_digest"] = digest;
    add_optimizer_state(o, opt);
    data::write_file_atomic(cf.pending, data::encode_safetensors(o), "checkpoint.optim");
    data::write_file_atomic(cf.weights, data::encode_safetensors(w), "checkpoint.weights");
    data::rename_file_durable(cf.pending, cf.optim, "checkpoint.promote");
    fault::point("checkpoint.end");
}

inline int load_checkpoint(nn::module& net, sgd& opt, const std::string& path);

//! What a training loop does with --resume: recover_checkpoint(path) (logging what it finished
//! or removed), then, when a checkpoint exists, `check(path)` (may throw to refuse it, before
//! anything is loaded) and load_checkpoint into `net` and `opt`. Returns the epochs done (0
//! when there is nothing to resume from).
inline int resume_checkpoint(const std::string& path, nn::module& net, sgd& opt, std::ostream& log,
                             const std::function<void(const std::string&)>& check = {}) {
    const auto rec = recover_checkpoint(path);
    if (rec.completed) log << "completed the interrupted save of " << path << "\n";
    for (const auto& f : rec.removed) log << "removed stale " << f << " (from an interrupted save)\n";
    if (!detail::file_exists(path)) return 0;
    if (check) check(path);
    const int done = load_checkpoint(net, opt, path);
    log << "resumed from " << path << " after epoch " << done << "\n";
    return done;
}

//! Loads the checkpoint at `path` (PATH and PATH.optim; run recover_checkpoint() first) into
//! `net` (strictly) and `opt`; returns its `epochs_done`. Nothing is loaded unless the pair is
//! consistent: io_error naming the file(s) when PATH.optim is missing, the two epochs differ,
//! the optimizer state belongs to other weights (digest) or the weights do not match the digest
//! recorded when they were saved. Pairs written by older versions (no digest) are checked by
//! epoch only.
inline int load_checkpoint(nn::module& net, sgd& opt, const std::string& path) {
    const checkpoint_files cf(path);
    const auto w = data::read_safetensors(cf.weights);
    const int done = detail::metadata_int(w, "epochs_done", cf.weights);
    if (!detail::file_exists(cf.optim))
        throw io_error("resume: '" + cf.weights + "' (epoch " + std::to_string(done) + ") has no optimizer state: '" + cf.optim +
                       "' does not exist (delete the checkpoint or train without --resume)");
    const auto o = data::read_safetensors(cf.optim);
    const int done_o = detail::metadata_int(o, "epochs_done", cf.optim);
    if (done != done_o)
        throw io_error("resume: '" + cf.weights + "' is at epoch " + std::to_string(done) + " but its optimizer state '" + cf.optim +
                       "' at epoch " + std::to_string(done_o) + " (not a pair: interrupted while saving with an older version?)");
    const std::string dw = detail::metadata_or(w, "weights_digest"), dopt = detail::metadata_or(o, "weights_digest");
    if (!dw.empty() || !dopt.empty()) {
        const std::string actual = weights_digest(w);
        if (!dw.empty() && dw != actual)
            throw io_error("resume: the tensors of '" + cf.weights + "' (digest " + actual +
                           ") differ from those saved at epoch " + std::to_string(done) + " (digest " + dw +
                           "): modified or corrupt file");
        if (dopt != actual)
            throw io_error("resume: the optimizer state '" + cf.optim + "' belongs to weights with digest " +
                           (dopt.empty() ? std::string("<none>") : dopt) + ", but '" + cf.weights + "' holds weights with digest " +
                           actual + " (both epoch " + std::to_string(done) + "; files of different runs?)");
    }
    try {
        load_state_dict(net, w, true);
    } catch (const shape_error& e) {
        throw shape_error("resume: '" + cf.weights + "': " + e.what());
    } catch (const io_error& e) {
        throw io_error("resume: '" + cf.weights + "': " + e.what());
    }
    try {
        load_optimizer_state(o, opt);
    } catch (const shape_error& e) {
        throw shape_error("resume: '" + cf.optim + "': " + e.what());
    } catch (const io_error& e) {
        throw io_error("resume: '" + cf.optim + "': " + e.what());
    }
    return done;
}

}  // namespace shiftnorm::train
