# SPDX-License-Identifier: MIT
"""The speed peer for bench_corrupt_vs_reference.py: the reference corruption algorithms
(ImageNet-C's make_imagenet_c.py as packaged by `imagecorruptions`), written out with the same
library calls the reference makes (NumPy, scikit-image, SciPy, OpenCV, Pillow: all Debian
packages). `imagecorruptions` itself is not packaged by Debian and nothing is downloaded here;
when it IS importable, the benchmark times it instead (--peer imagecorruptions).

Each function takes a uint8 HxWx3 array and the ImageNet table's severity-3 parameters, and
returns a float array in [0, 255] as the reference does (the caller converts with np.uint8).
Written for timing, not for bit-exactness; the cost structure (Python pixel loops in glass blur,
per-zoom scipy zoom, file reads in frost) is the reference's.
"""
import math
import os
from io import BytesIO

import cv2
import numpy as np
from PIL import Image
from scipy.ndimage import map_coordinates
from scipy.ndimage import zoom as scizoom
from skimage.color import hsv2rgb, rgb2hsv
from skimage.filters import gaussian
from skimage.util import random_noise


def _gauss(x, **kw):
    return gaussian(x, channel_axis=-1 if x.ndim == 3 else None, **kw)


def gaussian_noise(x, c=0.18):
    x = np.array(x) / 255.0
    return np.clip(x + np.random.normal(size=x.shape, scale=c), 0, 1) * 255


def shot_noise(x, c=12):
    x = np.array(x) / 255.0
    return np.clip(np.random.poisson(x * c) / float(c), 0, 1) * 255


def impulse_noise(x, c=0.09):
    return np.clip(random_noise(np.array(x) / 255.0, mode="s&p", amount=c), 0, 1) * 255


def speckle_noise(x, c=0.35):
    x = np.array(x) / 255.0
    return np.clip(x + x * np.random.normal(size=x.shape, scale=c), 0, 1) * 255


def gaussian_blur(x, c=3):
    return np.clip(_gauss(np.array(x) / 255.0, sigma=c), 0, 1) * 255


def glass_blur(x, c=(1, 2, 3)):
    x = np.uint8(_gauss(np.array(x) / 255.0, sigma=c[0]) * 255)
    h, w = x.shape[:2]
    for _ in range(c[2]):  # locally shuffle pixels: a Python loop over every pixel, as the reference
        for hh in range(h - c[1], c[1], -1):
            for ww in range(w - c[1], c[1], -1):
                dx, dy = np.random.randint(-c[1], c[1], size=(2,))
                hp, wp = hh + dy, ww + dx
                x[hh, ww], x[hp, wp] = x[hp, wp], x[hh, ww]
    return np.clip(_gauss(x / 255.0, sigma=c[0]), 0, 1) * 255


def _disk(radius, alias_blur=0.1, dtype=np.float32):
    if radius <= 8:
        ax, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        ax, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(ax, ax)
    d = np.array((xx ** 2 + yy ** 2) <= radius ** 2, dtype=dtype)
    d /= np.sum(d)
    return cv2.GaussianBlur(d, ksize=ksize, sigmaX=alias_blur)


def defocus_blur(x, c=(6, 0.5)):
    x = np.array(x) / 255.0
    k = _disk(radius=c[0], alias_blur=c[1])
    ch = [cv2.filter2D(x[:, :, d], -1, k) for d in range(3)]
    return np.clip(np.array(ch).transpose((1, 2, 0)), 0, 1) * 255


def _shift(img, dx, dy):
    if dx < 0:
        img = np.roll(img, shift=img.shape[1] + dx, axis=1)
        img[:, dx:] = img[:, dx - 1:dx]
    elif dx > 0:
        img = np.roll(img, shift=dx, axis=1)
        img[:, :dx] = img[:, dx:dx + 1]
    if dy < 0:
        img = np.roll(img, shift=img.shape[0] + dy, axis=0)
        img[dy:, :] = img[dy - 1:dy, :]
    elif dy > 0:
        img = np.roll(img, shift=dy, axis=0)
        img[:dy, :] = img[dy:dy + 1, :]
    return img


def _motion(x, radius, sigma, angle):
    width = radius * 2 + 1
    k = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2))
    k /= k.sum()
    point = (width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle)))
    hyp = math.hypot(point[0], point[1])
    out = np.zeros_like(x, dtype=np.float32)
    for i in range(width):
        dy = -math.ceil(((i * point[0]) / hyp) - 0.5)
        dx = -math.ceil(((i * point[1]) / hyp) - 0.5)
        if abs(dy) >= x.shape[0] or abs(dx) >= x.shape[1]:
            break
        out = out + k[i] * _shift(x, dx, dy)
    return out


