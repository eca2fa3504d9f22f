#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Golden values for BN-statistics rectification (seed 000) computed with PyTorch 1.13 CPU
# (Debian python3-torch): a small conv/BN network with random weights and source statistics is
# rectified the way the paper's public code does it — reset running stats, momentum=None
# (cumulative: one batch => its mean and UNBIASED variance replace the source), ONE train-mode
# forward pass on k target images, then eval mode — and evaluated on other target images.
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
