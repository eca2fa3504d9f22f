# SPDX-License-Identifier: MIT
"""shiftnorm: fast, seeded common corruptions and BN-statistics rectification.

A drop-in for the ``imagecorruptions`` package::

    from shiftnorm import corrupt, get_corruption_names   # was: from imagecorruptions import ...
    for name in get_corruption_names():
        out = corrupt(image, corruption_name=name, severity=3)

plus a batch API (``corrupt_batch``) on NHWC uint8 arrays or torch tensors that releases the
GIL and uses every core, writers for the CIFAR-10-C and ImageNet-C layouts, and
``shiftnorm.torch.rectify`` (BN statistics of a PyTorch model re-estimated from k unlabeled
target samples, seed 000).

Reproducibility: every call takes a ``seed``. With ``seed=None`` (the default of ``corrupt``,
as in imagecorruptions) the seed is drawn from NumPy's global generator, so
``numpy.random.seed(s)`` makes a script reproducible exactly as it does with imagecorruptions.
Image i of a batch uses its own random stream (seed, corruption, severity, first_index + i), so
results do not depend on the thread count or on how a data set is cut into batches.
"""

import os as _os

import numpy as _np

from . import _core

__version__ = _core.__version__

__all__ = ["corrupt", "get_corruption_names", "corrupt_batch", "write_cifar_c", "write_imagenet_c",
           "CorruptionError", "__version__"]

_NAMES = tuple(_core.corruption_names())
_SUBSETS = {
    "common": _NAMES[:15],
    "validation": _NAMES[15:],
    "all": _NAMES,
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
}
_TABLES = ("auto", "cifar", "imagenet", "mnist")


class CorruptionError(ValueError, AttributeError):
    """A bad argument to corrupt(): a ValueError, and an AttributeError too, because
    imagecorruptions raises AttributeError for bad images and severities (scripts that catch
    it keep working)."""


def get_corruption_names(subset="common"):
    """Names of the corruptions in ``subset``: 'common' (the 15 benchmark corruptions),
    'validation' (the 4 held-out ones), 'all' (19), or a category: 'noise', 'blur', 'weather',
    'digital'. Same names and order as imagecorruptions.get_corruption_names."""
    if not isinstance(subset, str):
        raise TypeError("subset: expected a string, got %s" % type(subset).__name__)
    try:
        return list(_SUBSETS[subset])
    except KeyError:
        raise ValueError("subset: expected one of %s, got %r" % (", ".join(_SUBSETS), subset)) from None


def _resolve_name(corruption_name, corruption_number, fn):
    if corruption_name is not None and corruption_name != "":
        if not isinstance(corruption_name, str):
            raise TypeError("%s: corruption_name must be a string, got %s" % (fn, type(corruption_name).__name__))
        if corruption_name not in _NAMES:
            raise CorruptionError("%s: unknown corruption_name %r; valid names: %s"
                                  % (fn, corruption_name, ", ".join(_NAMES)))
        return corruption_name
    if corruption_number is None or corruption_number == -1:
        raise CorruptionError("%s: either corruption_name or corruption_number must be passed" % fn)
    if isinstance(corruption_number, bool) or not isinstance(corruption_number, (int, _np.integer)):
        raise TypeError("%s: corruption_number must be an int, got %s" % (fn, type(corruption_number).__name__))
    if not 0 <= int(corruption_number) < len(_NAMES):
        raise CorruptionError("%s: corruption_number must be in [0, %d), got %d"
                              % (fn, len(_NAMES), corruption_number))
    return _NAMES[int(corruption_number)]


def _check_severity(severity, fn):
    if isinstance(severity, bool) or not isinstance(severity, (int, _np.integer)):
        raise CorruptionError("%s: severity must be an integer in [1, 5], got %r" % (fn, severity))
    if not 1 <= int(severity) <= 5:
        raise CorruptionError("%s: severity must be an integer in [1, 5], got %d" % (fn, severity))
    return int(severity)


def _check_seed(seed, fn):
    if seed is None:
        return int(_np.random.randint(0, 2**63 - 1, dtype=_np.int64))
    if isinstance(seed, bool) or not isinstance(seed, (int, _np.integer)):
        raise TypeError("%s: seed must be an int or None, got %s" % (fn, type(seed).__name__))
    if not 0 <= int(seed) < 2**64:
        raise ValueError("%s: seed must be in [0, 2**64), got %d" % (fn, seed))
    return int(seed)


