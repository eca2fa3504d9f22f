# SPDX-License-Identifier: MIT
"""Fidelity through the Python API, with the C++ fixture tests' tolerances
(tests/corrupt/test_fixtures.cpp): outputs of the public CIFAR-10-C reference code in
../shared/fixtures/cifar-c-reference (skipped when absent)."""
import json

import numpy as np
import pytest

from shiftnorm import corrupt_batch


@pytest.fixture(scope="module")
def fixture_dir(shared_dir):
    d = shared_dir / "fixtures" / "cifar-c-reference"
    if not (d / "input_16x32x32x3.npy").exists():
        pytest.skip("the CIFAR-10-C reference fixtures (../shared/fixtures) are absent")
    return d


def diff_stats(out, clean):
    d = (out.astype(np.float64) - clean.astype(np.float64)) / 255.0
    return d.mean(), np.abs(d).mean(), d.std()


def within(ours, ref, rel, abs_tol):
    return abs(ours - ref) <= abs_tol or abs(ours - ref) <= rel * abs(ref)


@pytest.mark.parametrize("name", ["brightness", "contrast", "saturate", "defocus_blur", "gaussian_blur", "zoom_blur",
                                  "pixelate", "jpeg_compression"])
def test_deterministic_match_reference(fixture_dir, name):
    x = np.load(fixture_dir / "input_16x32x32x3.npy")
    ref = np.load(fixture_dir / ("%s_5x16x32x32x3.npy" % name))
    for s in range(1, 6):
        out = corrupt_batch(x, s, name, table="cifar")
        mad = np.abs(out.astype(int) - ref[s - 1].astype(int)).mean()
        assert mad <= 0.1, "%s severity %d: mean |diff| %.4f" % (name, s, mad)


def test_stochastic_match_reference_statistics(fixture_dir, shared_dir):
    stats = json.loads((fixture_dir / "stochastic_stats.json").read_text())
    x = np.load(fixture_dir / "stats_input_1000x32x32x3.npy")
    tex = shared_dir / "data" / "frost"
    checked = 0
    for name, rows in stats.items():
        frost_dir = None
        if name == "frost":  # the procedural frost was fitted to these numbers: check the textured mode
            if not (tex / "frost1.png").exists():
                continue
            frost_dir = str(tex)
        for r in rows:
            out = corrupt_batch(x, r["severity"], name, seed=2024, table="cifar", frost_dir=frost_dir)
            mean, mean_abs, std = diff_stats(out, x)
            msg = "%s s%d: mean %.4f (ref %.4f) mean_abs %.4f (ref %.4f) std %.4f (ref %.4f)" % (
                name, r["severity"], mean, r["mean_diff"], mean_abs, r["mean_abs_diff"], std, r["std_diff"])
            if name != "frost":
                assert within(mean, r["mean_diff"], 0.10, 0.004), msg
            assert within(mean_abs, r["mean_abs_diff"], 0.05, 0.0), msg
            assert within(std, r["std_diff"], 0.05, 0.0), msg
        checked += 1
    assert checked >= 10
