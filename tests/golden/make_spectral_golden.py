#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Golden values for spectral::spectrum computed with numpy.fft in float64 (Debian python3-numpy):
# uint8 NCHW images (a 3x32x32 CIFAR-like one, a 1x28x28 MNIST-like one, a 3x28x20 non-square
# one) and their features for several option sets: x = image / 255 (gray: 0.299 R + 0.587 G +
# 0.114 B), F = numpy.fft.rfft2(x) (half) or numpy.fft.fft2(x) (full), |F| or
# log(|F| / (eps h w) + 1), numpy.fft.fftshift over the h axis (half) or both axes (full).
# Writes tests/golden/spectral_golden.safetensors (~90 KB).
# Run with Debian's interpreter:  /usr/bin/python3 tests/golden/make_spectral_golden.py
import json
import os
import struct

import numpy as np

rng = np.random.default_rng(2024)


def natural(c, h, w):
    """A smooth image (gradients + a blob) plus noise: a spectrum with a realistic dynamic range."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    out = []
    for ch in range(c):
        base = 120 + 60 * np.sin(2 * np.pi * (x / w * (ch + 1) + y / h * 0.5))
        base += 50 * np.exp(-((x - w / 3) ** 2 + (y - h / 2) ** 2) / (2 * (w / 6) ** 2))
        base += rng.normal(0, 12, size=(h, w))
        out.append(base)
    return np.clip(np.rint(np.stack(out)), 0, 255).astype(np.uint8)


images = {
    "cifar": natural(3, 32, 32),
    "mnist": natural(1, 28, 28),
    "odd": rng.integers(0, 256, size=(3, 28, 20), dtype=np.uint8),
}

# option sets: name -> (gray, shift, half, raw, eps)
option_sets = {
    "default": (False, True, True, False, 1e-3),
    "raw": (False, True, True, True, 1e-3),
    "noshift": (False, False, True, False, 1e-3),
    "full": (False, True, False, False, 1e-3),
    "full_noshift_raw": (False, False, False, True, 1e-3),
    "gray": (True, True, True, False, 1e-3),
    "gray_full_eps": (True, True, False, False, 0.05),
}


def features(img, gray, shift, half, raw, eps):
    x = img.astype(np.float64) / 255.0
    c, h, w = x.shape
    if gray and c == 3:
        x = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2])[None]
    f = np.fft.rfft2(x) if half else np.fft.fft2(x)
    mag = np.abs(f)
    if not raw:
        mag = np.log(mag / (eps * h * w) + 1.0)
    if shift:
        mag = np.fft.fftshift(mag, axes=(-2,) if half else (-2, -1))
    return mag


tensors, dtypes = {}, {}
for name, img in images.items():
    tensors[f"image.{name}"] = img
    dtypes[f"image.{name}"] = "U8"
    for oname, opts in option_sets.items():
        key = f"expected.{name}.{oname}"
        tensors[key] = features(img, *opts).astype(np.float32)
        dtypes[key] = "F32"

header, blobs, off = {}, [], 0
for name, t in tensors.items():
    b = np.ascontiguousarray(t).tobytes()
    header[name] = {"dtype": dtypes[name], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
header["__metadata__"] = {
    "source": f"make_spectral_golden.py, numpy {np.__version__}",
    "options": json.dumps({k: dict(zip(("gray", "shift", "half", "raw", "eps"), v)) for k, v in option_sets.items()}),
}
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spectral_golden.safetensors")
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
print("wrote", path, off + 8 + len(h), "bytes")
