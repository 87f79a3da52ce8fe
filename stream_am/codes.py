"""Codes: the forward pass that produces them and their top-down update, one objective at a time.

The objectives themselves (value, gradient, cached outputs) are in :mod:`stream_am.objectives`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from stream_am.grad_mode import no_grad
from stream_am.network import Network
from stream_am.objectives import CodeObjective, Evaluation

__all__ = ["forward_codes", "update_codes", "nesterov_descent"]

Masks = list[dict[int, torch.Tensor]]


@no_grad
def forward_codes(
    net: Network, x: torch.Tensor, masks: Masks | None = None, generator: torch.Generator | None = None
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Codes ``c_1..c_L`` of ``x`` (BatchNorm on batch moments) and the network's outputs, without gradients.

    Dropout masks are drawn from ``generator`` into ``masks`` (one dict per nonlinear block), so that the
    rest of the step sees the same masks.
    """
    a = net.preprocess(x, None if masks is None else masks[0], generator)
    codes = []
    for l, block in enumerate(net.blocks):  # noqa: E741
        c = block.forward(a, batch_stats=True)
        codes.append(c)
        a = net.act(l, c, None if masks is None else masks[l + 1], generator)
    return codes, net.out(a)


@no_grad
def nesterov_descent(
    c0: torch.Tensor, value_and_grad: Callable[[torch.Tensor, bool], Evaluation], steps: int, lr: float,
    momentum: float,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``steps`` Nesterov steps from ``c0`` (PyTorch's formulation), monotone by safeguard.

    A step that raises the objective is undone, the momentum reset and the step size halved (an adaptive
    restart), so the returned code never has a higher objective than ``c0`` whatever ``lr`` and ``mu``.
    ``value_and_grad(c, need_grad)`` returns ``(value, grad, aux)`` and is called ``steps + 1`` times (the last
    call needs no gradient); ``aux`` (the output of the layer above, when known) is returned for the final
    code. ``c0`` is never modified. Accepting or undoing a step is a ``torch.where`` selection, on every device
    (no device-to-host sync, so a GPU step never waits here).
    """
    c = c0
    best, g, aux = value_and_grad(c0, True)
    v: torch.Tensor | None = None
    step: torch.Tensor | None = None  # lr, halved by each undone step (a tensor: no device-to-host copy)
    for k in range(steps):
        assert g is not None  # every evaluation but the last computes a gradient
        last = k == steps - 1
        if k == 0 and last:  # a single step from a zero buffer: c - lr (1 + momentum) g, no buffer kept
            trial = torch.add(c, g, alpha=-lr * (1.0 + momentum))
        else:
            step = torch.full((), lr, dtype=c0.dtype, device=c0.device) if step is None else step
            v = g.clone() if v is None else v.mul_(momentum).add_(g)  # the momentum buffer starts at zero
            trial = torch.addcmul(c, step, g.add(v, alpha=momentum), value=-1.0)  # c - step (g + momentum v)
        value, g_trial, aux_trial = value_and_grad(trial, not last)
        ok = value <= best
        c = torch.where(ok, trial, c)
        aux = torch.where(ok, aux_trial, aux) if aux is not None and aux_trial is not None else None
        if last:  # the search state below is dead after the last step
            break
        assert v is not None and step is not None  # set by every step but a single one
        best = torch.where(ok, value, best)
        if g_trial is not None:
            g = torch.where(ok, g_trial, g)
        v = torch.where(ok, v, torch.zeros_like(v))
        step = torch.where(ok, step, step * 0.5)
    return c, aux


def update_codes(
    objectives: Sequence[CodeObjective],
    codes: list[torch.Tensor],
    target: torch.Tensor,
    masks: Masks,
    top_out: torch.Tensor,
    *,
    mu: float,
    lambda_c: float,
    steps: int,
    lr: float,
    momentum: float,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """The updated codes, from the top code down; each objective keeps the output of the layer above it at
    its updated code in ``output``.

    ``target`` is what the top code's objective fits (class indices, values or one-hot rows), ``top_out`` the
    network's outputs at the forward codes, and ``codes[l + 1]`` the output of block ``l + 1`` at ``codes[l]``.
    The gradient steps are per sample, but the safeguard of :func:`nesterov_descent` compares the batch's
    total objective: a data-parallel step passes ``reduce`` (a sum over workers) to compare the global one.
    """
    new = list(codes)
    for l in range(len(codes) - 1, -1, -1):  # noqa: E741
        top = l == len(codes) - 1
        objective = objectives[l]
        objective.start(
            codes[l], target if top else new[l + 1], masks[l + 1], mu, lambda_c / mu, top_out if top else codes[l + 1]
        )
        fn = objective if reduce is None else _summed(objective, reduce)
        new[l], objective.output = nesterov_descent(codes[l], fn, steps, lr, momentum)
    return new


def _summed(
    objective: CodeObjective, reduce: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[torch.Tensor, bool], Evaluation]:
    """``objective`` whose value is summed over the workers (one scalar collective per evaluation)."""

    def value_and_grad(c: torch.Tensor, need_grad: bool) -> Evaluation:
        value, grad, aux = objective(c, need_grad)
        total = reduce(value.detach().reshape(1).to(torch.float64)).to(device=value.device, dtype=value.dtype)
        return total.reshape(()), grad, aux

    return value_and_grad
