#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the `shiftnorm` Python package for Debian's /usr/bin/python3 and installs it into that
# interpreter's user site-packages (no root, no pip, nothing downloaded). Then checks the import
# from outside the source tree.
#   bash scripts/install_python.sh            (build dir: build-python; PYTHON=... another interpreter)
# Uninstall: rm -rf "$(/usr/bin/python3 -m site --user-site)/shiftnorm"
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-/usr/bin/python3}
site=$("$PY" -m site --user-site)
mkdir -p build-python
cmake -S . -B build-python -DCMAKE_BUILD_TYPE=Release -DSHIFTNORM_BUILD_TESTS=OFF -DSHIFTNORM_BUILD_EXAMPLES=OFF \
      -DSHIFTNORM_BUILD_BENCHMARKS=OFF -DSHIFTNORM_ENABLE_CUDA=OFF -DSHIFTNORM_INSTALL=OFF \
      -DPython_EXECUTABLE="$PY" -DSHIFTNORM_PYTHON_INSTALL_DIR="$site" > build-python/configure.log 2>&1 ||
  { cat build-python/configure.log >&2; exit 1; }
grep -q "Python package enabled" build-python/configure.log ||
  { grep "Python package" build-python/configure.log >&2; echo "install_python: run scripts/install_deps.sh first" >&2; exit 1; }
cmake --build build-python --target shiftnorm_python -j"$(nproc)"
cmake --install build-python --component python
cd /tmp && "$PY" -c "import shiftnorm, sys; print('install_python: shiftnorm', shiftnorm.__version__, 'at', shiftnorm.__file__)"
