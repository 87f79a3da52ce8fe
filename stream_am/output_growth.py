"""Grow the output layer of an ``nn.Sequential`` for new classes, carrying its Adam state over.

Used by :class:`~stream_am.strategies.EWCClassifier`: the new rows start at zero (weights, bias and Adam's
moment estimates), every existing row keeps its values, and the optimiser keeps stepping the same parameters.
No random number is drawn.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["grow_output", "pad_rows"]


def pad_rows(t: torch.Tensor, extra: int) -> torch.Tensor:
    """``t`` with ``extra`` rows of zeros appended along the first dimension.

    Examples
    --------
    >>> pad_rows(torch.ones(1, 2), 1).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    return torch.cat([t, torch.zeros((extra, *t.shape[1:]), dtype=t.dtype, device=t.device)])


def grow_output(net: nn.Sequential, opt: torch.optim.Optimizer, n_outputs: int) -> int:
    """Replace ``net``'s last ``nn.Linear`` by one with ``n_outputs`` outputs; returns the number of rows added.

    The optimiser's parameter group and per-parameter state (``exp_avg``, ``exp_avg_sq``) move to the new
    weight and bias, padded with zeros.

    Examples
    --------
    >>> net = nn.Sequential(nn.Linear(2, 1))
    >>> opt = torch.optim.Adam(net.parameters())
    >>> grow_output(net, opt, 3), net[-1].out_features, len(opt.param_groups[0]["params"])
    (2, 3, 2)
    """
    out: nn.Linear = net[-1]  # type: ignore[assignment]
    new = nn.Linear(out.in_features, n_outputs, device="meta")  # its parameters are set below: no RNG draw
    extra = n_outputs - out.out_features
    new.weight = nn.Parameter(pad_rows(out.weight.detach(), extra))  # (on the old layer's device and dtype)
    new.bias = nn.Parameter(pad_rows(out.bias.detach(), extra))
    group = opt.param_groups[0]
    for old_p, new_p in [(out.weight, new.weight), (out.bias, new.bias)]:
        state = opt.state.pop(old_p, None)
        if state:
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = pad_rows(state[key], extra)
            opt.state[new_p] = state
        group["params"][[id(p) for p in group["params"]].index(id(old_p))] = new_p
    net[-1] = new
    return extra
