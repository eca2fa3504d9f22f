#!/usr/bin/env bash
# Seed 003 Table 3 on Fashion-MNIST: small-resnet8 with each normalization, the main job's recipe
# (3 epochs, batch 128, onecycle, no augmentation, seed 1; lr 0.1, no normalization lr 0.01 as the
# paper), then FGSM/BIM/MIM/CW/PGD at the paper's F-MNIST budget (normalized space, eps 0.06, CW c 10).
set -u
cd /work/runs/t3
while ! grep -q '^done' /work/runs/t1/r20-8.err 2>/dev/null || [[ ! -f /work/runs/t3/go ]]; do sleep 10; done
SN=/work/runs/t1/shiftnorm-exp
for spec in none:0.01 layer:0.1 group:8:0.1 instance:0.1 robust:0.2:0.1; do
  norm=${spec%:*}; lr=${spec##*:}; tag=${norm//:/-}
  [[ -f net-$tag.safetensors ]] || \
    $SN train --model small-resnet8 --data fashion-mnist --norm "$norm" --epochs 3 --batch 128 --lr "$lr" \
      --schedule onecycle --no-augment --threads 1 --seed 1 --out net-$tag.safetensors > train-$tag.log 2>&1
  echo "trained $tag rc $?" >> queue.log
done
cp /work/runs/fmnist-small-resnet8-e3.safetensors net-batch.safetensors
for spec in batch:population,batch none:population layer:population group-8:population instance:population robust-0.2:rn,rnt,rnm; do
  tag=${spec%%:*}; modes=${spec#*:}
  $SN attack --model small-resnet8 --weights net-$tag.safetensors --data fashion-mnist --limit 1000 --batch 128 \
    --norm-mode "$modes" --attacks fgsm,bim,mim,cw,pgd --space normalized --eps 0.06 --cw-c 10 --threads 1 \
    --out attack-$tag > attack-$tag.txt 2> attack-$tag.err
  echo "attacked $tag rc $?" >> queue.log
done
echo done >> queue.log
