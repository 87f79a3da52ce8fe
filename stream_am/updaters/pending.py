"""Rows a class-clocked memory has taken but not yet added into its per-class sums.

Adding a batch into the ``K`` per-class sums of a class-clocked memory
(:mod:`stream_am.updaters.class_memory`) is a pass over ``K d (d + m)`` numbers whatever the batch size,
several times the plain memory's work on a small batch. The memory keeps the batches' rows instead, each with
the weight it had when it arrived (``1 / scale`` of its class at its step, fixed then), and adds the rows of
many steps in one grouped product: the same sums, up to the order of the additions. Meanwhile it can read
the rows of chosen classes (:meth:`PendingRows.add_weighted_into`) to keep its sum over the classes current.
"""

from __future__ import annotations

import torch

from stream_am.updaters.class_clock import class_sums
from stream_am.updaters.class_state import check_values

__all__ = ["PendingRows"]


class PendingRows:
    """Rows ``[1 | a | c]`` (``rows``), their classes (``classes``) and weights (``weights``), in arrival order.

    Examples
    --------
    >>> import torch
    >>> pending = PendingRows()
    >>> pending.add(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([1, 0]), torch.tensor([0.5, 2.0]))
    >>> V = torch.zeros(2, 1, 2)
    >>> pending.flush_into(V, 1, grouped=True).tolist()  # class 0: 2 * 3 * [3, 4]; class 1: 0.5 * 1 * [1, 2]
    [[[18.0, 24.0]], [[0.5, 1.0]]]
    >>> len(pending)
    0
    """

    def __init__(self) -> None:
        self._rows: list[torch.Tensor] = []
        self._classes: list[torch.Tensor] = []
        self._weights: list[torch.Tensor] = []
        self._counts: list[int] = []  # rows of each class (CPU)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(
        self, rows: torch.Tensor, classes: torch.Tensor, weights: torch.Tensor, counts: list[int] | None = None
    ) -> None:
        """Keep ``rows`` (n x (d + m)) of classes ``classes`` (n, int64) with ``weights`` (n); ``counts``: the
        rows of each class, if known (CPU)."""
        self._rows.append(rows)
        self._classes.append(classes)
        self._weights.append(weights)
        self._n += rows.shape[0]
        if classes.device.type == "cpu" and classes.numel():
            counts = torch.bincount(classes).tolist() if counts is None else counts
            self._counts += [0] * (len(counts) - len(self._counts))
            for c, k in enumerate(counts):
                self._counts[c] += k

    def rows_of(self, classes: list[int]) -> int:
        """How many kept rows are of ``classes`` (CPU)."""
        return sum(self._counts[c] for c in classes if c < len(self._counts))

    def add_weighted_into(self, T: torch.Tensor, d: int, coefficients: torch.Tensor) -> None:
        """``T += sum_i coefficients[class_i] weight_i a_i^T [a_i | c_i]`` over the kept rows of the classes
        whose coefficient is not 0 (``T``: d x (d + m); ``a_i``: the first ``d`` columns of row ``i``)."""
        if not self._rows:
            return
        rows, classes, weights = self._joined()
        w = coefficients[classes] * weights
        chosen = w != 0
        if bool(chosen.any()):
            rows, w = rows[chosen], w[chosen]
            T.addmm_((rows[:, :d] * w[:, None]).T, rows)

    def _joined(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if len(self._rows) > 1:
            self._rows, self._classes, self._weights = (
                [torch.cat(parts)] for parts in (self._rows, self._classes, self._weights)
            )
        return self._rows[0], self._classes[0], self._weights[0]

    def flush_into(self, V: torch.Tensor, d: int, grouped: bool, keep: bool = False) -> torch.Tensor:
        """Add every kept row into the per-class sums ``V`` (K x d x (d + m)) in place, and forget them (unless
        ``keep``).

        ``grouped``: the rows grouped by class into one batched product (CPU); otherwise one product over all
        classes (no device-to-host copy)."""
        if not self._rows:
            return V
        rows, classes, weights = self._joined()
        K = V.shape[0]
        if grouped:
            counts = torch.bincount(classes, minlength=K)
            order = torch.argsort(classes, stable=True)
            if K * int(counts.max()) > 2 * rows.shape[0]:  # padding would more than double the rows: by class
                _add_by_class(V, d, rows[order], weights[order], counts.tolist())
            else:
                _add_padded(V, d, rows, classes, weights, counts, order)
        else:
            onehot = torch.zeros(rows.shape[0], K, dtype=rows.dtype, device=rows.device)
            onehot.scatter_(1, classes[:, None], weights[:, None])
            class_sums(rows, d, onehot, out=V)
        if not keep:
            self.clear()
        return V

    def clear(self) -> None:
        self._rows, self._classes, self._weights, self._counts, self._n = [], [], [], [], 0

    def grow_inputs(self, d: int, n_new: int) -> None:
        """Rows gain ``n_new`` zero inputs after their first ``d`` columns (the layer's inputs grew)."""
        if self._rows:
            rows, classes, weights = self._joined()
            zeros = rows.new_zeros(rows.shape[0], n_new)
            self._rows = [torch.cat([rows[:, :d], zeros, rows[:, d:]], dim=1)]

    def grow_outputs(self, n_new: int) -> None:
        """Rows gain ``n_new`` zero code columns (the layer's outputs grew)."""
        if self._rows:
            rows, _, _ = self._joined()
            self._rows = [torch.cat([rows, rows.new_zeros(rows.shape[0], n_new)], dim=1)]

    def state_dict(self, prefix: str, d: int) -> dict[str, torch.Tensor]:
        """The kept rows as ``pending_inputs`` (their first ``d`` columns) and ``pending_codes`` (the others),
        with ``pending_classes`` and ``pending_weights`` (none if empty): each grows as a prefix when the
        layer's inputs or outputs do."""
        if not self._rows:
            return {}
        rows, classes, weights = self._joined()
        return {
            f"{prefix}pending_inputs": rows[:, :d].contiguous(),
            f"{prefix}pending_codes": rows[:, d:].contiguous(),
            f"{prefix}pending_classes": classes.clone(),
            f"{prefix}pending_weights": weights.clone(),
        }

    def load_state_dict(
        self, state: dict[str, torch.Tensor], prefix: str, d: int, m: int, n_classes: int, like: torch.Tensor
    ) -> None:
        """Restore :meth:`state_dict` (rows of ``d`` inputs and ``m`` codes, of ``n_classes`` classes), on the
        device and in the dtype of ``like``; none if the state has none. ``ValueError`` naming the keys if
        they do not fit (all four or none; integer classes in range; finite rows and weights >= 0)."""
        self.clear()
        keys = [f"{prefix}pending_{k}" for k in ("inputs", "codes", "classes", "weights")]
        present = [k in state for k in keys]
        if not any(present):
            return
        if not all(present):
            raise ValueError(f"state has {', '.join(k for k in keys if k in state)} but not all of {keys}")
        a, c, classes, weights = (state[k] for k in keys)
        n = a.shape[0] if a.ndim else -1
        if (a.shape, c.shape, classes.shape, weights.shape) != ((n, d), (n, m), (n,), (n,)):
            raise ValueError(
                f"state[{prefix}pending_inputs/codes/classes/weights] have shapes {tuple(a.shape)}/{tuple(c.shape)}/"
                f"{tuple(classes.shape)}/{tuple(weights.shape)}, expected (n, {d})/(n, {m})/(n,)/(n,)"
            )
        if classes.is_floating_point() or classes.is_complex() or classes.dtype == torch.bool:
            raise ValueError(f"state[{prefix}pending_classes] must hold integers, got {classes.dtype}")
        if n and (int(classes.min()) < 0 or int(classes.max()) >= n_classes):
            raise ValueError(f"state[{prefix}pending_classes] holds classes outside [0, {n_classes})")
        check_values(keys[0], a)
        check_values(keys[1], c)
        check_values(keys[3], weights, low=0.0)
        dev, dtype = like.device, like.dtype
        self.add(torch.cat([a, c], dim=1).to(dev, dtype), classes.to(dev, torch.int64, copy=True),
                 weights.to(dev, dtype, copy=True))


def _add_padded(
    V: torch.Tensor, d: int, rows: torch.Tensor, classes: torch.Tensor, weights: torch.Tensor, counts: torch.Tensor,
    order: torch.Tensor,
) -> None:
    """``V[c] += sum_i weight_i a_i^T [a_i | c_i]`` over the rows of each class ``c`` (``counts`` of each,
    ``order`` sorting them by class): one batched product, each class's rows padded to the longest group."""
    K, width = V.shape[0], int(counts.max())
    position = torch.empty_like(classes)
    position[order] = torch.arange(classes.numel()) - (counts.cumsum(0) - counts)[classes[order]]
    slot = classes * width + position
    P = rows.new_zeros(K * width, rows.shape[1]).index_copy_(0, slot, rows).view(K, width, rows.shape[1])
    w = weights.new_zeros(K * width).index_copy_(0, slot, weights).view(K, width, 1)
    V.baddbmm_((P[:, :, :d] * w).transpose(1, 2), P)


def _add_by_class(V: torch.Tensor, d: int, rows: torch.Tensor, weights: torch.Tensor, counts: list[int]) -> None:
    """``V[c] += sum_i weight_i a_i^T [a_i | c_i]`` over ``rows`` sorted by class, ``counts[c]`` of class ``c``:
    one product per class that has rows (no padded copy of the rows)."""
    start = 0
    for c, k in enumerate(counts):
        if k:
            part = rows[start : start + k]
            V[c].addmm_((part[:, :d] * weights[start : start + k, None]).T, part)
            start += k
