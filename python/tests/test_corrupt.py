# SPDX-License-Identifier: MIT
"""shiftnorm.corrupt / corrupt_batch / get_corruption_names: the imagecorruptions API, seeding,
batching, torch tensors and bad arguments."""
import numpy as np
import pytest

import shiftnorm
from shiftnorm import corrupt, corrupt_batch, get_corruption_names

# imagecorruptions 1.1.2's lists (imagecorruptions/__init__.py), the API this package replaces
REF_COMMON = ["gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
              "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
              "jpeg_compression"]
REF_VALIDATION = ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression",
                 "gaussian_blur", "saturate"}


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    # smooth-ish images: a gradient plus noise (pure noise would hide blurs)
    y, x = np.mgrid[0:32, 0:32]
    base = np.stack([(x * 8) % 256, (y * 8) % 256, ((x + y) * 4) % 256], axis=-1)
    return np.clip(base[None] + rng.integers(-20, 21, size=(6, 32, 32, 3)), 0, 255).astype(np.uint8)


def test_names_match_imagecorruptions():
    assert get_corruption_names() == REF_COMMON
    assert get_corruption_names("common") == REF_COMMON
    assert get_corruption_names("validation") == REF_VALIDATION
    assert get_corruption_names("all") == REF_COMMON + REF_VALIDATION
    assert get_corruption_names("noise") == REF_COMMON[0:3]
    assert get_corruption_names("blur") == REF_COMMON[3:7]
    assert get_corruption_names("weather") == REF_COMMON[7:11]
    assert get_corruption_names("digital") == REF_COMMON[11:15]
    with pytest.raises(ValueError, match="subset"):
        get_corruption_names("everything")
    with pytest.raises(TypeError):
        get_corruption_names(3)


@pytest.mark.parametrize("name", REF_COMMON + REF_VALIDATION)
def test_every_corruption_shapes_dtypes_and_seed(name, images):
    img = images[0]
    a = corrupt(img, severity=3, corruption_name=name, seed=11)
    assert a.dtype == np.uint8 and a.shape == img.shape
    assert np.array_equal(a, corrupt(img, 3, name, seed=11))  # seeded: reproducible
    b = corrupt(img, 3, name, seed=12)
    if name in DETERMINISTIC:
        assert np.array_equal(a, b)
    else:
        assert not np.array_equal(a, b)
    assert not np.array_equal(corrupt(img, 5, name, seed=11), img)  # severity 5 changes the image
    # by number, as imagecorruptions allows
    num = (REF_COMMON + REF_VALIDATION).index(name)
    assert np.array_equal(corrupt(img, 3, corruption_number=num, seed=11), a)


def test_gray_and_odd_sizes_follow_imagecorruptions():
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, size=(40, 50), dtype=np.uint8)
    out = corrupt(gray, 2, "fog", seed=3)
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8  # gray in, RGB out (reference behaviour)
    stacked = np.stack([gray] * 3, axis=-1)
    assert np.array_equal(out, corrupt(stacked, 2, "fog", seed=3))
    assert np.array_equal(corrupt(gray[..., None], 2, "fog", seed=3), out)
    g1 = corrupt(gray, 2, "fog", seed=3, keep_gray=True)
    assert g1.shape == (40, 50)
    for shape in [(224, 224, 3), (300, 200, 3), (33, 47, 3), (1, 1, 3)]:
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        for name in get_corruption_names("all"):
            assert corrupt(img, 4, name, seed=5).shape == shape


def test_seed_none_follows_numpy_global_state(images):
    np.random.seed(123)
    a = corrupt(images[0], 2, "gaussian_noise")
    np.random.seed(123)
    b = corrupt(images[0], 2, "gaussian_noise")
    c = corrupt(images[0], 2, "gaussian_noise")
    assert np.array_equal(a, b) and not np.array_equal(b, c)


def test_batch_equals_single_images_any_threads_any_split(images):
    for name in ["shot_noise", "glass_blur", "snow", "elastic_transform", "spatter"]:
        full = corrupt_batch(images, 4, name, seed=9, threads=1)
        assert np.array_equal(full, corrupt_batch(images, 4, name, seed=9, threads=0))
        assert np.array_equal(full, corrupt_batch(images, 4, name, seed=9, threads=3))
        head = corrupt_batch(images[:2], 4, name, seed=9)
        tail = corrupt_batch(images[2:], 4, name, seed=9, first_index=2)
        assert np.array_equal(full, np.concatenate([head, tail]))
        for i in range(len(images)):  # image i of the batch is corrupt(...) of that image at index i
            one = corrupt_batch(images[i:i + 1], 4, name, seed=9, first_index=i)
            assert np.array_equal(full[i], one[0])


