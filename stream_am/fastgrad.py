"""Closed-form gradients of the code objectives for the common case, without autograd.

When the block above a code is a plain ``Linear`` (no BatchNorm) and the nonlinear block between them is a
chain of elementwise modules, the value and gradient of a code objective are a few matrix products. This is
what makes a code step cheap; :mod:`stream_am.codes` falls back to autograd (on that one block) for every
other layout, and the tests check both give the same numbers.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from stream_am.nn import Sign, Step

__all__ = ["elementwise", "linear_objective"]

_SQRT_2PI = math.sqrt(2 * math.pi)


def elementwise(
    mods: list[nn.Module], c: torch.Tensor, masks: dict[int, torch.Tensor] | None
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(act(c), d act / d c)`` for a chain of elementwise modules (``None`` derivative means 1).

    The derivative may be a boolean mask (ReLU), which multiplies like 0/1 in the float dtype.

    Returns ``None`` when a module is not elementwise (pooling, flatten, tanh-approximated GELU, ...).
    Sign and Step use their straight-through derivatives, as autograd does.
    """
    a, d = c, None
    for k, m in enumerate(mods):
        if isinstance(m, nn.ReLU):
            a = torch.relu(a)
            g = a > 0  # a boolean mask: multiplying by it promotes to the float dtype
        elif isinstance(m, nn.LeakyReLU):
            g = torch.where(a > 0, 1.0, m.negative_slope).to(a.dtype)
            a = a * g
        elif isinstance(m, nn.Tanh):
            a = torch.tanh(a)
            g = 1 - a * a
        elif isinstance(m, nn.Sigmoid):
            a = torch.sigmoid(a)
            g = a * (1 - a)
        elif isinstance(m, nn.GELU) and m.approximate == "none":
            cdf = 0.5 * (1 + torch.erf(a / math.sqrt(2)))
            g = cdf + a * torch.exp(-0.5 * a * a) / _SQRT_2PI
            a = a * cdf
        elif isinstance(m, Sign):
            g = (a.abs() <= 1).to(a.dtype)
            a = torch.where(a >= 0, 1.0, -1.0).to(a.dtype)
        elif isinstance(m, Step):
            g = 0.5 * (a.abs() <= 1).to(a.dtype)
            a = (a >= 0).to(a.dtype)
        elif isinstance(m, nn.Identity) or (isinstance(m, nn.Dropout) and (masks is None or m.p == 0)):
            continue
        elif isinstance(m, nn.Dropout) and masks is not None and k in masks:
            g = masks[k]
            a = a * g
        else:
            return None
        d = g if d is None else d * g
    return a, d


def _sumsq(t: torch.Tensor) -> torch.Tensor:
    """Sum of squares in one pass (a dot product of the flattened tensor with itself)."""
    flat = t.reshape(-1)
    return torch.dot(flat, flat)


def linear_objective(
    layer: nn.Linear,
    act: tuple[torch.Tensor, torch.Tensor | None],
    c: torch.Tensor,
    c0: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    scale: float,
    sparsity: float,
    out: torch.Tensor | None = None,
    need_grad: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Value and gradient of ``scale * fit(layer(a), target) + ||c - c0||^2 + sparsity ||c||_1``.

    ``kind`` is the fit: ``"sq"`` (sum of squares), ``"cross_entropy"`` (``target`` holds class indices),
    or ``"mse"`` (per-sample mean of squares).
    ``out`` may pass ``layer(a)`` when it is already known; without ``need_grad`` the gradient is ``None``.
    Returns ``(value, gradient, layer(a))``.
    """
    a, da = act
    if out is None:
        out = F.linear(a, layer.weight, layer.bias)
    layer_out = out
    if kind == "cross_entropy":
        value = F.cross_entropy(out, target, reduction="sum")
        gout = torch.softmax(out, dim=1)
        gout[torch.arange(len(target), device=out.device), target] -= 1
        gscale = scale
    else:
        r = out - target
        k = out.shape[1] if kind == "mse" else 1
        value = _sumsq(r) / k
        gout, gscale = r, scale * 2.0 / k  # the factor is applied to the (smaller) product below
    diff = None if c is c0 else c - c0  # at the forward code the proximal term and its gradient are zero
    value = scale * value if diff is None else scale * value + _sumsq(diff)
    if sparsity > 0:
        value = value + sparsity * c.abs().sum()
    if not need_grad:
        return value, None, layer_out
    grad = (gout @ layer.weight).mul_(gscale)
    if da is not None:
        grad.mul_(da)
    if diff is not None:
        grad.add_(diff, alpha=2.0)
    if sparsity > 0:
        grad.add_(torch.sign(c), alpha=sparsity)
    return value, grad, layer_out
