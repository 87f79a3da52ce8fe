"""Regression on top of :class:`~stream_am.estimators.base.StreamEstimator`, with an online target scale.

With ``standardize_target=True`` the target keeps a running mean and standard deviation, updated when a
sample is learned, exactly like a feature: the network learns ``(y - mean) / std`` (statistics as of the
step) and a prediction is ``output * std + mean`` (current statistics). Before the first step the network
output is taken as 0, so the prediction is the running target mean (0.0 before any learning, or always
when ``standardize_target=False``). Targets beyond the magnitude limits of :mod:`stream_am.estimators.inputs`
are refused, so the target statistics cannot overflow.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from river import base

from stream_am.estimators import inputs
from stream_am.estimators.base import StreamEstimator
from stream_am.estimators.moments import RunningMoments

__all__ = ["StreamRegressor"]

_TARGET = np.zeros(1, dtype=np.int64)  # the target's column in its RunningMoments


class StreamRegressor(StreamEstimator, base.MiniBatchRegressor):
    """A river mini-batch regressor with a scikit-learn style numpy API; the engine comes from subclasses."""

    standardize_target: bool

    def _check_params(self) -> None:
        super()._check_params()
        if not isinstance(self.standardize_target, bool):
            raise ValueError(f"standardize_target must be a bool, got {self.standardize_target!r}")

    def _reset(self) -> None:
        super()._reset()
        self._target_moments = RunningMoments()
        self._target_moments.grow(1)

    @property
    def _target_limit(self) -> float:
        return inputs.MAX_MAGNITUDE if self.standardize_target else inputs.MAX_RAW_MAGNITUDE

    # -- hooks ---------------------------------------------------------------------------------------
    def _n_outputs(self) -> int:
        return 1

    def _encode_targets(self, ys: list[Any]) -> list[Any]:
        if self.standardize_target:
            self._target_moments.update(_TARGET, np.array(ys, dtype=np.float64).reshape(-1, 1))
        return list(ys)

    def _target_scale(self) -> tuple[float, float]:
        if not self.standardize_target:
            return 0.0, 1.0
        mean, scale = self._target_moments.mean_scale()
        return float(mean[0]), float(scale[0])

    def _target_tensor(self, ys: list[Any]) -> torch.Tensor:
        mean, scale = self._target_scale()
        z = (np.array(ys, dtype=np.float64) - mean) / scale
        return torch.from_numpy(z.astype(np.float32).reshape(-1, 1))

    def _values(self, names: Sequence[Hashable], rows: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
        out = self._outputs(names, rows, proba=False, present=present)
        z = np.zeros(rows.shape[0]) if out is None else out[:, 0]
        mean, scale = self._target_scale()
        return z * scale + mean

    # -- river API -----------------------------------------------------------------------------------
    def learn_one(self, x: dict, y: Any) -> None:
        """Learn one sample (buffered; a step runs every ``batch_size`` samples)."""
        names, row = inputs.dict_row(x, self._feature_limit)
        target = inputs.check_target(y, limit=self._target_limit)
        self._learn_one(names, row, target)

    def predict_one(self, x: dict, **kwargs: Any) -> float:
        """Prediction from the last completed step (the running target mean before the first one)."""
        names, row = inputs.dict_row(x, self._feature_limit)
        return float(self._values(names, row)[0])

    def learn_many(self, X: pd.DataFrame, y: pd.Series) -> None:
        """Learn the rows of ``X`` in order: exactly the same as ``learn_one`` on each row (NaN = missing)."""
        names, rows, present = inputs.frame_rows(X, limit=self._feature_limit)
        targets = inputs.labels_of(y, len(rows), classification=False, limit=self._target_limit)
        self._learn_rows(names, rows, targets, present)

    def predict_many(self, X: pd.DataFrame) -> pd.Series:
        """One prediction per row of ``X``."""
        names, rows, present = inputs.frame_rows(X, limit=self._feature_limit)
        return pd.Series(self._values(names, rows, present), index=X.index, dtype=np.float64)

    # -- numpy API -----------------------------------------------------------------------------------
    def _numpy_rows(self, X: Any) -> tuple[list[int], np.ndarray]:
        rows = inputs.array_rows(X, len(self._index.names) or None, type(self).__name__, limit=self._feature_limit)
        if self._index.names != list(range(len(self._index.names))):
            raise ValueError(
                f"the numpy API addresses features by column position, but {type(self).__name__} has learned "
                f"named features {self._index.names[:5]!r}"
            )
        return list(range(rows.shape[1])), rows

    def partial_fit(self, X: Any, y: Any) -> StreamRegressor:
        """Learn the rows of a 2-d array (features by position) in order, like :meth:`learn_many`."""
        names, rows = self._numpy_rows(X)
        targets = inputs.labels_of(y, len(rows), classification=False, limit=self._target_limit)
        self._learn_rows(names, rows, targets)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """One prediction per row of a 2-d array."""
        names, rows = self._numpy_rows(X)
        return self._values(names, rows)

    # -- state ---------------------------------------------------------------------------------------
    def _payload(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._payload()
        arrays.update(self._target_moments.state("target_moments."))
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore(meta, arrays)
        self._target_moments = RunningMoments.from_state(arrays, "target_moments.")