def motion_blur(x, c=(15, 8)):
    x = _motion(np.array(x), radius=c[0], sigma=c[1], angle=np.random.uniform(-45, 45))
    return np.clip(x, 0, 255)


def _clipped_zoom(img, z):
    h, w = img.shape[:2]
    ch, cw = int(np.ceil(h / z)), int(np.ceil(w / z))
    top, left = (h - ch) // 2, (w - cw) // 2
    img = scizoom(img[top:top + ch, left:left + cw], (z, z, 1), order=1)
    tt, tl = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[tt:tt + h, tl:tl + w]


def zoom_blur(x, c=np.arange(1, 1.21, 0.02)):
    x = (np.array(x) / 255.0).astype(np.float32)
    out = np.zeros_like(x)
    for z in c:
        out += _clipped_zoom(x, z)
    return np.clip((x + out) / (len(c) + 1), 0, 1) * 255


def snow(x, c=(0.55, 0.3, 4, 0.9, 12, 8, 0.7)):
    x = np.array(x, dtype=np.float32) / 255.0
    h, w = x.shape[:2]
    layer = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    layer = _clipped_zoom(layer[..., np.newaxis], c[2])
    layer[layer < c[3]] = 0
    layer = np.clip(layer.squeeze(), 0, 1)
    layer = _motion(layer, radius=c[4], sigma=c[5], angle=np.random.uniform(-135, -45))
    layer = (np.round(layer * 255).astype(np.uint8) / 255.0)[..., np.newaxis]
    gray = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).reshape(h, w, 1)
    x = c[6] * x + (1 - c[6]) * np.maximum(x, gray * 1.5 + 0.5)
    return np.clip(x + layer + np.rot90(layer, k=2), 0, 1) * 255


FROST_DIR = os.environ.get("SHIFTNORM_FROST_DIR", "")


def frost(x, c=(0.7, 0.7)):
    files = ["frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg"]
    tex = cv2.imread(os.path.join(FROST_DIR, files[np.random.randint(5)]))  # read per call, as the reference
    h, w = x.shape[:2]
    scale = max(1.0, 1.5 * max(h / tex.shape[0], w / tex.shape[1]))
    if scale > 1:
        tex = cv2.resize(tex, (int(tex.shape[1] * scale), int(tex.shape[0] * scale)))
    y0, x0 = np.random.randint(0, tex.shape[0] - h), np.random.randint(0, tex.shape[1] - w)
    tex = tex[y0:y0 + h, x0:x0 + w][..., [2, 1, 0]]
    return np.clip(c[0] * np.array(x) + c[1] * tex, 0, 255)


