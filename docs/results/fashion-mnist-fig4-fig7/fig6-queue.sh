#!/usr/bin/env bash
# Seed 003 Fig. 6 on Fashion-MNIST: RobustNorm's range power p in {0.05, 0.1, 0.2, 0.5, 1.0}.
# Each network: small-resnet8, the Table-3 recipe (3 epochs, batch 128, onecycle, lr 0.1, no
# augmentation, seed 1; p = 0.2 is Table 3's network), then clean / FGSM / PGD at the paper's
# F-MNIST budget (normalized space, eps 0.06, 20 steps) with RN, RNT and RNM, 1,000 test images.
set -u
SN=${SN:-shiftnorm}
OUT=${OUT:-.}
cd "$OUT"
for P in 0.05 0.1 0.2 0.5 1.0; do
  [[ -f net-robust-$P.safetensors ]] || \
    $SN train --model small-resnet8 --data fashion-mnist --norm robust:$P --epochs 3 --batch 128 --lr 0.1 \
      --schedule onecycle --no-augment --threads 1 --seed 1 --out net-robust-$P.safetensors > train-robust-$P.log 2>&1
  $SN attack --model small-resnet8 --weights net-robust-$P.safetensors --norm robust:$P --data fashion-mnist --limit 1000 \
    --batch 128 --norm-mode rn,rnt,rnm --attacks fgsm,pgd --space normalized --eps 0.06 --threads 1 \
    --out attack-robust-$P > attack-robust-$P.txt 2> attack-robust-$P.err
  echo "p $P rc $?"
done
echo done
