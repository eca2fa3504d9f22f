#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The README's main job (seed 000 on Fashion-MNIST): build the `shiftnorm` tool, train the
# default 28x28 network (or reuse the cached checkpoint), then rectify its BN statistics with
# K = 32 unlabeled samples on every Fashion-MNIST-C corruption x severity and print the table.
# Environment: EPOCHS (default 3), LIMIT (test images for the table, default 2000; 0 = all
# 10,000), THREADS (default: all cores), OUT (default results/main-job).
set -euo pipefail
cd "$(dirname "$0")/.."
EPOCHS=${EPOCHS:-3}
LIMIT=${LIMIT:-2000}
THREADS=${THREADS:-0}
OUT=${OUT:-results/main-job}
CKPT=results/fmnist-small-resnet8-e${EPOCHS}.safetensors
mkdir -p results "$OUT"
if [[ ! -f build-main/CMakeCache.txt ]]; then
  cmake -S . -B build-main -DCMAKE_BUILD_TYPE=Release -DSHIFTNORM_BUILD_TESTS=OFF -DSHIFTNORM_BUILD_BENCHMARKS=OFF \
        -DSHIFTNORM_ENABLE_CUDA=OFF -DSHIFTNORM_CLI_NATIVE=ON > results/main-job-configure.log
fi
cmake --build build-main --target shiftnorm_cli -j"$(nproc)"
SN=build-main/tools/shiftnorm
if [[ -f "$CKPT" ]]; then
  echo "main_job: reusing the trained network $CKPT"
else
  echo "main_job: training small-resnet8 on Fashion-MNIST for $EPOCHS epochs -> $CKPT"
  "$SN" train --model small-resnet8 --data fashion-mnist --epochs "$EPOCHS" --batch 128 --lr 0.1 --schedule onecycle \
        --no-augment --threads "$THREADS" --seed 1 --out "$CKPT"
fi
"$SN" adapt --model small-resnet8 --name "small-resnet8 (FMNIST)" --weights "$CKPT" --data fashion-mnist \
      --limit "$LIMIT" --samples 32 --threads "$THREADS" --out "$OUT"
