#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages shiftnorm's build, tests, benchmarks and experiments need.
#   bash scripts/install_deps.sh           install what is missing (apt-get update first)
#   bash scripts/install_deps.sh --list    print the package list only (used by check_deps.sh)
# Installs with --no-install-recommends, so every package configure uses must be named here:
# libdnnl-dev's CMake config needs the OpenCL headers that Debian only recommends
# (ocl-icd-opencl-dev). scripts/check_deps.sh verifies this list against what configure found.
set -euo pipefail
pkgs=(cmake g++ make libeigen3-dev catch2 libbenchmark-dev libdnnl-dev ocl-icd-opencl-dev libjpeg-dev libpng-dev
      zlib1g-dev dataset-fashion-mnist
      libfftw3-dev  # benchmark peer only (bench_fft): the library never uses FFTW
      # the Python package (python/) and its pytest suite; python3-torch for shiftnorm.torch, the
      # golden-file scripts (tests/golden/*.py) and the speed peers; libtorch-dev for the libtorch example
      python3-dev pybind11-dev python3-numpy python3-pytest python3-torch libtorch-dev)
# clang with libFuzzer only for scripts/fuzz.sh (CI's short fuzz run).
if [[ "${SHIFTNORM_WITH_FUZZ:-0}" == 1 ]]; then pkgs+=(clang-14 libclang-rt-14-dev); fi
if [[ "${1:-}" == "--list" ]]; then printf '%s\n' "${pkgs[@]}"; exit 0; fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  echo "install_deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install_deps: all Debian packages present"
fi
