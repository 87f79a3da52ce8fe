"""Adam, as an update rule for one block's parameters (AM-Adam and the Adam readout).

The functional core :func:`adam_update` works in place on tensors; :class:`AdamRule` owns the moments of one
block, created lazily with ``zeros_like`` so they follow the parameters' device, and can be grown when the
block's tensors grow (new features, new classes) without losing the moments already learned.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.optim.adam import adam as torch_adam

__all__ = ["adam_update", "adam_update_many", "AdamRule"]


_FUSED_DEVICES = ("cpu", "cuda")


@torch.no_grad()
def adam_update_many(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    exp_avg_sqs: Sequence[torch.Tensor],
    step: int,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    fused: bool | None = None,
    step_tensors: Sequence[torch.Tensor] | None = None,
) -> bool:
    """One Adam step (Kingma & Ba, 2015) on every tensor of ``params`` in place; ``step`` counts from 1.

    Runs torch's fused Adam kernel (``torch.optim.adam.adam(..., fused=True)``: one pass over each tensor,
    measured 1.2-3.5x faster than the textbook sequence of in-place ops on one CPU thread for 64x65 to
    1024x1025 weights) when parameters and moments are contiguous floating-point tensors of one dtype on a
    CPU or CUDA device (gradients are made contiguous first: the kernel reads every tensor as flat memory, and
    silently misreads a transposed one); otherwise the same formula as separate in-place operations
    (``fused=False`` forces those). The step count lives in a
    scalar tensor made on the parameters' device (a fill, not a host-to-device copy), or in ``step_tensors``
    (one float32 scalar per parameter, holding ``step - 1``; the fused kernel increments them in place).
    Returns whether the fused kernel ran (``step_tensors`` are then incremented, else left alone).

    Examples
    --------
    >>> import torch
    >>> params = [torch.tensor([1.0, 2.0]), torch.tensor([3.0])]
    >>> grads = [torch.tensor([0.5, -0.5]), torch.tensor([2.0])]
    >>> moments = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    >>> adam_update_many(params, grads, *moments, 1, lr=0.1)
    True
    >>> [[round(v, 4) for v in p.tolist()] for p in params]  # a first Adam step moves each entry by lr
    [[0.9, 2.1], [2.9]]
    """
    if not params:
        return False
    dev = params[0].device
    fused = (fused is None or fused) and dev.type in _FUSED_DEVICES and all(
        t.device == dev and t.dtype == params[0].dtype and t.is_floating_point() and t.is_contiguous()
        for t in (*params, *exp_avgs, *exp_avg_sqs)
    )
    if fused:
        # the fused kernel reads every tensor as flat memory: a transposed gradient would be misread
        grads = [g.to(params[0].dtype).contiguous() for g in grads]  # both no-ops when already so
        fused = all(g.device == dev for g in grads)
    if fused:
        steps = (
            list(step_tensors)
            if step_tensors is not None
            else [torch.full((), float(step - 1), dtype=torch.float32, device=dev) for _ in params]
        )
        torch_adam(
            list(params),
            list(grads),
            list(exp_avgs),
            list(exp_avg_sqs),
            [],
            steps,
            fused=True,
            amsgrad=False,
            beta1=beta1,
            beta2=beta2,
            lr=lr,
            weight_decay=0.0,
            eps=eps,
            maximize=False,
        )
        return True
    bias1 = 1 - beta1**step
    bias2 = 1 - beta2**step
    for param, grad, exp_avg, exp_avg_sq in zip(params, grads, exp_avgs, exp_avg_sqs, strict=True):
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (exp_avg_sq / bias2).sqrt_().add_(eps)
        param.addcdiv_(exp_avg, denom, value=-lr / bias1)
    return False


def adam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> None:
    """One Adam step on ``param`` (see :func:`adam_update_many`); ``step`` counts from 1.

    Examples
    --------
    >>> import torch
    >>> p, g = torch.tensor([1.0]), torch.tensor([0.5])
    >>> m, v = torch.zeros(1), torch.zeros(1)
    >>> adam_update(p, g, m, v, 1, lr=0.1)
    >>> round(p.item(), 6)
    0.9
    """
    adam_update_many([param], [grad], [exp_avg], [exp_avg_sq], step, lr=lr, beta1=beta1, beta2=beta2, eps=eps)


class AdamRule:
    """Adam moments for a list of parameters.

    Parameters
    ----------
    lr
        Step size.
    betas
        Decay rates of the first and second moments.
    eps
        Added to the denominator.
    """

    def __init__(self, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if not (lr > 0 and math.isfinite(lr)):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.step_count = 0
        self.exp_avg: list[torch.Tensor] = []
        self.exp_avg_sq: list[torch.Tensor] = []
        self._steps: list[torch.Tensor] = []  # step_count as device scalars for the fused kernel
        self._steps_at = -1  # the step_count they hold (-1: rebuild them)

    def step(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
        if not self.exp_avg:
            self.exp_avg = [torch.zeros_like(p) for p in params]
            self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        stale = self._steps_at != self.step_count or len(self._steps) != len(params)
        if stale or any(t.device != p.device for t, p in zip(self._steps, params, strict=True)):
            self._steps = [
                torch.full((), float(self.step_count), dtype=torch.float32, device=p.device) for p in params
            ]
        self.step_count += 1
        fused = adam_update_many(
            params,
            grads,
            self.exp_avg,
            self.exp_avg_sq,
            self.step_count,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            eps=self.eps,
            step_tensors=self._steps,
        )
        self._steps_at = self.step_count if fused else -1

    def grow(self, index: int, dim: int, n_new: int) -> None:
        """Append ``n_new`` zero slices along ``dim`` to the moments of parameter ``index``."""
        if not self.exp_avg:
            return
        for moments in (self.exp_avg, self.exp_avg_sq):
            t = moments[index]
            shape = list(t.shape)
            shape[dim] = n_new
            moments[index] = torch.cat([t, t.new_zeros(shape)], dim=dim)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        if not self.exp_avg:
            return {}
        out = {f"{prefix}step": torch.tensor(self.step_count, dtype=torch.int64)}
        for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq, strict=True)):
            out[f"{prefix}{i}.exp_avg"] = m
            out[f"{prefix}{i}.exp_avg_sq"] = v
        return out

    def load_state_dict(
        self, state: dict[str, torch.Tensor], prefix: str, params: list[torch.Tensor]
    ) -> None:
        if f"{prefix}step" not in state:
            self.step_count, self.exp_avg, self.exp_avg_sq = 0, [], []
            return
        ms, vs = [], []
        for i, p in enumerate(params):
            m, v = state[f"{prefix}{i}.exp_avg"], state[f"{prefix}{i}.exp_avg_sq"]
            if m.shape != p.shape or v.shape != p.shape:
                raise ValueError(
                    f"state[{prefix}{i}.exp_avg] has shape {tuple(m.shape)}, expected {tuple(p.shape)}"
                )
            ms.append(m.to(p.device, p.dtype).clone())
            vs.append(v.to(p.device, p.dtype).clone())
        self.step_count = int(state[f"{prefix}step"])
        self.exp_avg, self.exp_avg_sq = ms, vs
