#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Generates AdvBN's PyTorch 1.13 golden fixture: the PGD on d_mu / d_sigma and one training step of a tiny split network.
"""Run with Debian's /usr/bin/python3 (torch 1.13 CPU):  /usr/bin/python3 tests/golden/make_advbn_golden.py

Writes tests/golden/advbn_golden.safetensors. The network (names of the C++ test's nn::sequential):
  conv1 3->4 k3 p1, bn1, relu, layer1 = (0: conv 4->6 k3 p1, 1: bn, 2: relu),
  layer2 = (0: conv 6->8 k3 s2 p1, 1: bn, 2: relu), global average pool, linear 8->3,
random weights and running statistics, split after `layer1` (front: conv1..layer1, head: layer2..linear).
Written out in plain torch, following seed 001 / docs/methods.md section 2:
  f = front(x) in eval mode; mu = f.mean((0, 2, 3)); d_mu = d_sigma = 1 (shape [6]);
  f_adv = relu(d_sigma * (f - mu) + d_mu * mu); the head in eval mode with the AUXILIARY BN
  (a copy of the clean one); PGD: d += tau * sign(grad of the mean CE), clamp to [1-eps, 1+eps].
  Then one training step: head in train mode, loss = CE(head(f)) + CE(head_aux(f_adv)), backward.
Tensors:
  <name>                      state_dict of the network (F32; num_batches_tracked I64)
  input.x (5,3,8,8), input.y  images (already normalized) and labels (I64)
  pgd.d_mu.<s>, pgd.d_sigma.<s>   the perturbation after step s = 1..STEPS
  pgd.loss                    the head's loss before each step and after the last (STEPS + 1)
  pgd.f_adv                   the final perturbed features
  step.loss_clean, step.loss_adv  the two training losses
  grad.<name>                 gradients after the training step: head convolution, linear, clean BN
                              (layer2.1.*) and auxiliary BN (advbn_aux.layer2.1.*)
  step.running_mean / _var (clean), step.aux_running_mean / _var: buffers after the step
Metadata: tau, eps, steps. The script checks that every gradient component that a sign() uses is
at least 1e-5 of the largest in magnitude (float noise cannot flip a step), and stops otherwise.
"""
import copy
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_engine_golden import write_safetensors  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TAU, EPS, STEPS = 0.2, 1.1, 3


def stage(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.layer1 = stage(4, 6, 1)
        self.layer2 = stage(6, 8, 2)
        self.linear = nn.Linear(8, 3)

    def front(self, x):
        return self.layer1(F.relu(self.bn1(self.conv1(x))))

    def head(self, f, bn):
        """layer2 with the BN `bn` (the clean layer2[1] or its auxiliary copy): conv and linear shared."""
        return self.linear(F.relu(bn(self.layer2[0](f))).mean(dim=(2, 3)))


def randomize(model, g):
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.5 if "weight" in name else 0.1))
            if "bn" in name or ".1." in name:
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=g))


def check_sign(g, what):
    a = g.abs()
    if (a < 1e-5 * a.max()).any():
        raise SystemExit(f"{what}: a gradient component is within noise of 0; pick another seed")


def main():
    g = torch.Generator().manual_seed(1)
    model = Net()
    randomize(model, g)
    x = torch.randn(5, 3, 8, 8, generator=g)
    y = torch.tensor([0, 2, 1, 2, 0], dtype=torch.int64)
    out = {k: v.detach().numpy().astype(np.int64 if v.dtype == torch.int64 else np.float32).copy()
           for k, v in model.state_dict().items()}
    out["input.x"] = x.numpy().copy()
    out["input.y"] = y.numpy().copy()

    aux = copy.deepcopy(model.layer2[1])  # the auxiliary BN; the convolution and linear layer are shared
    model.eval()
    aux.eval()
    with torch.no_grad():
        f = model.front(x)
    mu = f.mean(dim=(0, 2, 3)).view(1, -1, 1, 1)
    d_mu = torch.ones(6)
    d_sigma = torch.ones(6)
    losses = []

    def perturbed(dm, ds):
        return F.relu(ds.view(1, -1, 1, 1) * (f - mu) + dm.view(1, -1, 1, 1) * mu)

    for s in range(STEPS):
        dm = d_mu.clone().requires_grad_(True)
        ds = d_sigma.clone().requires_grad_(True)
        loss = F.cross_entropy(model.head(perturbed(dm, ds), aux), y)
        losses.append(loss.item())
        gm, gs = torch.autograd.grad(loss, [dm, ds])
        check_sign(gm, f"step {s} d_mu")
        check_sign(gs, f"step {s} d_sigma")
        d_mu = torch.clamp(d_mu + TAU * gm.sign(), 1 - EPS, 1 + EPS)
        d_sigma = torch.clamp(d_sigma + TAU * gs.sign(), 1 - EPS, 1 + EPS)
        out[f"pgd.d_mu.{s + 1}"] = d_mu.numpy().copy()
        out[f"pgd.d_sigma.{s + 1}"] = d_sigma.numpy().copy()
    with torch.no_grad():
        f_adv = perturbed(d_mu, d_sigma)
        losses.append(F.cross_entropy(model.head(f_adv, aux), y).item())
    out["pgd.loss"] = np.array(losses, dtype=np.float32)
    out["pgd.f_adv"] = f_adv.numpy().copy()

    # one AdvBN training step: head in train mode, clean BN for f, auxiliary BN for f_adv
    model.layer2.train()
    aux.train()
    model.zero_grad()
    aux.zero_grad()
    lc = F.cross_entropy(model.head(f, model.layer2[1]), y)
    la = F.cross_entropy(model.head(f_adv, aux), y)
    (lc + la).backward()
    out["step.loss_clean"] = np.array([lc.item()], dtype=np.float32)
    out["step.loss_adv"] = np.array([la.item()], dtype=np.float32)
    for name, p in model.named_parameters():
        if name.startswith("layer2") or name.startswith("linear"):
            out["grad." + name] = p.grad.numpy().copy()
    for name, p in aux.named_parameters():
        out["grad.advbn_aux.layer2.1." + name] = p.grad.numpy().copy()
    out["step.running_mean"] = model.layer2[1].running_mean.numpy().copy()
    out["step.running_var"] = model.layer2[1].running_var.numpy().copy()
    out["step.aux_running_mean"] = aux.running_mean.numpy().copy()
    out["step.aux_running_var"] = aux.running_var.numpy().copy()
    write_safetensors(os.path.join(HERE, "advbn_golden.safetensors"), out,
                      {"tau": str(TAU), "eps": str(EPS), "steps": str(STEPS), "torch": torch.__version__})
    print("wrote advbn_golden.safetensors; losses", losses, "train", lc.item(), la.item())


if __name__ == "__main__":
    main()
