"""The class clock shared by a learner's class-clocked memories, a batch's labels as they read them, and the
per-class sums of a batch's rows (:func:`class_increments`, the functional core of those memories).

Every class-clocked memory of a learner sees the same labels, so the aging of each class (which depends only
on the labels) is computed once per step, by one :class:`ClassClock`, and what the memories read from the
labels (counts, each row's class) once, by one :class:`ClassBatch`. The clock works on vectors of one entry
per class: on the CPU in Python floats (torch's cost per operation is several times the arithmetic at these
sizes), on a GPU in torch, with no device-to-host copy.
"""

from __future__ import annotations

import math
from collections.abc import MutableSequence
from typing import cast

import torch

from stream_am.grad_mode import no_grad

__all__ = ["ClassBatch", "ClassClock", "Counts", "Labels", "class_increments", "class_sums"]

Counts = list[int] | list[float]  # samples (or rows) of each class, counted on the host
HostView = MutableSequence[float]  # a 1-d float tensor's memory as Python floats (a memoryview)
LOWEST_SCALE = 1e-8  # the lazy scale is folded into the sums before it (or its bound) falls below this


class ClassBatch:
    """A batch's labels, one-hot (``onehot``, n x K), with what class-clocked memories derive from them,
    each computed once and cached (so every layer of a step shares it); ``labels``: the same labels as class
    indices (n, int64), if the caller has them (they spare deriving them from ``onehot``)."""

    def __init__(self, onehot: torch.Tensor, labels: torch.Tensor | None = None):
        self.onehot = onehot
        self.labels = labels
        self._counts: torch.Tensor | None = None
        self._classes: dict[int, torch.Tensor] = {}
        self._host_counts: Counts | None = None

    def counts(self) -> torch.Tensor:
        """Samples of each class in the batch (K)."""
        if self._counts is None:
            self._counts = self.onehot.sum(0)
        return self._counts

    def host_counts(self) -> Counts:
        """:meth:`counts` as Python numbers (CPU; computed once for every layer of a step)."""
        if self._host_counts is None:
            if self.labels is not None:  # exact integers, whatever the batch size
                self._host_counts = torch.bincount(self.labels, minlength=self.onehot.shape[1]).tolist()
            else:
                self._host_counts = self.counts().tolist()  # (labels given one-hot may be weighted)
        return self._host_counts

    def classes(self, per_sample: int) -> torch.Tensor:
        """The class of each of ``per_sample`` rows per sample (int64)."""
        if per_sample not in self._classes:
            if per_sample == 1 and self.labels is not None:
                self._classes[1] = self.labels
            else:
                self._classes[per_sample] = self.rows(per_sample).argmax(1)
        return self._classes[per_sample]

    def rows(self, per_sample: int) -> torch.Tensor:
        """The one-hot labels of ``per_sample`` rows per sample (each image patch carries its sample's)."""
        return self.onehot if per_sample == 1 else self.onehot.repeat_interleave(per_sample, dim=0)

Labels = torch.Tensor | ClassBatch  # a batch's labels one-hot (n x K), or a ClassBatch of them


