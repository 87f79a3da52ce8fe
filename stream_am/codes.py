"""Codes: the forward pass that produces them and their top-down update, one block at a time.

Every code objective is a sum over samples (each sample's code is its own variable, so a step is the same
whatever the mini-batch size) of squared Euclidean distances:

- top code:    loss(y, out(act_L(c))) / mu + ||c - c0||^2 + (lambda_c / mu) ||c||_1
- hidden code: ||block_{l+1}(act_l(c)) - c_{l+1}||^2 + ||c - c0||^2 + (lambda_c / mu) ||c||_1

where ``c0`` is the forward value and ``c_{l+1}`` the code just updated above (detached). A gradient taken
here reaches exactly one block: the code itself and the block right above it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from stream_am.fastgrad import elementwise, linear_objective
from stream_am.network import Network

__all__ = ["forward_codes", "update_codes", "output_loss", "nesterov_descent"]

Mask = dict[int, torch.Tensor] | None
Masks = list[dict[int, torch.Tensor]]


def output_loss(out: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """Sum over samples of the per-sample loss (cross-entropy, or the mean squared error over outputs)."""
    if loss == "cross_entropy":
        return F.cross_entropy(out, y, reduction="sum")
    if loss == "onehot_mse":
        return (out - F.one_hot(y, out.shape[1]).to(out.dtype)).pow(2).sum()
    if loss == "sq":  # y already holds the targets (e.g. one-hot rows)
        return (out - y).pow(2).sum()
    return (out - y).pow(2).mean(dim=1).sum()


@torch.no_grad()
def forward_codes(
    net: Network, x: torch.Tensor, masks: Masks | None = None, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """Codes ``c_1..c_L`` of ``x`` (BatchNorm on batch moments), without gradients."""
    a = net.preprocess(x, None if masks is None else masks[0], generator)
    codes = []
    for l, block in enumerate(net.blocks):  # noqa: E741
        c = block.forward(a, batch_stats=True)
        codes.append(c)
        a = net.act(l, c, None if masks is None else masks[l + 1], generator)
    return codes


Evaluation = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]
ValueAndGrad = Callable[[torch.Tensor, bool], Evaluation]


def nesterov_descent(
    c0: torch.Tensor,
    value_and_grad: ValueAndGrad,
    steps: int,
    lr: float,
    momentum: float,
    host_branch: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``steps`` Nesterov steps from ``c0`` (PyTorch's formulation), monotone by safeguard.

    A step that raises the objective is undone, the momentum reset and the step size halved (an adaptive
    restart), so the returned code never has a higher objective than ``c0`` whatever ``lr`` and ``mu``.
    ``value_and_grad(c, need_grad)`` returns ``(value, grad, aux)`` and is called ``steps + 1`` times (the last
    call needs no gradient); ``aux`` (the output of the layer above, when known) is returned for the final
    code. ``c0`` is never modified. Accepting or undoing a step branches in Python when ``host_branch``
    (default: ``c0`` is on the CPU, where reading the test costs nothing) and otherwise selects with
    ``torch.where``, so a GPU step never waits for the device; both give the same result.
    """
    c = c0
    best, g, aux = value_and_grad(c0, True)
    v: torch.Tensor | None = None
    step = torch.full((), lr, dtype=c0.dtype, device=c0.device)
    on_host = c0.device.type == "cpu" if host_branch is None else host_branch
    for k in range(steps):
        assert g is not None
        v = g.clone() if v is None else v.mul_(momentum).add_(g)  # the momentum buffer starts at zero
        trial = torch.addcmul(c, step, g.add(v, alpha=momentum), value=-1.0)  # c - step (g + momentum v)
        last = k == steps - 1
        value, g_trial, aux_trial = value_and_grad(trial, not last)
        ok = value <= best
        if on_host:
            if bool(ok):
                c, aux, best = trial, aux_trial if aux is not None else None, value
                if g_trial is not None:
                    g = g_trial
            elif not last:
                v.zero_()
                step = step * 0.5
            continue
        # accept or undo without a device-to-host sync (torch.where), so GPU steps never stall here
        c = torch.where(ok, trial, c)
        aux = torch.where(ok, aux_trial, aux) if aux is not None and aux_trial is not None else None
        if last:  # the search state below is dead after the last step
            break
        best = torch.where(ok, value, best)
        if g_trial is not None:
            g = torch.where(ok, g_trial, g)
        v = torch.where(ok, v, torch.zeros_like(v))
        step = torch.where(ok, step, step * 0.5)
    return c, aux


