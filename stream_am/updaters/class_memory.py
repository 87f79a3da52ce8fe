"""Class-clocked memory: each class's share of a co-activation memory ages only while that class is seen.

A :class:`~stream_am.updaters.memory.MemoryUpdater` ages every remembered sample by ``(1 - decay)`` per later
sample, whatever its class: on a stream that moves through classes (class-incremental learning) the first
classes fade from every memory before the stream ends. This memory keeps the statistics of each class ``c``
apart, as weighted means ``A_c``, ``B_c`` of weight ``S_c``, and solves the layer on their weighted sum

    A = sum_c S_c A_c / sum_c S_c,    B = sum_c S_c B_c / sum_c S_c

(the same ridge solve). A sample of class ``c`` ages class ``c`` only, by ``decay / p_c``, where ``p_c`` is
an exponential average (rate ``decay`` per sample) of the class's frequency, floored at one over the number
of classes seen. On a stream where every class keeps coming, class ``c`` then ages by ``decay`` per sample of
the stream, as the plain memory does, and the class weights ``S_c`` stay proportional to the class
frequencies; a class that is not seen keeps its share until it comes back. Memory per layer grows with the
number of classes, never with the stream.

Its statistics need the samples' labels: :meth:`ClassMemoryUpdater.statistics` takes them one-hot
(``labels``, n x K), so that shards of a batch give statistics of the same shape, which add up.
"""

from __future__ import annotations

import torch
from torch import nn

from stream_am.affine import get_affine, rows, set_affine
from stream_am.updaters.memory import MemoryUpdater, ridge_solve

__all__ = ["ClassMemoryUpdater", "class_increments"]


@torch.no_grad()
def class_increments(a: torch.Tensor, c: torch.Tensor, onehot: torch.Tensor) -> list[torch.Tensor]:
    """Per-class sums ``[a_k^T a_k, c_k^T a_k, n_k]`` (K x d x d, K x m x d, K) of rows ``a``, ``c`` with labels
    ``onehot`` (rows x K; each image patch of a sample carries the sample's label).

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[1.0, 2.0], [1.0, 4.0]])
    >>> A, B, n = class_increments(a, torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    >>> A.tolist(), B.tolist(), n.tolist()
    ([[[1.0, 4.0], [4.0, 16.0]], [[1.0, 2.0], [2.0, 4.0]]], [[[3.0, 12.0]], [[1.0, 2.0]]], [1.0, 1.0])
    """
    K = onehot.shape[1]
    A = a.new_zeros(K, a.shape[1], a.shape[1])
    B = a.new_zeros(K, c.shape[1], a.shape[1])
    counts = onehot.sum(0)
    for k in torch.nonzero(counts).flatten().tolist():  # the classes present: at most min(K, rows) products
        mask = onehot[:, k] > 0
        ak = a[mask]
        A[k] = ak.T @ ak
        B[k] = c[mask].T @ ak
    return [A, B, counts]


