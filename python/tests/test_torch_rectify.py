# SPDX-License-Identifier: MIT
"""shiftnorm.torch.rectify against PyTorch's own procedure: BN layers in train mode with
momentum=None after reset_running_stats(), one forward, then keep only the chosen statistic."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import shiftnorm.torch as snt  # noqa: E402

nn = torch.nn


def make_model(seed=0):
    torch.manual_seed(seed)
    m = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, 5))
    # source statistics that differ from anything the target batch gives
    for b in m.modules():
        if isinstance(b, nn.modules.batchnorm._BatchNorm):
            b.running_mean.uniform_(-0.5, 0.5)
            b.running_var.uniform_(0.5, 2.0)
            b.weight.data.uniform_(0.5, 1.5)
            b.bias.data.uniform_(-0.2, 0.2)
    return m.eval()


def target_batch(n=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 12, 12, generator=g) * 1.7 + 0.8  # shifted domain


def torch_reference(model, batch, what="both", layers=None, prior=0.0):
    """The paper's procedure, in PyTorch alone."""
    ref = copy.deepcopy(model).eval()
    bns = [(n, b) for n, b in ref.named_modules() if isinstance(b, nn.modules.batchnorm._BatchNorm)]
    chosen = {n for n, _ in bns} if layers is None else set(layers)
    source = {n: (b.running_mean.clone(), b.running_var.clone()) for n, b in bns}
    for n, b in bns:
        if n in chosen:
            b.train()
            b.reset_running_stats()
            b.momentum = None
    with torch.no_grad():
        ref(batch)
    k = batch.shape[0]
    w = k / (prior + k)
    for n, b in bns:
        if n not in chosen:
            continue
        mu, var = source[n]
        if what == "var":
            b.running_mean.copy_(mu)
        if what == "mean":
            b.running_var.copy_(var)
        b.running_mean.copy_((1 - w) * mu + w * b.running_mean)
        b.running_var.copy_((1 - w) * var + w * b.running_var)
    return {n: (b.running_mean, b.running_var) for n, b in bns}


def stats(model):
    return {n: (b.running_mean, b.running_var) for n, b in snt.batch_norm_layers(model)}


def assert_close(ours, ref):
    worst = 0.0
    for n in ref:
        for a, b in zip(ours[n], ref[n]):
            d = ((a - b).abs() / (1e-6 + 1e-5 * b.abs())).max().item()
            worst = max(worst, d)
    assert worst <= 1.0, "worst |ours - torch| / (1e-6 + 1e-5 |torch|) = %.3f" % worst


@pytest.mark.parametrize("what", ["both", "mean", "var"])
def test_matches_torch_train_mode_pass(what):
    model, x = make_model(), target_batch()
    ref = torch_reference(model, x, what)
    snt.rectify(model, x, what=what)
    assert_close(stats(model), ref)


def test_layers_subset_prior_and_thirds():
    x = target_batch()
    names = [n for n, _ in snt.batch_norm_layers(make_model())]
    model = make_model()
    snt.rectify(model, x, layers=[names[1], 3])
    assert_close(stats(model), torch_reference(make_model(), x, layers=[names[1], names[3]]))
    model = make_model()  # 4 BN layers: third min(2, 3i/4) -> front {0, 1}, middle {2}, end {3}
    assert snt.rectify(model, x, layers="front") == names[:2]
    assert_close(stats(model), torch_reference(make_model(), x, layers=names[:2]))
    assert snt.rectify(make_model(), x, layers="middle") == names[2:3]
    assert snt.rectify(make_model(), x, layers="end") == names[3:]
    model = make_model()
    snt.rectify(model, x, prior=16)
    assert_close(stats(model), torch_reference(make_model(), x, prior=16.0))
    model = make_model()
    snt.rectify(model, x, layers=lambda n, m: isinstance(m, nn.BatchNorm1d))
    assert_close(stats(model), torch_reference(make_model(), x, layers=[names[3]]))


def test_in_place_zero_copy_and_channels_last():
    model, x = make_model(), target_batch()
    ptrs = [(b.running_mean.data_ptr(), b.running_var.data_ptr()) for _, b in snt.batch_norm_layers(model)]
    model.train()
    snt.rectify(model, x)
    assert model.training  # the flag is restored
    assert ptrs == [(b.running_mean.data_ptr(), b.running_var.data_ptr()) for _, b in snt.batch_norm_layers(model)]
    # channels_last activations are read as they lie and give the same statistics
    cl = make_model().to(memory_format=torch.channels_last)
    snt.rectify(cl, x.to(memory_format=torch.channels_last))
    assert_close(stats(cl), stats(model))


def test_rectified_model_predicts_like_torch():
    model, x = make_model(), target_batch()
    ref = copy.deepcopy(model)
    for b in ref.modules():
        if isinstance(b, nn.modules.batchnorm._BatchNorm):
            b.train(), b.reset_running_stats()
            b.momentum = None
    with torch.no_grad():
        ref(x)
    ref.eval()
    snt.rectify(model, x)
    y = target_batch(8, seed=5)
    with torch.no_grad():
        assert torch.allclose(model(y), ref(y), rtol=1e-4, atol=1e-5)


def test_bad_arguments_and_hostile_inputs():
    model, x = make_model(), target_batch()
    before = {n: (a.clone(), b.clone()) for n, (a, b) in stats(model).items()}
    with pytest.raises(ValueError, match="what"):
        snt.rectify(model, x, what="std")
    with pytest.raises(ValueError, match="prior"):
        snt.rectify(model, x, prior=-1)
    with pytest.raises(ValueError, match="not a BatchNorm layer"):
        snt.rectify(model, x, layers=["0"])
    with pytest.raises(ValueError, match="out of range"):
        snt.rectify(model, x, layers=[9])
    with pytest.raises(TypeError):
        snt.rectify("model", x)
    with pytest.raises(ValueError, match="no BatchNorm"):
        snt.rectify(nn.Linear(3, 3), torch.zeros(2, 3))
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        snt.rectify(model, nan)
    with pytest.raises(ValueError, match="2"):  # one sample: BatchNorm1d sees one value per channel
        snt.rectify(model, x[:1])
    for n, (a, b) in stats(model).items():  # every failed call left the source statistics
        assert torch.equal(a, before[n][0]) and torch.equal(b, before[n][1])
    nostats = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, track_running_stats=False))
    with pytest.raises(ValueError, match="track_running_stats"):
        snt.rectify(nostats, x)
    with pytest.raises(TypeError, match="float32"):
        snt.rectify(make_model().double(), x.double())
    # the one-sample case is fine when only the means are re-estimated
    snt.rectify(make_model(), x[:1], what="mean", layers=[0, 1, 2])
