"""One objective per code, chosen when the learner is built: its value and gradient, and its cached outputs.

Every code objective is a sum over samples (each sample's code is its own variable, so a step is the same
whatever the mini-batch size) of squared Euclidean distances:

- top code:    loss(y, out(act_L(c))) / mu + ||c - c0||^2 + (lambda_c / mu) ||c||_1
- hidden code: ||block_{l+1}(act_l(c)) - c_{l+1}||^2 + ||c - c0||^2 + (lambda_c / mu) ||c||_1

where ``c0`` is the forward value and ``c_{l+1}`` the code just updated above (detached). A gradient taken
here reaches exactly one block: the code itself and the layer right above it.

Whether an objective has a closed form is fixed by the network's layout, so it is decided once:
:class:`LinearObjective` (the layer above is a plain ``Linear`` and the nonlinear block between is
elementwise: the value and gradient are a few matrix products) or :class:`AutogradObjective` (autograd on
that one block: ``Conv2d``, BatchNorm, pooling, ...). An objective is given its step's data by
:meth:`CodeObjective.start` and keeps the output of the layer above at the last accepted code in ``output``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from stream_am.fastgrad import elementwise, is_elementwise
from stream_am.grad_mode import no_grad
from stream_am.network import Network

__all__ = [
    "one_hot_rows", "output_loss", "CodeObjective", "LinearObjective", "AutogradObjective", "build_objectives",
    "FIT_KINDS",
]

#: how the top code's fit term compares outputs with targets: class indices, values, or one-hot rows
FIT_KINDS = ("cross_entropy", "mse", "sq")

Evaluation = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]


def one_hot_rows(y: torch.Tensor, k: int, dtype: torch.dtype) -> torch.Tensor:
    """Class indices ``y`` (already checked to lie in ``[0, k)``) as one-hot rows (n x k) of ``dtype``:
    ``F.one_hot`` without its range check, which reads ``y`` again and waits for the host.

    Examples
    --------
    >>> one_hot_rows(torch.tensor([2, 0]), 3, torch.float32).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    return torch.zeros(y.shape[0], k, dtype=dtype, device=y.device).scatter_(1, y.unsqueeze(1), 1.0)


def output_loss(out: torch.Tensor, y: torch.Tensor, kind: str) -> torch.Tensor:
    """Sum over samples of the per-sample loss: cross-entropy, mean squared error over outputs (``mse``),
    or the sum of squares against target rows such as one-hot rows (``sq``)."""
    if kind == "cross_entropy":
        return F.cross_entropy(out, y, reduction="sum")
    if kind == "sq":
        return (out - y).pow(2).sum()
    if kind == "mse":
        return (out - y).pow(2).mean(dim=1).sum()
    raise ValueError(f"kind must be one of {list(FIT_KINDS)}, got {kind!r}")


def _sumsq(t: torch.Tensor) -> torch.Tensor:
    """Sum of squares in one pass (a dot product of the flattened tensor with itself)."""
    flat = t.reshape(-1)
    return torch.dot(flat, flat)


class CodeObjective:
    """The objective of code ``l`` of ``net``; ``kind`` is the top code's fit (hidden codes use ``"sq"``)."""

    def __init__(self, net: Network, l: int, kind: str):  # noqa: E741
        self.net, self.l = net, l
        self.top = l == net.n_codes - 1
        self.kind = kind if self.top else "sq"
        self.output: torch.Tensor | None = None

    def start(
        self,
        c0: torch.Tensor,
        target: torch.Tensor,
        masks: dict[int, torch.Tensor] | None,
        mu: float,
        sparsity: float,
        out0: torch.Tensor | None,
    ) -> None:
        """This step's data: forward code ``c0``, ``target`` above, dropout ``masks``, ``mu``, the L1 weight
        ``sparsity`` and ``out0``, the output of the layer above at ``c0`` when known."""
        self.c0, self.target, self.masks, self.mu, self.sparsity = c0, target, masks, mu, sparsity
        self.out0 = self.output = out0

    def __call__(self, c: torch.Tensor, need_grad: bool) -> Evaluation:
        """``(value, gradient or None, output of the layer above at c or None)``."""
        raise NotImplementedError


