"""Class-clocked memory: each class's share of a co-activation memory ages only while that class is seen.

A :class:`~stream_am.updaters.memory.MemoryUpdater` ages every remembered sample by ``(1 - decay)`` per later
sample, whatever its class: on a stream that moves through classes (class-incremental learning) the first
classes fade from every memory before the stream ends. This memory keeps the statistics of each class ``c``
apart, as weighted sums ``U_c = [A_c | B_c^T]`` (``d x (d + m)``) of total weight ``S_c``, and solves the
layer on the means of their sum

    A = sum_c S_c A_c / sum_c S_c,    B = sum_c S_c B_c / sum_c S_c    (A_c, B_c the class means)

(the same ridge solve). A sample of class ``c`` ages class ``c`` only, by ``decay / p_c``, where ``p_c`` is
an exponential average (rate ``decay`` per sample, bias-corrected) of the class's frequency, floored at a
quarter of one over the number of classes seen. On a stream where every class keeps coming, class ``c``
then ages by ``decay`` per sample of the stream, as the plain memory does, and the class weights ``S_c`` stay
proportional to the class frequencies; a class that is not seen keeps its share until it comes back. Memory
per layer grows with the number of classes, never with the stream.

Cost (``benchmarks/step_time.py``; ``docs/method.md``): one shared
:class:`~stream_am.updaters.class_clock.ClassClock` ages the classes once per step; each memory stores its
sums lazily scaled, ``U_c = scale_c V_c`` (a batch adds into ``V_c``, divided by ``scale_c``, in one product
for all classes; ``A``, ``B`` are one weighted sum over the classes at the solve). From ``GROUP_FROM`` inputs
on the CPU a batch's rows are grouped by class (one batched product, about the plain memory's flops). With
``solve_every > 1`` rows are added at the solves (:mod:`stream_am.updaters.pending`).

Its statistics need the samples' labels: :meth:`ClassMemoryUpdater.statistics` takes them one-hot
(``labels``, n x K), so that shards of a batch give statistics of the same shape, which add up. The weights
``S_c`` (``Sc``) count samples (a ``Conv2d``'s image patches are a sample's rows, each of weight
``1 / patches``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from stream_am.affine import get_affine, rows, set_affine
from stream_am.updaters.class_clock import ClassBatch, ClassClock, Labels, class_sums
from stream_am.updaters.memory import MemoryUpdater, ridge_solve
from stream_am.updaters.pending import PendingRows

__all__ = ["ClassMemoryUpdater"]

GROUP_FROM = 128  # inputs from which the CPU groups a batch's rows by class


class _Formed:
    """``A`` or ``B`` of a :class:`ClassMemoryUpdater`: formed from the classes' statistics when read."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.slot = f"_{name}"

    def __get__(self, obj: ClassMemoryUpdater | None, objtype: type | None = None) -> torch.Tensor | None:
        if obj is None:
            return None
        obj._refresh()
        return getattr(obj, self.slot)

    def __set__(self, obj: ClassMemoryUpdater, value: torch.Tensor | None) -> None:
        setattr(obj, self.slot, value)


