#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Generates the attack suite's PyTorch 1.13 golden fixture: FGSM and BIM adversarial images of a tiny BN network.
"""Run with Debian's /usr/bin/python3 (torch 1.13 CPU):  /usr/bin/python3 tests/golden/make_attack_golden.py

Writes tests/golden/attack_golden.safetensors holding, for one tiny network with random weights
and random running statistics (conv1 3->4 k3 p1, bn1, relu, conv2 4->6 k3 s2 p1, bn2, relu,
global average pool, linear 6->3; the names of the C++ test's nn::sequential):
  <name>                       parameters and buffers (state_dict names, F32)
  input.x, input.y             4 images (4,3,8,8) in [0, 1] and labels (I64)
  input.mean, input.std        the per-channel input normalization (pixel space)
  <case>.x_adv                 adversarial images of each case below
Cases (the attacks written out here in plain torch, in the order of shiftnorm::attack):
  p_fgsm, p_bim                population statistics (model.eval()), pixel space, eps 8/255,
                               BIM step 2/255, 5 steps, clip [0, 1]
  b_fgsm, b_bim                the same with the statistics of the batch being attacked
                               (F.batch_norm(training=True) without running buffers: nothing is updated)
  n_bim                        population statistics, normalized space: eps 0.1, step 0.01, 5
                               steps, clip to [min, max] of the normalized clean batch
An attack step is delta = clamp(x_adv + a * sign(g) - x, -eps, eps); x_adv = clamp(x + delta, lo, hi),
g the gradient of the MEAN cross-entropy of the batch. sign() is only well defined where the
gradient is not within float noise of zero: the script asserts that every gradient component
used is at least 1e-5 of the largest one in magnitude (so a 1e-6 relative difference between
the two implementations cannot flip a step), and otherwise stops.
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_engine_golden import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(6)
        self.linear = nn.Linear(6, 3)
        self.batch_stats = False

    def bn(self, m, x):
        if self.batch_stats:  # statistics of this batch, gradients through them, buffers untouched
            return F.batch_norm(x, None, None, m.weight, m.bias, True, 0.0, m.eps)
        return m(x)

    def forward(self, x):
        x = F.relu(self.bn(self.bn1, self.conv1(x)))
        x = F.relu(self.bn(self.bn2, self.conv2(x)))
        return self.linear(x.mean(dim=(2, 3)))


def attack(model, x, y, eps, step, steps, lo, hi, pre):
    x_adv = x.clone()
    for _ in range(steps):
        xa = x_adv.clone().requires_grad_(True)
        loss = F.cross_entropy(model(pre(xa)), y)
        (g,) = torch.autograd.grad(loss, xa)
        ratio = (g.abs().min() / g.abs().max()).item()
        if ratio < 1e-5:
            sys.exit(f"a gradient component is within 1e-5 of zero (ratio {ratio:.3g}): choose another seed")
        delta = torch.clamp(x_adv + step * torch.sign(g) - x, -eps, eps)
        x_adv = torch.clamp(x + delta, lo, hi)
    return x_adv.detach()


def main():
    torch.manual_seed(3)
    model = Tiny()
    with torch.no_grad():
        for bn in (model.bn1, model.bn2):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    x = torch.rand(4, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 1])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def pixel(t):
        return (t - mean) / std

    out = {}
    e, a = 8 / 255, 2 / 255
    model.batch_stats = False
    out["p_fgsm.x_adv"] = attack(model, x, y, e, e, 1, 0.0, 1.0, pixel)
    out["p_bim.x_adv"] = attack(model, x, y, e, a, 5, 0.0, 1.0, pixel)
    model.batch_stats = True
    out["b_fgsm.x_adv"] = attack(model, x, y, e, e, 1, 0.0, 1.0, pixel)
    out["b_bim.x_adv"] = attack(model, x, y, e, a, 5, 0.0, 1.0, pixel)
    model.batch_stats = False
    xn = pixel(x)
    out["n_bim.x_adv"] = attack(model, xn, y, 0.1, 0.01, 5, xn.min().item(), xn.max().item(), lambda t: t)

    tensors = {k: v.detach().numpy().astype(np.int64 if v.dtype == torch.int64 else np.float32)
               for k, v in model.state_dict().items()}
    tensors["input.x"] = x.numpy().astype(np.float32)
    tensors["input.y"] = y.numpy().astype(np.int64)
    tensors["input.mean"] = mean.flatten().numpy().astype(np.float32)
    tensors["input.std"] = std.flatten().numpy().astype(np.float32)
    for k, v in out.items():
        tensors[k] = v.numpy().astype(np.float32)
        moved = (v - (x if not k.startswith("n_") else xn)).abs().max().item()
        print(f"{k}: max |x_adv - x| = {moved:.6f}")
    write_safetensors(os.path.join(HERE, "attack_golden.safetensors"), tensors,
                      {"generator": "tests/golden/make_attack_golden.py", "torch": torch.__version__})


if __name__ == "__main__":
    main()
