// SPDX-License-Identifier: MIT
// The shiftnorm command-line tool: one binary, one subcommand per task (train, eval, ...).
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "args.hpp"
#include "cmd_adapt.hpp"
#include "cmd_advbn.hpp"
#include "shiftnorm/core/denormals.hpp"
#include "cmd_analyze.hpp"
#include "cmd_attack.hpp"
#include "cmd_corrupt.hpp"
#include "cmd_detect.hpp"
#include "cmd_divergence.hpp"
#include "cmd_dynamic.hpp"
#include "cmd_eval.hpp"
#include "cmd_train.hpp"

namespace {

//! A subcommand: name, one-line summary, entry point taking the arguments after its name.
//! A new subcommand (adapt, corrupt) is one header with a cmd_<name> function and one line here.
struct command {
    const char* name;
    const char* summary;
    int (*run)(const std::vector<std::string>&);
};

const command commands[] = {
    {"train", "train a reference network (SGD, schedules, augmentation, checkpoints)", shiftnorm::cli::cmd_train},
    {"eval", "evaluate a network with safetensors weights on a dataset", shiftnorm::cli::cmd_eval},
    {"adapt", "BN-statistics rectification on every corruption x severity: the seed-000 table (Acc, mCE, ...)", shiftnorm::cli::cmd_adapt},
    {"analyze", "feature-shift analysis: BN-statistic differences (Fig. 2), cosine similarity before/after rectification (Fig. 3)", shiftnorm::cli::cmd_analyze},
    {"detect", "seed 002's spectral corruption detector: train on the training split's corruptions, score (confusion, open set)", shiftnorm::cli::cmd_detect},
    {"dynamic", "seed 002's dynamic BN: statistics table + detector on a stream of changing corruptions, vs source / test batch / EMA / oracle", shiftnorm::cli::cmd_dynamic},
    {"advbn", "seed 001's AdvBN: fine-tune a pretrained network's head against adversarial feature statistics (or the plain --control)", shiftnorm::cli::cmd_advbn},
    {"divergence", "seed 001's feature divergence (eq. 5, Fig. 4): symmetric KL of per-channel feature fits, clean vs corrupted, per block", shiftnorm::cli::cmd_divergence},
    {"attack", "seed 003's adversarial evaluation: FGSM/BIM/MIM/PGD/CW accuracy with BN P/B statistics or RobustNorm RN/RNT/RNM", shiftnorm::cli::cmd_attack},
    {"corrupt", "write CIFAR-10-C / ImageNet-C style corrupted copies of a dataset (seeded)", shiftnorm::cli::cmd_corrupt},
};

void usage(std::ostream& os) {
    os << "usage: shiftnorm <command> [options]   (shiftnorm <command> --help for the options; shiftnorm --version)\n\ncommands:\n";
    for (const auto& c : commands) os << "  " << c.name << std::string(12 - std::string(c.name).size(), ' ') << c.summary << "\n";
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        usage(std::cerr);
        return 2;
    }
    const std::string name = argv[1];
    if (name == "--help" || name == "-h" || name == "help") {
        usage(std::cout);
        return 0;
    }
    if (name == "--version" || name == "version") {
        std::cout << "shiftnorm " << SHIFTNORM_VERSION_STRING << " (commit " << shiftnorm::cli::git_commit() << ")\n";
        return 0;
    }
    const std::vector<std::string> args(argv + 2, argv + argc);
    // subnormal floats are flushed to zero on every compute thread (docs/engine.md); the
    // threads created later by OpenMP inherit the main thread's setting
    shiftnorm::set_flush_denormals(shiftnorm::cli::flush_denormals_requested());
    for (const auto& c : commands) {
        if (name != c.name) continue;
        try {
            return c.run(args);
        } catch (const shiftnorm::cli::usage_error& e) {
            std::cerr << "shiftnorm " << name << ": " << e.what() << "\n(see 'shiftnorm " << name << " --help')\n";
            return 2;
        } catch (const shiftnorm::error& e) {
            std::cerr << "shiftnorm " << name << ": error: " << e.what() << "\n";
            return 1;
        } catch (const std::exception& e) {
            std::cerr << "shiftnorm " << name << ": unexpected error: " << e.what() << "\n";
            return 1;
        }
    }
    std::cerr << "shiftnorm: unknown command '" << name << "'\n";
    usage(std::cerr);
    return 2;
}