class ClassMemoryUpdater(MemoryUpdater):
    """A :class:`MemoryUpdater` whose statistics are kept, and aged, class by class (module docstring).

    Same parameters; ``statistics`` and ``fit`` need ``labels``, the batch's labels one-hot (n x K).
    """

    def __init__(self, layer: nn.Linear | nn.Conv2d, decay: float, ridge: float, solve_every: int = 1):
        super().__init__(layer, decay, ridge, solve_every)
        self.Ac: torch.Tensor | None = None  # per-class weighted means of a a^T (K x d x d)
        self.Bc: torch.Tensor | None = None  # per-class weighted means of c a^T (K x m x d)
        self.Sc: torch.Tensor | None = None  # weight of each class's statistics (float64)
        self.freq: torch.Tensor | None = None  # exponential average of each class's frequency (float64)

    def statistics(
        self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        if labels is None:
            raise ValueError("a class-clocked memory needs the batch's labels (one-hot) in `labels`")
        rows_a, rows_c = rows(self.layer, a, target)
        if self.bias:
            rows_a = torch.cat([rows_a.new_ones(rows_a.shape[0], 1), rows_a], dim=1)
        self._rows_per_sample = rows_a.shape[0] // max(n, 1)
        onehot = labels.to(rows_a.dtype).repeat_interleave(self._rows_per_sample, dim=0)
        return class_increments(rows_a, rows_c, onehot)

    def fit(self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
            labels: torch.Tensor | None = None) -> None:
        self.apply(self.statistics(a, target, n, known, labels), n)

    @torch.no_grad()
    def apply(self, stats: list[torch.Tensor], n: int) -> None:
        A_inc, B_inc, counts = stats
        self._grow_classes(A_inc, B_inc)
        assert self.Ac is not None and self.Bc is not None and self.Sc is not None and self.freq is not None
        K = counts.shape[0]
        per_sample = counts.double() / max(self._rows_per_sample, 1)  # samples of each class in the batch
        seen = (self.freq[:K] > 0) | (per_sample > 0)
        floor = 1.0 / max(int(seen.sum()), 1)
        rate = torch.clamp(self.decay / torch.clamp(self.freq[:K], min=floor), max=0.999)
        keep = self.Sc[:K] * torch.exp(per_sample * torch.log1p(-rate))  # each class ages by its own samples
        total = keep + counts.double()
        scale = torch.where(total > 0, keep / total, torch.ones_like(total)).to(self.Ac.dtype)
        inv = torch.where(total > 0, 1.0 / total, torch.zeros_like(total)).to(self.Ac.dtype)
        self.Ac[:K].mul_(scale[:, None, None]).add_(A_inc * inv[:, None, None])
        self.Bc[:K].mul_(scale[:, None, None]).add_(B_inc * inv[:, None, None])
        self.Sc[:K] = total
        g = (1.0 - self.decay) ** n
        self.freq.mul_(g)[:K].add_(per_sample / max(n, 1), alpha=1.0 - g)
        S = float(self.Sc.sum())
        w = (self.Sc / S).to(self.Ac.dtype)
        self.A = torch.einsum("k,kij->ij", w, self.Ac)
        self.B = torch.einsum("k,kij->ij", w, self.Bc)
        self.S = S
        if self.n_updates % self.solve_every == 0:
            set_affine(self.layer, ridge_solve(self.A, self.B, get_affine(self.layer), self.ridge))
        self.n_updates += 1

    def _grow_classes(self, A_inc: torch.Tensor, B_inc: torch.Tensor) -> None:
        """Create the per-class state on the first batch, pad it when the labels gained classes."""
        K = A_inc.shape[0]
        if self.Ac is None or self.Bc is None or self.Sc is None or self.freq is None:
            self.Ac, self.Bc = A_inc.new_zeros(A_inc.shape), B_inc.new_zeros(B_inc.shape)
            self.Sc = A_inc.new_zeros(K, dtype=torch.float64)
            self.freq = A_inc.new_zeros(K, dtype=torch.float64)
            return
        extra = K - self.Ac.shape[0]
        if extra > 0:
            self.Ac = torch.cat([self.Ac, self.Ac.new_zeros(extra, *self.Ac.shape[1:])])
            self.Bc = torch.cat([self.Bc, self.Bc.new_zeros(extra, *self.Bc.shape[1:])])
            self.Sc = torch.cat([self.Sc, self.Sc.new_zeros(extra)])
            self.freq = torch.cat([self.freq, self.freq.new_zeros(extra)])

    def forget(self, factor: float) -> None:
        super().forget(factor)
        if self.Sc is not None:
            self.Sc.mul_(factor)

    def grow_inputs(self, n_new: int) -> None:
        super().grow_inputs(n_new)
        if self.Ac is None or self.Bc is None:
            return
        K, d = self.Ac.shape[0], self.Ac.shape[1]
        Ac = self.Ac.new_zeros(K, d + n_new, d + n_new)
        Ac[:, :d, :d] = self.Ac
        self.Ac = Ac
        self.Bc = torch.cat([self.Bc, self.Bc.new_zeros(K, self.Bc.shape[1], n_new)], dim=2)

    def grow_outputs(self, n_new: int) -> None:
        super().grow_outputs(n_new)
        if self.Bc is not None:
            self.Bc = torch.cat([self.Bc, self.Bc.new_zeros(self.Bc.shape[0], n_new, self.Bc.shape[2])], dim=1)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        sd = super().state_dict(prefix)
        if self.Ac is None or self.Bc is None or self.Sc is None or self.freq is None:
            return sd
        sd.update({f"{prefix}Ac": self.Ac, f"{prefix}Bc": self.Bc, f"{prefix}Sc": self.Sc,
                   f"{prefix}freq": self.freq})
        return sd

    def load_state_dict(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        if f"{prefix}A" in state and f"{prefix}Ac" not in state:
            raise ValueError(f"state has no {prefix}Ac: it was saved by a memory that does not keep classes apart")
        super().load_state_dict(state, prefix)
        if self.A is None or self.B is None:
            self.Ac = self.Bc = self.Sc = self.freq = None
            return
        Ac, Bc, Sc, freq = (state[f"{prefix}{k}"] for k in ("Ac", "Bc", "Sc", "freq"))
        K = Sc.shape[0]
        if tuple(Ac.shape) != (K, *self.A.shape) or tuple(Bc.shape) != (K, *self.B.shape) or freq.shape != Sc.shape:
            raise ValueError(f"state[{prefix}Ac/Bc/Sc/freq] have shapes that do not match {prefix}A/B")
        dev = self.A.device
        self.Ac, self.Bc = Ac.to(device=dev, copy=True), Bc.to(device=dev, copy=True)
        self.Sc, self.freq = Sc.to(device=dev, copy=True), freq.to(device=dev, copy=True)
