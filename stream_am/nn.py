"""Non-differentiable activations: :class:`Sign` and :class:`Step`.

Their forward pass is exact. Their backward pass is a straight-through estimate (the gradient of a hard
tanh for ``Sign``, of a hard sigmoid for ``Step``) so that *codes* can still be moved by gradient steps;
AM never differentiates weights through them (each weight subproblem starts at a code, after the
activation).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Sign", "Step"]


class _SignSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class _StepSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad * 0.5 * (x.abs() <= 1).to(grad.dtype)


class Sign(nn.Module):
    """Elementwise sign, with ``sign(0) = +1``; straight-through gradient inside ``[-1, 1]``.

    Examples
    --------
    >>> import torch
    >>> from stream_am.nn import Sign
    >>> Sign()(torch.tensor([-2.0, 0.0, 0.5])).tolist()
    [-1.0, 1.0, 1.0]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _SignSTE.apply(x)


class Step(nn.Module):
    """Heaviside step, ``1`` where ``x >= 0`` else ``0``; straight-through gradient 0.5 inside ``[-1, 1]``.

    Examples
    --------
    >>> import torch
    >>> from stream_am.nn import Step
    >>> Step()(torch.tensor([-2.0, 0.0, 0.5])).tolist()
    [0.0, 1.0, 1.0]
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _StepSTE.apply(x)
