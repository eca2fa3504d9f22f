#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""PyTorch (cuDNN / ATen) BatchNorm on the GPU: the peer of bench/bench_norm_cuda.cu.

Same 12 shapes, same byte counts per operation as bench_norm_cuda (training forward 3 T, inference 2 T,
backward 5 T, copy 2 T with T = the tensor's bytes), timed with CUDA events: median of `--reps` timed
calls after warm-ups. Prints one line per (op, shape): microseconds, GB/s and the fraction of
the copy bandwidth. Forward: F.batch_norm (what a user gets: cuDNN or ATen); backward: ATen's
native_batch_norm_backward on one training pass's saved statistics. GroupNorm (G = 32):
F.group_norm and aten's native_group_norm_backward; instance norm: F.instance_norm.  Usage: python3 bench/python/peer_bn_cuda.py [--reps 50] [--json out.json]
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F

SHAPES = [(128, 16, 32, 32), (128, 32, 16, 16), (128, 64, 8, 8),
          (50, 64, 112, 112), (50, 256, 56, 56), (50, 64, 56, 56), (50, 512, 28, 28), (50, 128, 28, 28),
          (50, 1024, 14, 14), (50, 256, 14, 14), (50, 2048, 7, 7), (50, 512, 7, 7)]


def timed(fn, reps):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1e-3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.backends.cudnn.benchmark = False
    dev = torch.device("cuda")
    print(f"torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}, {torch.cuda.get_device_name(0)}")
    rows = []
    g = torch.Generator(device=dev).manual_seed(1)
    for k, s in enumerate(SHAPES):
        n, c, h, w = s
        x = (torch.randn(s, device=dev, generator=g) * 2 + 0.5)
        dy = (torch.randn(s, device=dev, generator=g) * 2 + 0.5)
        y = torch.empty_like(x)
        weight = torch.ones(c, device=dev, requires_grad=True)
        bias = torch.zeros(c, device=dev, requires_grad=True)
        rm, rv = torch.zeros(c, device=dev), torch.ones(c, device=dev)
        T = x.numel() * 4
        label = f"{n}x{c}x{h}x{w}"
        t_copy = timed(lambda: y.copy_(x), args.reps)
        copy_bw = 2 * T / t_copy
        ops = {}
        with torch.no_grad():
            ops["training"] = (3, timed(lambda: F.batch_norm(x, rm, rv, weight, bias, True, 0.1, 1e-5), args.reps))
            ops["inference"] = (2, timed(lambda: F.batch_norm(x, rm, rv, weight, bias, False, 0.1, 1e-5), args.reps))
        # backward: ATen's batch-norm backward kernel on the saved statistics of one training pass
        with torch.no_grad():
            _, save_mean, save_invstd = torch.ops.aten.native_batch_norm(x, weight, bias, rm, rv, True, 0.1, 1e-5)
            ops["backward"] = (5, timed(lambda: torch.ops.aten.native_batch_norm_backward(
                dy, x, weight, rm, rv, save_mean, save_invstd, True, 1e-5, [True, True, True]), args.reps))
        # GroupNorm (G = 32, or C when C < 32) and instance norm, as bench_norm_cuda runs them
        G = c if c < 32 else 32
        with torch.no_grad():
            ops["gn_forward"] = (3, timed(lambda: F.group_norm(x, G, weight, bias, 1e-5), args.reps))
            _, gmean, grstd = torch.ops.aten.native_group_norm(x, weight, bias, n, c, h * w, G, 1e-5)
            ops["gn_backward"] = (5, timed(lambda: torch.ops.aten.native_group_norm_backward(
                dy, x, gmean, grstd, weight, n, c, h * w, G, [True, True, True]), args.reps))
            ops["in_forward"] = (3, timed(lambda: F.instance_norm(x, None, None, weight, bias, True, 0.1, 1e-5), args.reps))
        rows.append({"shape": label, "op": "copy", "us": t_copy * 1e6, "GBps": copy_bw / 1e9, "copy_fraction": 1.0})
        for op, (mult, t) in ops.items():
            bw = mult * T / t
            rows.append({"shape": label, "op": op, "us": t * 1e6, "GBps": bw / 1e9, "copy_fraction": bw / copy_bw})
    for r in rows:
        print(f"torch {r['op']:<10} {r['shape']:<16} {r['us']:10.2f} us {r['GBps']:8.1f} GB/s copy_fraction {r['copy_fraction']:.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
