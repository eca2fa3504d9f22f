// SPDX-License-Identifier: MIT
// Checkpoints: module parameters <-> safetensors with PyTorch names; optimizer state for resuming.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "shiftnorm/core/error.hpp"
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
//! `ignore_prefixes` are skipped.
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

}  // namespace shiftnorm::train
