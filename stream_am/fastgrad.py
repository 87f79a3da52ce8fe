"""Closed-form gradients of the code objectives for the common case, without autograd.

When the block above a code is a plain ``Linear`` (no BatchNorm) and the nonlinear block between them is a
chain of elementwise modules, the value and gradient of a code objective are a few matrix products
(:class:`stream_am.objectives.LinearObjective`). This module gives that chain's value and derivative;
:func:`is_elementwise` tells, from the modules alone, whether it applies.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from stream_am.nn import Sign, Step

__all__ = ["elementwise", "is_elementwise"]

_SQRT_2PI = math.sqrt(2 * math.pi)


def _elementwise_module(m: nn.Module) -> bool:
    if isinstance(m, nn.GELU):
        return m.approximate == "none"
    return isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, Sign, Step, nn.Identity, nn.Dropout))


def is_elementwise(mods: list[nn.Module]) -> bool:
    """Whether :func:`elementwise` handles the chain ``mods`` (dropout masks of a learning step included)."""
    return all(_elementwise_module(m) for m in mods)


def elementwise(
    mods: list[nn.Module], c: torch.Tensor, masks: dict[int, torch.Tensor] | None, derivative: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(act(c), d act / d c)`` for a chain of elementwise modules (``None`` derivative means 1, or that it was
    not asked for: ``derivative=False``).

    The derivative may be a boolean mask (ReLU), which multiplies like 0/1 in the float dtype.

    Returns ``None`` when a module is not elementwise (pooling, flatten, tanh-approximated GELU, ...).
    Sign and Step use their straight-through derivatives, as autograd does.
    """
    a, d = c, None
    for k, m in enumerate(mods):
        if isinstance(m, nn.ReLU):
            a = torch.relu(a)
            if not derivative:
                continue
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
        if derivative:
            d = g if d is None else d * g
    return a, d