def _check_table(table, fn):
    if table not in _TABLES:
        raise ValueError("%s: table must be one of %s, got %r" % (fn, ", ".join(_TABLES), table))
    return table


def _frost(frost_dir, frost_procedural="calibrated", names=("frost",)):
    """The frost argument of the C++ calls: '' when no corruption in ``names`` is frost (no
    texture lookup per call), 'procedural:v1', or the texture folder."""
    if frost_procedural not in ("calibrated", "v1"):
        raise ValueError("frost_procedural must be 'calibrated' or 'v1', got %r" % (frost_procedural,))
    if "frost" not in names:
        return ""
    if frost_dir is None:
        frost_dir = _os.environ.get("SHIFTNORM_FROST_DIR", "")
    frost_dir = _os.fspath(frost_dir)
    if not frost_dir and frost_procedural == "v1":
        return "procedural:v1"
    return frost_dir


def _check_noise_stream(noise_stream, fn):
    if noise_stream not in ("counter", "v1"):
        raise ValueError("%s: noise_stream must be 'counter' or 'v1', got %r" % (fn, noise_stream))
    return noise_stream


def _check_filters(filters, fn):
    if filters not in ("fast", "reference"):
        raise ValueError("%s: filters must be 'fast' or 'reference', got %r" % (fn, filters))
    return filters


def corrupt(image, severity=1, corruption_name=None, corruption_number=-1, seed=None, table="auto",
            frost_dir=None, keep_gray=False, frost_procedural="calibrated", noise_stream="counter", filters="fast"):
    """Corrupts one image, like ``imagecorruptions.corrupt``.

    image: numpy uint8 array, (H, W), (H, W, 1) or (H, W, 3). As in imagecorruptions, a gray
        image is stacked to 3 channels and the result is (H, W, 3) uint8; ``keep_gray=True``
        corrupts a gray image as one channel instead and returns (H, W).
    severity: 1..5. corruption_name: one of get_corruption_names('all'); or corruption_number:
        its index in that list. seed: int, or None to draw one from numpy.random.
    table: 'auto' (by size: 'mnist' for gray <= 28 px, 'cifar' up to 64 px, 'imagenet' above),
        or the parameter table to use: 'cifar', 'imagenet' (imagecorruptions' parameters),
        'mnist'. Pass table='imagenet' to get imagecorruptions' parameters on any size.
    frost_dir: a folder with the reference's frost textures (default: $SHIFTNORM_FROST_DIR, or
        the procedural frost when unset); read (once per process) only when the corruption is frost.
    frost_procedural: the procedural frost used without frost_dir: 'calibrated' (default; costs a
        network what the reference's photographs cost, docs/corruptions.md) or 'v1' (the harsher
        texture of results before 2026-12-02).
    noise_stream: the random stream of the noise corruptions (gaussian, shot, impulse, speckle):
        'counter' (default; drawn 16 values at a time, docs/corruptions.md) or 'v1' (the bytes of
        shiftnorm before 2026-12-03 for the same seed).
    filters: the arithmetic of gaussian, defocus and motion blur (and snow's): 'fast' (default;
        float32, with float64 where float32 cannot decide the byte) or 'reference' (float64
        throughout). Both give the reference's bytes (docs/corruptions.md "Fast filters").
    Raises CorruptionError (a ValueError) for a bad image or severity, TypeError for a non-array.
    """
    if not isinstance(image, _np.ndarray):
        raise TypeError("corrupt: expected a numpy.ndarray image, got %s" % type(image).__name__)
    if image.dtype != _np.uint8:
        raise CorruptionError("corrupt: expected image.dtype uint8, got %s" % image.dtype)
    if image.ndim not in (2, 3):
        raise CorruptionError("corrupt: expected image.shape (height, width) or (height, width, channels), got %s"
                              % (image.shape,))
    if image.ndim == 3 and image.shape[2] not in (1, 3):
        raise CorruptionError("corrupt: expected 1 or 3 channels in the last axis, got %d" % image.shape[2])
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise CorruptionError("corrupt: the image is empty, shape %s" % (image.shape,))
    severity = _check_severity(severity, "corrupt")
    name = _resolve_name(corruption_name, corruption_number, "corrupt")
    gray = image.ndim == 2 or image.shape[2] == 1
    if gray and not keep_gray:
        image = _np.stack((image.reshape(image.shape[0], image.shape[1]),) * 3, axis=-1)
    seed = _check_seed(seed, "corrupt")
    _check_table(table, "corrupt")
    _check_noise_stream(noise_stream, "corrupt")
    _check_filters(filters, "corrupt")
    batch = _np.ascontiguousarray(image.reshape((1, image.shape[0], image.shape[1], -1)))
    out = _np.empty_like(batch)
    _core.corrupt_batch(batch, out, name, severity, seed, table, 1, 0, _frost(frost_dir, frost_procedural, (name,)),
                        noise_stream, filters)
    return out[0, :, :, 0] if (gray and keep_gray) else out[0]


