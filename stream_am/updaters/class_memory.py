"""Class-clocked memory: each class's share of a co-activation memory ages only while that class is seen.

A :class:`~stream_am.updaters.memory.MemoryUpdater` ages every remembered sample by ``(1 - decay)`` per later
sample, whatever its class: on a stream that moves through classes (class-incremental learning) the first
classes fade from every memory before the stream ends. This memory keeps the statistics of each class ``c``
apart, as weighted means ``A_c``, ``B_c`` of weight ``S_c``, and solves the layer on their weighted sum

    A = sum_c S_c A_c / sum_c S_c,    B = sum_c S_c B_c / sum_c S_c

(the same ridge solve). A sample of class ``c`` ages class ``c`` only, by ``decay / p_c``, where ``p_c`` is
an exponential average (rate ``decay`` per sample, bias-corrected) of the class's frequency, floored at a
quarter of one over the number of classes seen. On a stream where every class keeps coming, class ``c``
then ages by ``decay`` per sample of the stream, as the plain memory does, and the class weights ``S_c`` stay
proportional to the class frequencies; a class that is not seen keeps its share until it comes back. Memory
per layer grows with the number of classes, never with the stream. ``A_c`` and ``B_c`` are kept stacked, as
one ``(d + m) x d`` matrix ``M_c = [A_c; B_c]`` per class, so that a step folds and weighs them in one go.

Its statistics need the samples' labels: :meth:`ClassMemoryUpdater.statistics` takes them one-hot
(``labels``, n x K), so that shards of a batch give statistics of the same shape, which add up.
"""

from __future__ import annotations

import torch
from torch import nn

from stream_am.affine import get_affine, rows, set_affine
from stream_am.updaters.memory import MemoryUpdater, ridge_solve

__all__ = ["ClassMemoryUpdater", "class_increments"]

FLOOR = 0.25  # the frequency floor, as a fraction of one over the number of classes seen


@torch.no_grad()
def class_increments(a: torch.Tensor, c: torch.Tensor, onehot: torch.Tensor) -> list[torch.Tensor]:
    """Per-class sums ``[M_k, n_k]`` with ``M_k = [a_k^T a_k; c_k^T a_k]`` (K x (d + m) x d, K) of rows ``a``
    (n x d) and ``c`` (n x m) with labels ``onehot`` (n x K; each image patch carries its sample's label).

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[1.0, 2.0], [1.0, 4.0]])
    >>> M, n = class_increments(a, torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    >>> M.tolist(), n.tolist()
    ([[[1.0, 4.0], [4.0, 16.0], [3.0, 12.0]], [[1.0, 2.0], [2.0, 4.0], [1.0, 2.0]]], [1.0, 1.0])
    """
    n, K, d = a.shape[0], onehot.shape[1], a.shape[1]
    z = (onehot[:, :, None] * a[:, None, :]).reshape(n, K * d)  # row t holds a_t in its class's block
    # one product (K times the flops of the plain memory's; measured faster than a product per class below
    # about 128 inputs, and no device-to-host copy)
    M = (torch.cat([a, c], dim=1).T @ z).reshape(d + c.shape[1], K, d).transpose(0, 1)
    return [M.contiguous(), onehot.sum(0)]


