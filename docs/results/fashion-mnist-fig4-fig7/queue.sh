#!/usr/bin/env bash
# Seed 003 Figs. 4 and 7 on Fashion-MNIST, with the Table-3 networks (queue.sh in
# ../fashion-mnist-attacks: small-resnet8, 3 epochs; net-batch = BN, net-robust-0.2 = RobustNorm p 0.2).
# Fig. 4: clean / FGSM / PGD accuracy vs inference batch size 1..128 (BN-B; RN, RNT, RNM).
# Fig. 7: FGSM / BIM / MIM / PGD accuracy vs eps (BN-P, BN-B; RN, RNM = RN with the population mean).
# Paper's F-MNIST convention: normalized space, step eps/10, 20 iterations; 1,000 test images.
set -u
SN=${SN:-shiftnorm}
NETS=${NETS:-/work/runs/t3}
OUT=${OUT:-.}
for spec in batch:batch robust-0.2:rn,rnt,rnm; do
  tag=${spec%%:*}; modes=${spec#*:}
  $SN attack --model small-resnet8 --weights $NETS/net-$tag.safetensors --data fashion-mnist --limit 1000 \
    --batch 1,2,4,8,16,32,64,128 --norm-mode "$modes" --attacks fgsm,pgd --space normalized --eps 0.06 \
    --threads 1 --out $OUT/fig4-$tag > $OUT/fig4-$tag.txt 2> $OUT/fig4-$tag.err
  echo "fig4 $tag rc $?"
done
for spec in batch:population,batch robust-0.2:rn,rnm; do
  tag=${spec%%:*}; modes=${spec#*:}
  $SN attack --model small-resnet8 --weights $NETS/net-$tag.safetensors --data fashion-mnist --limit 1000 \
    --batch 128 --norm-mode "$modes" --attacks fgsm,bim,mim,pgd --space normalized \
    --eps 0.01,0.02,0.04,0.06,0.08,0.1,0.15,0.2 --threads 1 --out $OUT/fig7-$tag > $OUT/fig7-$tag.txt 2> $OUT/fig7-$tag.err
  echo "fig7 $tag rc $?"
done
echo done
