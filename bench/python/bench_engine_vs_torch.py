# SPDX-License-Identifier: MIT
"""Engine speed against PyTorch 1.13 (Debian python3-torch, oneDNN convolutions), measured
alternately in one run (ours, torch, ours, torch, ...) so both see the same machine load.
Prints every run, the medians and the ratios as a Markdown table (issue 14's targets).

    /usr/bin/python3 bench/python/bench_engine_vs_torch.py --shiftnorm build/tools/shiftnorm \\
        --cifar /work/data [--threads 1,2] [--repeats 3]

Cases (same network, batch and optimizer on both sides):
- train small-resnet8 on Fashion-MNIST, batch 128, SGD (tools/torch_reference_train.py is the peer);
- train CIFAR ResNet-20 (option-A shortcuts, as the pretrained checkpoints), batch 128, SGD
  momentum 0.9, weight decay 5e-4, no augmentation; ours reads the JPEG CIFAR-10 training split,
  torch trains on random tensors of the same shape (timing only: the loops exclude data loading);
- inference (eval mode, batch 500) of CIFAR ResNet-20 and ResNet-56: ours `shiftnorm eval` on the
  JPEG test split, torch under torch.no_grad() on random tensors.
img/s is each tool's own measurement of its loop after the first step/batch (ours: the CLI's
"after the first step" / "after the first batch" figure; torch: wall time of the loop after one
warm-up batch; tools/torch_reference_train.py's "after the first step" figure). Both run with glibc malloc tuned not to return memory to the kernel
(--malloc tuned, the default; see MALLOC_TUNED): without it the peer's speed on a VM depends on
page-fault costs and swings up to 3x between identical runs.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def torch_worker(args):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(int(args.threads))
    torch.manual_seed(0)

    class Block(nn.Module):
        def __init__(self, inp, out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(inp, out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(out)
            self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(out)
            self.pad = (out - inp) // 2 if (stride != 1 or inp != out) else -1

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            s = x if self.pad < 0 else F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))
            return F.relu(y + s)

    class ResNet(nn.Module):  # the CIFAR ResNet of He et al. (2016), option A
        def __init__(self, depth):
            super().__init__()
            n = (depth - 2) // 6
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            layers, inp = [], 16
            for s in range(3):
                for b in range(n):
                    layers.append(Block(inp, 16 << s, 2 if (b == 0 and s > 0) else 1))
                    inp = 16 << s
            self.layers = nn.Sequential(*layers)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.layers(F.relu(self.bn1(self.conv1(x))))
            return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    model = ResNet(args.depth)
    n, b = args.images, args.batch
    x = torch.randn(b, 3, 32, 32)
    y = torch.randint(0, 10, (b,))
    if args.mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
    else:
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
    step()  # warm-up (oneDNN primitive creation)
    t0 = time.perf_counter()
    for _ in range(max(1, n // b)):
        step()
    el = time.perf_counter() - t0
    print("torch %.1f img/s" % (max(1, n // b) * b / el))


#: glibc malloc settings that keep freed memory in the process (no trim, no mmap per tensor). PyTorch
#: allocates its activations afresh every step; with glibc's defaults the large blocks go back to the
#: kernel and come back as zeroed pages, and on this project's VMs that made the peer swing 1.5-3x
#: between runs (ResNet-20 training at one thread: 150-230 img/s default, 429-444 img/s with these,
#: alternating, 2026-12-03). PyTorch's own tuning guide recommends jemalloc/tcmalloc for the same
#: reason; these settings are the glibc equivalent and need no extra package. Both tools get them.
MALLOC_TUNED = {"MALLOC_TRIM_THRESHOLD_": "4294967296", "MALLOC_TOP_PAD_": "1073741824",
                "MALLOC_MMAP_THRESHOLD_": "33554432"}
RUN_ENV = dict(os.environ)


def run(cmd, pattern):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=RUN_ENV)
    if out.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (out.returncode, " ".join(cmd), out.stdout[-2000:]))
    m = re.findall(pattern, out.stdout)
    if not m:
        sys.exit("no img/s in the output of %s:\n%s" % (" ".join(cmd), out.stdout[-2000:]))
    return float(m[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shiftnorm", default=os.path.join(ROOT, "build/tools/shiftnorm"))
    ap.add_argument("--cifar", default="/work/data", help="CIFAR-10 folder (JPEG copy or official binary)")
    ap.add_argument("--weights", default=os.path.join(ROOT, "../shared/data/pretrained"),
                    help="folder with resnet{20,56}-cifar10.safetensors")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="train-fmnist,train-resnet20,eval-resnet20,eval-resnet56")
    ap.add_argument("--malloc", choices=["tuned", "default"], default="tuned",
                    help="glibc malloc settings for both tools: 'tuned' (no trimming; the peer's stable, "
                         "fast configuration: the default) or 'default' (glibc's, as before 2026-12-03)")
    # worker mode (internal)
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="train", help=argparse.SUPPRESS)
    ap.add_argument("--depth", type=int, default=20, help=argparse.SUPPRESS)
    ap.add_argument("--images", type=int, default=2560, help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.torch_worker:
        return torch_worker(args)

    if args.malloc == "tuned":
        RUN_ENV.update(MALLOC_TUNED)
    print("malloc settings: %s" % (args.malloc if args.malloc == "default" else
                                   " ".join("%s=%s" % kv for kv in MALLOC_TUNED.items())), flush=True)
    sn, py = args.shiftnorm, "/usr/bin/python3"
    me = os.path.abspath(__file__)
    # ours: the steady-state rate (after the first step / batch, which also allocates and first-touches
    # the buffers), as torch's loop is timed after a warm-up batch
    ours_rate = r"; ([0-9.]+) img/s after the first step"
    cases = {
        "train-fmnist": (
            lambda t: [sn, "train", "--model", "small-resnet8", "--data", "fashion-mnist", "--epochs", "1",
                       "--limit-train", "5120", "--limit-test", "100", "--no-augment", "--threads", str(t)],
            ours_rate,
            lambda t: [py, os.path.join(ROOT, "tools/torch_reference_train.py"), "--threads", str(t), "--epochs", "1",
                       "--limit-train", "5120", "--no-test", "--no-augment"],
            ours_rate),
        "train-resnet20": (
            lambda t: [sn, "train", "--model", "resnet20", "--data", "cifar10:" + args.cifar, "--epochs", "1",
                       "--limit-train", "2560", "--limit-test", "100", "--no-augment", "--batch", "128",
                       "--threads", str(t)],
            ours_rate,
            lambda t: [py, me, "--torch-worker", "--mode", "train", "--depth", "20", "--images", "2560", "--batch",
                       "128", "--threads", str(t)],
            r"torch ([0-9.]+) img/s"),
    }
    for d in (20, 56):
        cases["eval-resnet%d" % d] = (
            lambda t, d=d: [sn, "eval", "--model", "resnet%d" % d, "--weights",
                            os.path.join(args.weights, "resnet%d-cifar10.safetensors" % d), "--data",
                            "cifar10:" + args.cifar, "--batch", "500", "--limit", "2000", "--threads", str(t)],
            r"\(([0-9.]+) img/s after the first batch\)",
            lambda t, d=d: [py, me, "--torch-worker", "--mode", "eval", "--depth", str(d), "--images", "2000",
                            "--batch", "500", "--threads", str(t)],
            r"torch ([0-9.]+) img/s")
    rows = []
    for case in args.cases.split(","):
        ours_cmd, ours_pat, torch_cmd, torch_pat = cases[case]
        for t in [int(v) for v in args.threads.split(",")]:
            a, b = [], []
            for r in range(args.repeats):
                a.append(run(ours_cmd(t), ours_pat))
                b.append(run(torch_cmd(t), torch_pat))
                print("%s threads %d run %d: shiftnorm %.1f img/s, torch %.1f img/s" % (case, t, r, a[-1], b[-1]),
                      flush=True)
            rows.append((case, t, a, b, statistics.median(a), statistics.median(b)))
    print("\n| case | threads | shiftnorm img/s (runs) | PyTorch img/s (runs) | median ratio |")
    print("|---|---|---|---|---|")
    for case, t, a, b, ma, mb in rows:
        print("| %s | %d | %s | %s | %.2f |" % (case, t, ", ".join("%.0f" % v for v in a),
                                               ", ".join("%.0f" % v for v in b), ma / mb))
    by = {(c, t): (ma, mb) for c, t, _, _, ma, mb in rows}
    for c in args.cases.split(","):
        if (c, 1) in by and (c, 2) in by:
            print("%s scaling 1 -> 2 threads: shiftnorm %.2fx, torch %.2fx" % (
                c, by[(c, 2)][0] / by[(c, 1)][0], by[(c, 2)][1] / by[(c, 1)][1]))


if __name__ == "__main__":
    main()
