#!/bin/sh
# SPDX-License-Identifier: MIT
# Side-by-side training throughput: `shiftnorm train` vs PyTorch 1.13 (tools/torch_reference_train.py),
# same network (small-resnet8, width 16), data (Fashion-MNIST), batch 128, SGD. Runs alternate
# (ours, torch, ours, torch, ...) so both see the same machine load; prints every run and medians.
# Both rates are steady-state (after each epoch's first step), and both tools run with glibc malloc
# tuned not to return memory to the kernel (without it PyTorch's speed on a VM swings 1.5-3x:
# docs/benchmarks.md, "The peer was slowed by its allocator").
# usage: tools/bench_train_vs_torch.sh SHIFTNORM_BINARY [THREADS] [REPEATS] [IMAGES]
set -eu
export MALLOC_TRIM_THRESHOLD_=4294967296 MALLOC_TOP_PAD_=1073741824 MALLOC_MMAP_THRESHOLD_=33554432
BIN=${1:?path to the shiftnorm binary}
T=${2:-1}
R=${3:-5}
N=${4:-5120}
HERE=$(dirname "$0")
ours=""
torch=""
i=0
while [ $i -lt "$R" ]; do
  a=$("$BIN" train --model small-resnet8 --data fashion-mnist --epochs 1 --limit-train "$N" --limit-test 100 \
       --no-augment --threads "$T" --progress 1000 2>&1 | sed -n 's/.*; \([0-9.]*\) img\/s after the first step.*/\1/p' | tail -1)
  b=$(/usr/bin/python3 "$HERE/torch_reference_train.py" --threads "$T" --epochs 1 --limit-train "$N" --no-test --no-augment \
       | sed -n 's/.*; \([0-9.]*\) img\/s after the first step.*/\1/p' | tail -1)
  echo "run $i threads $T: shiftnorm $a img/s, torch $b img/s"
  ours="$ours $a"
  torch="$torch $b"
  i=$((i + 1))
done
median() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
mo=$(median $ours)
mt=$(median $torch)
echo "median threads $T: shiftnorm $mo img/s, torch $mt img/s, ratio $(echo "$mo $mt" | awk '{printf "%.2f", $1/$2}')"
