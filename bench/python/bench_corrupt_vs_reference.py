# SPDX-License-Identifier: MIT
"""Time per image of every corruption: shiftnorm (Python package) against the reference Python
implementation, side by side in one run. Prints a Markdown table and the ratios.

    PYTHONPATH=build/python SHIFTNORM_FROST_DIR=../shared/data/frost \\
        /usr/bin/python3 bench/python/bench_corrupt_vs_reference.py [--peer auto|imagecorruptions|builtin]

Both sides use the ImageNet parameter table at severity 3 (imagecorruptions' parameters).
The peer: the `imagecorruptions` package when importable (not in Debian), otherwise
reference_peer.py (the same algorithms and library calls: NumPy, scikit-image, SciPy, OpenCV,
Pillow from Debian). Sizes: one 224x224 image (ImageNet) and a CIFAR batch of 32x32 images.
Timed: shiftnorm.corrupt on one image, one thread (threads=1: the like-for-like number), and
shiftnorm.corrupt_batch on a batch with every core.
"""
import argparse
import os
import sys
import time

import numpy as np

import shiftnorm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def load_peer(kind):
    if kind in ("auto", "imagecorruptions"):
        try:
            import imagecorruptions as ic
            return "imagecorruptions " + getattr(ic, "__version__", "?"), lambda img, name: ic.corrupt(
                img, severity=3, corruption_name=name)
        except ImportError:
            if kind == "imagecorruptions":
                raise
    import reference_peer as rp
    return "reference_peer.py (reference algorithms, Debian NumPy/scikit-image/SciPy/OpenCV/Pillow)", \
        lambda img, name: rp.corrupt(img, 3, name)


def per_image(fn, images, min_time):
    """Seconds per image: runs fn over the images (cycling) until min_time has passed (>= 2 calls)."""
    fn(images[0])  # warm-up (imports, caches, texture reads of the first call)
    n, t0 = 0, time.perf_counter()
    while True:
        fn(images[n % len(images)])
        n += 1
        el = time.perf_counter() - t0
        if n >= 2 and el >= min_time:
            return el / n


def smooth_images(n, size, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([(x * 255 // size), (y * 255 // size), ((x + y) * 127 // size)], axis=-1)
    return np.clip(base[None] + rng.integers(-30, 31, size=(n, size, size, 3)), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peer", default="auto", choices=["auto", "imagecorruptions", "builtin"])
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds per measurement (default 0.5)")
    ap.add_argument("--only", default="", help="comma-separated corruptions (default: all 19)")
    ap.add_argument("--filters", default="fast", choices=["fast", "reference"],
                    help="shiftnorm's gaussian / defocus / motion blur arithmetic (default fast; the same bytes)")
    args = ap.parse_args()
    if not os.environ.get("SHIFTNORM_FROST_DIR"):
        sys.exit("set SHIFTNORM_FROST_DIR to the reference's frost textures (../shared/data/frost): the peer reads them")
    label, peer = load_peer(args.peer)
    names = args.only.split(",") if args.only else shiftnorm.get_corruption_names("all")
    frost_dir = os.environ["SHIFTNORM_FROST_DIR"]
    print("peer: %s; shiftnorm %s; %d cores; ImageNet table, severity 3; filters %s" % (
        label, shiftnorm.__version__, os.cpu_count(), args.filters))
    worst = {}
    for size, n_batch in ((224, 32), (32, 512)):
        imgs = smooth_images(8, size, 1)
        batch = smooth_images(n_batch, size, 2)
        print("\n### %dx%d images\n" % (size, size))
        print("| corruption | peer ms/img | shiftnorm 1 thread ms/img | speed-up | shiftnorm batch of %d, all cores ms/img "
              "| speed-up |" % n_batch)
        print("|---|---|---|---|---|---|")
        for name in names:
            tp = per_image(lambda im: peer(im, name), imgs, args.min_time)
            t1 = per_image(lambda im: shiftnorm.corrupt_batch(im[None], 3, name, seed=1, table="imagenet", threads=1,
                                                              frost_dir=frost_dir, filters=args.filters), imgs, args.min_time)
            tb = per_image(lambda _: shiftnorm.corrupt_batch(batch, 3, name, seed=1, table="imagenet", threads=0,
                                                             frost_dir=frost_dir, filters=args.filters), [None], args.min_time) / n_batch
            worst[(size, name)] = tp / t1
            print("| %s | %.3f | %.3f | %.1fx | %.4f | %.1fx |" % (name, tp * 1e3, t1 * 1e3, tp / t1, tb * 1e3, tp / tb),
                  flush=True)
    w = min(worst, key=worst.get)
    print("\nslowest speed-up (1 thread): %.1fx (%s, %dx%d)" % (worst[w], w[1], w[0], w[0]))


if __name__ == "__main__":
    main()
