# SPDX-License-Identifier: MIT
"""BN-statistics rectification for PyTorch models (seed 000), computed by shiftnorm's kernels.

``rectify(model, batch)`` re-estimates the running statistics of the model's BatchNorm layers
from ``batch`` (k unlabeled samples of the target domain) in one forward pass, the paper's
procedure: every rectified layer normalizes with the batch mean and biased batch variance during
the pass (what PyTorch's train mode does), stores the batch mean and unbiased variance (what a
train-mode pass with momentum=None stores after reset_running_stats()), and then keeps only the
statistic chosen by ``what``; layers left out keep and use their source statistics.

The statistics are computed by shiftnorm's C++ kernels directly on the activations and written
into the layers' own ``running_mean`` / ``running_var`` tensors: no copy of either (channels_last
activations are read as they lie). CPU float32 models only.
"""

import torch as _torch

from . import _core

__all__ = ["rectify", "batch_norm_layers"]


def batch_norm_layers(model):
    """(name, module) of every BatchNorm layer of ``model`` (BatchNorm1d/2d/3d, SyncBatchNorm),
    in registration order: the order ``layers`` indices refer to."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _torch.nn.modules.batchnorm._BatchNorm)]


def _select(bns, layers):
    names = [n for n, _ in bns]
    if isinstance(layers, str):
        thirds = {"front": 0, "middle": 1, "end": 2}
        if layers == "all":
            return set(names)
        if layers in thirds:  # seed 000, Table 7: the front, middle or end third, the library's rule
            return {n for i, n in enumerate(names) if _core.rectify_third(i, len(names)) == thirds[layers]}
        layers = [layers]
    if callable(layers):
        return {n for n, m in bns if layers(n, m)}
    chosen = set()
    for item in layers:
        if isinstance(item, bool):
            raise TypeError("layers: expected names or indices, got a bool")
        if isinstance(item, int):
            if not -len(names) <= item < len(names):
                raise ValueError("layers: index %d out of range for %d BatchNorm layers" % (item, len(names)))
            chosen.add(names[item])
        elif isinstance(item, str):
            if item not in names:
                raise ValueError("layers: %r is not a BatchNorm layer of the model; BatchNorm layers: %s"
                                 % (item, ", ".join(names)))
            chosen.add(item)
        else:
            raise TypeError("layers: expected names or indices, got %s" % type(item).__name__)
    return chosen


def rectify(model, batch, what="both", layers="all", prior=0, variance="unbiased", pass_stats="batch"):
    """Rectifies the BN statistics of ``model`` in place from ``batch`` and returns the names of
    the rectified layers.

    model: a torch.nn.Module on the CPU, float32, whose BatchNorm layers track running stats.
    batch: the model's input, k target samples (a tensor, or a tuple of positional inputs).
    what: 'both' (default), 'mean' (keep the source variance) or 'var' (keep the source mean).
    layers: 'all', 'front' / 'middle' / 'end' (a third of the BN layers, seed 000 Table 7), a list
        of BN layer names or indices (see batch_norm_layers), or a callable(name, module) -> bool.
    prior: N >= 0; stores N/(N+n) * source + n/(N+n) * batch (Schneider et al. 2020), n = len(batch).
    variance: 'unbiased' (default, what PyTorch stores) or 'biased' variance stored.
    pass_stats: 'batch' (default: normalize with the batch statistics during the pass, PyTorch
        train mode) or 'adapted' (normalize with what is stored, Schneider et al.'s procedure).
    The model is run in eval mode (dropout off) under no_grad; its training flag is restored.
    Raises ValueError / TypeError for bad arguments; on an error no layer is left half-updated
    except those already rectified before it (their source statistics are restored).
    """
    if not isinstance(model, _torch.nn.Module):
        raise TypeError("model: expected a torch.nn.Module, got %s" % type(model).__name__)
    if what not in ("both", "mean", "var"):
        raise ValueError("what: expected 'both', 'mean' or 'var', got %r" % (what,))
    if isinstance(prior, bool) or not isinstance(prior, (int, float)) or not prior >= 0:
        raise ValueError("prior: expected a number >= 0, got %r" % (prior,))
    if variance not in ("unbiased", "biased"):
        raise ValueError("variance: expected 'unbiased' or 'biased', got %r" % (variance,))
    if pass_stats not in ("batch", "adapted"):
        raise ValueError("pass_stats: expected 'batch' or 'adapted', got %r" % (pass_stats,))
    inputs = batch if isinstance(batch, tuple) else (batch,)
    for t in inputs:
        if isinstance(t, _torch.Tensor) and t.device.type != "cpu":
            raise ValueError("batch: shiftnorm.torch runs on CPU tensors, got a tensor on %s" % t.device)
    bns = batch_norm_layers(model)
    if not bns:
        raise ValueError("model: has no BatchNorm layer to rectify")
    chosen = _select(bns, layers)
    for name, m in bns:
        if name not in chosen:
            continue
        if m.running_mean is None or m.running_var is None:
            raise ValueError("layer %r: track_running_stats is off, there are no statistics to rectify" % name)
        for buf in (m.running_mean, m.running_var):
            if buf.dtype != _torch.float32:
                raise TypeError("layer %r: expected float32 statistics, got %s" % (name, buf.dtype))
            if buf.device.type != "cpu":
                raise ValueError("layer %r: statistics on %s; shiftnorm.torch runs on CPU" % (name, buf.device))

    source = {n: (m.running_mean.clone(), m.running_var.clone()) for n, m in bns if n in chosen}
    stored = {}
    handles = []

    def hooks(name, m):
        mean_np = m.running_mean.detach().numpy()  # views of the layer's own buffers
        var_np = m.running_var.detach().numpy()

        def pre(_mod, args):
            x = args[0]
            if not isinstance(x, _torch.Tensor) or x.dtype != _torch.float32:
                raise TypeError("layer %r: expected a float32 tensor input" % name)
            if x.device.type != "cpu":
                raise ValueError("layer %r: input on %s; shiftnorm.torch runs on CPU" % (name, x.device))
            if not (x.is_contiguous() or x.is_contiguous(memory_format=_torch.channels_last)):
                x = x.contiguous()
            # writes the pass statistics into the buffers: the eval-mode layer then normalizes
            # with them, exactly as a train-mode layer normalizes with the batch statistics
            stored[name] = _core.rectify_layer(x.detach().numpy(), mean_np, var_np, what, float(prior), variance,
                                               pass_stats, True)[:2]

        def post(_mod, _args, _out):
            mean_np[...] = stored[name][0]
            var_np[...] = stored[name][1]

        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))

    was_training = model.training
    try:
        for name, m in bns:
            if name in chosen:
                hooks(name, m)
        model.eval()
        with _torch.no_grad():
            model(*inputs)
        missing = [n for n in source if n not in stored]
        if missing:
            raise ValueError("layers %s were not reached by the forward pass; nothing was rectified" % missing)
    except BaseException:
        for n, (mu, var) in source.items():  # restore the source statistics
            m = dict(bns)[n]
            m.running_mean.copy_(mu)
            m.running_var.copy_(var)
        raise
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return [n for n, _ in bns if n in chosen]
