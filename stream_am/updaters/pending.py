"""Rows a class-clocked memory has taken but not yet added into its per-class sums.

Adding a batch into the ``K`` per-class sums of a class-clocked memory
(:mod:`stream_am.updaters.class_memory`) is a pass over ``K d (d + m)`` numbers whatever the batch size,
several times the plain memory's work on a small batch. The memory keeps the batches' rows instead, each with
the weight it had when it arrived (``1 / scale`` of its class at its step, fixed then), and adds the rows of
many steps in one grouped product: the same sums, up to the order of the additions. The rows, classes and
weights are written straight into buffers that grow to a window and a batch and are kept from one window
to the next (a batch costs a copy of its own rows, never of those already kept). Meanwhile it can read
the rows of chosen classes (:meth:`PendingRows.add_weighted_into`) to keep its sum over the classes current.
"""

from __future__ import annotations

import operator

import torch

from stream_am.updaters.class_clock import Counts, class_sums
from stream_am.updaters.class_state import check_values
from stream_am.updaters.coordinates import map_columns

__all__ = ["PendingRows"]


class PendingRows:
    """Rows ``[1 | a | c]`` (``rows``), their classes (``classes``) and weights (``weights``), in arrival order.

    Examples
    --------
    >>> import torch
    >>> pending = PendingRows(window=1024)
    >>> pending.add(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([1, 0]), torch.tensor([0.5, 2.0]))
    >>> V = torch.zeros(2, 1, 2)
    >>> pending.flush_into(V, 1, grouped=True).tolist()  # class 0: 2 * 3 * [3, 4]; class 1: 0.5 * 1 * [1, 2]
    [[[18.0, 24.0]], [[0.5, 1.0]]]
    >>> len(pending)
    0
    """

    def __init__(self, window: int = 1024) -> None:
        self.window = window  # rows kept before they are added in (the buffers grow to hold a window and a batch)
        # one buffer per field, filled up to ``_n`` (appending copies a batch's rows only; reading all is a view)
        self._rows: torch.Tensor | None = None
        self._classes: torch.Tensor | None = None
        self._weights: torch.Tensor | None = None
        self._counts: list[float] = []  # rows of each class (CPU)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def add(
        self, rows: torch.Tensor, classes: torch.Tensor, weights: torch.Tensor, counts: Counts | None = None
    ) -> None:
        """Keep ``rows`` (n x (d + m)) of classes ``classes`` (n, int64) with ``weights`` (n); ``counts``: the
        rows of each class, if known (CPU)."""
        n, k = self._room(rows.shape[0], rows.shape[1], rows)
        assert self._rows is not None and self._weights is not None
        self._rows[n : n + k].copy_(rows)
        self._weights[n : n + k].copy_(weights)
        self._keep(classes, counts)

    def append(
        self, parts: list[torch.Tensor], classes: torch.Tensor, inverse: torch.Tensor, counts: Counts | None = None
    ) -> torch.Tensor:
        """Keep the rows ``torch.cat(parts, dim=1)`` of classes ``classes`` with the weights ``inverse[classes]``,
        written straight into the buffers; returns the rows (a view, valid until the rows are flushed)."""
        n, k = self._room(parts[0].shape[0], sum(p.shape[1] for p in parts), parts[0])
        assert self._rows is not None and self._weights is not None
        rows = self._rows[n : n + k]
        torch.cat(parts, dim=1, out=rows)
        torch.index_select(inverse, 0, classes, out=self._weights[n : n + k])
        self._keep(classes, counts)
        return rows

    def _room(self, k: int, width: int, like: torch.Tensor) -> tuple[int, int]:
        """Make room for ``k`` more rows of ``width`` (the buffers grow as needed); the rows kept and ``k``."""
        n, buffer = self._n, self._rows
        if buffer is None or n + k > buffer.shape[0] or (buffer.shape[1], buffer.dtype, buffer.device) != (
            width, like.dtype, like.device
        ):  # room for twice as many (amortised growth), up to a window and a batch
            self._reserve(width, like, max(min(2 * (n + k), self.window + k), n + k, 64))
        return n, k

    def _keep(self, classes: torch.Tensor, counts: Counts | None) -> None:
        """Record the classes of the rows just written (and, on the CPU, how many of each)."""
        assert self._classes is not None
        n, k = self._n, classes.shape[0]
        self._classes[n : n + k].copy_(classes)
        self._n = n + k
        if classes.device.type == "cpu" and k:
            counts = torch.bincount(classes).tolist() if counts is None else counts
            self._counts += [0] * (len(counts) - len(self._counts))
            self._counts[: len(counts)] = map(operator.add, self._counts, counts)

    def _reserve(self, width: int, like: torch.Tensor, capacity: int) -> None:
        """Buffers of ``capacity`` rows of ``width`` in the dtype and on the device of ``like``, holding the kept
        rows."""
        rows = like.new_empty(capacity, width)
        classes = torch.empty(capacity, dtype=torch.int64, device=like.device)
        weights = like.new_empty(capacity)
        if self._n:
            kept_rows, kept_classes, kept_weights = self._joined()
            rows[: self._n], classes[: self._n], weights[: self._n] = kept_rows, kept_classes, kept_weights
        self._rows, self._classes, self._weights = rows, classes, weights

    def rows_of(self, classes: list[int]) -> float:
        """How many kept rows are of ``classes`` (CPU)."""
        return sum(self._counts[c] for c in classes if c < len(self._counts))

    def add_weighted_into(self, T: torch.Tensor, d: int, classes: list[int], coefficients: list[float]) -> None:
        """``T += sum_c coefficient_c sum_i weight_i a_i^T [a_i | c_i]`` over the kept rows ``i`` of each class
        ``c`` of ``classes`` (CPU; ``T``: d x (d + m); ``a_i``: the first ``d`` columns of row ``i``)."""
        if not self.rows_of(classes):
            return
        rows, kept, weights = self._joined()
        if len(classes) == 1:  # the usual case: one class, its coefficient a number
            index, alpha = (kept == classes[0]).nonzero().squeeze(1), coefficients[0]
            w = weights.index_select(0, index)
        else:
            table = [0.0] * max(len(self._counts), max(classes) + 1)  # every class with rows, every class asked
            for c, coefficient in zip(classes, coefficients, strict=True):
                table[c] = coefficient
            w, alpha = T.new_tensor(table)[kept] * weights, 1.0
            index = (w != 0).nonzero().squeeze(1)
            w = w.index_select(0, index)
        if index.numel():
            rows = rows.index_select(0, index)
            T.addmm_((rows[:, :d] * w[:, None]).T, rows, alpha=alpha)

    def _joined(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The kept rows, classes and weights (views of the buffers)."""
        assert self._rows is not None and self._classes is not None and self._weights is not None
        n = self._n
        return self._rows[:n], self._classes[:n], self._weights[:n]

    def flush_into(self, V: torch.Tensor, d: int, grouped: bool, keep: bool = False) -> torch.Tensor:
        """Add every kept row into the per-class sums ``V`` (K x d x (d + m)) in place, and forget them (unless
        ``keep``).

        ``grouped``: the rows grouped by class into one batched product (CPU); otherwise one product over all
        classes (no device-to-host copy)."""
        if not self._n:
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
        """Forget the kept rows (the buffers stay, for the next window)."""
        self._counts, self._n = [], 0

    def grow_inputs(self, d: int, n_new: int) -> None:
        """Rows gain ``n_new`` zero inputs after their first ``d`` columns (the layer's inputs grew)."""
        if self._rows is not None:
            rows = self._rows
            self._rows = torch.cat([rows[:, :d], rows.new_zeros(rows.shape[0], n_new), rows[:, d:]], dim=1)

    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor, bias: bool) -> None:
        """The kept rows' inputs in new coordinates (``x -> scale * x + shift``; rows ``[1 | x | c]`` if ``bias``)."""
        if self._rows is not None and self._n:
            map_columns(self._rows[: self._n], scale, shift, bias)

    def grow_outputs(self, n_new: int) -> None:
        """Rows gain ``n_new`` zero code columns (the layer's outputs grew)."""
        if self._rows is not None:
            self._rows = torch.cat([self._rows, self._rows.new_zeros(self._rows.shape[0], n_new)], dim=1)

    def state_dict(self, prefix: str, d: int) -> dict[str, torch.Tensor]:
        """The kept rows as ``pending_inputs`` (their first ``d`` columns) and ``pending_codes`` (the others),
        with ``pending_classes`` and ``pending_weights`` (none if empty): each grows as a prefix when the
        layer's inputs or outputs do."""
        if not self._n:
            return {}
        rows, classes, weights = self._joined()
        return {
            f"{prefix}pending_inputs": rows[:, :d].clone(memory_format=torch.contiguous_format),  # copies, not
            f"{prefix}pending_codes": rows[:, d:].clone(memory_format=torch.contiguous_format),  # the buffer
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
