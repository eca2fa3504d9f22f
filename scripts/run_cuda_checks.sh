#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the CUDA checks on a machine with a GPU, from already built executables:
#   scripts/run_cuda_checks.sh BIN_DIR OUT_DIR
# BIN_DIR holds test_backend_cuda, test_spectral_cuda and bench_norm_cuda (from a build with
# -DCMAKE_CUDA_ARCHITECTURES covering the GPU; `make test_backend_cuda test_spectral_cuda
# bench_norm_cuda`), and optionally consumer_cuda (the consumer_install_cuda test's program). Writes to OUT_DIR: tests.log (Catch2, every assertion's section), the
# compute-sanitizer memcheck/racecheck logs when compute-sanitizer is on PATH, bench_norm_cuda.json
# and, when python3 has torch with CUDA, the PyTorch peer (bench/python/peer_bn_cuda.py).
# Exit status: non-zero when a test or a sanitizer run fails.
set -uo pipefail
bin=${1:?BIN_DIR}; out=${2:?OUT_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
status=0
# compute-sanitizer (when on PATH), each run limited to ${SANITIZER_TIMEOUT:-120} s
sanitize() {
    command -v compute-sanitizer > /dev/null || return 0
    local tool=$1 t rc
    for t in test_backend_cuda test_spectral_cuda; do
        echo "== compute-sanitizer --tool $tool $t"
        timeout "${SANITIZER_TIMEOUT:-120}" compute-sanitizer --tool "$tool" --error-exitcode 9 "$bin/$t" > "$out/$t.$tool.log" 2>&1
        rc=$?; tail -n 5 "$out/$t.$tool.log"; echo "sanitizer $tool $t exit $rc"; [ "$rc" -eq 0 ] || status=1
    done
}
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu.txt"
for t in test_backend_cuda test_spectral_cuda; do
    echo "== $t"
    "$bin/$t" --durations yes 2>&1 | tee "$out/$t.log" | tail -n 40
    rc=${PIPESTATUS[0]}; echo "$t exit $rc"; [ "$rc" -eq 0 ] || status=1
done
if [ -x "$bin/consumer_cuda" ]; then  # tests/consumer/main_cuda.cu, built against the installed package
    "$bin/consumer_cuda" 2>&1 | tee "$out/consumer_cuda.txt"
    rc=${PIPESTATUS[0]}; echo "consumer_cuda exit $rc"; [ "$rc" -eq 0 ] || status=1
fi
sanitize memcheck
if [ -x "$bin/bench_norm_cuda" ]; then
    echo "== bench_norm_cuda"
    "$bin/bench_norm_cuda" --benchmark_min_time=0.2 --benchmark_out="$out/bench_norm_cuda.json" \
        --benchmark_out_format=json 2>&1 | tee "$out/bench_norm_cuda.txt" | grep -E "BM_|copy" | head -n 120
fi
if python3 -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2> /dev/null; then
    echo "== PyTorch peer"
    python3 "$here/bench/python/peer_bn_cuda.py" --json "$out/peer_bn_cuda.json" 2>&1 | tee "$out/peer_bn_cuda.txt"
fi
sanitize racecheck
exit $status
