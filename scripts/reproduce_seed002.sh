#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Re-runs every seed-002 experiment of docs/results/ (dynamic BN: the spectral detector, the
# sensitivity matrix, the stream benchmark; about two hours on 2 cores; each step is skipped when
# its output already exists, so an interrupted run resumes).
#
#   CIFAR=/path/to/cifar10 WEIGHTS=/path/to/pretrained bash scripts/reproduce_seed002.sh
#
# CIFAR:   a CIFAR-10 test set (binary batches, or an image folder DIR/test/<class>/*.jpg)
# WEIGHTS: the folder with resnet20-cifar10.safetensors and resnet56-cifar10.safetensors
# OUT:     where results go (default results/seed002); THREADS: threads per run (default 2)
# Fashion-MNIST comes from Debian (dataset-fashion-mnist); its network is trained here (3 epochs,
# the main job's recipe).
# LIMIT: evaluated test images of the CIFAR streams (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/seed002}
THREADS=${THREADS:-2}
. scripts/reproduce_common.sh

LIMIT=${LIMIT:-1000}
# Fashion-MNIST: the main job's network, its detector and the stream
ckpt="$OUT/fmnist-small-resnet8-e3.safetensors"
step train-fmnist "$ckpt" "$SN" train --model small-resnet8 --data fashion-mnist --epochs 3 --batch 128 --lr 0.1 \
     --schedule onecycle --no-augment --seed 1 --threads "$THREADS" --out "$ckpt"
step detect-fmnist "$OUT/detect-fmnist/detector.safetensors" "$SN" detect --data fashion-mnist --per-domain 5000 \
     --epochs 15 --threads "$THREADS" --out "$OUT/detect-fmnist"
step dynamic-fmnist "$OUT/dynamic-fmnist/stream.json" "$SN" dynamic --model small-resnet8 --weights "$ckpt" \
     --data fashion-mnist --detector "$OUT/detect-fmnist/detector.safetensors" --limit "$LIMIT" --threads "$THREADS" \
     --out "$OUT/dynamic-fmnist"

if [ -z "${CIFAR:-}" ] || [ -z "${WEIGHTS:-}" ]; then
  echo "CIFAR / WEIGHTS not set: skipping the CIFAR-10 experiments" >&2
  exit 0
fi
R20="$WEIGHTS/resnet20-cifar10.safetensors"
R56="$WEIGHTS/resnet56-cifar10.safetensors"
# the detector (log-normalized spectrum, the paper's) and its raw-magnitude ablation
step detect-cifar10 "$OUT/detect-cifar10/detector.safetensors" "$SN" detect --data "cifar10:$CIFAR" --per-domain 5000 \
     --epochs 15 --threads "$THREADS" --out "$OUT/detect-cifar10"
step detect-cifar10-raw "$OUT/detect-cifar10-raw/detector.safetensors" "$SN" detect --data "cifar10:$CIFAR" \
     --per-domain 5000 --epochs 15 --scale raw --threads "$THREADS" --out "$OUT/detect-cifar10-raw"
# the 15 x 15 sensitivity matrix and the stream benchmark, ResNet-20 and ResNet-56
step dynamic-resnet20 "$OUT/dynamic-resnet20/stream.json" "$SN" dynamic --model resnet20 --weights "$R20" \
     --data "cifar10:$CIFAR" --detector "$OUT/detect-cifar10/detector.safetensors" --limit "$LIMIT" --sensitivity \
     --threads "$THREADS" --out "$OUT/dynamic-resnet20"
step dynamic-resnet56 "$OUT/dynamic-resnet56/stream.json" "$SN" dynamic --model resnet56 --weights "$R56" \
     --data "cifar10:$CIFAR" --detector "$OUT/detect-cifar10/detector.safetensors" --limit "$LIMIT" \
     --threads "$THREADS" --out "$OUT/dynamic-resnet56"