@no_grad
def class_increments(
    a: torch.Tensor,
    c: torch.Tensor,
    onehot: torch.Tensor,
    weight: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-class sums ``U_k = [a_k^T a_k | a_k^T c_k]`` (K x d x (d + m)) of rows ``a`` (n x d) and ``c``
    (n x m) with labels ``onehot`` (n x K; each image patch carries its sample's label), class ``k``'s
    multiplied by ``weight[k]``; added into ``out`` (in place) when given.

    One product over all classes (``K`` times the plain memory's flops, no device-to-host copy); a memory that
    groups rows by class first does so in :meth:`stream_am.updaters.pending.PendingRows.flush_into`.

    Examples
    --------
    >>> import torch
    >>> a, c = torch.tensor([[1.0, 2.0], [1.0, 4.0]]), torch.tensor([[1.0], [3.0]])
    >>> onehot = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    >>> class_increments(a, c, onehot).tolist()
    [[[1.0, 4.0, 3.0], [4.0, 16.0, 12.0]], [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0]]]
    """
    return class_sums(torch.cat([a, c], dim=1), a.shape[1], onehot, weight, out)


def class_sums(
    ac: torch.Tensor,
    d: int,
    onehot: torch.Tensor,
    weight: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`class_increments` of the rows ``[a | c]`` (``ac``, whose first ``d`` columns are ``a``); without
    ``weight``, ``onehot`` may hold each row's label already multiplied by a weight."""
    n, K, a = ac.shape[0], onehot.shape[1], ac[:, :d]
    if out is None:
        out = ac.new_zeros(K, d, ac.shape[1])
    w = onehot if weight is None else onehot * weight
    z = (w[:, :, None] * a[:, None, :]).reshape(n, K * d)  # row t holds a_t in its class's block
    out.view(K * d, ac.shape[1]).addmm_(z.T, ac)
    return out


class ClassClock:
    """The aging shared by a learner's class-clocked memories (:mod:`stream_am.updaters.class_memory`).

    A step of ``n`` samples ages every class it contains by ``(1 - decay) ** n`` (``factor``); a class it does
    not contain keeps its weight. The clock keeps, per class, the weight of what is remembered (``S``, in
    samples) and the lazy scale of the memories' sums (``scale``: class ``c``'s sums are ``scale[c]`` times
    what a memory stores). :meth:`advance` moves it once per step (``step``), whichever memory asks first;
    the others get the same result. On the CPU it also names the classes holding weight that the step aged
    (``aged``) and kept (``kept``).

    Examples
    --------
    >>> import torch
    >>> clock = ClassClock()
    >>> clock.advance(torch.tensor([2.0, 2.0, 0.0]), 4, 0.5, step=0)
    >>> clock.advance(torch.tensor([4.0, 0.0, 0.0]), 4, 0.5, step=1)  # class 1 absent: it keeps its weight
    >>> clock.S.tolist(), clock.aged, clock.kept
    ([4.125, 2.0, 0.0], [0], [1])
    """

    def __init__(self) -> None:
        self.S: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None
        self.folds = 0  # how many times ``scale`` was folded into the memories' sums (then reset to 1)
        self.folded: torch.Tensor | None = None  # the scale of the last fold
        self.owner: object | None = None  # the memory that applies ``forget`` (once for all)
        self._bound = 1.0  # min(scale) on the CPU, a lower bound of it on a GPU (known on the host)
        self._step = -1
        self.inverse: torch.Tensor | None = None  # 1 / scale: what a batch's sums are multiplied by
        self.total: torch.Tensor | float = 0.0  # S.sum(): a float on the CPU, a tensor on a GPU
        self.factor = 1.0  # what the last step aged its classes by
        self.aged: list[int] = []  # (CPU) classes with weight that the last step aged
        self.kept: list[int] = []  # (CPU) classes with weight that it did not
        # (CPU, float32 or float64) S, scale and inverse as the host reads and writes them: views of the
        # tensors' memory, so a step changes them with no tensor operation (Python floats are rounded to the
        # tensors' dtype as they are stored)
        self._views: tuple[HostView, HostView, HostView] | None = None

    def __getstate__(self) -> dict:
        """The state without the host views (they cannot be pickled, and a copy's must see its own tensors)."""
        return {**self.__dict__, "_views": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._views = self._host_views()

    @property
    def hosted(self) -> bool:
        """Whether the clock steps on the host (CPU, float32 or float64): a memory can then learn which classes
        a step aged and kept, and keep ``T`` current between passes."""
        return self._views is not None

    @property
    def host_scale(self) -> HostView:
        """(CPU) ``scale`` as the host reads it."""
        return [] if self._views is None else self._views[1]

    def advance(self, per_sample: torch.Tensor | Counts, n: int, decay: float, step: int,
                like: torch.Tensor | None = None) -> None:
        """Age each class present in step ``step`` (``n`` samples, ``per_sample`` of each class: a tensor, or
        Python numbers counted on the host, with ``like`` giving the dtype and device) and add its samples (a
        step already taken does nothing)."""
        if step == self._step:
            return
        like = per_sample if isinstance(per_sample, torch.Tensor) else like
        assert like is not None
        self._grow(len(per_sample), like)
        assert self.S is not None and self.scale is not None
        self.factor = (1.0 - decay) ** n
        if self._views is not None:
            self._advance_host(per_sample.tolist() if isinstance(per_sample, torch.Tensor) else per_sample)
        else:
            counts = per_sample if isinstance(per_sample, torch.Tensor) else like.new_tensor(per_sample)
            self._advance_device(counts)
        if self._bound < LOWEST_SCALE or self._views is None:
            self._derive()
        self._step = step

    def _advance_host(self, per_sample: list[float] | list[int]) -> None:
        """:meth:`advance` on the CPU, in Python floats written into the tensors (no tensor operation)."""
        assert self._views is not None
        S, scale, inverse = self._views
        factor = self.factor
        self.aged, self.kept = [], []
        for c, x in enumerate(per_sample):
            if x > 0:
                if S[c] > 0:
                    self.aged.append(c)
                scale[c] *= factor  # rounded to the dtype as stored
                s = scale[c]
                inverse[c] = 1.0 / s if s > 0 else 0.0  # a scale that underflowed to 0: the fold restarts it
                S[c] = S[c] * factor + x
            elif S[c] > 0:
                self.kept.append(c)
        self.total, self._bound = math.fsum(S), min(scale)

    def _advance_device(self, per_sample: torch.Tensor) -> None:
        """:meth:`advance` on a GPU, in torch, with no device-to-host copy (the host's arithmetic)."""
        assert self.S is not None and self.scale is not None
        aged = (per_sample > 0).to(self.scale.dtype) * (self.factor - 1.0) + 1.0  # in the scale's dtype
        self.scale.mul_(aged)
        self.S.mul_(aged).add_(per_sample)
        self._bound *= self.factor  # a bound of min(scale): every class aged at every step

    def forget(self, factor: float, by: object) -> None:
        """Scale the weight of everything remembered by ``factor`` (once: only when ``by`` is the owner)."""
        if by is self.owner and self.scale is not None and self.S is not None:
            self.scale.mul_(factor)
            self.S.mul_(factor)
            self._bound *= factor
            self._derive(fold=False)

    @property
    def bound(self) -> float:
        """The lower bound of the smallest scale that decides when the scale folds (part of the saved state)."""
        return self._bound

    def reset(self, S: torch.Tensor | None, scale: torch.Tensor | None, bound: float | None = None) -> None:
        """Set the state (a loaded one, with its ``bound``: by default the smallest scale) and forget the last step."""
        self._set(S, scale)
        self._step = -1
        self._bound = bound if bound is not None else 1.0 if scale is None else float(scale.min())  # (a load may wait)
        self.aged, self.kept, self.factor = [], [], 1.0
        if S is not None:
            self._derive(fold=False)

    def _grow(self, K: int, like: torch.Tensor) -> None:
        if self.S is None or self.scale is None:
            self._set(like.new_zeros(K), like.new_ones(K))
        elif K > self.S.shape[0]:
            extra = K - self.S.shape[0]
            self._set(torch.cat([self.S, self.S.new_zeros(extra)]), torch.cat([self.scale, self.scale.new_ones(extra)]))

    def _set(self, S: torch.Tensor | None, scale: torch.Tensor | None) -> None:
        """Hold copies of ``S`` and ``scale`` (owned: the host writes into them), with ``inverse`` beside them,
        and host views of the three where they can be."""
        self._views = None
        if S is None or scale is None:
            self.S = self.scale = self.inverse = None
            return
        own = torch.contiguous_format
        self.S, self.scale = S.detach().clone(memory_format=own), scale.detach().clone(memory_format=own)
        self.inverse = torch.zeros_like(self.scale)
        self._views = self._host_views()

    def _host_views(self) -> tuple[HostView, HostView, HostView] | None:
        """Views of ``S``, ``scale`` and ``inverse`` as the host reads and writes them (CPU, float32 or float64)."""
        if self.S is None or self.scale is None or self.inverse is None:
            return None
        if self.S.device.type != "cpu" or self.S.dtype not in (torch.float32, torch.float64):
            return None
        views = [cast(HostView, memoryview(t.numpy())) for t in (self.S, self.scale, self.inverse)]  # type: ignore[arg-type]
        return views[0], views[1], views[2]

    def _derive(self, fold: bool = True) -> None:
        """Fold the scale if it could underflow (``fold``: only in a step, which every memory takes), then
        ``inverse`` and ``total``: functions of the state only, so that a loaded copy continues bit for bit."""
        assert self.scale is not None and self.S is not None
        if fold and self._bound < LOWEST_SCALE:
            self._fold_scale()
        if self._views is not None:
            S, scale, inverse = self._views
            for c, s in enumerate(scale):
                inverse[c] = 1.0 / s if s > 0 else 0.0
            self.total, self._bound = math.fsum(S), min(scale)
        else:
            assert self.inverse is not None
            torch.reciprocal(self.scale, out=self.inverse)
            self.total = self.S.sum()

    def _fold_scale(self) -> None:
        """Hand the scale to the memories (each multiplies its sums by ``folded`` when it sees ``folds``
        change) and restart it at 1."""
        assert self.scale is not None
        self.folded, self.folds, self._bound = self.scale.clone(), self.folds + 1, 1.0
        self.scale.fill_(1.0)
