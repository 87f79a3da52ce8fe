"""The samples an estimator has learned but not yet stepped on: values, observed cells and encoded targets.

``learn_one`` buffers a sample and the estimator runs one engine step when ``batch_size`` samples are
buffered; ``learn_many`` / ``partial_fit`` cut their rows at the same boundaries, so they are exactly (bitwise)
equivalent to feeding the rows one by one; ``flush()`` steps on a partial buffer. The buffer holds one column
per feature learned so far (a new feature adds a zero column) and keeps the raw values: standardisation is
applied when the step runs, with the statistics that include all of its samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SampleBuffer"]


class SampleBuffer:
    """Up to ``size`` rows over ``n_features`` columns (float64 values, bool observed mask) and their targets.

    Examples
    --------
    >>> import numpy as np
    >>> from stream_am.estimators.buffer import SampleBuffer
    >>> buf = SampleBuffer(size=2)
    >>> buf.grow(2)
    >>> buf.put_row(np.array([1]), np.array([5.0]), "a")
    >>> buf.full, len(buf)
    (False, 1)
    >>> buf.put(np.array([0]), np.array([[3.0]]), np.array([[True]]), ["b"])
    >>> x, mask, y = buf.rows()
    >>> x.tolist(), mask.tolist(), y, buf.full
    ([[0.0, 5.0], [3.0, 0.0]], [[False, True], [True, False]], ['a', 'b'], True)
    """

    def __init__(self, size: int, n_features: int = 0) -> None:
        self.x = np.zeros((size, n_features))
        self.mask = np.zeros((size, n_features), dtype=bool)
        self.y: list[Any] = []

    def __len__(self) -> int:
        return len(self.y)

    @property
    def full(self) -> bool:
        return len(self.y) == self.x.shape[0]

    def grow(self, n_new: int) -> None:
        """Append ``n_new`` feature columns, unobserved in every buffered row."""
        self.x = np.pad(self.x, ((0, 0), (0, n_new)))
        self.mask = np.pad(self.mask, ((0, 0), (0, n_new)))

    def put_row(self, columns: np.ndarray, values: np.ndarray, target: Any) -> None:
        """Buffer one fully observed row: ``values`` (1-d) in ``columns``."""
        b = len(self.y)
        self.x[b, columns] = values
        self.mask[b, columns] = True
        self.y.append(target)

    def put(self, columns: np.ndarray, rows: np.ndarray, present: np.ndarray, targets: list[Any]) -> None:
        """Buffer ``rows`` (``m x k``) over ``columns``; ``present`` marks their observed cells."""
        b, m = len(self.y), rows.shape[0]
        self.x[b : b + m, columns] = np.where(present, rows, 0.0)
        self.mask[b : b + m, columns] = present
        self.y.extend(targets)

    def rows(self) -> tuple[np.ndarray, np.ndarray, list[Any]]:
        """``(x, mask, targets)`` of the buffered rows (views: :meth:`clear` after using them)."""
        n = len(self.y)
        return self.x[:n], self.mask[:n], self.y

    def clear(self) -> None:
        n = len(self.y)
        self.x[:n] = 0.0
        self.mask[:n] = False
        self.y = []

    def state(self, prefix: str, target_dtype: type) -> dict[str, np.ndarray]:
        return {
            f"{prefix}x": self.x.copy(),
            f"{prefix}mask": self.mask.copy(),
            f"{prefix}y": np.array(self.y, dtype=target_dtype),
        }

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], prefix: str) -> SampleBuffer:
        buf = cls(0)
        buf.x = np.array(state[f"{prefix}x"], dtype=np.float64)
        buf.mask = np.array(state[f"{prefix}mask"], dtype=bool)
        buf.y = [v.item() for v in state[f"{prefix}y"]]
        return buf
