// SPDX-License-Identifier: MIT
// Shared pieces of the CLI subcommands: data specs ("cifar10:DIR"), model construction, threads.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <type_traits>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <streambuf>
#include <string>
#include <thread>

#include "args.hpp"
#include "shiftnorm/advbn/network.hpp"
#include "shiftnorm/config.hpp"
#include "shiftnorm/core/digest.hpp"
#include "shiftnorm/data/cifar.hpp"
#include "shiftnorm/data/idx.hpp"
#include "shiftnorm/data/image_folder.hpp"
#include "shiftnorm/data/sampling.hpp"
#include "shiftnorm/data/transforms.hpp"
#include "shiftnorm/models/zoo.hpp"
#include "shiftnorm/norm/batch_norm.hpp"
#include "shiftnorm/norm/group_norm.hpp"
#include "shiftnorm/norm/identity_norm.hpp"
#include "shiftnorm/norm/robust_norm.hpp"
#include "shiftnorm/nn/visit.hpp"
#include "shiftnorm/train/checkpoint.hpp"

namespace shiftnorm::cli {

//! The default normalization layer of networks built by the CLI (PyTorch's BatchNorm2d).
using default_norm = batch_norm<population>;

//! The git commit the CLI was configured from ("unknown" outside a git checkout).
inline const char* git_commit() {
#if defined(SHIFTNORM_GIT_COMMIT)
    return SHIFTNORM_GIT_COMMIT;
#else
    return "unknown";
#endif
}

//! Digest of a dataset's labels and pixels (what was evaluated, after any subset).
inline std::string dataset_digest(const data::image_dataset& ds) {
    std::uint64_t h = fnv1a_offset;
    const std::int64_t dims[3] = {ds.channels, ds.height, ds.width};
    fnv1a(h, dims, sizeof dims);
    fnv1a(h, ds.labels.data(), ds.labels.size() * sizeof(std::int32_t));
    fnv1a(h, ds.pixels.data(), ds.pixels.size());
    return digest_hex(h);
}

//! The provenance every JSON result carries: version, commit, the command line, then `extra`.
inline std::vector<std::pair<std::string, std::string>> provenance(const std::string& command, const std::vector<std::string>& args,
                                                                   std::vector<std::pair<std::string, std::string>> extra) {
    std::string line = "shiftnorm " + command;
    for (const auto& a : args) line += " " + (a.find_first_of(" \t'\"") == std::string::npos ? a : "'" + a + "'");
    std::vector<std::pair<std::string, std::string>> p = {
        {"shiftnorm_version", SHIFTNORM_VERSION_STRING}, {"git_commit", git_commit()}, {"command_line", line}};
    p.insert(p.end(), extra.begin(), extra.end());
    return p;
}

//! Where a subcommand's progress and log lines go: stderr, or nowhere with --quiet (stdout is
//! for results only, so `shiftnorm eval ... > result.txt` holds just the result).
inline std::ostream& log_stream(const arg_parser& a) {
    struct null_buffer : std::streambuf {
        int overflow(int c) override { return c; }
    };
    static null_buffer nb;
    static std::ostream null_stream(&nb);
    return a.has("quiet") ? null_stream : std::cerr;
}

//! The most threads an option may ask for: the cores of this machine (oversubscription only
//! slows the OpenMP loops down, and huge counts exhaust memory inside the runtime).
inline long long max_threads() { return std::max(1LL, (long long)std::thread::hardware_concurrency()); }

inline const char* data_help() {
    return "dataset: fashion-mnist[:DIR] | mnist:DIR | cifar10:DIR | cifar100:DIR | folder:DIR; DIR is an IDX dir, a "
           "CIFAR binary dir (data_batch_*.bin/test_batch.bin), or an image folder (DIR/{train,test}/<class>/*.jpg, or "
           "DIR/<class>/*.jpg)";
}

//! A parsed --data argument.
struct data_spec {
    std::string kind, dir;
};

inline data_spec parse_data(const std::string& s) {
    data_spec d;
    const auto colon = s.find(':');
    d.kind = s.substr(0, colon);
    d.dir = colon == std::string::npos ? "" : s.substr(colon + 1);
    if (d.kind == "fashion-mnist" && d.dir.empty()) d.dir = "/usr/share/datasets/fashion-mnist";
    if (d.kind != "fashion-mnist" && d.kind != "mnist" && d.kind != "cifar10" && d.kind != "cifar100" && d.kind != "folder")
        throw usage_error("unknown dataset '" + d.kind + "' in --data '" + s + "'; " + data_help());
    if (d.dir.empty()) throw usage_error("--data '" + s + "' needs a directory: " + d.kind + ":DIR");
    std::error_code ec;
    if (!std::filesystem::is_directory(d.dir, ec)) throw io_error("--data: directory '" + d.dir + "' does not exist");
    return d;
}

//! Loads the train or test split of a data spec.
inline data::image_dataset load_split(const data_spec& d, bool train) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (d.kind == "fashion-mnist") return data::load_mnist_dir(d.dir, train, data::fashion_mnist_classes());
    if (d.kind == "mnist") return data::load_mnist_dir(d.dir, train);
    const std::string split = train ? "train" : "test";
    if (d.kind == "cifar10" && fs::exists(fs::path(d.dir) / "test_batch.bin", ec)) return data::load_cifar10_bin(d.dir, train);
    if (d.kind == "cifar100" && fs::exists(fs::path(d.dir) / "test.bin", ec)) return data::load_cifar100_bin(d.dir, train);
    if (fs::is_directory(fs::path(d.dir) / split, ec)) return data::load_image_folder((fs::path(d.dir) / split).string(), 3);
    if (d.kind == "folder" || (d.kind == "cifar10" && !train) || (d.kind == "cifar100" && !train))
        return data::load_image_folder(d.dir, 3);
    throw io_error("--data: '" + d.dir + "' has neither CIFAR binary batches nor a '" + split + "/' image folder");
}