def _is_torch(x):
    return type(x).__module__.split(".")[0] == "torch"


def corrupt_batch(images, severity=1, corruption_name=None, corruption_number=-1, seed=0, table="auto",
                  threads=0, first_index=0, out=None, frost_dir=None, frost_procedural="calibrated",
                  noise_stream="counter", filters="fast"):
    """Corrupts a batch of images: uint8 (N, H, W, C) with C = 1 or 3, a numpy array or a CPU
    torch tensor (read without a copy; a torch tensor in gives a torch tensor out, sharing
    memory with the result array). Runs without the GIL on ``threads`` threads (0 = every core).

    Image i uses the random stream of (seed, corruption, severity, first_index + i): pass the
    global index of images[0] to cut a data set into batches and get the same result as one call.
    out: optional uint8 array of the same shape to write into (may not alias images).
    frost_dir, frost_procedural, noise_stream, filters: as for corrupt().
    Returns the corrupted batch (``out`` when given).
    """
    fn = "corrupt_batch"
    as_torch = _is_torch(images)
    if as_torch:
        if images.device.type != "cpu":
            raise ValueError("%s: images must be a CPU tensor (this build has no CUDA corruption kernels), got %s"
                             % (fn, images.device))
        images = images.detach().numpy()
    if not isinstance(images, _np.ndarray):
        raise TypeError("%s: expected a numpy uint8 array or a torch uint8 tensor, got %s" % (fn, type(images).__name__))
    if images.dtype != _np.uint8:
        raise TypeError("%s: expected uint8 images, got dtype %s" % (fn, images.dtype))
    if images.ndim != 4:
        raise ValueError("%s: expected images of shape (N, H, W, C), got %s" % (fn, images.shape))
    if not images.flags.c_contiguous:
        images = _np.ascontiguousarray(images)
    severity = _check_severity(severity, fn)
    name = _resolve_name(corruption_name, corruption_number, fn)
    seed = _check_seed(seed, fn)
    _check_table(table, fn)
    _check_noise_stream(noise_stream, fn)
    _check_filters(filters, fn)
    if isinstance(threads, bool) or not isinstance(threads, (int, _np.integer)) or threads < 0:
        raise ValueError("%s: threads must be an int >= 0 (0 = every core), got %r" % (fn, threads))
    if isinstance(first_index, bool) or not isinstance(first_index, (int, _np.integer)) or first_index < 0:
        raise ValueError("%s: first_index must be an int >= 0, got %r" % (fn, first_index))
    if out is None:
        out = _np.empty_like(images)
    else:
        if _is_torch(out):
            out = out.detach().numpy()
        if not isinstance(out, _np.ndarray) or out.dtype != _np.uint8 or out.shape != images.shape:
            raise ValueError("%s: out must be a uint8 array of shape %s" % (fn, images.shape))
        if _np.shares_memory(out, images):
            raise ValueError("%s: out must not alias images" % fn)
    _core.corrupt_batch(images, out, name, severity, seed, table, int(threads), int(first_index),
                        _frost(frost_dir, frost_procedural, (name,)), noise_stream, filters)
    if as_torch:
        import torch
        return torch.from_numpy(out)
    return out


def _names_of(corruptions, fn):
    if isinstance(corruptions, str):
        if corruptions in _SUBSETS:
            return list(_SUBSETS[corruptions])
        corruptions = [c for c in corruptions.split(",") if c]
    names = list(corruptions)
    if not names:
        raise ValueError("%s: corruptions names no corruption" % fn)
    for n in names:
        _resolve_name(n, -1, fn)
    return names