class ClassMemoryUpdater(MemoryUpdater):
    """A :class:`MemoryUpdater` whose statistics are kept, and aged, class by class (module docstring).

    Same parameters, and ``clock``: the :class:`ClassClock` it shares with the learner's other class-clocked
    memories (its own if not given). ``statistics`` and ``fit`` need ``labels``: the batch's labels one-hot
    (n x K), or a :class:`ClassBatch` of them. ``A`` and ``B`` are formed from the classes' statistics when
    read (the solve reads them).
    """

    def __init__(self, layer: nn.Linear | nn.Conv2d, decay: float, ridge: float, solve_every: int = 1,
                 clock: ClassClock | None = None):
        self._A: torch.Tensor | None = None
        self._B: torch.Tensor | None = None
        super().__init__(layer, decay, ridge, solve_every)
        self.clock = ClassClock() if clock is None else clock
        if self.clock.owner is None:
            self.clock.owner = self
        self.Vc: torch.Tensor | None = None  # per-class sums [A_c | B_c^T] / clock.scale, in samples (K x d x (d + m))
        self._folds = 0  # the clock's folds this memory has applied
        self._stale = False  # A and B are older than the class statistics
        self._pending = PendingRows()  # rows not yet in Vc (solve_every > 1)

    A = _Formed()
    B = _Formed()

    @property
    def Sc(self) -> torch.Tensor | None:
        """The weight of each class's statistics, in samples (the clock's)."""
        return self.clock.S

    @property
    def freq(self) -> torch.Tensor | None:
        """The clock's exponential average of each class's frequency."""
        return self.clock.freq

    @property
    def Mc(self) -> torch.Tensor | None:
        """Each class's means ``[A_c; B_c]`` (K x (d + m) x d), as saved (``Ac``, ``Bc``)."""
        scale, S = self.clock.scale, self.clock.S
        if self.Vc is None or scale is None or S is None:
            return None
        K, V = self.Vc.shape[0], self._current(self.Vc)
        return (V * (scale[:K] / S[:K].clamp(min=1e-30))[:, None, None]).transpose(1, 2)

    def _rows(
        self, a: torch.Tensor, target: torch.Tensor, labels: Labels | None
    ) -> tuple[torch.Tensor, int, ClassBatch]:
        """The layer's rows ``[1 | a | c]`` (no 1 without a bias), the width of their input part, the labels."""
        if labels is None:
            raise ValueError("a class-clocked memory needs the batch's labels (one-hot) in `labels`")
        rows_a, rows_c = rows(self.layer, a, target)
        parts = [rows_a.new_ones(rows_a.shape[0], 1), rows_a, rows_c] if self.bias else [rows_a, rows_c]
        self._rows_per_sample = math.prod(target.shape[2:])  # image patches per sample for a Conv2d
        if not isinstance(labels, ClassBatch):
            labels = ClassBatch(labels.to(rows_a.dtype))
        return torch.cat(parts, dim=1), rows_a.shape[1] + int(self.bias), labels

    def statistics(
        self,
        a: torch.Tensor,
        target: torch.Tensor,
        n: int,
        known: torch.Tensor | None = None,
        labels: Labels | None = None,
    ) -> list[torch.Tensor]:
        """``[U, counts]``: the batch's per-class sums (:func:`class_increments`) and samples per class."""
        ac, d, batch = self._rows(a, target, labels)
        return [class_sums(ac, d, batch.rows(self._rows_per_sample), slots=self._slots(batch)), batch.counts()]

    @torch.no_grad()
    def fit(
        self,
        a: torch.Tensor,
        target: torch.Tensor,
        n: int,
        known: torch.Tensor | None = None,
        labels: Labels | None = None,
    ) -> None:
        ac, d, batch = self._rows(a, target, labels)
        Vc = self._age(batch.counts(), n, d, ac.shape[1] - d, ac)
        rps, weight = self._rows_per_sample, self._weight()
        if self.solve_every > 1:  # added into Vc at the solve (pending.py)
            classes = batch.classes(rps)
            self._pending.add(ac, classes, weight[classes])
            self._solve()
            return
        slots = self._slots(batch)
        if slots is None:  # the labels times the weights, formed once for all the step's layers
            class_sums(ac, d, batch.weighted(rps, weight), out=Vc)
        else:
            class_sums(ac, d, batch.rows(rps), weight, Vc, slots)
        self._solve()

    @torch.no_grad()
    def apply(self, stats: list[torch.Tensor], n: int) -> None:
        U, counts = stats
        self._flush()
        Vc = self._age(counts, n, U.shape[1], U.shape[2] - U.shape[1], U)
        Vc.addcmul_(U, self._weight()[:, None, None])
        self._solve()

    def _grouped(self) -> bool:
        """Rows grouped by class on the CPU (measured faster); one product on a GPU (no device-to-host copy)."""
        w = self.layer.weight
        return w.device.type == "cpu" and math.prod(w.shape[1:]) >= GROUP_FROM

    def _slots(self, batch: ClassBatch) -> tuple[torch.Tensor, int] | None:
        return batch.slots(self._rows_per_sample) if self._grouped() else None

    def _flush(self) -> None:
        """Add the pending rows into ``Vc``."""
        if self.Vc is not None and len(self._pending):
            self._pending.flush_into(self.Vc, self.Vc.shape[1], self._grouped())

    def _current(self, Vc: torch.Tensor) -> torch.Tensor:
        """``Vc`` with the pending rows added (into a copy: they stay pending)."""
        if not len(self._pending):
            return Vc
        return self._pending.flush_into(Vc.clone(), Vc.shape[1], self._grouped(), keep=True)

    def _age(self, per_sample: torch.Tensor, n: int, d: int, m: int, like: torch.Tensor) -> torch.Tensor:
        """Advance the clock (once per step for all its memories) and bring the sums to its scale."""
        K = per_sample.shape[0]
        if self.Vc is None:
            self.Vc, self._folds = like.new_zeros(K, d, d + m), self.clock.folds
        elif K > self.Vc.shape[0]:  # the labels gained classes
            self.Vc = torch.cat([self.Vc, self.Vc.new_zeros(K - self.Vc.shape[0], *self.Vc.shape[1:])])
        self.clock.advance(per_sample, n, self.decay, self.n_updates)
        if self._folds != self.clock.folds:  # the clock folded its scale into the sums (every memory steps)
            assert self.clock.folded is not None and self.clock.folds == self._folds + 1
            self._flush()  # pending rows are weighted at the old scale
            self.Vc.mul_(self.clock.folded[:K, None, None])
            self._folds = self.clock.folds
        return self.Vc

    def _weight(self) -> torch.Tensor:
        """What a batch's sums are multiplied by: ``1 / scale`` per class, per sample (not per image patch)."""
        assert self.clock.inverse is not None  # advanced
        return self.clock.inverse if self._rows_per_sample == 1 else self.clock.inverse / self._rows_per_sample

    def _solve(self) -> None:
        self._stale = True
        if self.n_updates % self.solve_every == 0:
            self._flush()
            self._refresh()
            assert self._A is not None and self._B is not None
            set_affine(self.layer, ridge_solve(self._A, self._B, get_affine(self.layer), self.ridge))
        self.n_updates += 1

    def _refresh(self) -> None:
        """``A``, ``B``: one weighted sum of the classes' statistics (pending rows included, and kept)."""
        if not self._stale or self.Vc is None or self.clock.weight is None:
            return
        K, d, cols = self.Vc.shape
        w = self.clock.weight if self.clock.weight.shape[0] == K else self.clock.weight[:K]
        M = (w @ self._current(self.Vc).reshape(K, d * cols)).view(d, cols)
        self._A, self._B = M[:, :d], M[:, d:].T  # views of M (state_dict saves copies)
        self._stale = False

    def forget(self, factor: float) -> None:
        super().forget(factor)
        self.clock.forget(factor, by=self)

    def grow_inputs(self, n_new: int) -> None:
        super().grow_inputs(n_new)
        if self.Vc is not None:
            K, d, cols = self.Vc.shape
            self._pending.grow_inputs(d, n_new)
            V = self.Vc.new_zeros(K, d + n_new, cols + n_new)
            V[:, :d, :d] = self.Vc[:, :, :d]  # A_c
            V[:, :d, d + n_new :] = self.Vc[:, :, d:]  # B_c^T
            self.Vc = V

    def grow_outputs(self, n_new: int) -> None:
        super().grow_outputs(n_new)
        if self.Vc is not None:
            self._pending.grow_outputs(n_new)
            self.Vc = torch.cat([self.Vc, self.Vc.new_zeros(*self.Vc.shape[:2], n_new)], dim=2)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        """The plain memory's state, plus each class's stored sums ``VAc`` (K x d x d) and ``VBc`` (K x m x d)
        and the clock's ``scale``, ``Sc`` (weights, in samples) and ``freq``: the means of class ``c`` are
        ``scale[c] / Sc[c]`` times its sums (each tensor grows as a prefix when inputs, outputs or classes do)."""
        S, freq, scale = self.clock.S, self.clock.freq, self.clock.scale
        if S is not None:
            self.S = float(S.sum())  # the total weight, which only the saved state reports
        sd = {k: v.contiguous() if k[len(prefix) :] in ("A", "B") else v for k, v in super().state_dict(prefix).items()}
        if self.Vc is not None and S is not None and freq is not None and scale is not None and self._A is not None:
            d, K = self._A.shape[0], self.Vc.shape[0]
            sd.update(
                {
                    f"{prefix}VAc": self.Vc[:, :, :d].contiguous(),
                    f"{prefix}VBc": self.Vc[:, :, d:].transpose(1, 2).contiguous(),
                    f"{prefix}scale": scale[:K].clone(),
                    f"{prefix}Sc": S[:K].clone(),
                    f"{prefix}freq": freq[:K].clone(),
                    **self._pending.state_dict(prefix),
                }
            )
        return sd

    def load_state_dict(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        """Restore :meth:`state_dict`; a state that holds each class's means instead (``Ac``, ``Bc``, as the
        first class-clocked memory saved them) is accepted too."""
        if f"{prefix}A" in state and f"{prefix}VAc" not in state and f"{prefix}Ac" not in state:
            raise ValueError(f"state has no {prefix}VAc: it was saved by a memory that does not keep classes apart")
        super().load_state_dict(state, prefix)
        self._stale = False
        self._pending.clear()
        if self._A is None or self._B is None:
            self.Vc = None
            self.clock.reset(None, None, None)
            return
        legacy = f"{prefix}VAc" not in state
        VA, VB, Sc, freq = (
            state[f"{prefix}{k}"] for k in (("Ac", "Bc") if legacy else ("VAc", "VBc")) + ("Sc", "freq")
        )
        scale = Sc.new_ones(Sc.shape) if legacy else state[f"{prefix}scale"]
        K = Sc.shape[0]
        if (VA.shape, VB.shape, freq.shape, scale.shape) != ((K, *self._A.shape), (K, *self._B.shape), (K,), (K,)):
            raise ValueError(
                f"state[{prefix}VAc/VBc/Sc/freq/scale] have shapes {tuple(VA.shape)}/{tuple(VB.shape)}/"
                f"{tuple(Sc.shape)}/{tuple(freq.shape)}/{tuple(scale.shape)}, expected (K, *A.shape)/"
                "(K, *B.shape)/(K,)/(K,)/(K,)"
            )
        dev = self._A.device
        S = Sc.to(device=dev, copy=True)
        V = torch.cat([VA, VB.transpose(1, 2)], dim=2).to(device=dev)
        self.Vc = (V * S[:, None, None]).contiguous() if legacy else V.contiguous()  # legacy: means
        # every memory of the clock saved the same clock
        self.clock.reset(freq.to(device=dev, copy=True), S, scale.to(device=dev, copy=True))
        self._folds = self.clock.folds
        self._pending.load_state_dict(state, prefix, self.Vc.shape[2], K, dev)