//! The train and test splits of `d`, each reduced to a seeded random subset over all classes
//! when `limit_train` / `limit_test` > 0 (image folders are sorted by class, so "the first N"
//! would be one class). Seeds: seed + 0x5eed (train), + 1 (test).
inline std::pair<data::image_dataset, data::image_dataset> load_train_test(const data_spec& d, index_t limit_train,
                                                                           index_t limit_test, std::uint64_t seed) {
    const auto subset_seed = seed + 0x5eed;
    return {data::random_subset(load_split(d, true), limit_train, subset_seed),
            data::random_subset(load_split(d, false), limit_test, subset_seed + 1)};
}

//! Input normalization of a dataset kind unless --mean/--std are given. CIFAR uses the
//! ImageNet statistics the shared pretrained ResNets were trained with.
inline data::normalization default_normalization(const data_spec& d) {
    if (d.kind == "fashion-mnist") return data::normalization::fashion_mnist();
    if (d.kind == "mnist") return data::normalization::mnist();
    return data::normalization::imagenet();
}

inline data::normalization normalization_from(const arg_parser& a, const data_spec& d) {
    data::normalization n = default_normalization(d);
    if (!a.get("mean").empty()) n.mean = a.get_floats("mean");
    if (!a.get("std").empty()) n.std = a.get_floats("std");
    return n;
}

//! The options every network subcommand takes. `norm_eps_name` names the normalization epsilon
//! ("eps"; "norm-eps" where --eps means something else, e.g. AdvBN's perturbation bound).
inline void add_common_options(arg_parser& p, const char* norm_eps_name = "eps") {
    p.option("model", "NAME", "resnet20", "network: resnet20|32|44|56|110, small-resnet<d>, resnet18|34|50, vgg11|13|16|19, densenet-bc-<d>-<k>, wrn-<d>-<k>")
        .option("width", "W", "0", "base width override (0: architecture default)").int_range(0, 1024, "base width; 1024 is already ~16x the widest reference network")
        .option("data", "SPEC", "", data_help())
        .option("mean", "M[,M,M]", "", "input mean per channel (default: per dataset; CIFAR: 0.485,0.456,0.406)").num_range(-1e6, 1e6)
        .option("std", "S[,S,S]", "", "input std per channel (default: per dataset; CIFAR: 0.229,0.224,0.225)").num_range(1e-12, 1e6, "a positive scale")
        .option("norm", "KIND", "batch", "normalization layers: batch | group[:G] (G must divide every layer's channels; plain group: 8, or gcd(8, C) per layer) | instance | layer | robust[:P] (RobustNorm, range power P, default 0.2) | none")
        .option(norm_eps_name, "E", "1e-5", "normalization epsilon").num_range(0, 1)
        .option("bn-convention", "NAME", "pytorch", "BatchNorm denominator: pytorch = sqrt(var + eps), biased batch variance | "
                                                    "reference = sqrt(var) + eps, unbiased batch variance (seed 003's reference BN baseline)")
        .flag("quiet", "no progress or log lines on stderr (results still go to stdout, errors to stderr)")
        .option("conv", "ALG", "auto", "convolutions: auto (Winograd F(4x4,3x3) wherever it runs: 3x3, stride 1, channels multiples of 16, AVX-512; planar on planes 21-32 pixels wide, pixel-major elsewhere; direct for every other layer) | winograd-2x2 (F(2x2,3x3) only: the bits of version 0.2.0) | direct (im2col / shifted-window GEMM everywhere: every product of the definition, the exact rounding of earlier versions)")
        .option("threads", "T", "0", "OpenMP threads (0: OMP_NUM_THREADS or all cores)").int_range(0, max_threads(), "0: all cores; at most the cores of this machine");
}

