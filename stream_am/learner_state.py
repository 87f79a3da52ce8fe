"""The learned state of :class:`stream_am.learner.OnlineAM` outside a step: save, load, grow and forget.

``state_dict``/``load_state_dict``, growing the input or output layer, ``forget`` and new hyperparameters
are kept apart from the step itself; the mixin reads the objects that ``OnlineAM._build`` creates and loops over
the updaters, whatever rule each one is. Keys: ``module.*`` (the network), ``variants`` (one int8 per code
layer: 0 memory, 1 Adam), ``solve_every`` (the memories' solve cadence), ``{memory|adam}.{l}.*`` for code
layer ``l`` and ``{memory|adam}.out.*`` for the readout, and the counters ``mu``, ``samples_seen``,
``n_steps``, ``generator``.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from stream_am import checks
from stream_am.hyperparameters import HYPERPARAMETERS
from stream_am.settable import check_setting
from stream_am.state_checks import check_known_keys, check_values
from stream_am.state_upgrade import upgraded
from stream_am.updaters.class_memory import ClassMemoryUpdater
from stream_am.updaters.coordinates import check_change, fits
from stream_am.updaters.factory import retune
from stream_am.updaters.memory import MemoryUpdater

if TYPE_CHECKING:
    from stream_am.network import Network
    from stream_am.updaters import Updater

__all__ = ["LearnerState"]

_CODES = ("mem", "adam")  # the int8 code of each layer's rule in ``state["variants"]``
_PREFIX = {"mem": "memory", "adam": "adam"}
class LearnerState:
    """Mixin: everything learned, as a flat ``{name: tensor}``; growth that keeps it; forgetting."""

    module: nn.Module
    variant: str | Sequence[str]
    solve_every: int | None
    seed: int | None
    samples_seen: int
    n_steps: int
    _net: Network
    _built: bool
    _mu: float
    _updaters: list[Updater]
    _solve_every: int
    _generator: torch.Generator
    _device: torch.device
    _build: Callable[[Sequence[str], int], None]  # OnlineAM._build(variants, solve_every)

    def _prefixes(self) -> list[str]:
        n = self._net.n_codes
        return [f"{_PREFIX[u.name]}.{'out' if i == n else i}." for i, u in enumerate(self._updaters)]

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat ``{name: tensor}`` of everything learned (module, every updater's state, counters).

        Empty before the first step. Tensors are the live ones; copy them to keep a snapshot.
        """
        if not self._built:
            return {}
        sd: dict[str, torch.Tensor] = {f"module.{k}": v for k, v in self.module.state_dict().items()}
        dev = self._device  # every tensor of the state lives where the learner does (the generator aside)
        sd["variants"] = torch.tensor([_CODES.index(u.name) for u in self._updaters[:-1]], dtype=torch.int8,
                                      device=dev)
        sd["solve_every"] = torch.tensor(self._solve_every, dtype=torch.int64, device=dev)
        for prefix, updater in zip(self._prefixes(), self._updaters, strict=True):
            sd.update(updater.state_dict(prefix))
        sd["mu"] = torch.tensor(self._mu, dtype=torch.float64, device=dev)
        sd["samples_seen"] = torch.tensor(self.samples_seen, dtype=torch.int64, device=dev)
        sd["n_steps"] = torch.tensor(self.n_steps, dtype=torch.int64, device=dev)
        sd["generator"] = self._generator.get_state()
        return sd

    def _check_state(self, state: dict[str, torch.Tensor]) -> tuple[list[str], int]:
        """The layers' rules and solve cadence in ``state``, checked with the module's shapes and kinds (floats, not
        integers); a state saved before the cadence was recorded solves at this ``solve_every``, or 1."""
        check_values(state)
        codes = state["variants"].tolist() if "variants" in state and state["variants"].ndim == 1 else None
        if codes is None or len(codes) != self._net.n_codes or any(c not in range(len(_CODES)) for c in codes):
            raise ValueError(f"state['variants'] must hold one code in {list(range(len(_CODES)))} ({_CODES}) per "
                             f"code layer ({self._net.n_codes})")
        variants = [_CODES[int(c)] for c in codes]
        asked = [self.variant] * len(variants) if isinstance(self.variant, str) else list(self.variant)
        for l, (want, got) in enumerate(zip(asked, variants, strict=True)):  # noqa: E741
            if want != "auto" and want != got:
                raise ValueError(f"state holds variant {got!r} at code layer {l}, but variant asks for {want!r}")
        if self._built and variants != self.variants_:
            raise ValueError(f"state holds variants {variants}, but this learner uses {self.variants_}")
        every = int(state["solve_every"]) if "solve_every" in state else self.solve_every or 1
        checks.check_int("state['solve_every']", every, low=1)
        if self.solve_every is not None and every != self.solve_every:
            raise ValueError(f"state holds solve_every={every}, but this learner's solve_every is {self.solve_every}")
        if self._built and every != self._solve_every:
            raise ValueError(f"state holds solve_every={every}, but this learner solves every {self._solve_every}")
        mod = {k[len("module.") :]: v for k, v in state.items() if k.startswith("module.")}
        check_known_keys((f"module.{k}" for k in mod), (f"module.{k}" for k in self.module.state_dict()))
        for k, v in self.module.state_dict().items():
            if k not in mod:
                raise ValueError(f"state is missing module.{k}")
            if tuple(mod[k].shape) != tuple(v.shape) or mod[k].is_floating_point() != v.is_floating_point():
                raise ValueError(f"state[module.{k}]: {mod[k].dtype}{list(mod[k].shape)}, not {v.dtype}{list(v.shape)}")
        return variants, every

    @property
    def variants_(self) -> list[str]:
        """The rule each code layer uses (``"mem"`` or ``"adam"``), once the first step has decided them."""
        return [u.name for u in self._updaters[:-1]] if self._built else []

    @property
    def solve_every_(self) -> int | None:
        """The memories' solve cadence in use (``solve_every``, or the cost model's choice), once built."""
        return self._solve_every if self._built else None

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned; shapes and variants are checked before anything changes, and
        a state an updater refuses (``ValueError`` naming the key) leaves the learner as it was."""
        if not state:
            return
        state = upgraded(state, self._net.n_codes)
        variants, every = self._check_state(state)
        state = {k: v.contiguous() for k, v in state.items()}  # (a strided view's Adam moments step differently)
        built = self._built
        before = {k: v.clone() for k, v in (self.state_dict() if built else self.module.state_dict()).items()}
        if not built:
            self._build(variants, every)
        try:  # the updaters check their own tensors as they load: a refusal restores what was there
            self._apply_state(state)
        except Exception:
            if built:
                self._apply_state(before)
            else:
                self.module.load_state_dict(before)
                self._built = False
            raise

    def _apply_state(self, state: dict[str, torch.Tensor]) -> None:
        self.module.load_state_dict({k[len("module.") :]: v for k, v in state.items() if k.startswith("module.")})
        stepped = "n_steps" in state and int(state["n_steps"]) > 0  # every updater has learned something since
        for prefix, updater in zip(self._prefixes(), self._updaters, strict=True):
            first = f"{prefix}A" if isinstance(updater, MemoryUpdater) else f"{prefix}0.step"
            if stepped and first not in state:
                raise ValueError(f"state is missing {first} (the learner has taken steps, so every layer's "
                                 "updater has a state)")
            updater.load_state_dict(state, prefix)
        for key in ("mu", "samples_seen", "n_steps", "generator"):
            if key not in state:
                raise ValueError(f"state is missing {key}")
        self._mu = float(state["mu"])
        self.samples_seen = int(state["samples_seen"])
        self.n_steps = int(state["n_steps"])
        try:
            self._generator.set_state(state["generator"].cpu())
        except RuntimeError as err:
            raise ValueError(f"state['generator'] is not a random generator's state: {err}") from err
        legacy = [f"{p}{k}" for p, u in zip(self._prefixes(), self._updaters, strict=True)
                  if isinstance(u, ClassMemoryUpdater) for k in ("Ac", "Bc")]  # (the first class memories' means)
        check_known_keys(state, [*self.state_dict(), *legacy])

    def grow_inputs(self, n_new: int) -> None:
        """Add ``n_new`` input features keeping everything learned.

        Their weights are drawn uniformly in ``+-1 / sqrt(width)`` (``width``: the first layer's outputs), as
        at initialisation: zero weights left a feature out of every hidden unit, and the codes, which move the
        first layer only a little from its own outputs, barely moved them, so a feature that arrived late was
        learned by no layer (``benchmarks/README.md``, "Features that arrive late"). Each column comes from a
        generator seeded by the learner's generator state and the column's index, which it leaves as it is: so
        growing by 2 draws what growing by 1 twice does, and nothing else learned changes.
        """
        checks.check_int("n_new", n_new, low=1)
        layer = self._net.first
        if not self._net.takes_rows or not isinstance(layer, nn.Linear):
            raise ValueError("grow_inputs needs a network that starts with nn.Linear")
        with torch.no_grad():
            w = layer.weight
            fresh = self._fresh_columns(layer.in_features, n_new, w.shape[0])
            layer.weight = nn.Parameter(torch.cat([w, fresh.to(w.device, w.dtype)], dim=1))
        layer.in_features += n_new
        if self._built:
            self._updaters[0].grow_inputs(n_new)

    def _fresh_columns(self, first: int, n_new: int, width: int) -> torch.Tensor:
        """The first-layer weights (``width x n_new``) of inputs ``first`` on, drawn on the CPU, each column from a
        key of the learner's generator state and the column's index."""
        if self._built:
            key = self._generator.get_state().numpy().tobytes()
        else:  # before the first step: from ``seed``, or the operating system's entropy
            key = secrets.token_bytes(16) if self.seed is None else str(self.seed).encode()
        bound = 1.0 / math.sqrt(width)
        columns = []
        for column in range(first, first + n_new):
            digest = hashlib.blake2b(key + column.to_bytes(8, "little"), digest_size=8).digest()
            generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") >> 1)
            columns.append(torch.empty(width).uniform_(-bound, bound, generator=generator))
        return torch.stack(columns, dim=1)

    @property
    def input_memory(self) -> bool:
        """Whether the first layer is fitted by a memory (built): what it learns is a least-squares fit of its
        sums, which :meth:`reexpress_inputs` re-expresses exactly, so an estimator re-expresses rather than
        restandardising (:mod:`stream_am.estimators.frame`)."""
        first = self._net.first
        return self._built and self._net.takes_rows and isinstance(first, nn.Linear) and isinstance(
            self._updaters[0], MemoryUpdater)

    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor, max_gain: float | None = None) -> None:
        """The inputs change coordinates: what arrived as ``x`` now arrives as ``scale * x + shift`` (per
        feature; an estimator's refreshed standardisation, :mod:`stream_am.estimators.frame`).

        The first layer's weights and its updater's sums are re-expressed
        (:mod:`stream_am.updaters.coordinates`), so that the network computes the same function of the same
        samples and its memory holds the same statistics of them; Adam's moment estimates are kept. With
        ``max_gain``, no weight grows by more than that factor (``1 / scale`` is clipped to it): a feature
        whose spread jumped, by an outlier, then weighs less than before instead of multiplying its weights by
        the jump. Refused (``ValueError`` naming the argument, nothing changed) unless ``scale`` and ``shift``
        are finite floating-point tensors of ``n_inputs`` values, ``scale > 0``, ``shift`` is 0 if the first
        layer has no bias, and ``max_gain`` is None or a number >= 1.
        """
        layer = self._net.first
        if not self._net.takes_rows or not isinstance(layer, nn.Linear):
            raise ValueError("reexpress_inputs needs a network that starts with nn.Linear")
        check_change(scale, shift, layer.in_features, layer.bias is not None, max_gain)
        w = layer.weight
        scale, shift = scale.to(w.device, torch.float64), shift.to(w.device, torch.float64)
        gain = scale.reciprocal() if max_gain is None else scale.reciprocal().clamp(max=max_gain)
        with torch.no_grad():  # W x + b = (W / scale) x' + b - (W / scale) shift, for x' = scale * x + shift
            new_w = w * gain.to(w.dtype)
            new_b = None if layer.bias is None else layer.bias - new_w @ shift.to(w.dtype)
            sums = self._updaters[0].state_dict("").values() if self._built else ()
            if not all(map(checks.all_finite, (new_w, *([] if new_b is None else [new_b])))) or not fits(
                    sums, scale, shift):
                raise ValueError("scale and shift would take the first layer's weights or sums past their float range")
            w.copy_(new_w)
            if layer.bias is not None and new_b is not None:
                layer.bias.copy_(new_b)
        if self._built:
            self._updaters[0].reexpress_inputs(scale, shift)

    def grow_outputs(self, n_new: int) -> None:
        """Add ``n_new`` output units (zero weights and bias) keeping everything learned."""
        checks.check_int("n_new", n_new, low=1)
        out = self._net.out
        with torch.no_grad():
            w = out.weight
            out.weight = nn.Parameter(torch.cat([w, w.new_zeros(n_new, w.shape[1])], dim=0))
            if out.bias is not None:
                out.bias = nn.Parameter(torch.cat([out.bias, out.bias.new_zeros(n_new)]))
        out.out_features += n_new
        if self._built:
            self._updaters[-1].grow_outputs(n_new)

    def forget(self, factor: float) -> None:
        """Scale the weight of everything the memories remember by ``factor`` in ``(0, 1]``."""
        checks.check_float("factor", factor, 0.0, 1.0, low_inclusive=False, high_inclusive=True)
        for updater in self._updaters if self._built else []:
            updater.forget(float(factor))

    def __setattr__(self, name: str, value: Any) -> None:
        if name in HYPERPARAMETERS or name == "seed":  # numpy's numbers held as Python's (checks.native)
            value = checks.native(value)
        if "_built" in self.__dict__:  # set after construction: checked as given (stream_am.settable)
            check_setting(self, name, value)
        if name in HYPERPARAMETERS and self.__dict__.get("_built"):  # the built step reads it from here on
            retune(self._updaters, name, value)
            if name == "mu" or (name == "solve_every" and value is not None):  # and the step's own copy of it
                object.__setattr__(self, *(("_mu", float(value)) if name == "mu" else ("_solve_every", value)))
        object.__setattr__(self, name, value)
