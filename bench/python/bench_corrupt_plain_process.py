"""Time and page faults per call of shiftnorm.corrupt on one 224x224 image, in a process that
imports only NumPy and shiftnorm (glibc's malloc thresholds then stay at their defaults, unlike
in bench_corrupt_vs_reference.py, whose peer imports SciPy / OpenCV / scikit-image first).

    PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_corrupt_plain_process.py [--calls N]

Prints, per corruption (ImageNet table, severity 3, one thread): ms per image and minor page
faults per call. Before the corruptions took their work buffers from a per-thread scratch pool
(corrupt/scratch.hpp, 2026-12-03), a gaussian blur page-faulted its 1.2 MB float64 buffers in
on every call (6.6 ms per image here against 1.4 ms with the buffers kept).
"""
import argparse
import resource
import time

import numpy as np

import shiftnorm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20, help="timed calls per corruption (default 20)")
    args = ap.parse_args()
    img = (np.random.default_rng(0).random((224, 224, 3)) * 255).astype(np.uint8)
    print("| corruption | ms per image | minor page faults per call |")
    print("|---|---|---|")
    for name in shiftnorm.get_corruption_names("all"):
        shiftnorm.corrupt(img, 3, corruption_name=name, seed=0)  # warm-up
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        for i in range(args.calls):
            shiftnorm.corrupt(img, 3, corruption_name=name, seed=i + 1)
        ms = (time.perf_counter() - t0) / args.calls * 1e3
        faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / args.calls
        print("| %s | %.3f | %.0f |" % (name, ms, faults))


if __name__ == "__main__":
    main()
