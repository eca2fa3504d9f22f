#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Turns bench_norm's Google Benchmark JSON into the Markdown table of docs/benchmarks.md:
# per shape, our time vs oneDNN (both layouts), ratios, and the fraction of the copy loop's
# bandwidth (bytes counted at the minimum traffic of each operation).
import json
import sys

agg = sys.argv[2] if len(sys.argv) > 2 else "median"
t = {}
text = open(sys.argv[1]).read()
if text.lstrip().startswith("{"):
    benchmarks = json.loads(text)["benchmarks"]
else:  # console output of --benchmark_report_aggregates_only (e.g. an interrupted run)
    benchmarks = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 6 or not f[0].startswith("BM_") or not f[0].endswith("_" + agg):
            continue
        bw = [x for x in f if x.startswith("bytes_per_second=")][0].split("=")[1]
        mult = {"G/s": 1e9, "M/s": 1e6, "k/s": 1e3}[bw[-3:]]
        benchmarks.append({"run_name": f[0][: -len(agg) - 1], "aggregate_name": agg, "real_time": float(f[1]),
                           "time_unit": f[2], "bytes_per_second": float(bw[:-3]) * mult})
for b in benchmarks:
    if b.get("aggregate_name", agg) != agg:
        continue
    name = b["run_name"] if "run_name" in b else b["name"]
    kind, shape = name.split("/")[0], name.split("/")[1]
    t[(kind, shape)] = (b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0}[b["time_unit"]], b["bytes_per_second"])

shapes = []
for (_, s) in t:
    if s not in shapes:
        shapes.append(s)


def row(op, ours, tensors):
    out = []
    for s in shapes:
        if (ours, s) not in t:
            continue
        o, obw = t[(ours, s)]
        copy_bw = t[("BM_Copy_CPU", s)][1]
        p1 = t.get((f"BM_{op}_OneDNN_nchw", s), (float("nan"), 0))[0]
        p2 = t.get((f"BM_{op}_OneDNN_nChw16c", s), (float("nan"), 0))[0]
        best = min(p1, p2)
        out.append(f"| {s} | {o:.3f} | {p1:.3f} | {p2:.3f} | {o / best:.2f} | {obw / copy_bw:.2f} |")
    return out


print(f"Times in ms ({agg} of repetitions), one thread. ratio = ours / best oneDNN (<= 1.0 is the target);")
print("bw = our bandwidth at minimum traffic / the copy loop's on the same shape.\n")
for op, ours, label in [("BNForwardTraining", "BM_BNForwardTraining_CPU", "BN forward training"),
                        ("BNForwardInference", "BM_BNForwardInference_CPU", "BN forward inference"),
                        ("BNBackward", "BM_BNBackward_CPU", "BN backward")]:
    print(f"### {label}\n")
    print("| shape NxCxHxW | shiftnorm | oneDNN nchw | oneDNN nChw16c | ratio | bw/copy |")
    print("|---|---|---|---|---|---|")
    print("\n".join(row(op, ours, 0)))
    print()
print("### RobustNorm vs BN (shiftnorm, same run)\n")
print("| shape | RN fwd | BN fwd | RN/BN fwd | RN step | BN step | RN/BN step |")
print("|---|---|---|---|---|---|---|")
for s in shapes:
    try:
        rf, bf = t[("BM_RNForwardTraining_CPU", s)][0], t[("BM_BNForwardTraining_CPU", s)][0]
        rb, bb = t[("BM_RNTrainingStep_CPU", s)][0], t[("BM_BNTrainingStep_CPU", s)][0]
    except KeyError:
        continue
    print(f"| {s} | {rf:.3f} | {bf:.3f} | {rf / bf:.2f} | {rb:.3f} | {bb:.3f} | {rb / bb:.2f} |")
print("\nstep = forward_training + backward on a fresh batch (RobustNorm's backward searches the")
print("arg-min/arg-max of that batch, so the pair is the fair comparison).")