def test_batch_out_and_tables(images):
    out = np.zeros_like(images)
    r = corrupt_batch(images, 2, "contrast", out=out)
    assert r is out and not np.array_equal(out, 0)
    a = corrupt_batch(images, 3, "gaussian_noise", seed=1, table="cifar")
    assert np.array_equal(a, corrupt_batch(images, 3, "gaussian_noise", seed=1, table="auto"))
    b = corrupt_batch(images, 3, "gaussian_noise", seed=1, table="imagenet")
    # the ImageNet table's sigma (0.18 at s3) is larger than CIFAR's (0.08)
    assert np.abs(b.astype(int) - images).mean() > np.abs(a.astype(int) - images).mean()
    assert corrupt_batch(images[:0], 3, "fog").shape == (0, 32, 32, 3)
    nc = np.asfortranarray(images)  # non-contiguous input is accepted (copied)
    assert np.array_equal(corrupt_batch(nc, 2, "fog", seed=4), corrupt_batch(images, 2, "fog", seed=4))


def test_torch_tensors_in_and_out(images):
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(images.copy())
    r = corrupt_batch(t, 3, "impulse_noise", seed=2)
    assert isinstance(r, torch.Tensor) and r.dtype == torch.uint8 and tuple(r.shape) == images.shape
    assert np.array_equal(r.numpy(), corrupt_batch(images, 3, "impulse_noise", seed=2))
    with pytest.raises(TypeError):
        corrupt_batch(t.float(), 3, "fog")


def test_bad_arguments_raise_clear_errors(images):
    img = images[0]
    with pytest.raises(TypeError):
        corrupt([[1, 2], [3, 4]], 1, "fog")
    with pytest.raises(ValueError, match="uint8"):
        corrupt(img.astype(np.float32), 1, "fog")
    with pytest.raises(AttributeError):  # what imagecorruptions raises: scripts catching it still work
        corrupt(img.astype(np.float32), 1, "fog")
    with pytest.raises(ValueError, match="channels"):
        corrupt(np.zeros((8, 8, 2), np.uint8), 1, "fog")
    with pytest.raises(ValueError, match="shape"):
        corrupt(np.zeros((2, 8, 8, 3), np.uint8), 1, "fog")
    with pytest.raises(ValueError, match="empty"):
        corrupt(np.zeros((0, 8, 3), np.uint8), 1, "fog")
    for sev in [0, 6, -1, 2.5, "3", True, None]:
        with pytest.raises(ValueError, match="severity"):
            corrupt(img, sev, "fog")
    with pytest.raises(ValueError, match="unknown corruption_name 'fogg'"):
        corrupt(img, 1, "fogg")
    with pytest.raises(ValueError, match="must be passed"):
        corrupt(img, 1)
    with pytest.raises(ValueError, match="corruption_number"):
        corrupt(img, 1, corruption_number=19)
    with pytest.raises(TypeError):
        corrupt(img, 1, corruption_number="2")
    with pytest.raises(ValueError, match="table"):
        corrupt(img, 1, "fog", table="svhn")
    with pytest.raises(ValueError, match="seed"):
        corrupt(img, 1, "fog", seed=-1)
    with pytest.raises(TypeError, match="seed"):
        corrupt(img, 1, "fog", seed="x")
    with pytest.raises(ValueError, match="threads"):
        corrupt_batch(images, 1, "fog", threads=-2)
    with pytest.raises(ValueError, match="alias"):
        corrupt_batch(images, 1, "fog", out=images)
    with pytest.raises(ValueError, match="out"):
        corrupt_batch(images, 1, "fog", out=np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W, C\)"):
        corrupt_batch(images[0], 1, "fog")
    with pytest.raises(OSError, match="frost"):
        corrupt(img, 1, "frost", frost_dir="/nonexistent/frost-textures")


def test_frost_dir_changes_frost(images, shared_dir):
    tex = shared_dir / "data" / "frost"
    if not (tex / "frost1.png").exists():
        pytest.skip("the reference's frost textures (../shared/data/frost) are absent")
    a = corrupt_batch(images, 3, "frost", seed=1)
    b = corrupt_batch(images, 3, "frost", seed=1, frost_dir=str(tex))
    assert not np.array_equal(a, b)
    assert np.array_equal(b, corrupt_batch(images, 3, "frost", seed=1, frost_dir=tex))  # PathLike works


