"""Class-clocked memory: each class's share of a co-activation memory ages only in the steps that show the class.

A :class:`~stream_am.updaters.memory.MemoryUpdater` ages every remembered sample by ``(1 - decay)`` per later
sample, whatever its class: on a stream that moves through classes (class-incremental learning) the first
classes fade from every memory before the stream ends. This memory keeps the statistics of each class ``c``
apart, as weighted sums ``U_c = [A_c | B_c^T]`` (``d x (d + m)``) of total weight ``S_c``, and solves the
layer on the means of their sum ``T = sum_c U_c``:

    A = T_A / sum_c S_c,    B = T_B^T / sum_c S_c

(the same ridge solve). A step of ``n`` samples ages every class it contains by ``(1 - decay) ** n`` (the
plain memory's factor) and leaves the others as they are (:class:`~stream_am.updaters.class_clock.ClassClock`):
on a stream where every class keeps coming this is the plain memory; a class the stream stops showing keeps
its share until it comes back. Memory per layer grows with the number of classes, never with the stream.

Cost (``benchmarks/step_time.py``; ``docs/method.md``). The sums are stored lazily scaled, ``U_c = scale_c
V_c``: aging a class changes one number, a batch only adds. Adding a batch into all ``K`` classes' sums is a
pass over ``K d (d + m)`` numbers, so the batch's rows wait (:mod:`stream_am.updaters.pending`) until
``FLUSH_ROWS`` have come, and ``T`` is kept current on the CPU between those passes: each step ages it (``T``
times the factor, plus back what the classes the step did not show lost; or ``T`` less what the classes it
showed lost, whichever reads fewer sums) and adds the batch's rows. Each pass (and each step that folds the
lazy scale into the sums) recomputes ``T`` from the classes' sums, so rounding cannot build up beyond one
window of rows. On a GPU (no device-to-host copy to learn which classes a step showed) and for batches of a
window or more, every step is such a pass.

Its statistics need the samples' labels: :meth:`ClassMemoryUpdater.statistics` takes them one-hot
(``labels``, n x K), so that shards of a batch give statistics of the same shape, which add up. The weights
``S_c`` (``Sc``) count samples (a ``Conv2d``'s image patches each weigh ``1 / patches``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from stream_am.affine import get_affine, rows, set_affine
from stream_am.grad_mode import no_grad
from stream_am.updaters.class_clock import ClassBatch, ClassClock, Counts, Labels, class_sums
from stream_am.updaters.class_state import class_state, load_class_state, widen
from stream_am.updaters.coordinates import map_columns, map_rows
from stream_am.updaters.memory import MemoryUpdater, ridge_solve
from stream_am.updaters.pending import PendingRows

__all__ = ["ClassMemoryUpdater", "FLUSH_ROWS"]

FLUSH_ROWS = 1024  # pending rows that make a pass over the classes' sums


class ClassMemoryUpdater(MemoryUpdater):
    """A :class:`MemoryUpdater` whose statistics are kept, and aged, class by class (module docstring).

    Same parameters, and ``clock``: the :class:`ClassClock` it shares with the learner's other class-clocked
    memories (its own if not given). ``statistics`` and ``fit`` need ``labels``: the batch's labels one-hot
    (n x K), or a :class:`ClassBatch` of them. ``A`` and ``B`` are the means of ``T``, formed when read.
    """

    def __init__(self, layer: nn.Linear | nn.Conv2d, decay: float, ridge: float, solve_every: int = 1,
                 clock: ClassClock | None = None):
        super().__init__(layer, decay, ridge, solve_every)
        self.clock = ClassClock() if clock is None else clock
        if self.clock.owner is None:
            self.clock.owner = self
        self.Vc: torch.Tensor | None = None  # per-class sums [A_c | B_c^T] / clock.scale, in samples (K x d x (d + m))
        self.T: torch.Tensor | None = None  # sum_c U_c, pending rows included (d x (d + m))
        self._folds = 0  # the clock's folds this memory has applied
        self._folded = False  # this step folded (and so passes: T is recomputed)
        self._pending = PendingRows(FLUSH_ROWS)  # rows not yet in Vc

    @property
    def A(self) -> torch.Tensor | None:  # type: ignore[override]
        return None if self.T is None else self.T[:, : self.T.shape[0]] / self._total()

    @A.setter
    def A(self, value: torch.Tensor | None) -> None:  # the plain memory's constructor and loader set it
        pass

    @property
    def B(self) -> torch.Tensor | None:  # type: ignore[override]
        return None if self.T is None else self.T[:, self.T.shape[0] :].T / self._total()

    @B.setter
    def B(self, value: torch.Tensor | None) -> None:  # (as A's)
        pass

    @property
    def Sc(self) -> torch.Tensor | None:
        """Each class's weight, in samples: the clock's own tensor, changed in place by later steps."""
        return self.clock.S

    @property
    def Mc(self) -> torch.Tensor | None:
        """Each class's means ``[A_c; B_c]`` (K x (d + m) x d), pending rows included."""
        scale, S = self.clock.scale, self.clock.S
        if self.Vc is None or scale is None or S is None:
            return None
        K, V = self.Vc.shape[0], self._current(self.Vc)
        return (V * (scale[:K] / S[:K].clamp(min=1e-30))[:, None, None]).transpose(1, 2)

    def _total(self) -> torch.Tensor | float:
        return self.clock.total if isinstance(self.clock.total, torch.Tensor) else max(self.clock.total, 1e-30)

    def _parts(
        self, a: torch.Tensor, target: torch.Tensor, labels: Labels | None
    ) -> tuple[list[torch.Tensor], int, ClassBatch]:
        """The parts of the rows ``[1 | a | c]`` (no 1 without a bias), the width of their input part, the labels."""
        if labels is None:
            raise ValueError("a class-clocked memory needs the batch's labels (one-hot) in `labels`")
        rows_a, rows_c = rows(self.layer, a, target)
        parts = [rows_a.new_ones(rows_a.shape[0], 1), rows_a, rows_c] if self.bias else [rows_a, rows_c]
        self._rows_per_sample = math.prod(target.shape[2:])  # image patches per sample for a Conv2d
        if not isinstance(labels, ClassBatch):
            labels = ClassBatch(labels.to(rows_a.dtype))
        return parts, rows_a.shape[1] + int(self.bias), labels

    def statistics(
        self,
        a: torch.Tensor,
        target: torch.Tensor,
        n: int,
        known: torch.Tensor | None = None,
        labels: Labels | None = None,
    ) -> list[torch.Tensor]:
        """``[U, counts]``: the batch's per-class sums (:func:`class_increments`) and samples per class."""
        parts, d, batch = self._parts(a, target, labels)
        return [class_sums(torch.cat(parts, dim=1), d, batch.rows(self._rows_per_sample)), batch.counts()]

    @no_grad
    def fit(
        self,
        a: torch.Tensor,
        target: torch.Tensor,
        n: int,
        known: torch.Tensor | None = None,
        labels: Labels | None = None,
    ) -> None:
        parts, d, batch = self._parts(a, target, labels)
        cpu, rps = parts[0].device.type == "cpu", self._rows_per_sample
        m = sum(p.shape[1] for p in parts) - d
        self._age(batch.host_counts() if cpu else batch.counts(), n, d, m, parts[0])
        passing = not self.clock.hosted or len(self._pending) + parts[0].shape[0] >= FLUSH_ROWS or self._folded
        whole = passing or self._ages_whole()
        if not whole:
            self._shares(whole=False)  # before the batch's rows join the pending rows of the classes it aged
        counts = batch.host_counts() if cpu and rps == 1 else None
        ac = self._pending.append(parts, batch.classes(rps), self._weight(), counts)
        if passing:
            self._pass()
        else:  # T kept current: aged whole (or by its classes, above) and the batch added, in one product
            assert self.T is not None
            self.T.addmm_(ac[:, :d].T, ac, beta=self.clock.factor if whole else 1.0, alpha=1.0 / rps)
            if whole:
                self._shares(whole=True)  # the classes it kept hold none of the batch's rows
        self._solve()

    @no_grad
    def apply(self, stats: list[torch.Tensor], n: int) -> None:
        U, counts = stats
        self._age(counts, n, U.shape[1], U.shape[2] - U.shape[1], U)  # (the clock reads a tensor on the host too)
        assert self.Vc is not None
        self.Vc.addcmul_(U, self._weight()[:, None, None])
        self._pass()
        self._solve()

    def _ages_whole(self) -> bool:
        """Whether this step ages ``T`` whole and gives the classes it kept their share back, rather than taking
        the lost share of the classes it aged off: whichever reads fewer rows (module docstring)."""
        kept = self.clock.kept
        return not kept or self._reads(self.clock.aged) >= self._reads(kept)  # (none kept: nothing to read)

    def _shares(self, whole: bool) -> None:
        """Give the classes this step kept their share back (``whole``), or take off what those it aged lost."""
        g, scale, aged, kept = self.clock.factor, self.clock.host_scale, self.clock.aged, self.clock.kept
        if whole:
            self._add_classes(kept, [(1.0 - g) * scale[c] for c in kept])
        else:  # U_c before the step is scale_c / g times its stored sums
            self._add_classes(aged, [-(1.0 - g) / g * scale[c] for c in aged])

    def _reads(self, classes: list[int]) -> float:
        """What summing ``classes``' sums reads, in stored sums (a pending row costs about a fifth of one)."""
        return len(classes) + self._pending.rows_of(classes) / 5.0

    def _add_classes(self, classes: list[int], coefficients: list[float]) -> None:
        """``T += sum_c coefficient_c (V_c + pending rows of c)`` over ``classes``."""
        if not classes:
            return
        assert self.T is not None and self.Vc is not None
        for c, coefficient in zip(classes, coefficients, strict=True):  # usually one class: no index tensors
            self.T.add_(self.Vc[c], alpha=coefficient)
        self._pending.add_weighted_into(self.T, self.T.shape[0], classes, coefficients)

    def _pass(self) -> None:
        """Add the pending rows into the classes' sums and recompute ``T`` from them."""
        assert self.Vc is not None and self.clock.scale is not None
        self._flush()
        K, d, cols = self.Vc.shape
        self.T = (self.clock.scale[:K][None, :] @ self.Vc.view(K, d * cols)).view(d, cols)

    def _grouped(self) -> bool:
        """Rows grouped by class on the CPU (faster there); one product over all classes on a GPU (no host copy)."""
        return self.layer.weight.device.type == "cpu"

    def _flush(self) -> None:
        """Add the pending rows into ``Vc``."""
        if self.Vc is not None and len(self._pending):
            self._pending.flush_into(self.Vc, self.Vc.shape[1], self._grouped())

    def _current(self, Vc: torch.Tensor) -> torch.Tensor:
        """``Vc`` with the pending rows added (into a copy: they stay pending)."""
        if not len(self._pending):
            return Vc
        return self._pending.flush_into(Vc.clone(), Vc.shape[1], self._grouped(), keep=True)

    def _age(self, per_sample: torch.Tensor | Counts, n: int, d: int, m: int, like: torch.Tensor) -> None:
        """Advance the clock (once a step for all; ``per_sample``: each class's samples) and follow its scale."""
        K = len(per_sample)
        if self.Vc is None:
            self.Vc, self._folds = like.new_zeros(K, d, d + m), self.clock.folds
            self.T = like.new_zeros(d, d + m)
        elif K > self.Vc.shape[0]:  # the labels gained classes
            self.Vc = torch.cat([self.Vc, self.Vc.new_zeros(K - self.Vc.shape[0], *self.Vc.shape[1:])])
        elif K < self.Vc.shape[0]:
            raise ValueError(f"labels have {K} classes, but this memory keeps {self.Vc.shape[0]}")
        self.clock.advance(per_sample, n, self.decay, self.n_updates, like=like)
        self._folded = self._folds != self.clock.folds
        if self._folded:  # the clock folded its scale into the sums (every memory steps): this step passes
            assert self.clock.folded is not None and self.clock.folds == self._folds + 1
            self._flush()  # pending rows are weighted at the old scale
            self.Vc.mul_(self.clock.folded[:K, None, None])
            self._folds = self.clock.folds

    def _weight(self) -> torch.Tensor:
        """What a batch's sums are multiplied by: ``1 / scale`` per class, per sample (not per image patch)."""
        assert self.clock.inverse is not None  # advanced
        return self.clock.inverse if self._rows_per_sample == 1 else self.clock.inverse / self._rows_per_sample

    def _solve(self) -> None:
        if self.n_updates % self.solve_every == 0:  # the solve of the means, on the sums: ridge times the weight
            assert self.T is not None
            d, ridge = self.T.shape[0], self.ridge * self._total()
            set_affine(self.layer, ridge_solve(self.T[:, :d], self.T[:, d:].T, get_affine(self.layer), ridge))
        self.n_updates += 1

    def forget(self, factor: float) -> None:
        super().forget(factor)
        if self.T is not None:
            self.T.mul_(factor)
        self.clock.forget(factor, by=self)

    def grow_inputs(self, n_new: int) -> None:
        if self.Vc is not None and self.T is not None:
            self._pending.grow_inputs(self.T.shape[0], n_new)
            self.Vc, self.T = widen(self.Vc, n_new), widen(self.T, n_new)

    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        if self.Vc is not None and self.T is not None:  # every sum, and the rows kept for the next pass
            for X in (self.Vc, self.T):
                map_rows(X, scale, shift, self.bias)
                map_columns(X, scale, shift, self.bias)
            self._pending.reexpress_inputs(scale, shift, self.bias)

    def grow_outputs(self, n_new: int) -> None:
        if self.Vc is not None and self.T is not None:
            self._pending.grow_outputs(n_new)
            self.Vc = torch.cat([self.Vc, self.Vc.new_zeros(*self.Vc.shape[:2], n_new)], dim=2)
            self.T = torch.cat([self.T, self.T.new_zeros(self.T.shape[0], n_new)], dim=1)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        """The plain memory's state (``A``, ``B``: the means of ``T``), plus :func:`class_state` and the
        pending rows (:class:`PendingRows`); each tensor grows as a prefix when inputs, outputs or classes do."""
        S, scale = self.clock.S, self.clock.scale
        if self.Vc is None or self.T is None or S is None or scale is None:
            return {}
        self.S = float(S.sum())  # the total weight, which only the saved state reports
        sd = {k: v.contiguous() for k, v in super().state_dict(prefix).items()}
        pending = self._pending.state_dict(prefix, self.T.shape[0])
        return {**sd, **class_state(prefix, self.Vc, self.T, S, scale, self.clock.bound), **pending}

    def load_state_dict(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        """Restore :meth:`state_dict` (a state saved without ``T`` gets it from the classes' sums)."""
        if f"{prefix}A" in state and f"{prefix}VAc" not in state and f"{prefix}Ac" not in state:
            raise ValueError(f"state has no {prefix}VAc: it was saved by a memory that does not keep classes apart")
        super().load_state_dict(state, prefix)  # checks A and B
        self._pending.clear()
        if f"{prefix}A" not in state:
            self.Vc = self.T = None
            self.clock.reset(None, None)
            return
        A, B, w = state[f"{prefix}A"], state[f"{prefix}B"], self.layer.weight
        self.Vc, T, S, scale, bound = load_class_state(state, prefix, tuple(A.shape), tuple(B.shape), w)
        self.clock.reset(S, scale, bound)  # every memory of the clock saved the same clock
        self._folds = self.clock.folds
        K, d, cols = self.Vc.shape
        self._pending.load_state_dict(state, prefix, d, cols - d, K, w)
        if T is None:
            self._pass()
        else:
            self.T = T