def _l1(c: torch.Tensor, weight: float) -> torch.Tensor:
    return weight * c.abs().sum() if weight > 0 else c.new_zeros(())


Objective = Callable[[torch.Tensor], torch.Tensor]


def _top_objective(
    net: Network, c0: torch.Tensor, y: torch.Tensor, loss: str, mu: float, sparsity: float, masks: Mask
) -> Objective:
    def objective(c: torch.Tensor) -> torch.Tensor:
        out = net.out(net.act(net.n_codes - 1, c, masks))
        return output_loss(out, y, loss) / mu + (c - c0).pow(2).sum() + _l1(c, sparsity)

    return objective


def _hidden_objective(
    net: Network, l: int, c0: torch.Tensor, target: torch.Tensor, sparsity: float, masks: Mask
) -> Objective:
    block = net.blocks[l + 1]

    def objective(c: torch.Tensor) -> torch.Tensor:
        pred = block.forward(net.act(l, c, masks), batch_stats=True)
        return (pred - target).pow(2).sum() + (c - c0).pow(2).sum() + _l1(c, sparsity)

    return objective


def _fast_value_and_grad(
    net: Network,
    l: int,
    c: torch.Tensor,
    c0: torch.Tensor,
    new: list[torch.Tensor],
    y: torch.Tensor,
    loss: str,
    mu: float,
    sparsity: float,
    masks: Mask,
    need_grad: bool,
    out: torch.Tensor | None,
) -> Evaluation | None:
    top = l == net.n_codes - 1
    layer = net.out if top else net.blocks[l + 1].layer
    if not top and (net.blocks[l + 1].norm is not None or not isinstance(layer, nn.Linear)) or c.ndim != 2:
        return None
    act = elementwise(net.acts[l], c, masks)
    if act is None:
        return None
    assert isinstance(layer, nn.Linear)
    if top:
        return linear_objective(layer, act, c, c0, y, loss, 1.0 / mu, sparsity, out=out, need_grad=need_grad)
    return linear_objective(layer, act, c, c0, new[l + 1], "sq", 1.0, sparsity, out=out, need_grad=need_grad)


def update_codes(
    net: Network,
    codes: list[torch.Tensor],
    y: torch.Tensor,
    *,
    loss: str,
    mu: float,
    steps: int,
    lr: float,
    momentum: float,
    lambda_c: float,
    masks: Masks | None = None,
    fast_path: bool = True,
    top_out: torch.Tensor | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor | None]]:
    """Return the updated codes, computed from the top code down, and what the layer above each outputs.

    ``above[l]`` is the output (before any BatchNorm) of the layer above code ``l`` at the updated code,
    when the closed-form path computed it (else ``None``): the weight step of that layer reuses it.
    ``fast_path`` uses closed-form gradients (:mod:`stream_am.fastgrad`) where the layout allows;
    ``top_out`` (the network's outputs at the forward codes) saves recomputing them.
    """
    L = len(codes)
    if loss == "onehot_mse" and codes:  # one-hot targets once per batch, not at every evaluation
        y, loss = F.one_hot(y, net.out.out_features).to(codes[-1].dtype), "sq"
    new: list[torch.Tensor] = [c for c in codes]
    above: list[torch.Tensor | None] = [None] * L
    sparsity = lambda_c / mu
    for l in range(L - 1, -1, -1):
        c0 = codes[l]
        act_masks = None if masks is None else masks[l + 1]
        if l == L - 1:
            objective = _top_objective(net, c0, y, loss, mu, sparsity, act_masks)
        else:
            objective = _hidden_objective(net, l, c0, new[l + 1], sparsity, act_masks)

        # the objective's fit term at c0 is already known: the forward code above (or the outputs)
        out0 = top_out if l == L - 1 else (codes[l + 1] if net.blocks[l + 1].norm is None else None)

        def grad(
            c: torch.Tensor,
            need_grad: bool,
            objective: Objective = objective,
            l: int = l,
            c0: torch.Tensor = c0,
            m: Mask = act_masks,
            out0: torch.Tensor | None = out0,
        ) -> Evaluation:
            if fast_path:
                with torch.no_grad():
                    out = out0 if c is c0 else None
                    fast = _fast_value_and_grad(net, l, c, c0, new, y, loss, mu, sparsity, m, need_grad, out)
                if fast is not None:
                    return fast
            with torch.enable_grad():
                leaf = c.detach().requires_grad_(True)
                value = objective(leaf)
                (g,) = torch.autograd.grad(value, [leaf])
            return value.detach(), g, None

        with torch.no_grad():
            new[l], above[l] = nesterov_descent(c0, grad, steps, lr, momentum)
    return new, above