def test_frost_procedural_v1_and_calibrated(images):
    # 'calibrated' (the default) and 'v1' are different textures; each is seeded and repeatable
    a = corrupt_batch(images, 3, "frost", seed=4)
    assert np.array_equal(a, corrupt_batch(images, 3, "frost", seed=4, frost_procedural="calibrated"))
    v = corrupt_batch(images, 3, "frost", seed=4, frost_procedural="v1")
    assert np.array_equal(v, corrupt_batch(images, 3, "frost", seed=4, frost_procedural="v1"))
    assert not np.array_equal(a, v)
    one = corrupt(np.ascontiguousarray(images[0]), 3, "frost", seed=4, frost_procedural="v1")
    assert one.shape == images[0].shape[:2] + (3,)
    with pytest.raises(ValueError, match="frost_procedural"):
        corrupt_batch(images, 3, "frost", seed=4, frost_procedural="v2")


@pytest.mark.parametrize("name", ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"])
def test_noise_stream_counter_and_v1(images, name, tmp_path):
    # 'counter' (the default) and 'v1' (earlier versions' bytes) are different streams, each seeded
    a = corrupt_batch(images, 3, name, seed=4)
    assert np.array_equal(a, corrupt_batch(images, 3, name, seed=4, noise_stream="counter"))
    v = corrupt_batch(images, 3, name, seed=4, noise_stream="v1")
    assert np.array_equal(v, corrupt_batch(images, 3, name, seed=4, noise_stream="v1", threads=1))
    assert not np.array_equal(a, v)
    one = corrupt(np.ascontiguousarray(images[2]), 3, name, seed=4, noise_stream="v1")
    assert one.shape == images[2].shape
    # the writers pass it on: image i of severity s in the file equals the batch call's image i
    shiftnorm.write_cifar_c(tmp_path, images, corruptions=[name], seed=4, noise_stream="v1", progress=False)
    written = np.load(tmp_path / (name + ".npy"))
    assert np.array_equal(written[2 * len(images):3 * len(images)], v)
    with pytest.raises(ValueError, match="noise_stream"):
        corrupt_batch(images, 3, name, seed=4, noise_stream="v2")
    with pytest.raises(ValueError, match="noise_stream"):
        corrupt(np.ascontiguousarray(images[0]), 3, name, seed=4, noise_stream=None)
    with pytest.raises(ValueError, match="noise_stream"):
        shiftnorm.write_cifar_c(tmp_path, images, corruptions=[name], noise_stream="fast", progress=False)


@pytest.mark.parametrize("name", ["gaussian_blur", "defocus_blur"])
def test_fast_and_reference_filters_give_the_same_bytes(name):
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:64, 0:48]
    smooth = 128 + 100 * np.sin(y[..., None] / 9.0 + np.arange(3)) * np.cos(x[..., None] / 7.0)
    img = np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)
    img[10:30, 5:20] = 255  # flat regions: every window there sums to about an integer
    img[40:60, 20:40] = 128
    batch = np.stack([img, img[::-1].copy()])
    for table in ("cifar", "imagenet"):
        for s in range(1, 6):
            fast = corrupt_batch(batch, s, name, table=table, filters="fast")
            ref = corrupt_batch(batch, s, name, table=table, filters="reference")
            assert np.array_equal(fast, ref), "%s %s severity %d: %d bytes differ" % (
                name, table, s, int((fast != ref).sum()))
    assert np.array_equal(corrupt(img, 3, name, seed=0), corrupt(img, 3, name, seed=0, filters="reference"))
    with pytest.raises(ValueError, match="filters must be 'fast' or 'reference'"):
        corrupt(img, 3, name, filters="float32")
    with pytest.raises(ValueError, match="filters must be 'fast' or 'reference'"):
        corrupt_batch(batch, 3, name, filters=None)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_batch_in_a_forked_child_after_the_parent(images):
    # DataLoader workers are forked: after the parent's threaded batch (OpenMP's team), a child's
    # threaded batch must run (GNU libgomp's team does not survive fork) and give the same bytes
    import multiprocessing as mp
    batch = np.stack([images[i % len(images)] for i in range(6)])
    want = corrupt_batch(batch, 2, "gaussian_blur", seed=3, threads=2)
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(corrupt_batch, (batch, 2, "gaussian_blur"), {"seed": 3, "threads": 2}).get(timeout=60)
    np.testing.assert_array_equal(got, want)
