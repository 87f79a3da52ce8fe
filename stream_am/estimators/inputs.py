"""Validation and conversion of the estimators' inputs: dicts, DataFrames, arrays, labels and targets.

Every function either returns clean float64 data or raises a ``ValueError`` that names the offending field
and value, before the estimator changes anything.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["native", "check_label", "check_target", "dict_row", "frame_rows", "array_rows", "labels_of"]


def native(value: Any) -> Any:
    """A numpy scalar as the equivalent Python scalar (``np.bool_(True)`` -> ``True``); others unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _real(value: Any, field: str) -> float:
    if not isinstance(value, (numbers.Real, np.bool_)):
        raise ValueError(f"{field} must be a real number, got {value!r} ({type(value).__name__})")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{field} must be finite, got {value!r}")
    return out


def check_label(y: Any, field: str = "y") -> Hashable:
    """A class label: hashable, not None, not NaN; numpy scalars become Python scalars."""
    y = native(y)
    if y is None or not isinstance(y, Hashable) or (isinstance(y, float) and math.isnan(y)):
        raise ValueError(f"{field} must be a hashable class label, got {y!r}")
    return y


def check_target(y: Any, field: str = "y") -> float:
    """A regression target: a finite real number."""
    return _real(y, field)


_PLAIN = frozenset({float, int, bool, np.float64, np.float32, np.int64, np.int32, np.bool_})


def dict_row(x: Any) -> tuple[list[Hashable], np.ndarray]:
    """Keys and float64 values (shape ``1 x k``) of a feature dict ``x``."""
    if not isinstance(x, dict):
        raise ValueError(f"x must be a dict of feature -> number, got {type(x).__name__}")
    keys = list(x)
    values = list(x.values())
    if all(type(v) in _PLAIN for v in values):  # fast path; the checks below name any offender
        row = np.array(values, dtype=np.float64).reshape(1, -1)
        if np.isfinite(row).all():
            return keys, row
    return keys, np.array([_real(x[k], f"x[{k!r}]") for k in keys], dtype=np.float64).reshape(1, -1)


def frame_rows(X: Any, name: str = "X") -> tuple[list[Hashable], np.ndarray, np.ndarray]:
    """Columns, float64 values and the mask of observed cells of a DataFrame.

    NaN marks a missing value (as pandas does when a frame is built from dicts with different keys);
    infinite and non-numeric cells are refused.
    """
    if not isinstance(X, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(X).__name__}")
    cols = list(X.columns)
    if len(set(cols)) != len(cols):
        raise ValueError(f"{name} has duplicate columns: {cols!r}")
    for c in cols:
        dtype = X[c].dtype
        if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            raise ValueError(f"{name}[{c!r}] must be numeric, got dtype {dtype}")
    values = X.to_numpy(dtype=np.float64, copy=True).reshape(len(X), len(cols))
    present = ~np.isnan(values)
    _check_finite(np.where(present, values, 0.0), name, cols)
    return cols, np.where(present, values, 0.0), present


def array_rows(X: Any, n_features: int | None, owner: str, name: str = "X") -> np.ndarray:
    """A 2-d float64 copy of an array-like; ``n_features`` (when set) is enforced scikit-learn style."""
    try:
        values = np.array(X, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a 2-d array of numbers: {err}") from err
    if values.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array, got shape {values.shape}")
    if n_features is not None and values.shape[1] != n_features:
        raise ValueError(
            f"{name} has {values.shape[1]} features, but {owner} is expecting {n_features} features as input."
        )
    _check_finite(values, name, list(range(values.shape[1])))
    return values


def _check_finite(values: np.ndarray, name: str, cols: list[Hashable]) -> None:
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        i, j = bad[0]
        raise ValueError(f"{name}[{cols[j]!r}] has a non-finite value {values[i, j]!r} in row {i}")


def labels_of(y: Any, n: int, classification: bool, name: str = "y") -> list[Any]:
    """Checked labels (or float targets) of a 1-d array-like / Series of length ``n``."""
    values = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y, dtype=object if classification else None)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"{name} must be 1-d with {n} entries (one per row of X), got shape {values.shape}")
    check = check_label if classification else check_target
    return [check(v, f"{name}[{i}]") for i, v in enumerate(values)]