//! A parsed --norm: BatchNorm, RobustNorm (range power p), no normalization, or a group-wise
//! layer with its group count (< 0: instance norm).
struct norm_choice {
    bool batch = true;
    bool robust = false;           //!< robust[:P]: RobustNorm (seed 003)
    bool none = false;             //!< none: no normalization (identity layers)
    double p = 0.2;                //!< RobustNorm's range power
    index_t groups = 8;
    bool explicit_groups = false;  //!< group:G given: G must divide every layer's channels
    std::string text = "batch";
};

inline norm_choice parse_norm(const std::string& s) {
    norm_choice n;
    n.text = s;
    if (s == "batch") return n;
    n.batch = false;
    if (s == "none") n.none = true;
    else if (s == "robust" || s.rfind("robust:", 0) == 0) {
        n.robust = true;
        if (s.size() > 7) {
            char* end = nullptr;
            const double p = std::strtod(s.c_str() + 7, &end);
            if (*end != '\0' || !std::isfinite(p) || !(p > 0.0) || p > 10.0)
                throw usage_error("--norm robust:P needs a range power P in (0, 10], got '" + s + "'");
            n.p = p;
        } else if (s.size() == 7) {
            throw usage_error("--norm robust:P needs a range power P in (0, 10], got '" + s + "'");
        }
    } else if (s == "instance") n.groups = -1;
    else if (s == "layer") n.groups = 1;
    else if (s == "group") n.groups = 8;
    else if (s.rfind("group:", 0) == 0) {
        char* end = nullptr;
        errno = 0;
        const long long g = std::strtoll(s.c_str() + 6, &end, 10);
        if (s.size() == 6 || *end != '\0' || errno == ERANGE || g < 1 || g > 65536)
            throw usage_error("--norm group:G needs a group count in [1, 65536], got '" + s + "'");
        n.groups = index_t(g);
        n.explicit_groups = true;
    } else {
        throw usage_error("--norm must be batch, group[:G], instance, layer, robust[:P] or none, got '" + s + "'");
    }
    return n;
}

//! --bn-convention: pytorch (false) or reference (true, BatchNorm networks only).
inline bool parse_bn_convention(const std::string& v, const norm_choice& nc) {
    if (v != "pytorch" && v != "reference") throw usage_error("--bn-convention must be pytorch or reference, got '" + v + "'");
    if (v == "reference" && !nc.batch) throw usage_error("--bn-convention reference applies to --norm batch only, got --norm " + nc.text);
    return v == "reference";
}

//! Calls f(tag) with tag = std::type_identity-like holder of the layer type --norm names
//! (batch_norm<Source> for "batch", robust_norm<> for "robust[:P]", identity_norm for "none",
//! group_norm<> otherwise): the one place where the CLI turns a run-time choice into a
//! compile-time layer type.
template <class T>
struct norm_tag {
    using type = T;
};
template <class BatchNorm = batch_norm<population>, class F>
decltype(auto) with_norm(const arg_parser& a, F&& f) {
    const auto n = parse_norm(a.get("norm"));
    if (n.batch) return f(norm_tag<BatchNorm>{});
    if (n.robust) return f(norm_tag<robust_norm<>>{});
    if (n.none) return f(norm_tag<identity_norm>{});
    return f(norm_tag<group_norm<>>{});
}

