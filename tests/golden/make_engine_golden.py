#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Generates the engine's PyTorch 1.13 golden fixtures (ResNet-20, DenseNet-BC, VGG-BN; forward + gradients).
"""Run with Debian's /usr/bin/python3 (torch 1.13 CPU):  /usr/bin/python3 tests/golden/make_engine_golden.py

Writes tests/golden/engine_<net>.safetensors, each holding for one network with random weights:
  <name>                 parameters and buffers (PyTorch state_dict names, F32; running_var > 0)
  input.x, input.y       batch of 2 images (N,3,32,32) and labels (I64)
  eval.logits            model.eval() output
  train.logits, train.loss      model.train() output and mean cross-entropy
  grad.<param>           d loss / d param after train-mode backward
  grad.input             d loss / d input
  after.<buffer>         running_mean / running_var after the train-mode forward (momentum 0.1)
The architectures mirror shiftnorm::models exactly (names and layouts), at small widths.
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def write_safetensors(path, tensors, metadata):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        if a.dtype == np.float32:
            dt = "F32"
        elif a.dtype == np.int64:
            dt = "I64"
        else:
            raise TypeError(name)
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- ResNet-20 (akamaster layout, option A) ----------------------------------------------------
class LambdaLayer(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class BasicBlock(nn.Module):
    def __init__(self, inp, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != planes:
            pad = (planes - inp) // 2
            self.shortcut = LambdaLayer(
                lambda x: F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad, planes - inp - pad), "constant", 0))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    def __init__(self, n, width=16, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        inp, layers = width, []
        for s in range(3):
            planes, blocks = width << s, []
            for b in range(n):
                blocks.append(BasicBlock(inp, planes, 2 if (b == 0 and s > 0) else 1))
                inp = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(inp, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


# ---- DenseNet-BC (torchvision names, CIFAR stem) ------------------------------------------------
class DenseLayer(nn.Module):
    def __init__(self, c, k):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(c, 4 * k, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(4 * k)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(4 * k, k, 3, 1, 1, bias=False)

    def forward(self, x):
        y = self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))
        return torch.cat([x, y], 1)


class DenseNetBC(nn.Module):
    def __init__(self, depth, k, classes=10):
        super().__init__()
        n = (depth - 4) // 6
        c = 2 * k
        f = nn.Sequential()
        f.add_module("conv0", nn.Conv2d(3, c, 3, 1, 1, bias=False))
        for b in range(3):
            blk = nn.Sequential()
            for l in range(n):
                blk.add_module("denselayer%d" % (l + 1), DenseLayer(c, k))
                c += k
            f.add_module("denseblock%d" % (b + 1), blk)
            if b < 2:
                t = nn.Sequential()
                t.add_module("norm", nn.BatchNorm2d(c))
                t.add_module("relu", nn.ReLU())
                t.add_module("conv", nn.Conv2d(c, c // 2, 1, bias=False))
                t.add_module("pool", nn.AvgPool2d(2, 2))
                f.add_module("transition%d" % (b + 1), t)
                c //= 2
        f.add_module("norm5", nn.BatchNorm2d(c))
        self.features = f
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        x = F.relu(self.features(x))
        return self.classifier(F.adaptive_avg_pool2d(x, 1).flatten(1))


# ---- VGG-BN (torchvision features indices, CIFAR head) -----------------------------------------
PLANS = {11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]}


class VGG(nn.Module):
    def __init__(self, depth, width, classes=10):
        super().__init__()
        layers, c = [], 3
        for v in PLANS[depth]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                o = max(1, v * width // 64)
                layers += [nn.Conv2d(c, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU()]
                c = o
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, classes)

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def randomize(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() > 1:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            elif "bn" in name or "norm" in name or (name.startswith("features.") and p.dim() == 1):
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))


def make(name, model, seed):
    gen = torch.Generator().manual_seed(seed)
    randomize(model, gen)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    y = torch.tensor([3, 7], dtype=torch.int64)
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        out[k] = v.detach().numpy().astype(np.float32).copy()
    out["input.x"] = x.numpy().copy()
    out["input.y"] = y.numpy().copy()
    model.eval()
    with torch.no_grad():
        out["eval.logits"] = model(x).numpy().copy()
    model.train()
    xi = x.clone().requires_grad_(True)
    logits = model(xi)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    out["train.logits"] = logits.detach().numpy().copy()
    out["train.loss"] = np.array([loss.item()], dtype=np.float32)
    out["grad.input"] = xi.grad.numpy().copy()
    for k, p in model.named_parameters():
        out["grad." + k] = p.grad.numpy().copy()
    for k, b in model.named_buffers():
        if k.endswith("running_mean") or k.endswith("running_var"):
            out["after." + k] = b.numpy().copy()
    path = os.path.join(HERE, "engine_%s.safetensors" % name)
    write_safetensors(path, out, {"generator": "tests/golden/make_engine_golden.py", "torch": torch.__version__,
                                  "model": name})
    print("wrote", path, os.path.getsize(path), "bytes, loss", loss.item())


if __name__ == "__main__":
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False  # plain fp32 reference kernels
    make("resnet20", CifarResNet(3, 16), 20)
    make("densenet_bc_16_4", DenseNetBC(16, 4), 16)
    make("vgg11_w8", VGG(11, 8), 11)
