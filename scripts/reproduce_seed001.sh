#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Re-runs every seed-001 (AdvBN) experiment of docs/results/seed001.md: AdvBN and the plain control
# on the pretrained CIFAR-10 ResNet-20 (a 10,000-image training subset for 4 epochs, then the whole
# training split for 4 epochs), their CIFAR-10-C tables with and without BN rectification, the
# feature divergence, the same on Fashion-MNIST, and the eps sweep (about 2.5 hours on 2 cores;
# each step is skipped when its output exists, so an interrupted run resumes).
#
#   CIFAR=/path/to/cifar10 WEIGHTS=/path/to/pretrained FROST=/path/to/frost bash scripts/reproduce_seed001.sh
#
# CIFAR:   CIFAR-10 with its training split (binary batches, or an image folder DIR/{train,test}/<class>/*.jpg)
# WEIGHTS: the folder with resnet20-cifar10.safetensors; FROST (optional): the reference's frost textures
# OUT:     where results go (default results/seed001); THREADS: threads per run (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/seed001}
THREADS=${THREADS:-2}
. scripts/reproduce_common.sh
FROST_OPT=()
[ -n "${FROST:-}" ] && FROST_OPT=(--frost-dir "$FROST")
# a fine-tuning step is done when its marker exists; until then it resumes from its checkpoint
finish() { local marker=$1; shift; "$@" --resume && touch "$marker"; }

# Fashion-MNIST: the main job's network (3 epochs), fine-tuned with AdvBN / the control, then Fashion-MNIST-C
ckpt="$OUT/fmnist-small-resnet8-e3.safetensors"
step train-fmnist "$ckpt" "$SN" train --model small-resnet8 --data fashion-mnist --epochs 3 --batch 128 --lr 0.1 \
     --schedule onecycle --no-augment --seed 1 --threads "$THREADS" --out "$ckpt"
for aug in aug noaug; do
  extra=(); [ $aug = noaug ] && extra=(--no-augment)
  for mode in advbn control; do
    ctl=(); [ $mode = control ] && ctl=(--control)
    step fm-$aug-$mode "$OUT/fm-$aug-$mode.done" finish "$OUT/fm-$aug-$mode.done" "$SN" advbn --model small-resnet8 --weights "$ckpt" \
         --data fashion-mnist --epochs 2 --limit-train 10000 --limit-test 2000 "${extra[@]}" "${ctl[@]}" \
         --threads "$THREADS" --out "$OUT/fm-$aug-$mode.safetensors"
    step fm-$aug-$mode-c "$OUT/fm-$aug-$mode-c/adapt.json" "$SN" adapt --model small-resnet8 \
         --weights "$OUT/fm-$aug-$mode.safetensors" --data fashion-mnist --limit 2000 --threads "$THREADS" --out "$OUT/fm-$aug-$mode-c"
  done
done
step fm-pretrained-c "$OUT/fm-pretrained-c/adapt.json" "$SN" adapt --model small-resnet8 --weights "$ckpt" \
     --data fashion-mnist --limit 2000 --threads "$THREADS" --out "$OUT/fm-pretrained-c"
for eps in 0.5 1.0 1.5; do  # Table 4's shape: steps = ceil(eps / 0.2) + 1 (--steps 0)
  step fm-eps$eps "$OUT/fm-eps$eps.done" finish "$OUT/fm-eps$eps.done" "$SN" advbn --model small-resnet8 --weights "$ckpt" --data fashion-mnist \
       --epochs 2 --limit-train 10000 --limit-test 2000 --eps $eps --steps 0 --threads "$THREADS" --out "$OUT/fm-eps$eps.safetensors"
  step fm-eps$eps-c "$OUT/fm-eps$eps-c/adapt.json" "$SN" adapt --model small-resnet8 --weights "$OUT/fm-eps$eps.safetensors" \
       --data fashion-mnist --limit 2000 --threads "$THREADS" --out "$OUT/fm-eps$eps-c"
done

if [ -z "${CIFAR:-}" ] || [ -z "${WEIGHTS:-}" ]; then
  echo "CIFAR / WEIGHTS not set: skipping the CIFAR-10 experiments" >&2
  exit 0
fi
R20="$WEIGHTS/resnet20-cifar10.safetensors"
step c10-pretrained "$OUT/c10-pretrained/adapt.json" "$SN" adapt --model resnet20 --weights "$R20" --data "cifar10:$CIFAR" \
     --limit 1000 "${FROST_OPT[@]}" --threads "$THREADS" --out "$OUT/c10-pretrained"
for run in 10k:10000 full:0; do
  tag=${run%%:*} limit=${run#*:}
  for mode in advbn control; do
    ctl=(); [ $mode = control ] && ctl=(--control)
    step r20-$tag-$mode "$OUT/r20-$tag-$mode.done" finish "$OUT/r20-$tag-$mode.done" "$SN" advbn --model resnet20 --weights "$R20" --data "cifar10:$CIFAR" \
         --epochs 4 --limit-train $limit --limit-test 2000 "${ctl[@]}" --threads "$THREADS" --out "$OUT/r20-$tag-$mode.safetensors"
    step c10-$tag-$mode "$OUT/c10-$tag-$mode/adapt.json" "$SN" adapt --model resnet20 --weights "$OUT/r20-$tag-$mode.safetensors" \
         --data "cifar10:$CIFAR" --limit 1000 "${FROST_OPT[@]}" --threads "$THREADS" --out "$OUT/c10-$tag-$mode"
  done
  step divergence-$tag "$OUT/divergence-$tag.csv" "$SN" divergence --model resnet20 \
       --weights "$R20,$OUT/r20-$tag-control.safetensors,$OUT/r20-$tag-advbn.safetensors" --labels pretrained,control,advbn \
       --from-stage layer2 --data "cifar10:$CIFAR" --limit 1000 --severity 3 "${FROST_OPT[@]}" --threads "$THREADS" \
       --out "$OUT/divergence-$tag"
done