//! --conv as a conv_algorithm; usage_error for another word.
//! (A network-wide "winograd" is refused: every network's first layer, 1 or 3 input channels,
//! cannot run it; auto already runs it wherever it can.)
inline nn::conv_algorithm parse_conv_algorithm(const arg_parser& a) {
    const std::string v = a.get("conv");
    try {
        const nn::conv_algorithm alg = nn::parse_conv_algorithm(v);
        if (alg != nn::conv_algorithm::winograd) return alg;
    } catch (const value_error&) {
    }
    throw usage_error("--conv must be auto, direct or winograd-2x2, got '" + v + "'" +
                      (v == "winograd" ? " (auto runs Winograd wherever it can; a whole network cannot: its first "
                                         "layer has 1 or 3 input channels)"
                                       : ""));
}

//! The network named by --model for `ds`, with normalization layer Norm (BatchNorm by default).
template <class Norm = default_norm>
nn::sequential build_model(const arg_parser& a, const data::image_dataset& ds) {
    models::model_spec s;
    s.name = a.get("model");
    s.num_classes = ds.num_classes();
    s.in_channels = ds.channels;
    s.width = a.get_int("width");
    s.norm.eps = a.get_double(a.declares("norm-eps") ? "norm-eps" : "eps");
    const auto nc = parse_norm(a.get("norm"));
    s.norm.groups = nc.groups;
    s.norm.exact_groups = nc.explicit_groups;  // group:G is taken literally; plain "group" adapts per layer
    s.norm.reference_bn = parse_bn_convention(a.get("bn-convention"), nc);
    try {
        nn::sequential net = models::make_model<Norm>(s);
        nn::set_conv_algorithm(net, parse_conv_algorithm(a));
        if constexpr (std::is_same_v<Norm, robust_norm<>>)
            for (auto* l : nn::find_all<nn::norm_layer<robust_norm<>>>(net)) l->impl.opt.p = nc.p;
        return net;
    } catch (const value_error& e) {
        throw usage_error(std::string("--model ") + s.name + " --norm " + a.get("norm") + ": " + e.what());
    }
}

//! Splits the value of --option "a,b,c" into its items; usage_error for an empty item or list.
inline std::vector<std::string> split_list(const std::string& option, const std::string& v) {
    std::vector<std::string> out;
    std::stringstream ss(v);
    for (std::string t; std::getline(ss, t, ',');) {
        if (t.empty()) throw usage_error("--" + option + " has an empty item in '" + v + "'");
        out.push_back(t);
    }
    if (out.empty()) throw usage_error("--" + option + " needs at least one item");
    return out;
}

//! Loads safetensors weights into `net` strictly, by PyTorch names. An AdvBN checkpoint
//! (`shiftnorm advbn --out`) also holds auxiliary BNs under advbn::aux_prefix(): they are
//! skipped (the clean BNs are used), or with `auxiliary_bns` loaded in place of the clean ones
//! (seed 001 uses them for stylized data); io_error when asked for auxiliary BNs a file lacks.
inline train::load_report load_network_weights(nn::module& net, const std::string& path, bool auxiliary_bns = false) {
    data::safetensors_file f = data::read_safetensors(path);
    const std::string& pre = advbn::aux_prefix();
    if (auxiliary_bns) {
        std::size_t n = 0;
        std::vector<std::string> aux;
        for (const auto& kv : f.tensors)
            if (kv.first.rfind(pre, 0) == 0) aux.push_back(kv.first);
        for (const auto& k : aux) {
            f.tensors[k.substr(pre.size())] = f.tensors.at(k);
            ++n;
        }
        if (n == 0) throw io_error("'" + path + "' holds no auxiliary BNs (" + pre + "*): not written by 'shiftnorm advbn'");
    }
    return train::load_state_dict(net, f, true, {pre});
}

//! Applies --threads and validates --norm before any data are loaded (every subcommand calls
//! this right after parsing).
//! Whether subnormal floats are flushed to zero (the default); SHIFTNORM_DENORMALS=keep turns
//! it off for the whole run (IEEE subnormals, e.g. to measure what flushing saves).
inline bool flush_denormals_requested() {
    const char* e = std::getenv("SHIFTNORM_DENORMALS");
    return e == nullptr || std::string(e) != "keep";
}

inline void apply_threads(const arg_parser& a) {
    (void)parse_bn_convention(a.get("bn-convention"), parse_norm(a.get("norm")));
    (void)parse_conv_algorithm(a);
    const long long t = a.get_int("threads");  // range-checked by the parser: [0, max_threads()]
    if (t > 0) nn::set_num_threads(int(t));
}

}  // namespace shiftnorm::cli
