#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Re-runs every seed-000 experiment of docs/results/ (hours on 2 cores; each step is skipped when
# its output directory already holds adapt.json / the analysis CSVs, so an interrupted run resumes).
#
#   CIFAR=/path/to/cifar10 WEIGHTS=/path/to/pretrained bash scripts/reproduce_seed000.sh
#
# CIFAR:   a CIFAR-10 test set (binary batches, or an image folder DIR/test/<class>/*.jpg)
# WEIGHTS: the folder with resnet20-cifar10.safetensors and resnet56-cifar10.safetensors
# OUT:     where results go (default results/seed000); THREADS: threads per run (default 2)
# FROST:   optional, the reference's frost photographs (../shared/data/frost) for the 5-draw run
# Fashion-MNIST comes from Debian (dataset-fashion-mnist); its networks are trained here.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/seed000}
THREADS=${THREADS:-2}
. scripts/reproduce_common.sh

# (a) and (d): Fashion-MNIST networks trained here, BN / GroupNorm / InstanceNorm, same recipe
for norm in batch group:8 instance; do
  tag=${norm/:/}
  ckpt="$OUT/fmnist-r8-$tag-e6.safetensors"
  step "train-fmnist-$tag" "$ckpt" "$SN" train --model small-resnet8 --data fashion-mnist --norm "$norm" --epochs 6 \
       --batch 128 --lr 0.1 --schedule onecycle --no-augment --seed 1 --threads "$THREADS" --out "$ckpt"
  step "fashion-mnist-$tag" "$OUT/fashion-mnist-$tag/adapt.json" "$SN" adapt --model small-resnet8 --norm "$norm" \
       --name small-resnet8 --weights "$ckpt" --data fashion-mnist --threads "$THREADS" --out "$OUT/fashion-mnist-$tag"
done

if [ -z "${CIFAR:-}" ] || [ -z "${WEIGHTS:-}" ]; then
  echo "CIFAR / WEIGHTS not set: skipping the CIFAR-10 experiments" >&2
  exit 0
fi
R20="$WEIGHTS/resnet20-cifar10.safetensors"
R56="$WEIGHTS/resnet56-cifar10.safetensors"
# (b) Table 1 rows (subsets and the whole test set); (c) Tables 6 and 7; Fig. 4; Figs. 2 and 3
step cifar10-resnet20 "$OUT/cifar10-resnet20/adapt.json" "$SN" adapt --model resnet20 --name ResNet-20 --weights "$R20" \
     --data "cifar10:$CIFAR" --limit 2000 --threads "$THREADS" --out "$OUT/cifar10-resnet20"
step cifar10-resnet56 "$OUT/cifar10-resnet56/adapt.json" "$SN" adapt --model resnet56 --name ResNet-56 --weights "$R56" \
     --data "cifar10:$CIFAR" --limit 1000 --threads "$THREADS" --out "$OUT/cifar10-resnet56"
step cifar10-resnet20-full "$OUT/cifar10-resnet20-full/adapt.json" "$SN" adapt --model resnet20 --name ResNet-20 \
     --weights "$R20" --data "cifar10:$CIFAR" --threads "$THREADS" --out "$OUT/cifar10-resnet20-full"
# Tables 6 and 7 with 3 K-sample draws per cell (Clean* of every setting is in the same output)
step cifar10-resnet20-table6 "$OUT/cifar10-resnet20-table6/adapt.json" "$SN" adapt --model resnet20 --name ResNet-20 \
     --weights "$R20" --data "cifar10:$CIFAR" --limit 1000 --draws 3 --variants both,var,mean \
     --threads "$THREADS" --out "$OUT/cifar10-resnet20-table6"
step cifar10-resnet20-table7 "$OUT/cifar10-resnet20-table7/adapt.json" "$SN" adapt --model resnet20 --name ResNet-20 \
     --weights "$R20" --data "cifar10:$CIFAR" --limit 1000 --draws 3 --variants both/front,both/middle,both/end \
     --threads "$THREADS" --out "$OUT/cifar10-resnet20-table7"
# Tables 6 and 7 in one pass, 5 K-sample draws per cell, 500-image subset; frost from the
# reference's photographs when FROST names their folder (the run in docs/results did), else procedural
step cifar10-resnet20-table67-draws5 "$OUT/cifar10-resnet20-table67-draws5/adapt.json" "$SN" adapt --model resnet20 \
     --name ResNet-20 --weights "$R20" --data "cifar10:$CIFAR" --limit 500 --draws 5 \
     --variants both,var,mean,both/front,both/middle,both/end ${FROST:+--frost-dir "$FROST"} \
     --threads "$THREADS" --out "$OUT/cifar10-resnet20-table67-draws5"
step cifar10-resnet20-k-sweep "$OUT/cifar10-resnet20-k-sweep/adapt.json" "$SN" adapt --model resnet20 --name ResNet-20 \
     --weights "$R20" --data "cifar10:$CIFAR" --limit 2000 --corruptions gaussian_noise \
     --samples 1,2,4,8,16,32,64,128,256 --draws 5 --threads "$THREADS" --out "$OUT/cifar10-resnet20-k-sweep"
step cifar10-resnet20-analysis "$OUT/cifar10-resnet20-analysis/cosine_similarity.csv" "$SN" analyze --model resnet20 \
     --weights "$R20" --data "cifar10:$CIFAR" --limit 1000 --threads "$THREADS" --out "$OUT/cifar10-resnet20-analysis"
echo "all seed-000 experiments in $OUT"
