"""DataParallelAM: one OnlineAM per worker, the statistics of every worker's share summed by one collective.

Every worker (a *rank* of a ``torch.distributed`` process group) holds the same learner and calls
:meth:`DataParallelAM.partial_fit` with its share of a global mini-batch. Forward codes and the top-down code
steps are per sample, so each worker runs them on its share alone; then every updater's additive statistics
(memory increments, gradients summed over samples) and the step's counts go into one flat float64 buffer,
one ``all_reduce`` sums it, and every worker applies the same sums: the step is the single-process step on
the concatenation of the shares, up to float rounding (see ``docs/distributed.md``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from stream_am.distributed.group import GroupFailure
from stream_am.learner import OnlineAM
from stream_am.updaters import ClassMemoryUpdater

__all__ = ["DataParallelAM", "refusal", "step_payload"]

_NOISY = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def refusal(module: nn.Module) -> str | None:
    """Why a data-parallel step could not equal the single-process step on ``module``, or ``None``."""
    for name, m in module.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return (f"module {name!r} is {m!r}: its batch moments would be each worker's share's, not the "
                    "global batch's")
        if isinstance(m, _NOISY) and m.p > 0:
            return f"module {name!r} is {m!r}: each worker would draw its own masks"
    return None


def step_payload(learner: OnlineAM) -> dict[str, int]:
    """What one data-parallel step of the built ``learner`` sends through collectives, per rank.

    ``statistics``: float64 numbers summed by the step's main collective(s): ``d^2 + k d`` per memory
    (``d`` inputs with the bias' constant, ``k`` outputs), ``K (d^2 + k d + 1)`` per class-clocked memory of a
    classifier of ``K`` classes (its sums and its count per class), the parameters' count per Adam layer and weight
    step, and 3 counts; ``collectives``: how many all_reduce calls carry them (one, or ``weight_steps`` with
    Adam); ``scalar_collectives``: the one-number sums of the code-step safeguard, ``(code_steps + 1)`` per
    code layer; ``bytes``: ``8 * (statistics + scalar_collectives)``.
    """
    if not learner._built:
        raise ValueError("learner: not built yet; call partial_fit (or load_state_dict) once first")
    numel = 3
    for u in learner._updaters:
        if u.name == "mem":
            layer = u.layer  # type: ignore[attr-defined]
            d, k = layer.weight[0].numel() + int(layer.bias is not None), layer.weight.shape[0]
            classes = learner.n_outputs if isinstance(u, ClassMemoryUpdater) else 0  # (per class, and its count)
            numel += (d * d + k * d + 1) * classes if classes else d * d + k * d
        else:
            numel += u.steps * sum(p.numel() for p in u.block.parameters())  # type: ignore[attr-defined]
    scalars = (learner.code_steps + 1) * learner._net.n_codes
    return {"statistics": numel, "collectives": max(u.steps for u in learner._updaters),
            "scalar_collectives": scalars, "bytes": 8 * (numel + scalars)}


def _settings(learner: OnlineAM) -> dict[str, Any]:
    """What must be the same on every rank: the learner's parameters (but its device: a GPU per rank) and its
    network, layer by layer (types, shapes and dtypes)."""
    params = {k: v for k, v in vars(learner).items() if not k.startswith("_") and k not in ("module", "device")}
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in params.items()
              if isinstance(v, (str, int, float, bool, list, tuple, type(None)))}
    params["module"] = repr(learner.module)
    params["module tensors"] = [(k, tuple(t.shape), str(t.dtype)) for k, t in learner.module.state_dict().items()]
    return params


class DataParallelAM:
    """Data-parallel :class:`~stream_am.learner.OnlineAM` over a ``torch.distributed`` process group.

    Parameters
    ----------
    learner
        The learner every rank trains (built from the same configuration on every rank; its weights are
        broadcast from rank 0 at the first step). Networks with BatchNorm or Dropout are refused.
    group
        The process group (``None``: the default one, which must be initialised, e.g. by ``torchrun`` and
        :func:`stream_am.distributed.init_process_group`). Its timeout bounds how long a step waits for a
        dead peer.
    check_every
        Every ``check_every`` steps, one small collective checks that the weights are the same on every rank
        (a ``RuntimeError`` if not); 0 never checks.
    check_tolerance
        Relative tolerance of that check (ranks on different hardware may round differently).
    """

    def __init__(self, learner: OnlineAM, group: Any = None, check_every: int = 50, check_tolerance: float = 1e-4):
        if not isinstance(learner, OnlineAM):
            raise TypeError(f"learner must be an OnlineAM, got {type(learner).__name__}")
        reason = refusal(learner.module)
        if reason is not None:
            raise ValueError(f"learner cannot be trained data-parallel: {reason}; remove it from the network")
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 0:
            raise ValueError(f"check_every must be an int >= 0, got {check_every!r}")
        if not (isinstance(check_tolerance, (int, float)) and 0 < check_tolerance < 1):
            raise ValueError(f"check_tolerance must be in (0, 1), got {check_tolerance!r}")
        if not dist.is_available() or not dist.is_initialized():
            raise ValueError("group: torch.distributed has no initialised process group; call "
                             "stream_am.distributed.init_process_group() (or torch.distributed's) first")
        self.learner = learner
        self.group = group
        self.check_every = check_every
        self.check_tolerance = check_tolerance
        self._synced = False
        self._checked = False

    # ------------------------------------------------------------------ the group
    @property
    def rank(self) -> int:
        return dist.get_rank(self.group)

    @property
    def world_size(self) -> int:
        return dist.get_world_size(self.group)

    def _comm_device(self) -> torch.device:
        if dist.get_backend(self.group) == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")

    def _collective(self, what: str, fn: Any, tensor: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        t = tensor.to(self._comm_device())
        try:
            fn(t, group=self.group, **kwargs)
        except RuntimeError as exc:  # gloo and NCCL raise (subclasses of) RuntimeError on a lost peer or timeout
            raise GroupFailure(
                f"DataParallelAM rank {dist.get_rank()}: the {what} at step {self.learner.n_steps} failed: a peer "
                f"stopped or did not answer within the process group's timeout ({exc})"
            ) from exc
        return t.to(tensor.device)

    def _sum(self, flat: torch.Tensor) -> torch.Tensor:
        return self._collective("sum of the statistics", dist.all_reduce, flat)

    # ------------------------------------------------------------------ learning
    def partial_fit(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One global step: this rank's share ``(x, y)`` may hold any number of samples, 0 included.

        Every rank must call it once per step (the collectives wait for all of them). Returns the global
        ``n``, ``loss`` and ``accuracy`` of the step (before learning, as :meth:`OnlineAM.partial_fit`).
        """
        if not self._checked:
            self._check_same_learner()
        if not self._synced:
            self._broadcast_module()
        stats = self.learner._step(x, y, self._sum)
        if self.check_every and self.learner.n_steps % self.check_every == 0 and stats["n"] > 0:
            self.check_in_sync()
        return stats

    def _check_same_learner(self) -> None:
        """``ValueError`` on every rank, naming the setting and the rank, unless every rank built the same learner:
        a network of another shape would fail inside the first collective, and another ``mu`` or ``code_steps``
        would silently make a step that is no single-process step (one gather of each rank's settings)."""
        mine = _settings(self.learner)
        every: list[Any] = [None] * self.world_size
        try:
            dist.all_gather_object(every, mine, group=self.group)
        except RuntimeError as exc:
            raise GroupFailure(f"DataParallelAM rank {dist.get_rank()}: the check of the ranks' settings failed: a "
                               f"peer stopped or did not answer within the process group's timeout ({exc})") from exc
        for rank, theirs in enumerate(every):
            differ = sorted(k for k in every[0] if theirs.get(k) != every[0][k])
            if differ:
                key = differ[0]
                raise ValueError(f"learner: rank {rank} built another learner than rank 0 ({key} = {theirs[key]!r}, "
                                 f"rank 0's {every[0][key]!r}); every rank must build the same one")
        self._checked = True

    def _broadcast_module(self) -> None:
        """Rank 0's weights and buffers everywhere (one broadcast), so that every rank starts the same."""
        tensors = list(self.learner.module.state_dict().values())
        flat = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in tensors])
        src = dist.get_global_rank(self.group, 0) if self.group is not None else 0
        flat = self._collective("broadcast of the weights", dist.broadcast, flat, src=src)
        start = 0
        with torch.no_grad():
            for t in tensors:
                t.copy_(flat[start : start + t.numel()].reshape(t.shape).to(t.dtype))
                start += t.numel()
        self._synced = True

    def check_in_sync(self) -> None:
        """:class:`~.group.GroupFailure` unless every rank holds the same weights (one collective of 4 numbers)."""
        params = [p.detach().to(torch.float64) for p in self.learner.module.parameters()]
        s = sum(float(p.sum()) for p in params)
        q = sum(float(p.pow(2).sum()) for p in params)
        both = self._collective("weight check", dist.all_reduce, torch.tensor([s, q, -s, -q], dtype=torch.float64),
                                op=dist.ReduceOp.MAX)
        spread = max(float(both[0] + both[2]), float(both[1] + both[3]))
        if not math.isfinite(spread) or spread > self.check_tolerance * (1.0 + abs(q)):
            raise GroupFailure(
                f"DataParallelAM: the weights differ across ranks after step {self.learner.n_steps} (checksum "
                f"spread {spread:.3g}); were the ranks fed different configurations or states?"
            )

    # ------------------------------------------------------------------ as OnlineAM
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The learner's outputs for ``x`` (local: no communication)."""
        return self.learner.predict(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return self.learner.predict_proba(x)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The learner's state, identical on every rank: any rank's loads into a plain ``OnlineAM``."""
        return self.learner.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load an ``OnlineAM`` state (written by any world size); call it on every rank."""
        self.learner.load_state_dict(state)
        self._synced = bool(state)  # a loaded state is the same everywhere; an empty one is synced at step 1

    @property
    def n_inputs(self) -> int:
        return self.learner.n_inputs

    @property
    def n_outputs(self) -> int:
        return self.learner.n_outputs

    @property
    def n_steps(self) -> int:
        return self.learner.n_steps

    @property
    def samples_seen(self) -> int:
        return self.learner.samples_seen
