# SPDX-License-Identifier: MIT
"""write_cifar_c / write_imagenet_c: the layouts, their contents, and bad arguments."""
import numpy as np
import pytest

from shiftnorm import corrupt_batch, write_cifar_c, write_imagenet_c


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(3).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)


def test_cifar_c_layout_and_contents(tmp_path, images):
    labels = np.array([3, 1, 4, 1], dtype=np.int64)
    write_cifar_c(tmp_path, images, labels, corruptions=["fog", "pixelate"], seed=5, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fog.npy", "labels.npy", "pixelate.npy"]
    lab = np.load(tmp_path / "labels.npy")
    assert lab.dtype == np.uint8 and lab.tolist() == labels.tolist() * 5
    fog = np.load(tmp_path / "fog.npy")
    assert fog.shape == (20, 32, 32, 3) and fog.dtype == np.uint8
    for s in range(1, 6):  # severity-major blocks of N, each the batch API's result
        assert np.array_equal(fog[4 * (s - 1):4 * s], corrupt_batch(images, s, "fog", seed=5))


def test_imagenet_c_layout(tmp_path, images):
    items = [("n01440764", "a.JPEG"), ("n01440764", "b.JPEG"), ("n01443537", "c.JPEG"), ("n01443537", "d.JPEG")]
    write_imagenet_c(tmp_path, images, items, corruptions="brightness", progress=False)
    for s in range(1, 6):
        for w, f in items:
            p = tmp_path / "brightness" / str(s) / w / f
            assert p.read_bytes()[:2] == b"\xff\xd8", p  # a JPEG


def test_writer_errors(tmp_path, images):
    with pytest.raises(ValueError, match="labels"):
        write_cifar_c(tmp_path, images, labels=[1, 2], corruptions="fog", progress=False)
    with pytest.raises(ValueError, match="labels"):
        write_cifar_c(tmp_path, images, labels=[1, 2, 3, 300], corruptions="fog", progress=False)
    with pytest.raises(ValueError, match="unknown corruption_name"):
        write_cifar_c(tmp_path, images, corruptions="fog,nope", progress=False)
    with pytest.raises(ValueError, match="uint8"):
        write_cifar_c(tmp_path, images.astype(np.float32), corruptions="fog", progress=False)
    with pytest.raises(ValueError, match="items"):
        write_imagenet_c(tmp_path, images, [("n1", "a.JPEG")], corruptions="fog", progress=False)
    with pytest.raises(ValueError, match="bad wnid"):
        write_imagenet_c(tmp_path, images, [("../x", "a.JPEG")] * 4, corruptions="fog", progress=False)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(OSError):
        write_cifar_c(blocker / "sub", images, corruptions="fog", progress=False)
