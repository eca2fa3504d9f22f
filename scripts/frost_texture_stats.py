#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summary statistics of the reference's frost photographs after the CIFAR resize (0.2, as
cv2.resize in the reference): per photograph, the grey mean and within-32x32-crop standard
deviation, the channel means as a tint (channel mean / grey mean), and the spread of crop means.
These are the `styles` and `mean_jitter` of corrupt::procedural_frost_params::calibrated()
(include/shiftnorm/corrupt/frost.hpp); the contrast is then calibrated on accuracy
(examples/calibrate_frost.cpp). Needs numpy and OpenCV (python3-opencv).

    /usr/bin/python3 scripts/frost_texture_stats.py ../shared/data/frost
"""
import sys

import cv2
import numpy as np


def main(folder, crops=400, size=32, seed=0):
    rng = np.random.default_rng(seed)
    spreads = []
    print(f"{'photograph':12s} {'grey mean':>9s} {'crop sd':>8s} {'sd of crop means':>16s}  tint (R, G, B)")
    for name in ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg"]:
        im = cv2.imread(f"{folder}/{name}")
        if im is None:
            sys.exit(f"cannot read {folder}/{name}")
        im = cv2.resize(im[:, :, ::-1], (0, 0), fx=0.2, fy=0.2).astype(np.float64) / 255.0
        means, sds = [], []
        for _ in range(crops):
            y = rng.integers(0, im.shape[0] - size)
            x = rng.integers(0, im.shape[1] - size)
            c = im[y:y + size, x:x + size]
            means.append(c.mean())
            sds.append(c.std())
        chan = im.reshape(-1, 3).mean(axis=0)
        grey = chan.mean()
        spreads.append(np.std(means))
        print(f"{name:12s} {grey:9.3f} {np.mean(sds):8.3f} {np.std(means):16.3f}  "
              + ", ".join(f"{t:.3f}" for t in chan / grey))
    print(f"mean spread of crop means (mean_jitter): {np.mean(spreads):.3f}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/frost")