def _plasma(mapsize=256, wibbledecay=3):
    a = np.empty((mapsize, mapsize), dtype=np.float64)
    a[0, 0] = 0
    step, wibble = mapsize, 100.0

    def wmean(v):
        return v / 4 + wibble * np.random.uniform(-wibble, wibble, v.shape)

    while step >= 2:
        corner = a[0:mapsize:step, 0:mapsize:step]
        sq = corner + np.roll(corner, shift=-1, axis=0)
        sq += np.roll(sq, shift=-1, axis=1)
        a[step // 2:mapsize:step, step // 2:mapsize:step] = wmean(sq)
        dr = a[step // 2:mapsize:step, step // 2:mapsize:step]
        ul = a[0:mapsize:step, 0:mapsize:step]
        lt = dr + np.roll(dr, 1, axis=0) + ul + np.roll(ul, -1, axis=1)
        a[0:mapsize:step, step // 2:mapsize:step] = wmean(lt)
        tt = dr + np.roll(dr, 1, axis=1) + ul + np.roll(ul, -1, axis=0)
        a[step // 2:mapsize:step, 0:mapsize:step] = wmean(tt)
        step //= 2
        wibble /= wibbledecay
    a -= a.min()
    return a / a.max()


def fog(x, c=(2.5, 1.7)):
    x = np.array(x) / 255.0
    h, w = x.shape[:2]
    size = 1 << int(math.ceil(math.log2(max(h, w))))
    mx = x.max()
    x = x + c[0] * _plasma(mapsize=size, wibbledecay=c[1])[:h, :w][..., np.newaxis]
    return np.clip(x * mx / (mx + c[0]), 0, 1) * 255


def brightness(x, c=0.3):
    x = rgb2hsv(np.array(x) / 255.0)
    x[:, :, 2] = np.clip(x[:, :, 2] + c, 0, 1)
    return np.clip(hsv2rgb(x), 0, 1) * 255


def contrast(x, c=0.2):
    x = np.array(x) / 255.0
    m = np.mean(x, axis=(0, 1), keepdims=True)
    return np.clip((x - m) * c + m, 0, 1) * 255


def elastic_transform(image, c=(244 * 0.05, 244 * 0.01, 244 * 0.02)):
    image = np.array(image, dtype=np.float32) / 255.0
    shape = image.shape
    s = min(shape[:2]) / 224.0
    c = (c[0] * s, c[1] * s, c[2] * s)
    size = shape[:2]
    center = np.float32(size) // 2
    sq = min(size) // 3
    pts1 = np.float32([center + sq, [center[0] + sq, center[1] - sq], center - sq])
    pts2 = pts1 + np.random.uniform(-c[2], c[2], size=pts1.shape).astype(np.float32)
    m = cv2.getAffineTransform(pts1, pts2)
    image = cv2.warpAffine(image, m, size[::-1], borderMode=cv2.BORDER_REFLECT_101)
    dx = (gaussian(np.random.uniform(-1, 1, size=size), c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
    dy = (gaussian(np.random.uniform(-1, 1, size=size), c[1], mode="reflect", truncate=3) * c[0]).astype(np.float32)
    dx, dy = dx[..., np.newaxis], dy[..., np.newaxis]
    xx, yy, zz = np.meshgrid(np.arange(shape[1]), np.arange(shape[0]), np.arange(shape[2]))
    idx = np.reshape(yy + dy, (-1, 1)), np.reshape(xx + dx, (-1, 1)), np.reshape(zz, (-1, 1))
    return np.clip(map_coordinates(image, idx, order=1, mode="reflect").reshape(shape), 0, 1) * 255


def pixelate(x, c=0.4):
    img = Image.fromarray(np.array(x))
    h, w = x.shape[:2]
    img = img.resize((int(w * c), int(h * c)), Image.BOX)
    return np.array(img.resize((w, h), Image.BOX))


def jpeg_compression(x, c=15):
    buf = BytesIO()
    Image.fromarray(np.array(x)).save(buf, "JPEG", quality=c)
    return np.array(Image.open(buf))


def spatter(x, c=(0.65, 0.3, 2, 0.68, 0.6, 0)):
    x = np.array(x, dtype=np.float32) / 255.0
    liquid = np.random.normal(size=x.shape[:2], loc=c[0], scale=c[1])
    liquid = gaussian(liquid, sigma=c[2])
    liquid[liquid < c[3]] = 0
    liquid = (liquid * 255).astype(np.uint8)
    dist = 255 - cv2.Canny(liquid, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    ker = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    dist = cv2.filter2D(dist, cv2.CV_8U, ker)
    dist = cv2.blur(dist, (3, 3)).astype(np.float32)
    m = cv2.cvtColor(liquid * dist, cv2.COLOR_GRAY2BGRA)
    m /= np.max(m, axis=(0, 1)) + 1e-12
    m *= c[4]
    ones = np.ones_like(m[..., :1])
    color = np.concatenate((175 / 255.0 * ones, 238 / 255.0 * ones, 238 / 255.0 * ones), axis=2)
    color = cv2.cvtColor(color, cv2.COLOR_BGR2BGRA)
    x = cv2.cvtColor(x, cv2.COLOR_BGR2BGRA)
    return cv2.cvtColor(np.clip(x + m * color, 0, 1), cv2.COLOR_BGRA2BGR) * 255


def saturate(x, c=(2, 0)):
    x = rgb2hsv(np.array(x) / 255.0)
    x[:, :, 1] = np.clip(x[:, :, 1] * c[0] + c[1], 0, 1)
    return np.clip(hsv2rgb(x), 0, 1) * 255


FUNCTIONS = {f.__name__: f for f in [
    gaussian_noise, shot_noise, impulse_noise, defocus_blur, glass_blur, motion_blur, zoom_blur, snow, frost, fog,
    brightness, contrast, elastic_transform, pixelate, jpeg_compression, speckle_noise, gaussian_blur, spatter,
    saturate]}


def corrupt(image, severity, corruption_name):
    """imagecorruptions.corrupt's contract for the peer (severity fixed at 3's parameters)."""
    return np.uint8(FUNCTIONS[corruption_name](image))
