#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Golden values for BN-statistics rectification (seed 000) computed with PyTorch 1.13 CPU
# (Debian python3-torch): a small conv/BN network with random weights and source statistics is
# rectified the way the paper's public code does it — reset running stats, momentum=None
# (cumulative: one batch => its mean and UNBIASED variance replace the source), ONE train-mode
# forward pass on k target images, then eval mode — and evaluated on other target images; and the
# Table 6/7 ablations the same way (mean only, variance only, one layer left out of the pass).
# Writes tests/golden/rectify_torch.safetensors (weights + inputs + expected outputs).
# Run with Debian's interpreter:  /usr/bin/python3 tests/golden/make_rectify_golden.py
import json
import os
import struct

import torch
import torch.nn as nn

torch.manual_seed(7)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(8)
        self.linear = nn.Linear(8, 3)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.linear(x.mean(dim=(2, 3)))


net = Net()
with torch.no_grad():
    for bn in (net.bn1, net.bn2):
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
net.eval()

k = 6
target = torch.randn(k, 1, 8, 8) * 1.7 + 0.4   # shifted "target domain"
evalx = torch.randn(5, 1, 8, 8) * 1.7 + 0.4
tensors = {name: p.detach().clone() for name, p in net.state_dict().items() if "num_batches" not in name}
source_state = {name: t.clone() for name, t in net.state_dict().items()}
tensors["input.target"] = target
tensors["input.eval"] = evalx
with torch.no_grad():
    tensors["expected.logits_source"] = net(evalx)
    # the reference procedure
    for bn in (net.bn1, net.bn2):
        bn.reset_running_stats()
        bn.momentum = None
    net.train()
    net(target)
    net.eval()
    tensors["expected.logits_rectified"] = net(evalx)
    for name in ("bn1", "bn2"):
        bn = getattr(net, name)
        tensors[f"expected.{name}.running_mean"] = bn.running_mean.clone()
        tensors[f"expected.{name}.running_var"] = bn.running_var.clone()


def ablation(keep, enabled):
    """The paper's ablations (Tables 6 and 7) in PyTorch: the enabled BN layers run ONE train-mode
    pass (normalizing with BOTH batch statistics, like the standard procedure), then only the
    statistic named by `keep` ("mean" or "var" or "both") replaces the source one; disabled layers
    stay in eval mode (source statistics) during the pass and keep them."""
    net.load_state_dict(source_state)
    net.eval()
    bns = {"bn1": net.bn1, "bn2": net.bn2}
    for name, bn in bns.items():
        if name in enabled:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
    with torch.no_grad():
        net(target)
        net.eval()
        for name, bn in bns.items():
            bn.momentum = 0.1
            if name in enabled and keep == "mean":
                bn.running_var.copy_(source_state[name + ".running_var"])
            if name in enabled and keep == "var":
                bn.running_mean.copy_(source_state[name + ".running_mean"])
        out = {"logits": net(evalx)}
        for name, bn in bns.items():
            out[name + ".running_mean"] = bn.running_mean.clone()
            out[name + ".running_var"] = bn.running_var.clone()
    return out


for case, keep, enabled in (("mean_only", "mean", ("bn1", "bn2")), ("var_only", "var", ("bn1", "bn2")),
                            ("bn1_disabled", "both", ("bn2",)), ("bn2_disabled", "both", ("bn1",))):
    for key, t in ablation(keep, enabled).items():
        tensors[f"expected.{case}.{key}"] = t

# safetensors writer (format: u64 header length, JSON header, raw little-endian data)
header, blobs, off = {}, [], 0
for name, t in tensors.items():
    b = t.contiguous().float().numpy().tobytes()
    header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
header["__metadata__"] = {"source": f"make_rectify_golden.py, torch {torch.__version__}"}
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rectify_torch.safetensors")
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
print("wrote", path)
