#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole CPU test suite (and the CLI's hostile-input table) under AddressSanitizer +
# UndefinedBehaviorSanitizer (+ LeakSanitizer): any report fails the run.
#   bash scripts/sanitize.sh            (build in build-asan; JOBS=N to set the build jobs)
# The Python package is left out: an ASan-built extension cannot load into Debian's (uninstrumented)
# python3; its C++ core (stats/external.hpp, corrupt/) is covered here through the C++ tests. So is
# the libtorch example (libtorch itself is not instrumented and keeps allocations alive at exit).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
JOBS=${JOBS:-$(nproc)}
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHIFTNORM_ENABLE_CUDA=OFF -DSHIFTNORM_BUILD_BENCHMARKS=OFF \
      -DSHIFTNORM_BUILD_PYTHON=OFF -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON \
      -DCMAKE_CXX_FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
      -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined"
cmake --build build-asan -j"$JOBS"
# OpenMP's runtime keeps thread-local allocations alive at exit: not ours; everything else counts
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
ctest --test-dir build-asan --output-on-failure -j"$JOBS" -E "consumer_"
