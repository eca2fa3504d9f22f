// SPDX-License-Identifier: MIT
// A network's BN statistics table (seed 002): select a domain in every layer, fill, save, load.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "shiftnorm/core/error.hpp"
#include "shiftnorm/data/safetensors.hpp"
#include "shiftnorm/nn/norm_layer.hpp"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/stats/table.hpp"

namespace shiftnorm::eval {

//! The BN layer type of dynamic BN: statistics looked up in a table keyed by a domain id.
using table_bn = batch_norm<stats_table>;
using table_layer = nn::norm_layer<table_bn>;

//! Every table BN layer of `net` with its PyTorch name (`layer1.0.bn1`), in network order.
inline std::vector<std::pair<std::string, table_layer*>> table_layers(nn::module& net) {
    const auto layers = nn::find_all<table_layer>(net);
    std::map<const float*, std::string> name_of;
    for (const auto& p : net.parameters().params) {
        const std::string suffix = "running_mean";
        if (p.name.size() >= suffix.size() && p.name.compare(p.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
            std::string n = p.name.substr(0, p.name.size() - suffix.size());
            if (!n.empty() && n.back() == '.') n.pop_back();
            name_of[p.value] = n;
        }
    }
    std::vector<std::pair<std::string, table_layer*>> out;
    for (auto* l : layers) {
        const auto it = name_of.find(l->impl.source.running.stats.mean.data());
        out.emplace_back(it == name_of.end() ? std::to_string(out.size()) : it->second, l);
    }
    return out;
}

//! Selects domain `id` (stats_table::source_domain = -1: the source statistics) in every layer.
inline void select_domain(nn::module& net, int id) {
    for (auto* l : nn::find_all<table_layer>(net)) l->impl.source.select(id);
}

//! Fills entry `id` of every layer from one batch of that domain (seed 000's procedure: one
//! forward pass in rectify mode), then selects the source statistics again.
inline void fill_table_entry(nn::module& net, int id, const tensor<float>& batch, const rectify_options& opt = {}) {
    if (id < 0) shiftnorm::detail::fail("fill_table_entry", "id", ">= 0", id);
    const auto layers = nn::find_all<table_layer>(net);
    if (layers.empty()) throw value_error("fill_table_entry: the network has no table BN layer (batch_norm<stats_table>)");
    for (auto* l : layers) {
        l->impl.source.options = opt;
        l->impl.source.select(id);
    }
    net.forward(batch, nn::mode::rectify);
    select_domain(net, stats_table::source_domain);
}

//! Forgets every entry of every layer.
inline void clear_table(nn::module& net) {
    for (auto* l : nn::find_all<table_layer>(net)) l->impl.source.reset();
}

//! The table as a safetensors file: `<layer>.table.<key>.mean` / `.var` (F32, [C]) for every
//! layer and key index i < keys.size() that has an entry; metadata `shiftnorm.kind` =
//! stats_table, `keys` and `layers` (comma lists, network order), plus `extra`.
inline data::safetensors_file table_to_safetensors(nn::module& net, const std::vector<std::string>& keys,
                                                   std::map<std::string, std::string> extra = {}) {
    data::safetensors_file f;
    std::string layer_list, key_list;
    for (const auto& k : keys) {
        if (k.empty() || k.find_first_of(",.\n\"") != std::string::npos)
            throw value_error("table key '" + k + "' must be non-empty without ',', '.', '\"' or newlines");
        key_list += (key_list.empty() ? "" : ",") + k;
    }
    for (const auto& [name, l] : table_layers(net)) {
        layer_list += (layer_list.empty() ? "" : ",") + name;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            const auto& e = l->impl.source.entries;
            const auto it = e.find(int(i));
            if (it == e.end()) continue;
            const std::int64_t c = it->second.channels();
            f.put_f32(name + ".table." + keys[i] + ".mean", {c}, it->second.mean.data());
            f.put_f32(name + ".table." + keys[i] + ".var", {c}, it->second.var.data());
        }
    }
    f.metadata = std::move(extra);
    f.metadata["shiftnorm.kind"] = "stats_table";
    f.metadata["keys"] = key_list;
    f.metadata["layers"] = layer_list;
    return f;
}

inline void save_table(nn::module& net, const std::vector<std::string>& keys, const std::string& path,
                       std::map<std::string, std::string> extra = {}) {
    data::write_safetensors(path, table_to_safetensors(net, keys, std::move(extra)));
}

//! Loads a table written by save_table into `net` (every entry replaced) and returns its keys
//! (key i is domain id i). io_error naming the file when it is not a table, when its layer list
//! differs from the network's (both lists named), or for a tensor of the wrong size / non-finite.
inline std::vector<std::string> table_from_safetensors(nn::module& net, const data::safetensors_file& f, const std::string& what) {
    auto meta = [&](const std::string& k) {
        const auto it = f.metadata.find(k);
        if (it == f.metadata.end()) throw io_error(what + ": not a shiftnorm statistics table (metadata '" + k + "' missing)");
        return it->second;
    };
    if (meta("shiftnorm.kind") != "stats_table")
        throw io_error(what + ": metadata shiftnorm.kind is '" + meta("shiftnorm.kind") + "', expected stats_table");
    auto split = [](const std::string& s) {
        std::vector<std::string> out;
        std::stringstream ss(s);
        for (std::string t; std::getline(ss, t, ',');) out.push_back(t);
        return out;
    };
    const auto keys = split(meta("keys"));
    const auto file_layers = meta("layers");
    const auto layers = table_layers(net);
    std::string net_layers;
    for (const auto& l : layers) net_layers += (net_layers.empty() ? "" : ",") + l.first;
    if (layers.empty()) throw value_error(what + ": the network has no table BN layer (batch_norm<stats_table>)");
    if (file_layers != net_layers)
        throw io_error(what + ": the table's BN layers [" + file_layers + "] do not match the network's [" + net_layers + "]");
    // read everything first: a bad tensor leaves the network as it was
    std::vector<std::map<int, channel_stats<float>>> entries(layers.size());
    std::size_t used = 0;
    for (std::size_t li = 0; li < layers.size(); ++li) {
        const index_t C = layers[li].second->channels();
        for (std::size_t i = 0; i < keys.size(); ++i) {
            const std::string base = layers[li].first + ".table." + keys[i];
            const bool hm = f.contains(base + ".mean"), hv = f.contains(base + ".var");
            if (!hm && !hv) continue;
            if (hm != hv) throw io_error(what + ": '" + base + "' has only one of .mean and .var");
            channel_stats<float> s;
            s.mean = f.at(base + ".mean").to_float(base + ".mean");
            s.var = f.at(base + ".var").to_float(base + ".var");
            if (index_t(s.mean.size()) != C || index_t(s.var.size()) != C)
                throw io_error(shiftnorm::detail::concat(what, ": '", base, "' holds ", s.mean.size(), " channels, layer ",
                                                         layers[li].first, " has ", C));
            for (std::size_t c = 0; c < s.mean.size(); ++c)
                if (!std::isfinite(s.mean[c]) || !std::isfinite(s.var[c]) || s.var[c] < 0)
                    throw io_error(what + ": '" + base + "' holds a non-finite mean or a negative / non-finite variance");
            entries[li][int(i)] = std::move(s);
            used += 2;
        }
    }
    if (used != f.tensors.size())
        throw io_error(shiftnorm::detail::concat(what, ": ", f.tensors.size() - used,
                                                 " tensor(s) belong to no (layer, key) of the table"));
    for (std::size_t li = 0; li < layers.size(); ++li) layers[li].second->impl.source.entries = std::move(entries[li]);
    return keys;
}

inline std::vector<std::string> load_table(nn::module& net, const std::string& path) {
    return table_from_safetensors(net, data::read_safetensors(path), path);
}

}  // namespace shiftnorm::eval
