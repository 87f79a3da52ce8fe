"""End-to-end backpropagation with the same tensor API as :class:`stream_am.learner.OnlineAM`.

:class:`BackpropLearner` is the reference that AM is compared against: it trains the very same
``torch.nn.Sequential`` with one optimiser step (Adam or SGD) per mini-batch on the whole network. The
optimiser is a small functional core (:func:`stream_am.updaters.adam.adam_step`, :func:`sgd_update`) over
flat, named state, so ``state_dict`` is safetensors-compatible and growing a layer pads the optimiser moments instead of
rebuilding them.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from stream_am import checks
from stream_am.hyperparameters import LARGEST
from stream_am.network import flatten
from stream_am.updaters.adam import adam_step

__all__ = ["BackpropLearner", "sgd_update"]

_LOSSES = ("cross_entropy", "mse")
_OPTIMIZERS = ("adam", "sgd")
_TINY = float(torch.finfo(torch.float32).tiny)  # the smallest normal float32
_PARAMS = ("module", "optimizer", "loss", "lr", "momentum", "betas", "eps", "device", "seed")  # the constructor's


def sgd_update(
    param: torch.Tensor, grad: torch.Tensor, momentum_buffer: torch.Tensor, *, lr: float, momentum: float
) -> None:
    """One in-place SGD step with heavy-ball ``momentum`` (0 gives plain SGD)."""
    momentum_buffer.mul_(momentum).add_(grad)
    param.add_(momentum_buffer, alpha=-lr)


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]



class BackpropLearner:
    """Train an ``nn.Sequential`` end to end with backprop, one optimiser step per ``partial_fit``.

    Parameters
    ----------
    module
        The network; its first and last layers must be ``nn.Linear`` for growth. It is trained in place.
    optimizer
        ``"adam"`` or ``"sgd"``.
    loss
        ``"cross_entropy"`` (``y`` holds class indices) or ``"mse"`` (``y`` holds ``n_outputs`` values).
    lr, betas, eps
        Adam's step size, moment decays and denominator term (SGD uses ``lr`` only).
    momentum
        SGD heavy-ball momentum.
    device
        Where the state lives once learning starts.
    seed
        Seed of the learner's own ``torch.Generator`` (Dropout layers are skipped, so nothing here is random
        today; the generator is kept in the state for forward compatibility).

    Examples
    --------
    >>> import torch
    >>> from stream_am.backprop import BackpropLearner
    >>> from stream_am.estimators import build_mlp
    >>> bp = BackpropLearner(build_mlp(2, 2, (4,), seed=0), optimizer="adam", lr=0.05)
    >>> x = torch.tensor([[0.0, 1.0], [1.0, 0.0]]); y = torch.tensor([1, 0])
    >>> for _ in range(50):
    ...     stats = bp.partial_fit(x, y)
    >>> bp.predict(x).argmax(1).tolist(), bp.samples_seen
    ([1, 0], 100)
    """

    def __init__(
        self,
        module: nn.Module,
        optimizer: str = "adam",
        loss: str = "cross_entropy",
        lr: float = 1e-3,
        momentum: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        if not isinstance(module, nn.Module) or not _linears(module):
            raise ValueError(f"module must be an nn.Module containing an nn.Linear, got {module!r}")
        checks.check_choice("optimizer", optimizer, _OPTIMIZERS)
        checks.check_choice("loss", loss, _LOSSES)
        checks.check_float("lr", lr, 0.0, LARGEST, low_inclusive=False)  # (1e300 is inf in float32: NaN weights)
        checks.check_float("eps", eps, _TINY, math.inf)  # (1e-320 is 0 in float32: 0 / 0 for an unused weight)
        checks.check_float("momentum", momentum, 0.0, 1.0)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2 or not all(
                checks.is_finite_number(b) and 0 <= b < 1 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}")
        checks.check_device(device)
        checks.check_seed(seed)
        self.module = module
        self.optimizer, self.loss, self.lr, self.momentum = optimizer, loss, lr, momentum
        self.betas: tuple[float, float] = (float(betas[0]), float(betas[1]))
        self.eps, self.device, self.seed = eps, device, seed
        self._state: dict[str, torch.Tensor] | None = None  # optimiser state, created on the first step
        self._generator: torch.Generator | None = None
        self._step = 0
        self.samples_seen = 0

    #: numbers that may change between steps (checked as at construction; the others are fixed once started)
    SETTABLE = ("lr", "momentum", "eps", "betas")

    def __setattr__(self, name: str, value: Any) -> None:
        value = checks.native(value) if name in _PARAMS else value  # (numpy's numbers held as Python's)
        if name in _PARAMS and "samples_seen" in self.__dict__:  # constructed: a new value, checked first
            current = {k: self.__dict__[k] for k in _PARAMS}
            if name not in self.SETTABLE and self._state is not None and not checks.same_value(value, current[name]):
                raise ValueError(f"{name} is fixed by the first step (it is {current[name]!r:.60}, got {value!r:.60})")
            BackpropLearner(**{**current, name: value})  # every check of the constructor; nothing here changes
            value = (float(value[0]), float(value[1])) if name == "betas" else value
        object.__setattr__(self, name, value)

    # -- sizes ---------------------------------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return _linears(self.module)[0].in_features

    @property
    def n_outputs(self) -> int:
        return _linears(self.module)[-1].out_features

    @property
    def n_steps(self) -> int:
        return self._step

    def _slots(self) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq") if self.optimizer == "adam" else ("momentum_buffer",)

    # -- lazy state ----------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._state is not None:
            return
        self.module.to(self.device)
        self._generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self._state = {
            f"{slot}.{name}": torch.zeros_like(p)
            for name, p in self.module.named_parameters()
            for slot in self._slots()
        }

    # -- learning ------------------------------------------------------------------------------------
    def _device_now(self) -> torch.device:
        return _linears(self.module)[0].weight.device

    def _train_forward(self, x: torch.Tensor) -> torch.Tensor:
        self.module.train(x.shape[0] > 1)  # BatchNorm needs two samples for batch statistics
        try:
            for m in flatten(self.module):
                if not isinstance(m, nn.Dropout):  # Dropout would draw from the global RNG
                    x = m(x)
        finally:
            self.module.eval()
        return x

    def partial_fit(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One optimiser step on the mini-batch ``(x, y)``; returns ``{"loss": ...}`` before the step.

        Inputs are validated as :class:`~stream_am.learner.OnlineAM` validates them (:mod:`stream_am.checks`):
        bad input, an empty batch included, raises ``ValueError`` and changes nothing.
        """
        x, y = checks.check_batch(x, y, loss=self.loss, n_outputs=self.n_outputs,
                                  device=checks.resolve_device(self.device), n_inputs=self.n_inputs)
        self._start()
        assert self._state is not None
        params = dict(self.module.named_parameters())
        out = self._train_forward(x)
        if self.loss == "cross_entropy":
            loss = nn.functional.cross_entropy(out, y)
        else:
            loss = nn.functional.mse_loss(out, y.to(out.dtype))
        grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        self._step += 1
        with torch.no_grad():
            live = [(name, p, g) for (name, p), g in zip(params.items(), grads, strict=True) if g is not None]
            if self.optimizer == "adam":
                adam_step(
                    [p for _, p, _ in live],
                    [g for _, _, g in live],
                    [self._state[f"exp_avg.{name}"] for name, _, _ in live],
                    [self._state[f"exp_avg_sq.{name}"] for name, _, _ in live],
                    [torch.full((), self._step - 1.0, device=p.device) for _, p, _ in live],
                    lr=self.lr,
                    beta1=self.betas[0],
                    beta2=self.betas[1],
                    eps=self.eps,
                )
            else:
                for name, p, g in live:
                    sgd_update(p, g, self._state[f"momentum_buffer.{name}"], lr=self.lr, momentum=self.momentum)
        self.samples_seen += x.shape[0]
        return {"loss": float(loss.detach())}

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Raw outputs (logits or values), on the learner's device; no state changes."""
        x = checks.check_x(x, device=self._device_now(), n_inputs=self.n_inputs)
        return self.module(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Softmax of :meth:`predict` (classification)."""
        return torch.softmax(self.predict(x), dim=1)

    # -- growth --------------------------------------------------------------------------------------
    def _grow(self, layer: nn.Linear, prefix: str, n_new: int, dim: int) -> None:
        with torch.no_grad():
            for pname in ("weight", "bias") if dim == 0 else ("weight",):
                old = getattr(layer, pname)
                if old is None:
                    continue
                pad = list(old.shape)
                pad[dim] = n_new
                setattr(layer, pname, nn.Parameter(torch.cat([old, old.new_zeros(pad)], dim=dim)))
                state = self._state if self._state is not None else {}
                for slot in self._slots() if state else ():
                    key = f"{slot}.{prefix}{pname}"
                    state[key] = torch.cat([state[key], state[key].new_zeros(pad)], dim=dim)
        if dim == 0:
            layer.out_features += n_new
        else:
            layer.in_features += n_new

    def _grow_checked(self, n_new: int, which: int) -> None:
        if isinstance(n_new, bool) or not isinstance(n_new, int) or n_new < 0:
            raise ValueError(f"n_new must be a non-negative int, got {n_new!r}")
        layer = _linears(self.module)[which]
        prefix = next(name for name, m in self.module.named_modules() if m is layer)
        if n_new:
            self._grow(layer, prefix + ".", n_new, dim=1 if which == 0 else 0)

    def grow_inputs(self, n_new: int) -> None:
        """Add ``n_new`` input features to the first ``Linear`` (zero weights); moments are zero-padded."""
        first = flatten(self.module)[0]
        if not isinstance(first, nn.Linear):
            raise ValueError(f"grow_inputs needs an nn.Linear first layer, got {first!r}")
        self._grow_checked(n_new, 0)

    def grow_outputs(self, n_new: int) -> None:
        """Add ``n_new`` output units to the last ``Linear`` (zero weights and bias); moments are padded."""
        self._grow_checked(n_new, -1)

    # -- persistence ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat copy of the learned state (``{}`` before the first step); safetensors-compatible."""
        if self._state is None:
            return {}
        assert self._generator is not None
        sd = {f"module.{k}": v.detach().clone() for k, v in self.module.state_dict().items()}
        sd.update({f"optim.{k}": v.clone() for k, v in self._state.items()})
        sd["optim.step"] = torch.tensor(self._step, dtype=torch.int64)
        sd["samples_seen"] = torch.tensor(self.samples_seen, dtype=torch.int64)
        sd["rng_state"] = self._generator.get_state()
        return sd

    def load_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict` output; keys and shapes must match the current network exactly."""
        self.module.to(self.device)
        expected = {f"module.{k}": v for k, v in self.module.state_dict().items()}
        expected.update({f"optim.{s}.{n}": p for n, p in self.module.named_parameters() for s in self._slots()})
        scalars = {"optim.step", "samples_seen", "rng_state"}
        missing = (set(expected) | scalars) - set(sd)
        unexpected = set(sd) - set(expected) - scalars
        if missing or unexpected:
            raise ValueError(f"state_dict keys mismatch: missing {sorted(missing)}, unexpected {sorted(unexpected)}")
        for key in [*expected, *sorted(scalars)]:
            if not checks.holds_values(sd[key]):
                raise ValueError(f"state_dict[{key!r}] must be a tensor with values, got {sd[key]!r:.40}")
        for key, ref in expected.items():
            value = sd[key]
            if tuple(value.shape) != tuple(ref.shape):
                raise ValueError(f"state_dict[{key!r}] has shape {tuple(value.shape)}, expected {tuple(ref.shape)}")
            if ref.is_floating_point() and not (value.is_floating_point() and checks.within(value, checks.FLOAT32_MAX)):
                raise ValueError(f"state_dict[{key!r}] must hold finite floating values (in float32)")
        for key in ("optim.step", "samples_seen"):
            value = sd[key]
            if value.numel() != 1 or value.is_complex() or value.dtype == torch.bool or not 0 <= float(value) < 2**63:
                raise ValueError(f"state_dict[{key!r}] must hold one number >= 0, got {value.tolist()!r}")
        if any(k.startswith("optim.exp_avg_sq.") and bool((sd[k] < 0).any()) for k in expected):
            raise ValueError("state_dict optimizer second moments (exp_avg_sq) must be >= 0")
        try:
            torch.Generator(device=self.device).set_state(sd["rng_state"].detach().cpu().clone())
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"state_dict['rng_state'] is not a random generator's state: {err}") from err
        self.module.load_state_dict({k[len("module."):]: sd[k] for k in expected if k.startswith("module.")})
        self._state = {k[len("optim."):]: sd[k].to(self.device, expected[k].dtype, copy=True)  # as the parameter
                       for k in expected if k.startswith("optim.")}
        self._step = int(sd["optim.step"])
        self.samples_seen = int(sd["samples_seen"])
        self._generator = torch.Generator(device=self.device)
        self._generator.set_state(sd["rng_state"].detach().cpu().clone())