class AutogradObjective(CodeObjective):
    """Any layout: the value is computed with autograd on one block and differentiated in the code only."""

    def value(self, c: torch.Tensor) -> torch.Tensor:
        net, l = self.net, self.l
        a = net.act(l, c, self.masks)
        if self.top:
            fit = output_loss(net.out(a), self.target, self.kind) / self.mu
        else:
            fit = (net.blocks[l + 1].forward(a, batch_stats=True) - self.target).pow(2).sum()
        l1 = self.sparsity * c.abs().sum() if self.sparsity > 0 else c.new_zeros(())
        return fit + (c - self.c0).pow(2).sum() + l1

    def __call__(self, c: torch.Tensor, need_grad: bool) -> Evaluation:
        if not need_grad:
            with torch.no_grad():
                return self.value(c), None, None
        with torch.enable_grad():
            leaf = c.detach().requires_grad_(True)
            value = self.value(leaf)
            (g,) = torch.autograd.grad(value, [leaf])
        return value.detach(), g, None


class LinearObjective(CodeObjective):
    """A plain ``Linear`` above an elementwise nonlinear block: value and gradient in closed form."""

    @no_grad
    def __call__(self, c: torch.Tensor, need_grad: bool) -> Evaluation:
        layer = self.net.out if self.top else self.net.blocks[self.l + 1].layer
        act = elementwise(self.net.acts[self.l], c, self.masks, derivative=need_grad)
        assert act is not None  # build_objectives chose this class because the chain is elementwise
        a, da = act
        out = self.out0 if c is self.c0 and self.out0 is not None else F.linear(a, layer.weight, layer.bias)
        scale, target = (1.0 / self.mu if self.top else 1.0), self.target
        if self.kind == "cross_entropy":
            value = F.cross_entropy(out, target, reduction="sum")
            gout = torch.softmax(out, dim=1)
            gout[torch.arange(len(target), device=out.device), target] -= 1
            gscale = scale
        else:
            r = out - target
            k = out.shape[1] if self.kind == "mse" else 1
            value = _sumsq(r) if k == 1 else _sumsq(r) / k
            gout, gscale = r, scale * 2.0 / k  # the factor is applied to the (smaller) product below
        diff = None if c is self.c0 else c - self.c0  # at the forward code the proximal term is zero
        value = value if scale == 1.0 else scale * value  # (no operation for a factor of 1)
        value = value if diff is None else value + _sumsq(diff)
        if self.sparsity > 0:
            value = value + self.sparsity * c.abs().sum()
        if not need_grad:
            return value, None, out
        grad = (gout @ layer.weight).mul_(gscale)
        if da is not None:
            grad.mul_(da)
        if diff is not None:
            grad.add_(diff, alpha=2.0)
        if self.sparsity > 0:
            grad.add_(torch.sign(c), alpha=self.sparsity)
        return value, grad, out


def _flat_codes(net: Network) -> list[bool]:
    """Whether each code is a 2-d (samples x units) tensor, from the layout alone."""
    flat = not net.pre or any(isinstance(m, nn.Flatten) for m in net.pre)
    out = []
    for l, block in enumerate(net.blocks):  # noqa: E741
        flat = flat and isinstance(block.layer, nn.Linear)
        out.append(flat)
        flat = flat or any(isinstance(m, nn.Flatten) for m in net.acts[l])
    return out


def build_objectives(net: Network, top_kind: str) -> list[CodeObjective]:
    """One objective per code of ``net``, closed-form where the layout allows; ``top_kind`` in FIT_KINDS."""
    if top_kind not in FIT_KINDS:
        raise ValueError(f"top_kind must be one of {list(FIT_KINDS)}, got {top_kind!r}")
    flat = _flat_codes(net)
    objectives: list[CodeObjective] = []
    for l in range(net.n_codes):  # noqa: E741
        above_plain = l == net.n_codes - 1 or (
            net.blocks[l + 1].norm is None and isinstance(net.blocks[l + 1].layer, nn.Linear)
        )
        closed = flat[l] and above_plain and is_elementwise(net.acts[l])
        objectives.append((LinearObjective if closed else AutogradObjective)(net, l, top_kind))
    return objectives
