#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# PyTorch 1.13 peer of `shiftnorm train` (same network, data pipeline, optimizer) for side-by-side timing.
"""Usage (Debian's python3 with torch 1.13 CPU):
  /usr/bin/python3 tools/torch_reference_train.py --threads 1 --limit-train 5120 --epochs 1
  /usr/bin/python3 tools/torch_reference_train.py --threads 2 --epochs 3        # full run, test accuracy

Network: small-resnet8 of shiftnorm::models (CIFAR layout, width 16, projection shortcuts) on
Fashion-MNIST from /usr/share/datasets/fashion-mnist; normalization (0.2860, 0.3530); random crop
with 2-pixel zero padding + horizontal flip; SGD momentum 0.9, weight decay 5e-4, OneCycleLR
(max_lr 0.1); batch 128; prints img/s of each epoch's training loop and the test accuracy.
"""
import argparse
import gzip
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load_idx(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


class Block(nn.Module):
    def __init__(self, inp, out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != out:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class SmallResNet(nn.Module):
    def __init__(self, depth=8, width=16, classes=10, in_ch=1):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        layers, inp = [], width
        for s in range(3):
            blocks = []
            for b in range(n):
                blocks.append(Block(inp, width << s, 2 if (b == 0 and s > 0) else 1))
                inp = width << s
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.linear = nn.Linear(inp, classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(F.adaptive_avg_pool2d(x, 1).flatten(1))


def batch(images, idx, rng, augment, pad=2):
    x = images[idx].astype(np.float32) / 255.0
    if augment:
        n, h, w = x.shape
        p = np.zeros((n, h + 2 * pad, w + 2 * pad), np.float32)
        p[:, pad:pad + h, pad:pad + w] = x
        oy = rng.integers(0, 2 * pad + 1, n)
        ox = rng.integers(0, 2 * pad + 1, n)
        x = np.stack([p[i, oy[i]:oy[i] + h, ox[i]:ox[i] + w] for i in range(n)])
        flip = rng.random(n) < 0.5
        x[flip] = x[flip, :, ::-1]
    x = (x - 0.2860) / 0.3530
    return torch.from_numpy(np.ascontiguousarray(x[:, None]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--depth", type=int, default=8)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--limit-train", type=int, default=0)
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--no-test", action="store_true")
    ap.add_argument("--no-augment", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    xtr = load_idx(a.data + "/train-images-idx3-ubyte.gz")
    ytr = load_idx(a.data + "/train-labels-idx1-ubyte.gz").astype(np.int64)
    xte = load_idx(a.data + "/t10k-images-idx3-ubyte.gz")
    yte = load_idx(a.data + "/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if a.limit_train:
        xtr, ytr = xtr[:a.limit_train], ytr[:a.limit_train]
    net = SmallResNet(a.depth, a.width)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    steps = (len(xtr) + a.batch - 1) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps * a.epochs)
    rng = np.random.default_rng(0)
    print("torch %s, %d thread(s), mkldnn %s" % (torch.__version__, torch.get_num_threads(), torch.backends.mkldnn.is_available()))
    t_all = time.time()
    for ep in range(a.epochs):
        net.train()
        order = rng.permutation(len(xtr))
        t0, seen, correct, loss_sum = time.time(), 0, 0, 0.0
        for s in range(steps):
            idx = order[s * a.batch:(s + 1) * a.batch]
            x, y = batch(xtr, idx, rng, not a.no_augment), torch.from_numpy(ytr[idx])
            out = net(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
            correct += (out.argmax(1) == y).sum().item()
            loss_sum += loss.item() * len(idx)
            if s == 0:
                t1, first = time.time(), len(idx)
        dt = time.time() - t0
        steady = "; %.1f img/s after the first step" % ((seen - first) / (time.time() - t1)) if steps > 1 else ""
        msg = "epoch %d/%d: train loss %.4f acc %.2f%%, %.1f s (%.1f img/s%s)" % (
            ep + 1, a.epochs, loss_sum / seen, 100.0 * correct / seen, dt, seen / dt, steady)
        if not a.no_test:
            net.eval()
            with torch.no_grad():
                c = 0
                for s in range(0, len(xte), 500):
                    c += (net(batch(xte, np.arange(s, min(s + 500, len(xte))), rng, False)).argmax(1)
                          == torch.from_numpy(yte[s:s + 500])).sum().item()
            msg += ", test acc %.2f%%" % (100.0 * c / len(xte))
        print(msg, flush=True)
    print("total %.1f s" % (time.time() - t_all))


if __name__ == "__main__":
    main()
