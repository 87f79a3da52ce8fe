"""OnlineAM: one online step = forward codes, top-down code updates, then every layer fits its own weights."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from stream_am import checks
from stream_am.affine import get_affine as _get_affine
from stream_am.affine import rows as _rows
from stream_am.affine import set_affine as _set_affine
from stream_am.codes import forward_codes, output_loss, update_codes
from stream_am.learner_state import LearnerState
from stream_am.network import CodeBlock, Network, decompose
from stream_am.updaters import AdamRule, MemoryRule

__all__ = ["OnlineAM"]

_FLOAT_PARAMS = {  # name: (low, high, low_inclusive)
    "mu": (0.0, math.inf, False),
    "mu_growth": (0.0, math.inf, True),
    "mu_max_factor": (1.0, math.inf, True),
    "code_lr": (0.0, math.inf, True),
    "code_momentum": (0.0, 1.0, True),
    "weight_lr": (0.0, math.inf, False),
    "output_lr": (0.0, math.inf, False),
    "memory_decay": (0.0, 1.0, True),
    "ridge": (0.0, math.inf, False),
    "lambda_c": (0.0, math.inf, True),
    "lambda_w": (0.0, math.inf, True),
}


@torch.no_grad()
def _linear_mse_grads(
    layer: nn.Linear, a: torch.Tensor, c: torch.Tensor, lambda_w: float, out: torch.Tensor | None = None
) -> list[torch.Tensor]:
    """Gradients (weight, bias) of ``mean((layer(a) - c)^2) + lambda_w * mean|W|``; ``out`` is ``layer(a)``."""
    r = (F.linear(a, layer.weight, layer.bias) if out is None else out).sub(c).mul_(2.0 / c.numel())
    gw = r.T @ a
    if lambda_w > 0:
        gw.add_(torch.sign(layer.weight), alpha=lambda_w / layer.weight.numel())
    return [gw, r.sum(0)]


class OnlineAM(LearnerState):
    """Online Alternating Minimization with auxiliary variables (Choromanska et al., ICML 2019).

    Parameters
    ----------
    module
        A ``torch.nn.Sequential`` (see :func:`stream_am.network.decompose` for the supported layouts). The
        learner trains it in place; it is moved to ``device`` on the first step.
    variant
        ``"mem"`` (hidden layers solve a co-activation memory by ridge least squares) or ``"adam"`` (local
        Adam steps). A memory is ``n_in x n_in``: AM-mem is cheap on narrow inputs, but on 784-wide ones a
        step costs 4 to 13 backprop steps against 1.5 to 1.7 for AM-Adam (``benchmarks/step_time.py``).
    loss
        ``"cross_entropy"`` (integer class targets) or ``"mse"`` (float targets, any output width).
    readout
        How the output layer learns: ``"memory"`` (ridge fit of one-hot or regression targets from the last
        hidden layer, in the same statistics as AM-mem; the default for both variants, chosen by measurement)
        or ``"adam"`` (Adam steps on the loss).
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (CUDA when available).
    seed
        Seeds the learner's own ``torch.Generator`` (dropout masks). No global RNG is touched.
    mu
        Weight of the code-coupling terms; the top code trades ``loss / mu`` against staying near its
        forward value.
    mu_growth, mu_max_factor
        ``mu`` grows by ``mu_growth`` after each step while below ``mu_max_factor * mu``.
    code_steps, code_lr, code_momentum
        Nesterov gradient steps on each code, per sample (independent of the mini-batch size).
    weight_steps, weight_lr
        Adam steps and step size for hidden layers (``variant="adam"``).
    output_lr
        Adam step size of the output layer (``readout="adam"``); ``weight_steps`` steps per mini-batch.
    memory_decay
        Per-sample forgetting rate of every memory in ``[0, 1)``; settable between steps.
    ridge
        Proximal ridge of the memory solves, in units of the inputs' mean square.
    solve_every
        Memories absorb every mini-batch, but are solved for new weights on every ``solve_every``-th step
        (the solve costs O(n_in^3 + n_out n_in^2) per layer; see ``benchmarks/step_time.py``).
    parallel_layers
        On CUDA, run the (independent) per-layer weight updates on separate CUDA streams.
    lambda_c, lambda_w
        L1 sparsity of codes and (AM-Adam) weights.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from stream_am import OnlineAM
    >>> g = torch.Generator().manual_seed(0)
    >>> def xor_batch(n):                      # XOR of the signs: not linearly separable
    ...     x = torch.randn(n, 2, generator=g)
    ...     return x, ((x[:, 0] * x[:, 1]) > 0).long()
    >>> net = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 2))
    >>> am = OnlineAM(net, variant="mem", seed=0)
    >>> for _ in range(100):                   # a stream of 100 mini-batches of 32
    ...     stats = am.partial_fit(*xor_batch(32))
    >>> x_test, y_test = xor_batch(1000)
    >>> acc = (am.predict(x_test).argmax(1) == y_test).float().mean().item()
    >>> acc > 0.85
    True
    """

    def __init__(
        self,
        module: nn.Module,
        variant: str = "mem",
        loss: str = "cross_entropy",
        readout: str = "memory",
        device: str = "cpu",
        seed: int | None = 0,
        mu: float = 0.1,
        mu_growth: float = 0.0,
        mu_max_factor: float = 10.0,
        code_steps: int = 1,
        code_lr: float = 0.05,
        code_momentum: float = 0.9,
        weight_steps: int = 1,
        weight_lr: float = 0.005,
        output_lr: float = 0.008,
        memory_decay: float = 1e-3,
        ridge: float = 1e-2,
        solve_every: int = 1,
        parallel_layers: bool = True,
        lambda_c: float = 0.0,
        lambda_w: float = 0.0,
    ):
        self.module = module
        self.variant = variant
        self.loss = loss
        self.readout = readout
        self.device = device
        self.seed = seed
        self.mu = mu
        self.mu_growth = mu_growth
        self.mu_max_factor = mu_max_factor
        self.code_steps = code_steps
        self.code_lr = code_lr
        self.code_momentum = code_momentum
        self.weight_steps = weight_steps
        self.weight_lr = weight_lr
        self.output_lr = output_lr
        self.memory_decay = memory_decay
        self.ridge = ridge
        self.solve_every = solve_every
        self.parallel_layers = parallel_layers
        self.lambda_c = lambda_c
        self.lambda_w = lambda_w
        self._validate_params()
        self._net: Network = decompose(module)
        if variant == "mem":
            for block in self._net.blocks:
                if block.norm is not None:
                    raise ValueError(
                        f"variant='mem' fits each block as an affine least-squares map and cannot fit "
                        f"{block.norm!r}; use variant='adam' or remove the BatchNorm"
                    )
                conv = block.layer
                if isinstance(conv, nn.Conv2d) and (
                    conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str)
                ):
                    raise ValueError(
                        "variant='mem' supports Conv2d with groups=1, padding_mode='zeros' and numeric padding "
                        f"only, got {conv!r}"
                    )
        self._built = False
        self.samples_seen = 0
        self.n_steps = 0

    # ------------------------------------------------------------------ configuration
    def _validate_params(self) -> None:
        checks.check_choice("variant", self.variant, ("mem", "adam"))
        checks.check_choice("loss", self.loss, ("cross_entropy", "mse"))
        checks.check_choice("readout", self.readout, ("memory", "adam"))
        checks.check_device(self.device)
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError(f"seed must be an int or None, got {self.seed!r}")
        checks.check_int("solve_every", self.solve_every, low=1)
        if not isinstance(self.parallel_layers, bool):
            raise ValueError(f"parallel_layers must be a bool, got {self.parallel_layers!r}")
        for name in ("code_steps", "weight_steps"):
            checks.check_int(name, getattr(self, name), low=0 if name == "code_steps" else 1)
        for name, (lo, hi, lo_incl) in _FLOAT_PARAMS.items():
            checks.check_float(name, getattr(self, name), lo, hi, lo_incl)

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments except ``module`` (JSON-serialisable)."""
        return {
            k: getattr(self, k)
            for k in (
                "variant",
                "loss",
                "readout",
                "device",
                "seed",
                *_FLOAT_PARAMS,
                "code_steps",
                "weight_steps",
                "solve_every",
                "parallel_layers",
            )
        }

    @property
    def n_inputs(self) -> int:
        first = self._net.blocks[0].layer if self._net.blocks else self._net.out
        return first.in_features if isinstance(first, nn.Linear) else first.in_channels

    @property
    def n_outputs(self) -> int:
        return self._net.out.out_features

    # ------------------------------------------------------------------ lazy state
    def _build(self) -> None:
        dev = checks.resolve_device(self.device)
        self.module.to(dev)
        self._device = dev
        self._generator = torch.Generator(device=dev)
        if self.seed is not None:
            self._generator.manual_seed(self.seed)
        self._mu = float(self.mu)
        self._adam = [AdamRule(self.weight_lr) for _ in self._net.blocks]
        self._memory = [
            MemoryRule(self.memory_decay, self.ridge, bias=b.layer.bias is not None) for b in self._net.blocks
        ]
        self._out_adam = AdamRule(self.output_lr)
        self._out_memory = MemoryRule(self.memory_decay, self.ridge, bias=self._net.out.bias is not None)
        self._streams: list[torch.cuda.Stream] = []
        self._built = True

    # ------------------------------------------------------------------ public API
    def partial_fit(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One AM step on the mini-batch ``(x, y)``; returns statistics measured *before* the update.

        ``loss`` and (classification) ``accuracy`` are those of the model's predictions on this batch before
        learning from it (test-then-train). Bad input raises ``ValueError`` and changes nothing.
        """
        if not self._built:
            self._build()
        x, y = checks.check_batch(
            x,
            y,
            loss=self.loss,
            n_outputs=self.n_outputs,
            device=self._device,
            n_inputs=self.n_inputs if self._first_is_linear() else None,
        )
        net = self._net
        n = x.shape[0]
        masks: list[dict[int, torch.Tensor]] = [{} for _ in range(net.n_codes + 1)]
        with torch.no_grad(), checks.shape_errors(x):  # nothing has changed yet if the network refuses x
            codes = forward_codes(net, x, masks, self._generator)
            a_top = net.act(net.n_codes - 1, codes[-1], masks[-1]) if codes else net.preprocess(x, masks[0])
            before = net.out(a_top)
            measured = {"loss": output_loss(before, y, self.loss) / n}
            if self.loss == "cross_entropy":
                measured["accuracy"] = (before.argmax(1) == y).float().mean()
        forward = codes
        above: list[torch.Tensor | None] = []
        # the memory readout fits one-hot targets, and the top code descends that same squared error:
        # consistent subproblems (measured: stable, see README); the one-hot rows are built once per batch
        onehot = (
            F.one_hot(y, self.n_outputs).to(x.dtype)
            if (self.loss == "cross_entropy" and self.readout == "memory")
            else None
        )
        if codes:
            codes, above = update_codes(
                net,
                codes,
                y if onehot is None else onehot,
                loss=self.loss if onehot is None else "sq",
                mu=self._mu,
                steps=self.code_steps,
                lr=self.code_lr,
                momentum=self.code_momentum,
                lambda_c=self.lambda_c,
                masks=masks,
                top_out=before,
            )
        with torch.no_grad():
            inputs = [net.preprocess(x, masks[0])] + [
                net.act(l, c, masks[l + 1]) for l, c in enumerate(codes)
            ]
        stats = {"n": float(n), "mu": self._mu}
        # what each layer outputs for its (updated) input is often known already: block 1's input never
        # changes (its output is the forward code), and a code step computes the output of the layer above
        known: list[torch.Tensor | None] = [forward[0] if forward else None] + above[:-1]
        self._fit_layers(inputs, codes, known, y, n, y if onehot is None else onehot)
        for l, block in enumerate(net.blocks):  # noqa: E741
            block.update_running_stats(inputs[l])
        if self.mu_growth > 0 and self._mu < self.mu_max_factor * self.mu:
            self._mu += self.mu_growth
        self.samples_seen += n
        self.n_steps += 1
        stats.update({k: float(v) for k, v in measured.items()})  # the step's only device-to-host copy
        return stats

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Network outputs (logits or values) for ``x``, on the module's device; never changes any state."""
        dev = next(self.module.parameters()).device
        x = checks.check_x(x, device=dev, n_inputs=self.n_inputs if self._first_is_linear() else None)
        with checks.shape_errors(x):
            return self._net.forward(x)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities (softmax of the outputs); classification only."""
        if self.loss != "cross_entropy":
            raise ValueError("predict_proba needs loss='cross_entropy'")
        return torch.softmax(self.predict(x), dim=1)

    def forget(self, factor: float) -> None:
        """Scale the weight of everything the memories remember by ``factor`` in ``(0, 1]``."""
        if not self._built:
            return
        for m in [*self._memory, self._out_memory]:
            m.forget(factor)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name == "memory_decay" and self.__dict__.get("_built"):
            checks.check_float("memory_decay", value, 0.0, 1.0, True)
            for m in [*self._memory, self._out_memory]:
                m.decay = value

    # ------------------------------------------------------------------ per-layer updates
    def _solve_now(self) -> bool:
        """Memory solves run on the first step and then every ``solve_every`` steps."""
        return self.n_steps % self.solve_every == 0

    def _first_is_linear(self) -> bool:
        first = self._net.blocks[0].layer if self._net.blocks else self._net.out
        return isinstance(first, nn.Linear) and not self._net.pre

    def _fit_layers(
        self,
        inputs: list[torch.Tensor],
        codes: list[torch.Tensor],
        known: list[torch.Tensor | None],
        y: torch.Tensor,
        n: int,
        readout_target: torch.Tensor,
    ) -> None:
        """Every layer's weight subproblem; they are independent, so on CUDA each runs on its own stream.

        ``readout_target`` is what a memory readout fits: the one-hot rows of ``y`` for classification.
        """
        net = self._net
        jobs: list[Callable[[], None]] = [
            partial(self._fit_block, l, b, inputs[l], codes[l], n, known[l]) for l, b in enumerate(net.blocks)
        ]
        jobs.append(partial(self._fit_output, inputs[-1], y, n, readout_target))
        if self._device.type != "cuda" or len(jobs) < 2 or not self.parallel_layers:
            for job in jobs:
                job()
            return
        main = torch.cuda.current_stream(self._device)
        if len(self._streams) != len(jobs):
            self._streams = [torch.cuda.Stream(self._device) for _ in jobs]
        for job, stream in zip(jobs, self._streams, strict=True):
            stream.wait_stream(main)  # inputs and codes are ready
            with torch.cuda.stream(stream):
                job()
        for stream in self._streams:
            main.wait_stream(stream)  # the step ends when every layer has its weights

    def _fit_block(
        self, l: int, block: CodeBlock, a: torch.Tensor, c: torch.Tensor, n: int, known: torch.Tensor | None = None
    ) -> None:
        """Fit block ``l`` to its codes; ``known`` is ``block.layer(a)`` when already computed."""
        if self.variant == "mem":
            rows_a, rows_c = _rows(block.layer, a, c)
            self._memory[l].update(rows_a, rows_c, n)
            if self._solve_now():
                _set_affine(block.layer, self._memory[l].solve(_get_affine(block.layer)))
            return
        params = block.parameters()
        layer = block.layer
        closed_form = block.norm is None and isinstance(layer, nn.Linear) and layer.bias is not None
        for k in range(self.weight_steps):
            if closed_form and isinstance(layer, nn.Linear):  # mean((a W^T + b - c)^2): two products, no autograd
                grads = _linear_mse_grads(layer, a, c, self.lambda_w, known if k == 0 else None)
            else:
                with torch.enable_grad():
                    obj = F.mse_loss(block.forward(a, batch_stats=True), c)
                    if self.lambda_w > 0:
                        obj = obj + self.lambda_w * block.layer.weight.abs().mean()
                    grads = list(torch.autograd.grad(obj, params))
            self._adam[l].step(params, grads)

    def _fit_output(self, a: torch.Tensor, y: torch.Tensor, n: int, target: torch.Tensor) -> None:
        out = self._net.out
        if self.readout == "memory":
            self._out_memory.update(a.flatten(1), target, n)
            if self._solve_now():
                _set_affine(out, self._out_memory.solve(_get_affine(out)))
            return
        params = list(out.parameters())
        for _ in range(self.weight_steps):
            with torch.enable_grad():
                obj = output_loss(out(a), y, self.loss) / n
                grads = torch.autograd.grad(obj, params)
            self._out_adam.step(params, list(grads))
