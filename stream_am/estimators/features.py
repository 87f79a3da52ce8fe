"""The features an estimator has learned, numbered in the order of the network's input layer.

Features are numbered in first-seen order; features first seen in the same sample (a dict, or a row of a
frame or array) are numbered in sorted order, so the key order of a dict never matters. A new feature grows
the engine's input layer (its weights drawn like an initialisation, :meth:`stream_am.OnlineAM.grow_inputs`;
every learned weight, memory and optimiser moment is kept). A feature
absent from a sample contributes 0 to the network input; features never learned are ignored at prediction
time.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence

import numpy as np

__all__ = ["FeatureIndex", "canonical_order"]


def canonical_order(names: list[Hashable]) -> list[Hashable]:
    """Features first seen together, in a canonical order, so that a dict's key order never matters."""
    if len(names) < 2:
        return names
    try:  # (types whose < is an order: a frozenset's is "is a subset of", which gives none)
        if len({type(c) for c in names}) == 1 and type(names[0]) in (str, int, float, bool, tuple):
            return sorted(names)  # type: ignore[type-var]
    except TypeError:
        pass
    return sorted(names, key=lambda c: (type(c).__name__, repr(c)))


class FeatureIndex:
    """Feature names and their input-layer positions (``names[i]`` is column ``i``).

    Examples
    --------
    >>> import numpy as np
    >>> from stream_am.estimators.features import FeatureIndex
    >>> features = FeatureIndex()
    >>> features.add(["z", "b"]), features.add(["a", "b"]), features.names
    (2, 1, ['b', 'z', 'a'])
    >>> features.columns(["a", "new"]).tolist()
    [2, -1]
    >>> full, mask = features.spread(["a", "new"], np.array([[1.0, 9.0]]))
    >>> full.tolist(), mask.tolist()
    ([[0.0, 0.0, 1.0]], [[False, False, True]])
    """

    def __init__(self, names: Iterable[Hashable] = ()) -> None:
        self.names: list[Hashable] = list(names)  # the order is kept as given (a restored index)
        self.index: dict[Hashable, int] = {c: i for i, c in enumerate(self.names)}

    def __len__(self) -> int:
        return len(self.names)

    def add(self, names: Sequence[Hashable]) -> int:
        """Number the distinct ``names`` not yet known (seen in one sample); returns how many were new."""
        new = canonical_order([c for c in names if c not in self.index])
        for c in new:
            self.index[c] = len(self.names)
            self.names.append(c)
        return len(new)

    def columns(self, names: Sequence[Hashable]) -> np.ndarray:
        """The column of each name (int64), ``-1`` for a name not learned."""
        return np.array([self.index.get(c, -1) for c in names], dtype=np.int64)

    def spread(
        self, names: Sequence[Hashable], rows: np.ndarray, present: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` over ``names`` as rows over every learned feature, and the mask of their observed cells.

        ``present`` (like ``rows``) marks the observed cells of ``rows``, ``None`` all; names not learned are
        dropped.
        """
        cols = self.columns(names)
        known = np.flatnonzero(cols >= 0)
        full = np.zeros((rows.shape[0], len(self.names)))
        mask = np.zeros(full.shape, dtype=bool)
        full[:, cols[known]] = rows[:, known]
        mask[:, cols[known]] = True if present is None else present[:, known]
        return full, mask