class ClassMemoryUpdater(MemoryUpdater):
    """A :class:`MemoryUpdater` whose statistics are kept, and aged, class by class (module docstring).

    Same parameters; ``statistics`` and ``fit`` need ``labels``, the batch's labels one-hot (n x K).
    """

    def __init__(self, layer: nn.Linear | nn.Conv2d, decay: float, ridge: float, solve_every: int = 1):
        super().__init__(layer, decay, ridge, solve_every)
        self.Mc: torch.Tensor | None = None  # per-class weighted means [A_c; B_c] (K x (d + m) x d)
        self.Sc: torch.Tensor | None = None  # weight (rows) of each class's statistics
        self.freq: torch.Tensor | None = None  # exponential average of each class's frequency

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
        onehot = labels.to(rows_a.dtype)
        if self._rows_per_sample > 1:
            onehot = onehot.repeat_interleave(self._rows_per_sample, dim=0)
        return class_increments(rows_a, rows_c, onehot)

    def fit(self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
            labels: torch.Tensor | None = None) -> None:
        self.apply(self.statistics(a, target, n, known, labels), n)

    @torch.no_grad()
    def apply(self, stats: list[torch.Tensor], n: int) -> None:
        M_inc, counts = stats
        Mc, Sc, freq = self._grow_classes(M_inc)
        K, d = M_inc.shape[0], M_inc.shape[2]
        per_sample = counts / max(self._rows_per_sample, 1)  # samples of each class in the batch
        n_seen = ((freq[:K] > 0) | (per_sample > 0)).sum().clamp(min=1)  # tensors: no device-to-host copy
        p = freq[:K] / freq.sum().clamp(min=1e-12)  # bias-corrected, as Adam's moments
        rate = (self.decay / p.clamp(min=FLOOR / n_seen)).clamp(max=0.999)
        keep = Sc[:K] * torch.exp(per_sample * torch.log1p(-rate))  # each class ages by its own samples
        total = keep + counts
        inv = 1.0 / total.clamp(min=1e-30)  # (a class never seen has keep = counts = 0)
        Mc[:K].mul_((keep * inv)[:, None, None]).addcmul_(M_inc, inv[:, None, None])
        Sc[:K] = total
        g = (1.0 - self.decay) ** n
        freq.mul_(g)[:K].add_(per_sample, alpha=(1.0 - g) / max(n, 1))
        M = ((Sc / Sc.sum()) @ Mc.flatten(1)).view(Mc.shape[1:])  # the classes' statistics, weighted
        self.A, self.B = M[:d].clone(), M[d:].clone()  # own storage each (persistence refuses shared views)
        if self.n_updates % self.solve_every == 0:
            set_affine(self.layer, ridge_solve(self.A, self.B, get_affine(self.layer), self.ridge))
        self.n_updates += 1

    def _grow_classes(self, M_inc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The per-class state, created on the first batch and padded when the labels gained classes."""
        K = M_inc.shape[0]
        if self.Mc is None or self.Sc is None or self.freq is None:
            self.Mc = M_inc.new_zeros(M_inc.shape)
            self.Sc, self.freq = M_inc.new_zeros(K), M_inc.new_zeros(K)
        elif K > self.Mc.shape[0]:
            extra = K - self.Mc.shape[0]
            self.Mc = torch.cat([self.Mc, self.Mc.new_zeros(extra, *self.Mc.shape[1:])])
            self.Sc, self.freq = torch.cat([self.Sc, self.Sc.new_zeros(extra)]), torch.cat(
                [self.freq, self.freq.new_zeros(extra)])
        return self.Mc, self.Sc, self.freq

    def forget(self, factor: float) -> None:
        super().forget(factor)
        if self.Sc is not None:
            self.Sc.mul_(factor)

    def grow_inputs(self, n_new: int) -> None:
        super().grow_inputs(n_new)
        if self.Mc is not None:
            K, rows_, d = self.Mc.shape
            M = self.Mc.new_zeros(K, rows_ + n_new, d + n_new)
            M[:, :d, :d] = self.Mc[:, :d]  # A_c
            M[:, d + n_new :, :d] = self.Mc[:, d:]  # B_c
            self.Mc = M

    def grow_outputs(self, n_new: int) -> None:
        super().grow_outputs(n_new)
        if self.Mc is not None:
            self.Mc = torch.cat([self.Mc, self.Mc.new_zeros(self.Mc.shape[0], n_new, self.Mc.shape[2])], dim=1)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        """The plain memory's state, plus ``Ac``, ``Bc`` (copies: the two parts of ``Mc``), ``Sc`` and ``freq``."""
        if self.Sc is not None:
            self.S = float(self.Sc.sum())  # the total weight, which only the saved state reports
        sd = super().state_dict(prefix)
        if self.Mc is not None and self.Sc is not None and self.freq is not None and self.A is not None:
            d = self.A.shape[0]
            sd.update({f"{prefix}Ac": self.Mc[:, :d].clone(), f"{prefix}Bc": self.Mc[:, d:].clone(),
                       f"{prefix}Sc": self.Sc, f"{prefix}freq": self.freq})
        return sd

    def load_state_dict(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        if f"{prefix}A" in state and f"{prefix}Ac" not in state:
            raise ValueError(f"state has no {prefix}Ac: it was saved by a memory that does not keep classes apart")
        super().load_state_dict(state, prefix)
        if self.A is None or self.B is None:
            self.Mc = self.Sc = self.freq = None
            return
        Ac, Bc, Sc, freq = (state[f"{prefix}{k}"] for k in ("Ac", "Bc", "Sc", "freq"))
        K = Sc.shape[0]
        if tuple(Ac.shape) != (K, *self.A.shape) or tuple(Bc.shape) != (K, *self.B.shape) or freq.shape != Sc.shape:
            raise ValueError(f"state[{prefix}Ac/Bc/Sc/freq] have shapes {tuple(Ac.shape)}/{tuple(Bc.shape)}/"
                             f"{tuple(Sc.shape)}/{tuple(freq.shape)}, expected (K, *A.shape)/(K, *B.shape)/(K,)/(K,)")
        dev = self.A.device
        self.Mc = torch.cat([Ac, Bc], dim=1).to(device=dev)
        self.Sc, self.freq = Sc.to(device=dev, copy=True), freq.to(device=dev, copy=True)
