"""How a stream estimator learns validated rows (:class:`RowLearning`, a part of
:class:`~stream_am.estimators.base.StreamEstimator`): each row's new features registered (the engine and the
companions grown), then its label if new, row by row as ``learn_one`` does, so that ``learn_many`` equals a
``learn_one`` loop bit for bit (on a linear network a new feature draws weights for the outputs there are, so the
order matters); the rows put in the buffer in chunks cut at its boundaries, each full buffer one step."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from stream_am.estimators.buffer import SampleBuffer
from stream_am.estimators.features import FeatureIndex
from stream_am.estimators.moments import RunningMoments

__all__ = ["RowLearning"]


class RowLearning:
    """The rows' part of a stream estimator (module docstring); the estimator holds the state it reads."""

    if TYPE_CHECKING:
        batch_size: int
        standardize: bool
        _moments: RunningMoments | None
        _buffer: SampleBuffer | None
        _index: FeatureIndex
        _engine: Any
        _quadratic: Any
        _frame: Any
        _n_learned: int

        def _check_can_step(self, n_new: int) -> None: ...
        def _keeps_quadratic(self, engine: Any, n_inputs: int) -> bool: ...
        def _engines(self) -> list[Any]: ...
        def _encode_targets(self, ys: list[Any]) -> list[Any]: ...
        def _new_target_rows(self, ys: list[Any]) -> set[int]: ...
        def _step(self) -> None: ...

    def _start(self) -> tuple[RunningMoments, SampleBuffer]:
        if self._moments is None or self._buffer is None:
            self._moments = RunningMoments()
            self._buffer = SampleBuffer(self.batch_size)
        return self._moments, self._buffer

    def _register_features(self, names: Sequence[Hashable]) -> np.ndarray:
        moments, buffer = self._start()
        k = self._index.add(names)
        if k:
            moments.grow(k)
            buffer.grow(k)
            if self._quadratic is not None and not self._keeps_quadratic(self._engine, self._quadratic.n_inputs + k):
                self._quadratic = None  # (its sums grow with the square of the inputs: dropped, not grown)
            for engine in self._engines():
                engine.grow_inputs(k)
            if self._frame is not None:
                self._frame.grow(k)
        return self._index.columns(names)

    def _learn_one(self, names: list[Hashable], row: np.ndarray, target: Any) -> None:
        """:meth:`_learn_rows` for one fully observed row (``1 x k``): the same state, bit for bit, faster."""
        self._check_can_step(1)
        moments, buffer = self._start()
        index = self._index.index
        if any(c not in index for c in names):
            self._register_features(names)
        columns = np.fromiter((index[c] for c in names), dtype=np.int64, count=len(names))
        encoded = self._encode_targets([target])
        if self.standardize:
            moments.update_row(columns, row[0])
        buffer.put_row(columns, row[0], encoded[0])
        self._n_learned += 1
        if buffer.full:
            self._step()

    def _learn_rows(
        self, names: Sequence[Hashable], rows: np.ndarray, targets: list[Any], present: np.ndarray | None = None
    ) -> None:
        """Learn validated ``rows`` (float64, one column per name) in order, cut at buffer boundaries.

        ``present`` (same shape, bool) marks observed cells; ``None`` means all. A feature is registered at
        the first row where it is present, and then that row's label if new, exactly as a ``learn_one`` loop would
        (on a linear network, a new feature draws weights for the outputs there are).
        """
        n, k = rows.shape
        if n == 0:
            return
        self._check_can_step(n)
        _, buffer = self._start()
        if present is None:
            present = np.ones((n, k), dtype=bool)
        seen = present.any(axis=0)
        first = np.where(seen, present.argmax(axis=0), n)
        index = self._index.columns(names)
        groups: dict[int, list[int]] = {}
        for j in np.flatnonzero((index < 0) & seen).tolist():
            groups.setdefault(int(first[j]), []).append(j)
        start = 0
        while start < n:
            m = min(n - start, self.batch_size - len(buffer))
            due = {r for r in groups if r < start + m}  # (none: the chunk's labels register in order as encoded)
            labels = self._new_target_rows(targets[start:start + m]) if due else set()
            for r in sorted(due | {start + i for i in labels}):
                if r in groups:
                    group = groups.pop(r)
                    index[group] = self._register_features([names[j] for j in group])
                if r - start in labels:
                    self._encode_targets([targets[r]])
            sel = np.flatnonzero(index >= 0)
            self._learn_chunk(index[sel], rows[start:start + m, sel], present[start:start + m, sel],
                              targets[start:start + m])
            start += m

    def _learn_chunk(self, columns: np.ndarray, chunk: np.ndarray, present: np.ndarray, targets: list[Any]) -> None:
        moments, buffer = self._start()
        encoded = self._encode_targets(targets)
        if self.standardize:
            moments.update(columns, chunk, present)
        buffer.put(columns, chunk, present, encoded)
        self._n_learned += chunk.shape[0]
        if buffer.full:
            self._step()
