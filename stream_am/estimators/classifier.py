"""Classification on top of :class:`~stream_am.estimators.base.StreamEstimator`: an open label set.

Labels are numbered in first-seen order (numpy scalars become Python scalars). A label first seen while
learning grows the engine's output layer at once (zero weights; everything learned is kept). Before the
first step the prediction is uniform over the labels seen; before any learning ``predict_proba_one``
returns ``{}`` and ``predict_one`` ``None``. ``classes=`` in :meth:`partial_fit` declares the labels up
front, as in scikit-learn; afterwards an undeclared label is a ``ValueError``. A classifier has one label
type: ``True``, ``1``, ``1.0`` and ``"1"`` are never merged, a label of another type than the first is a
``ValueError``.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from river import base
from river.base.typing import ClfTarget

from stream_am.checks import MAX_SEED, InputError
from stream_am.estimators import inputs
from stream_am.estimators.base import StreamEstimator
from stream_am.estimators.sk_inputs import declared_labels

__all__ = ["StreamClassifier"]


class StreamClassifier(StreamEstimator, base.MiniBatchClassifier):
    """A river mini-batch classifier with a scikit-learn style numpy API; the engine comes from subclasses."""

    _target_dtype = np.int64

    def _reset(self) -> None:
        super()._reset()
        self._classes: list[Any] = []
        self._class_index: dict[Hashable, int] = {}
        self._classes_declared = False

    @property
    def _multiclass(self) -> bool:
        return True

    @property
    def classes_(self) -> np.ndarray:
        """Labels seen or declared, in output order."""
        if self._classes and _uniform(self._classes):
            return np.array(self._classes)
        out = np.empty(len(self._classes), dtype=object)
        for i, c in enumerate(self._classes):
            out[i] = c
        return out

    # -- hooks ---------------------------------------------------------------------------------------
    def _n_outputs(self) -> int:
        return len(self._classes)

    def _add_class(self, label: Hashable) -> None:
        self._class_index[label] = len(self._classes)
        self._classes.append(label)
        for engine in self._engines():
            engine.grow_outputs(1)

    def _new_target_rows(self, ys: list[Any]) -> set[int]:
        fresh: dict[Any, int] = {}
        for i, y in enumerate(ys):
            if y not in self._class_index:
                fresh.setdefault(y, i)
        return set(fresh.values())

    def _encode_targets(self, ys: list[Any]) -> list[Any]:
        for y in ys:
            if y not in self._class_index:
                self._add_class(y)
        return [self._class_index[y] for y in ys]

    def _target_tensor(self, ys: list[Any]) -> torch.Tensor:
        return torch.tensor(ys, dtype=torch.int64)

    def _check_labels(self, ys: list[Any], single: bool = False) -> None:
        """One label type, and only declared labels once ``classes`` were declared (nothing changes here)."""
        inputs.check_label_types(ys, self._classes, "y", single=single)
        if self._classes_declared:
            for i, y in enumerate(ys):
                if y not in self._class_index:
                    raise InputError(f"{'y' if single else f'y[{i}]'} = {y!r} is not one of the declared classes "
                                     f"{self._classes!r}", "y", None if single else i)

    def _proba(self, names: Sequence[Hashable], rows: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        out = self._outputs(names, rows, proba=True, present=present)
        if out is None:
            k = len(self._classes)
            return np.full((rows.shape[0], k), 1.0 / k) if k else np.zeros((rows.shape[0], 0))
        return out

    # -- river API -----------------------------------------------------------------------------------
    def _checked_one(self, x: dict, y: Any) -> tuple[list[Hashable], np.ndarray, Hashable]:
        """``learn_one``'s checks, which change nothing (the step it may run can run too): the feature names, their
        values (``1 x k``), the label."""
        names, row = inputs.dict_row(x, self._feature_limit)
        label = inputs.check_label(y)
        self._check_labels([label], single=True)
        self._check_can_step(1)
        return names, row, label

    def learn_one(self, x: dict, y: Any) -> None:
        """Learn one sample (buffered; a step runs every ``batch_size`` samples)."""
        self._learn_one(*self._checked_one(x, y))

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[ClfTarget, float]:
        """Probability of every label seen, from the last completed step; ``{}`` before any learning."""
        names, row = inputs.dict_row(x, self._feature_limit)
        p = self._proba(names, row)[0]
        return {c: float(v) for c, v in zip(self._classes, p, strict=True)}

    def predict_one(self, x: dict, **kwargs: Any) -> ClfTarget | None:
        """Most probable label (first one on ties); ``None`` before any learning."""
        proba = self.predict_proba_one(x)
        return max(proba, key=proba.__getitem__) if proba else None

    def learn_many(self, X: pd.DataFrame, y: pd.Series) -> None:
        """Learn the rows of ``X`` in order: exactly the same as ``learn_one`` on each row (NaN = missing)."""
        names, rows, present, labels = self._checked_many(X, y)
        self._learn_rows(names, rows, labels, present)

    def _checked_many(self, X: pd.DataFrame, y: pd.Series) -> tuple[list[Hashable], np.ndarray, np.ndarray, list[Any]]:
        """``learn_many``'s checks, which change nothing: the columns, the values, the observed cells, the labels."""
        names, rows, present = inputs.frame_rows(X, limit=self._feature_limit)
        labels = inputs.labels_of(y, len(rows), classification=True)
        self._check_labels(labels)
        self._check_can_step(len(rows))
        return names, rows, present, labels

    def predict_proba_many(self, X: pd.DataFrame) -> pd.DataFrame:
        """One row of label probabilities per row of ``X`` (no columns before any learning)."""
        names, rows, present = inputs.frame_rows(X, limit=self._feature_limit)
        return pd.DataFrame(self._proba(names, rows, present), index=X.index, columns=list(self._classes))

    def predict_many(self, X: pd.DataFrame) -> pd.Series:
        """Most probable label per row (``None`` before any learning)."""
        names, rows, present = inputs.frame_rows(X, limit=self._feature_limit)
        return pd.Series(self._labels(self._proba(names, rows, present)), index=X.index, dtype=object)

    def _labels(self, proba: np.ndarray) -> list[Any]:
        if not self._classes:
            return [None] * proba.shape[0]
        return [self._classes[i] for i in proba.argmax(axis=1)]

    # -- numpy API -----------------------------------------------------------------------------------
    def _numpy_names(self, n: int | None = None) -> list[int]:
        if self._index.names != list(range(len(self._index.names))):
            raise ValueError(
                f"the numpy API addresses features by column position, but {type(self).__name__} has learned "
                f"named features {self._index.names[:5]!r}"
            )
        return list(range(len(self._index.names) if n is None else n))

    def _numpy_rows(self, X: Any) -> tuple[list[int], np.ndarray]:
        expected = len(self._index.names) or None
        rows = inputs.array_rows(X, expected, type(self).__name__, limit=self._feature_limit)
        return self._numpy_names(rows.shape[1]), rows

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> StreamClassifier:
        """Learn the rows of a 2-d array (features by position) in order, like :meth:`learn_many`.

        ``classes`` declares every label up front (the output layer is sized for them at once); once
        declared, labels outside it raise ``ValueError``. Returns ``self``.
        """
        names, rows = self._numpy_rows(X)
        labels = inputs.labels_of(y, len(rows), classification=True)
        declared = None
        if classes is not None:
            declared = [inputs.check_label(c, f"classes[{i}]") for i, c in enumerate(declared_labels(classes))]
            inputs.check_label_types(declared, self._classes, "classes")
            inputs.check_label_types(labels, self._classes or declared, "y")
            if len(set(declared)) != len(declared):
                raise ValueError(f"classes has duplicates: {declared!r}")
            if self._classes_declared and set(declared) != set(self._classes):
                raise ValueError(f"classes={declared!r} differs from the classes declared before {self._classes!r}")
            unknown = [c for c in self._classes if c not in set(declared)]
            if unknown:
                raise ValueError(f"classes={declared!r} lacks labels already learned: {unknown!r}")
            for i, lab in enumerate(labels):
                if lab not in set(declared):
                    raise ValueError(f"y[{i}] = {lab!r} is not one of classes={declared!r}")
        else:
            self._check_labels(labels)
        if declared is not None:
            self._check_can_step(len(rows))
            for c in declared:
                if c not in self._class_index:
                    self._add_class(c)
            self._classes_declared = True
        self._learn_rows(names, rows, labels)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n_samples, n_classes)`` probabilities, columns in :attr:`classes_` order."""
        names, rows = self._numpy_rows(X)
        return self._proba(names, rows)

    def predict(self, X: Any) -> np.ndarray:
        """Most probable label per row; ``ValueError`` before any label was seen or declared."""
        if not self._classes:
            raise ValueError(f"{type(self).__name__} has not seen any label yet; call partial_fit first")
        names, rows = self._numpy_rows(X)
        return self.classes_[self._proba(names, rows).argmax(axis=1)]

    # -- state ---------------------------------------------------------------------------------------
    def _payload(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._payload()
        meta["classes"] = list(self._classes)
        meta["classes_declared"] = self._classes_declared
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore(meta, arrays)
        self._classes = list(meta["classes"])
        self._class_index = {c: i for i, c in enumerate(self._classes)}
        self._classes_declared = bool(meta["classes_declared"])


def _uniform(values: list[Any]) -> bool:
    """Whether numpy holds ``values`` exactly in an array of one type (ints beyond int64 would become floats)."""
    if len({type(v) for v in values}) != 1 or not isinstance(values[0], (bool, int, float, str)):
        return False
    return not isinstance(values[0], int) or isinstance(values[0], bool) or all(_INT64[0] <= v <= _INT64[1]
                                                                                for v in values)


_INT64 = (-MAX_SEED - 1, MAX_SEED)  # (int64's range)