def _progress(progress, msg):
    if progress:
        import sys
        print(msg, file=sys.stderr, flush=True)


def write_cifar_c(out_dir, images, labels=None, corruptions="common", seed=0, table="auto", threads=0,
                  frost_dir=None, progress=True, frost_procedural="calibrated", noise_stream="counter"):
    """Writes the CIFAR-10-C layout: ``<out_dir>/<corruption>.npy`` (uint8, (5N, H, W, C),
    severities 1..5 in blocks of N) and ``labels.npy`` (labels tiled 5 times) when labels are
    given, exactly as ``shiftnorm corrupt --format cifar-c`` writes it. corruptions: a subset name
    ('common', 'all', ...), a comma-separated string or a list of names. frost_dir,
    frost_procedural, noise_stream: as for corrupt()."""
    fn = "write_cifar_c"
    images = _np.ascontiguousarray(images.detach().numpy() if _is_torch(images) else images)
    if images.dtype != _np.uint8 or images.ndim != 4:
        raise ValueError("%s: images must be uint8 (N, H, W, C), got %s %s" % (fn, images.dtype, images.shape))
    lab = []
    if labels is not None:
        lab_arr = _np.asarray(labels)
        if lab_arr.ndim != 1 or lab_arr.shape[0] != images.shape[0]:
            raise ValueError("%s: labels must have shape (%d,), got %s" % (fn, images.shape[0], lab_arr.shape))
        if lab_arr.size and (lab_arr.min() < 0 or lab_arr.max() > 255):
            raise ValueError("%s: labels must be in [0, 255]" % fn)
        lab = [int(v) for v in lab_arr]
    names = _names_of(corruptions, fn)
    seed = _check_seed(seed, fn)
    _check_table(table, fn)
    _check_noise_stream(noise_stream, fn)
    for i, n in enumerate(names):
        _progress(progress, "write_cifar_c: [%d/%d] %s" % (i + 1, len(names), n))
        _core.write_cifar_c(_os.fspath(out_dir), images, lab if i == 0 else [], [n], seed, table, int(threads),
                            _frost(frost_dir, frost_procedural, (n,)), noise_stream)


def write_imagenet_c(out_dir, images, items, corruptions="common", seed=0, table="auto", threads=0,
                     first_index=0, jpeg_quality=85, frost_dir=None, progress=True, frost_procedural="calibrated",
                     noise_stream="counter"):
    """Writes the ImageNet-C layout: ``<out_dir>/<corruption>/<severity>/<wnid>/<file>`` JPEGs
    (quality 85 as the reference). items: one (wnid, file name) pair per image. first_index: the
    global index of images[0], so a data set written in chunks equals one call. frost_dir,
    frost_procedural, noise_stream: as for corrupt()."""
    fn = "write_imagenet_c"
    images = _np.ascontiguousarray(images.detach().numpy() if _is_torch(images) else images)
    if images.dtype != _np.uint8 or images.ndim != 4:
        raise ValueError("%s: images must be uint8 (N, H, W, C), got %s %s" % (fn, images.dtype, images.shape))
    items = [tuple(it) for it in items]
    if len(items) != images.shape[0] or any(len(it) != 2 for it in items):
        raise ValueError("%s: items must hold one (wnid, file) pair per image (%d)" % (fn, images.shape[0]))
    for w, f in items:
        for part in (w, f):
            if not isinstance(part, str) or not part or "/" in part or part in (".", ".."):
                raise ValueError("%s: bad wnid or file name %r (no paths, not empty)" % (fn, part))
    names = _names_of(corruptions, fn)
    seed = _check_seed(seed, fn)
    _check_table(table, fn)
    _check_noise_stream(noise_stream, fn)
    for i, n in enumerate(names):
        _progress(progress, "write_imagenet_c: [%d/%d] %s" % (i + 1, len(names), n))
        _core.write_imagenet_c(_os.fspath(out_dir), images, [w for w, _ in items], [f for _, f in items], [n], seed,
                               table, int(threads), int(first_index), int(jpeg_quality),
                               _frost(frost_dir, frost_procedural, (n,)), noise_stream)


def __getattr__(name):  # `shiftnorm.torch` is imported on first use (torch is optional)
    if name == "torch":
        import importlib
        return importlib.import_module(".torch", __name__)
    raise AttributeError("module 'shiftnorm' has no attribute %r" % name)
