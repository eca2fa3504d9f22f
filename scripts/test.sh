#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's test command: install dependencies, build everything (CUDA targets too when
# nvcc is at /usr/local/cuda), run the whole ctest suite (the Python package's pytest suite is
# its `python` entry), then install the Python package for /usr/bin/python3 (user site-packages).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
bash scripts/install_python.sh
