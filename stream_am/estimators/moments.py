"""Running per-column mean and standard deviation, updated sample by sample, with bitwise-exact batches.

Each column keeps a count ``n``, a shift ``K`` (its first value), and the shifted sums ``s = sum(x - K)`` and
``q = sum((x - K)^2)`` in float64; ``mean = K + s/n`` and ``var = q/n - (s/n)^2``. Shifting by a value
close to the mean keeps the variance accurate (the "shifted data" algorithm), and, unlike Welford's
recurrence, the sums of a batch are a cumulative sum: ``update`` with ``k`` rows gives exactly the same
bits as ``k`` one-row updates, which is what makes ``learn_many`` equal to a ``learn_one`` loop.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RunningMoments"]


class RunningMoments:
    """Running mean and population standard deviation of each column of a growing set of columns.

    Examples
    --------
    >>> import numpy as np
    >>> from stream_am.estimators.moments import RunningMoments
    >>> m = RunningMoments()
    >>> m.grow(2)
    >>> m.update(np.array([0, 1]), np.array([[1.0, 10.0], [3.0, 10.0]]))
    >>> mean, scale = m.mean_scale()
    >>> mean.tolist(), scale.tolist()
    ([2.0, 10.0], [1.0, 1.0])
    >>> m.update(np.array([0]), np.array([[8.0]]))
    >>> m.mean_scale()[0].tolist(), m.count.tolist()
    ([4.0, 10.0], [3, 2])
    """

    #: a column whose standard deviation is at most this is only centred, not scaled
    min_scale = 1e-12

    def __init__(self) -> None:
        self.count = np.zeros(0, dtype=np.int64)
        self.shift = np.zeros(0)
        self.sum = np.zeros(0)
        self.sum_sq = np.zeros(0)

    def grow(self, n_new: int) -> None:
        """Append ``n_new`` columns that have seen nothing."""
        self.count = np.concatenate([self.count, np.zeros(n_new, dtype=np.int64)])
        self.shift, self.sum, self.sum_sq = (np.concatenate([a, np.zeros(n_new)])
                                             for a in (self.shift, self.sum, self.sum_sq))

    def update(self, columns: np.ndarray, rows: np.ndarray, present: np.ndarray | None = None) -> None:
        """Fold ``rows`` (``n x k``, float64) observed in ``columns`` (``k`` distinct indices), in order.

        ``present`` (bool, like ``rows``) marks the observed cells; the others are skipped (they add an exact
        0.0 to the sums, which leaves them bit for bit unchanged).
        """
        if rows.shape[0] == 0 or rows.shape[1] == 0:
            return
        if present is None:
            present = np.ones(rows.shape, dtype=bool)
        any_present = present.any(axis=0)
        fresh = (self.count[columns] == 0) & any_present
        first = present.argmax(axis=0)
        self.shift[columns[fresh]] = rows[first[fresh], np.flatnonzero(fresh)]
        d = np.where(present, rows - self.shift[columns], 0.0)
        self.sum[columns] = np.add.accumulate(np.vstack([self.sum[columns], d]), axis=0)[-1]
        self.sum_sq[columns] = np.add.accumulate(np.vstack([self.sum_sq[columns], d * d]), axis=0)[-1]
        self.count[columns] += present.sum(axis=0)

    def update_row(self, columns: np.ndarray, row: np.ndarray) -> None:
        """:meth:`update` for one fully observed row (1-d), bit for bit, without its overhead."""
        count = self.count[columns]
        fresh = count == 0
        if fresh.any():
            self.shift[columns[fresh]] = row[fresh]
        d = row - self.shift[columns]
        self.sum[columns] += d
        self.sum_sq[columns] += d * d
        self.count[columns] = count + 1

    def mean_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, scale)``; unseen columns give ``(0, 1)``, constant ones a scale of 1."""
        key = (self.count.sum(), len(self.count))  # every update adds to the counts, every growth to the length
        cached = self.__dict__.get("_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        self._cache = (key, self._mean_scale())
        return self._cache[1]

    def _mean_scale(self) -> tuple[np.ndarray, np.ndarray]:
        n = np.maximum(self.count, 1).astype(np.float64)
        m1 = self.sum / n
        var = np.maximum(self.sum_sq / n - m1 * m1, 0.0)
        std = np.sqrt(var)
        mean = np.where(self.count > 0, self.shift + m1, 0.0)
        return mean, np.where(std > self.min_scale, std, 1.0)

    def __getstate__(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.__dict__.items() if k != "_cache"}

    def state(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}count": self.count, f"{prefix}shift": self.shift,
                f"{prefix}sum": self.sum, f"{prefix}sum_sq": self.sum_sq}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], prefix: str) -> RunningMoments:
        m = cls()
        m.count = np.array(state[f"{prefix}count"], dtype=np.int64)
        m.shift, m.sum, m.sum_sq = (np.array(state[f"{prefix}{k}"], dtype=np.float64)
                                    for k in ("shift", "sum", "sum_sq"))
        return m
