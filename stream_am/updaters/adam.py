"""Adam, as torch.optim keeps it: a functional step over lists of tensors and per-parameter state.

:func:`adam_step` is the functional core: it calls torch's own ``torch.optim.adam.adam`` (the fused kernel
when every tensor allows it, else torch's single-tensor implementation), which increments each parameter's
``step`` tensor itself. :class:`AdamState` is the thin stateful part: for each parameter one dict
``{"step", "exp_avg", "exp_avg_sq"}``, created lazily with ``zeros_like`` so it follows the parameter's device,
padded (never rebuilt) when the parameter grows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.adam import adam as torch_adam

from stream_am.grad_mode import no_grad
from stream_am.network import CodeBlock
from stream_am.updaters.class_clock import Labels
from stream_am.updaters.class_state import check_values

__all__ = ["adam_step", "AdamState", "AdamUpdater", "linear_mse_grads"]

_FUSED_DEVICES = ("cpu", "cuda")


def _fusable(params: Sequence[torch.Tensor], tensors: Sequence[torch.Tensor]) -> bool:
    dev, dtype = params[0].device, params[0].dtype
    return dev.type in _FUSED_DEVICES and all(
        t.device == dev and t.dtype == dtype and t.is_floating_point() and t.is_contiguous() for t in tensors
    )


@no_grad
def adam_step(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    exp_avgs: Sequence[torch.Tensor],
    exp_avg_sqs: Sequence[torch.Tensor],
    steps: Sequence[torch.Tensor],
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    fused: bool | None = None,
) -> None:
    """One Adam step (Kingma & Ba, 2015) on every tensor of ``params``, in place; ``steps`` are incremented.

    ``steps`` holds one float32 scalar tensor per parameter (the number of steps taken so far), as in
    ``torch.optim.Adam``'s state. torch's fused kernel runs when every tensor is a contiguous floating tensor
    of one dtype on one CPU or CUDA device (gradients are made contiguous first: the kernel reads flat memory);
    otherwise, or with ``fused=False``, torch's single-tensor implementation.

    Examples
    --------
    >>> import torch
    >>> params = [torch.tensor([1.0, 2.0]), torch.tensor([3.0])]
    >>> grads = [torch.tensor([0.5, -0.5]), torch.tensor([2.0])]
    >>> m, v, s = ([torch.zeros_like(p) for p in params] for _ in range(3))
    >>> adam_step(params, grads, m, v, [torch.zeros(()) for _ in params], lr=0.1)
    >>> [[round(x, 4) for x in p.tolist()] for p in params]  # a first Adam step moves each entry by lr
    [[0.9, 2.1], [2.9]]
    """
    if not params:
        return
    dev = params[0].device
    use_fused = (fused is None or fused) and _fusable(params, [*params, *exp_avgs, *exp_avg_sqs])
    if use_fused:  # the kernel reads every tensor as flat memory: a transposed gradient would be misread
        grads = [g.to(params[0].dtype).contiguous() for g in grads]  # no-ops when already so
        use_fused = all(g.device == dev for g in grads) and all(s.device == dev for s in steps)
    torch_adam(
        list(params),
        list(grads),
        list(exp_avgs),
        list(exp_avg_sqs),
        [],
        list(steps),
        foreach=False,
        fused=use_fused,
        amsgrad=False,
        beta1=beta1,
        beta2=beta2,
        lr=lr,
        weight_decay=0.0,
        eps=eps,
        maximize=False,
    )


class AdamState:
    """Adam state of a list of parameters, one dict per parameter as in ``torch.optim.Adam.state``.

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
        self.lr, self.betas, self.eps = lr, betas, eps
        self.state: list[dict[str, torch.Tensor]] = []

    def step(self, params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor]) -> None:
        if not self.state:
            self.state = [
                {
                    "step": torch.zeros((), dtype=torch.float32, device=p.device),
                    "exp_avg": torch.zeros_like(p),
                    "exp_avg_sq": torch.zeros_like(p),
                }
                for p in params
            ]
        s = self.state
        adam_step(
            params,
            grads,
            [t["exp_avg"] for t in s],
            [t["exp_avg_sq"] for t in s],
            [t["step"] for t in s],
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            eps=self.eps,
        )

    def grow(self, index: int, dim: int, n_new: int) -> None:
        """Append ``n_new`` zero slices along ``dim`` to the moments of parameter ``index``."""
        if not self.state:
            return
        for key in ("exp_avg", "exp_avg_sq"):
            t = self.state[index][key]
            shape = list(t.shape)
            shape[dim] = n_new
            self.state[index][key] = torch.cat([t, t.new_zeros(shape)], dim=dim)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        return {f"{prefix}{i}.{k}": v for i, s in enumerate(self.state) for k, v in s.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor], prefix: str, params: Sequence[torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (shapes checked first); no keys means a fresh state."""
        if f"{prefix}0.step" not in state:
            self.state = []
            return
        for i, p in enumerate(params):
            for k in ("exp_avg", "exp_avg_sq"):
                t = state.get(f"{prefix}{i}.{k}")
                if t is None or t.shape != p.shape:
                    got = None if t is None else tuple(t.shape)
                    raise ValueError(f"state[{prefix}{i}.{k}] has shape {got}, expected {tuple(p.shape)}")
                check_values(f"{prefix}{i}.{k}", t, low=0.0 if k == "exp_avg_sq" else None)
            step = state.get(f"{prefix}{i}.step")
            if step is None or step.numel() != 1:
                raise ValueError(f"state[{prefix}{i}.step] must hold one number, got {None if step is None else step}")
            check_values(f"{prefix}{i}.step", step.reshape(-1).to(torch.float64), low=0.0)
        self.state = [
            {
                "step": state[f"{prefix}{i}.step"].to(device=p.device, dtype=torch.float32, copy=True).reshape(()),
                "exp_avg": state[f"{prefix}{i}.exp_avg"].to(p.device, p.dtype, copy=True),
                "exp_avg_sq": state[f"{prefix}{i}.exp_avg_sq"].to(p.device, p.dtype, copy=True),
            }
            for i, p in enumerate(params)
        ]


@no_grad
def linear_mse_grads(
    layer: nn.Linear, a: torch.Tensor, c: torch.Tensor, out: torch.Tensor | None = None, scale: float = 1.0
) -> list[torch.Tensor]:
    """Gradients (weight, then bias if any) of ``scale`` times the sum over samples of
    ``mean((layer(a_i) - c_i)^2)``.

    Two matrix products, no autograd; ``out`` is ``layer(a)`` when already known. Sums (``scale=1``), so that
    the gradients of shards of a batch add up to the batch's; ``scale=1 / n`` gives the mean over the batch
    (the residuals scaled, not the gradients: a pass over ``n x k`` numbers instead of ``d x k``).
    """
    per_sample = math.prod(c.shape[1:])  # outputs per sample (a shard may bring no samples)
    r = (F.linear(a, layer.weight, layer.bias) if out is None else out).sub(c).mul_(2.0 * scale / per_sample)
    gw = r.T @ a
    return [gw, r.sum(0)] if layer.bias is not None else [gw]


class AdamUpdater:
    """AM-Adam: ``steps`` Adam steps on ``mse(block(a), c) + lambda_w mean|W|`` for one code block.

    :meth:`statistics` are the gradients of the *sum* over samples of each sample's squared error (two
    matrix products for a plain ``Linear`` block, decided once, here; autograd on this one block otherwise:
    ``Conv2d``, BatchNorm); :meth:`apply` divides them by the number of samples, adds the L1 term of the
    weights and takes the Adam step.
    """

    name = "adam"
    steps: int

    def __init__(self, block: CodeBlock, lr: float, steps: int = 1, lambda_w: float = 0.0):
        self.block, self.steps, self.lambda_w = block, steps, lambda_w
        self.adam = AdamState(lr)
        self._closed_form = block.norm is None and isinstance(block.layer, nn.Linear)

    def statistics(
        self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
        labels: Labels | None = None,
    ) -> list[torch.Tensor]:
        return self._gradients(a, target, known, 1.0)

    def _gradients(self, a: torch.Tensor, target: torch.Tensor, known: torch.Tensor | None, scale: float
                   ) -> list[torch.Tensor]:
        """Gradients of ``scale`` times the sum over samples of each sample's squared error."""
        layer = self.block.layer
        if self._closed_form and isinstance(layer, nn.Linear):
            return linear_mse_grads(layer, a, target, known, scale)
        with torch.enable_grad():
            obj = F.mse_loss(self.block.forward(a, batch_stats=True), target, reduction="sum")
            obj = obj * (scale / math.prod(target.shape[1:]))  # the sum over samples of each sample's mean
            return list(torch.autograd.grad(obj, self.block.parameters()))

    @no_grad  # the statistics are fresh tensors, some of them views autograd made: divided in place, no_grad
    def apply(self, stats: list[torch.Tensor], n: int) -> None:
        self._step([s.div_(n) for s in stats])

    @no_grad
    def _step(self, grads: list[torch.Tensor]) -> None:
        """One Adam step on the mean gradients ``grads`` (plus the L1 term of the weights)."""
        if self.lambda_w > 0:
            w = self.block.layer.weight
            grads[0].add_(torch.sign(w), alpha=self.lambda_w / w.numel())
        self.adam.step(self.block.parameters(), grads)

    def fit(self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
            labels: Labels | None = None) -> None:
        for k in range(self.steps):
            self._step(self._gradients(a, target, known if k == 0 else None, 1.0 / n))

    def forget(self, factor: float) -> None:
        """Adam keeps no memory of samples: nothing to forget."""

    def grow_inputs(self, n_new: int) -> None:
        self.adam.grow(0, 1, n_new)

    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """Nothing to re-express: Adam's moment estimates are kept as they are (the weights were re-expressed)."""

    def grow_outputs(self, n_new: int) -> None:
        for index in range(len(list(self.block.layer.parameters()))):  # weight and bias grow along dim 0
            self.adam.grow(index, 0, n_new)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        return self.adam.state_dict(prefix)

    def load_state_dict(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        self.adam.load_state_dict(state, prefix, self.block.parameters())
