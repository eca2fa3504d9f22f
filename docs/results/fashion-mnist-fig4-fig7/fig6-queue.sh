#!/usr/bin/env bash
# Seed 003 Fig. 6 on Fashion-MNIST: RobustNorm's range power p. Each network: small-resnet8 with
# the Table-3 recipe (3 epochs, batch 128, onecycle, lr 0.1, no augmentation, seed 1; p = 0.2 is
# Table 3's network, reused), then clean / FGSM / PGD at the paper's F-MNIST budget (normalized
# space, eps 0.06, 20 steps) with RN, RNT and RNM on 1,000 test images.
#   SN=shiftnorm OUT=dir bash fig6-queue.sh "0.05 0.1"   (the p values of this job)
set -u
SN=${SN:-shiftnorm}
OUT=${OUT:-.}
cd "$OUT"
for P in $1; do
  [[ -f net-robust-$P.safetensors ]] || \
    $SN train --model small-resnet8 --data fashion-mnist --norm robust:$P --epochs 3 --batch 128 --lr 0.1 \
      --schedule onecycle --no-augment --threads 1 --seed 1 --out net-robust-$P.safetensors > train-robust-$P.log 2>&1
  $SN attack --model small-resnet8 --weights net-robust-$P.safetensors --norm robust:$P --data fashion-mnist --limit 1000 \
    --batch 128 --norm-mode rn,rnt,rnm --attacks fgsm,pgd --space normalized --eps 0.06 --threads 1 \
    --out attack-robust-$P > attack-robust-$P.txt 2> attack-robust-$P.err
  echo "p $P rc $?"
done
