"""Validation and conversion of the estimators' inputs: dicts, DataFrames, arrays, labels and targets.

Every function either returns clean float64 data or raises a ``ValueError`` (an
:class:`~stream_am.checks.InputError`) that names the offending field and value, before the estimator changes
anything.

**Magnitude limits.** A feature value or regression target must be finite and at most :data:`MAX_MAGNITUDE`
(1e20) in absolute value, or :data:`MAX_RAW_MAGNITUDE` (1e9, the engine's :data:`~stream_am.checks.MAX_VALUE`)
when it reaches the network unscaled (``standardize=False`` / ``standardize_target=False``: the network
computes in float32, and its co-activation sums and Adam moments hold squares of these values). Within
these limits the running statistics cannot overflow (their sums stay below 1e60 for any count), a
standardised value fits float32, and so a batch that passes validation cannot fail later inside a step.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import torch

from stream_am.checks import MAX_VALUE, InputError
from stream_am.estimators.features import canonical_order  # its home since base.py was split

__all__ = [
    "MAX_MAGNITUDE",
    "MAX_RAW_MAGNITUDE",
    "native",
    "check_label",
    "check_label_types",
    "check_feature_names",
    "native_names",
    "check_target",
    "dict_row",
    "frame_rows",
    "array_rows",
    "records",
    "labels_of",
    "canonical_order",
]

#: largest absolute feature value or target that is standardised before it reaches the network
MAX_MAGNITUDE = 1e20
#: largest absolute value that reaches the network unscaled (float32 arithmetic: the engine's bound)
MAX_RAW_MAGNITUDE = MAX_VALUE


def native(value: Any) -> Any:
    """A numpy scalar or a 0-d tensor as the equivalent Python scalar (``np.bool_(True)`` -> ``True``; a tensor
    hashes by identity: each would be a class of its own); others unchanged."""
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.longdouble):  # (whose item() is itself)
        return float(value)
    if type(value) is tuple:  # (a label of numpy items equals the same of Python's: one class, as it always was)
        return tuple(native(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


#: the longest int a feature name or a label may be, in bits: one Python writes in decimal (4,300 digits at most by
#: default), as a saved model and any message naming it must
INT_BITS = 13_000


def _shown(value: Any) -> str:
    """``repr(value)``, but an int too long to write in decimal as its size."""
    if isinstance(value, int) and value.bit_length() > INT_BITS:
        return f"<an int of {value.bit_length():,} bits>"
    return repr(value)


def _real(value: Any, name: str, limit: float, field: str, row: int | None = None, key: Any = None) -> float:
    if not isinstance(value, (numbers.Real, np.bool_)) or isinstance(value, np.timedelta64):  # (an np.integer)
        raise InputError(f"{name} must be a real number, got {_shown(value)} ({type(value).__name__})", field, row,
                         key)
    try:
        out = float(value)
    except OverflowError:  # an int beyond float64
        out = math.inf
    if not math.isfinite(out):
        raise InputError(f"{name} must be finite, got {_shown(value)}", field, row, key)
    if abs(out) > limit:
        raise InputError(f"{name} = {value!r} exceeds the magnitude limit {limit:g} (|value| <= {limit:g})",
                         field, row, key)
    return out


def _self_equal_key(value: Any) -> bool:
    """Whether ``value`` can be a dict key that finds itself again: hashable all the way down (a tuple holding
    a list is not) and equal to itself (NaN, a tuple holding NaN and ``pd.NA`` are not)."""
    try:
        hash(value)
        if not value == value:
            return False
    except (TypeError, ValueError):  # unhashable; a signalling-NaN Decimal; pd.NA's undecidable truth
        return False
    if isinstance(value, (tuple, frozenset)):  # a tuple equals itself when it holds the same NaN object
        return all(_self_equal_key(v) for v in value)
    return not (isinstance(value, float) and math.isnan(value))


def check_label(y: Any, field: str = "y", row: int | None = None) -> Hashable:
    """A class label: hashable, not None, equal to itself (not NaN); numpy scalars become Python scalars."""
    y = native(y)
    if y is None or not isinstance(y, Hashable) or not _self_equal_key(y) or not _writable(y):
        raise InputError(f"{field} must be a hashable class label equal to itself (not None, not NaN; an int of at "
                         f"most {INT_BITS:,} bits), got {_shown(y)}", field.split("[")[0], row)
    return y


def _writable(value: Any) -> bool:
    """Whether ``value`` holds no int too long to write (:data:`INT_BITS`)."""
    if isinstance(value, tuple):
        return all(_writable(v) for v in value)
    return not isinstance(value, int) or value.bit_length() <= INT_BITS


def native_names(names: list[Any], field: str) -> list[Any]:
    """``names`` checked (:func:`check_feature_names`), a numpy name (``np.str_("a")``) as the Python value it
    equals (savable as JSON); as given when every one is a ``str`` or an ``int`` (the common case: one pass)."""
    if all(type(name) is str or (type(name) is int and name.bit_length() <= INT_BITS) for name in names):
        return names
    names = [native(name) for name in names]
    check_feature_names(names, field)
    return names


def check_feature_names(names: list[Any], field: str) -> None:
    """Feature names must find themselves again: a name unequal to itself (NaN) would be a new feature each time."""
    for name in names:
        if type(name) is not str and not (_self_equal_key(name) and _writable(name)):
            raise InputError(f"{field} has a feature name that is not equal to itself or an int longer than "
                             f"{INT_BITS:,} bits: {_shown(name)}", field, None, name)


def check_label_types(labels: list[Any], classes: list[Any], field: str = "y", single: bool = False) -> None:
    """One label type per classifier: ``1``, ``True``, ``1.0`` and ``"1"`` are different labels, never merged.

    Python treats ``True == 1 == 1.0`` as one dict key, so mixing these types would silently merge classes;
    a label whose type differs from the first label's is refused. ``single``: ``field`` names one label.
    """
    if not labels:
        return
    kind = type(classes[0]) if classes else type(labels[0])
    for i, y in enumerate(labels):
        if type(y) is not kind:
            name = field if single else f"{field}[{i}]"
            raise InputError(
                f"{name} = {_shown(y)} is a {type(y).__name__}, but this classifier's labels are of type "
                f"{kind.__name__} (one label type per model)", field, None if single else i)
    if kind is tuple:  # tuples of any shapes, but one equal to another of other item types would merge with it
        known = {c: c for c in classes}
        for i, y in enumerate(labels):
            other = known.setdefault(y, y)
            if _kind(other) != _kind(y):
                raise InputError(f"{field if single else f'{field}[{i}]'} = {_shown(y)} equals the label "
                                 f"{_shown(other)}, whose items are of other types ((1,) and (True,) would be one "
                                 "class)", field, None if single else i)


def _kind(y: Any) -> Any:
    """A label's type, and its items' in a tuple: ``(1,)`` and ``(True,)`` are equal keys too."""
    return (tuple, tuple(_kind(v) for v in y)) if type(y) is tuple else type(y)


def check_target(y: Any, field: str = "y", limit: float = MAX_MAGNITUDE, row: int | None = None) -> float:
    """A regression target: a finite real number of magnitude at most ``limit``."""
    return _real(y, field, limit, field.split("[")[0], row)


_PLAIN = frozenset({float, int, bool, np.float64, np.float32, np.int64, np.int32, np.bool_})


def dict_row(x: Any, limit: float = MAX_MAGNITUDE) -> tuple[list[Hashable], np.ndarray]:
    """Keys and float64 values (shape ``1 x k``) of a feature dict ``x``; values beyond ``limit`` are refused."""
    if not isinstance(x, dict):
        raise InputError(f"x must be a dict of feature -> number, got {type(x).__name__}", "x")
    keys = native_names(list(x), "x")
    values = list(x.values())
    if all(type(v) in _PLAIN for v in values):  # fast path; the checks below name any offender
        try:
            row = np.array(values, dtype=np.float64).reshape(1, -1)
        except OverflowError:  # an int beyond float64: named below
            row = np.array([math.inf])
        if not row.size or np.abs(row).max() <= limit:  # (false for NaN and infinities too: named below)
            return keys, row
    return keys, np.array([_real(x[k], f"x[{k!r}]", limit, "x", None, k) for k in keys],
                          dtype=np.float64).reshape(1, -1)


def frame_rows(X: Any, name: str = "X", limit: float = MAX_MAGNITUDE) -> tuple[list[Hashable], np.ndarray, np.ndarray]:
    """Columns, float64 values and the mask of observed cells of a DataFrame.

    NaN marks a missing value (as pandas does when a frame is built from dicts with different keys);
    infinite and non-numeric cells are refused.
    """
    if not isinstance(X, pd.DataFrame):
        raise InputError(f"{name} must be a pandas DataFrame, got {type(X).__name__}", name)
    cols = native_names(list(X.columns), name)
    if len(set(cols)) != len(cols):
        raise InputError(f"{name} has duplicate columns: {cols!r}", name)
    objects = []  # columns of Python values (pandas' dtype for bools beside missing cells, or ints past 2**63)
    for j, (c, dtype) in enumerate(zip(cols, X.dtypes, strict=True)):  # (X.dtypes: one Series, not one per column)
        numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype)
        if pd.api.types.is_object_dtype(dtype):
            objects.append(j)
        elif not (numeric or pd.api.types.is_bool_dtype(dtype)):
            raise InputError(f"{name}[{c!r}] must be real numbers, got dtype {dtype}", name, None, c)
    if not objects:
        values = X.to_numpy(dtype=np.float64, copy=True).reshape(len(X), len(cols))
    else:  # each cell as learn_one reads it; None, NaN and pd.NA are missing cells
        values = np.empty((len(X), len(cols)))
        rest = [j for j in range(len(cols)) if j not in set(objects)]
        values[:, rest] = X.iloc[:, rest].to_numpy(dtype=np.float64).reshape(len(X), len(rest))
        for j in objects:
            values[:, j] = [math.nan if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                            else _real(v, f"{name}[{cols[j]!r}][{i}]", math.inf, name, i, cols[j])
                            for i, v in enumerate(X.iloc[:, j].tolist())]
    present = ~np.isnan(values)
    _check_finite(np.where(present, values, 0.0), name, cols, limit)
    return cols, np.where(present, values, 0.0), present


def records(names: list[Hashable], rows: np.ndarray, present: np.ndarray) -> list[dict]:
    """The rows of :func:`frame_rows` as dicts of their observed cells (a missing value is an absent key)."""
    return [{n: v for n, v, p in zip(names, r, m, strict=True) if p}
            for r, m in zip(rows.tolist(), present.tolist(), strict=True)]


def records_frame(rows: list[dict]) -> pd.DataFrame:
    """The dicts ``rows`` as one DataFrame that :func:`frame_rows` reads back as the same rows:
    every key its own column label (``pd.DataFrame`` of dicts makes a None key NaN, which is refused, and tuple keys
    a MultiIndex), NaN for an absent key."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    values = [[row.get(k, math.nan) for k in keys] for row in rows]
    return pd.DataFrame(values, columns=pd.Index(keys, dtype=object, tupleize_cols=False))


def array_rows(X: Any, n_features: int | None, owner: str, name: str = "X", limit: float = MAX_MAGNITUDE) -> np.ndarray:
    """A 2-d float64 copy of an array-like; ``n_features`` (when set) is enforced scikit-learn style."""
    if getattr(getattr(X, "dtype", None), "kind", None) == "c":
        raise InputError(f"{name} must hold real numbers, got complex dtype {X.dtype}", name)
    try:
        values = np.array(X, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as err:  # (an int beyond float64 overflows)
        raise InputError(f"{name} must be a 2-d array of real numbers: {err}", name) from err
    if values.ndim != 2:
        raise InputError(f"{name} must be a 2-d array, got shape {values.shape}", name)
    if n_features is not None and values.shape[1] != n_features:
        raise InputError(
            f"{name} has {values.shape[1]} features, but {owner} is expecting {n_features} features as input.", name
        )
    _check_finite(values, name, list(range(values.shape[1])), limit)
    return values


def _check_finite(values: np.ndarray, name: str, cols: list[Hashable], limit: float) -> None:
    bad = np.argwhere(~np.isfinite(values) | (np.abs(values) > limit))
    if len(bad):
        i, j = (int(v) for v in bad[0])
        value = float(values[i, j])  # (a Python float: its repr is the number, not numpy's type)
        why = "a non-finite value" if not np.isfinite(value) else f"a value beyond the magnitude limit {limit:g}"
        raise InputError(f"{name}[{cols[j]!r}] has {why} in row {i}: {value!r}", name, i, cols[j])


def labels_of(y: Any, n: int, classification: bool, name: str = "y", limit: float = MAX_MAGNITUDE) -> list[Any]:
    """Checked labels (or float targets of magnitude at most ``limit``) of a 1-d array-like / Series of length ``n``."""
    values = y.to_numpy() if isinstance(y, pd.Series) else np.asarray(y, dtype=object if classification else None)
    if values.ndim != 1 or len(values) != n:
        raise InputError(f"{name} must be 1-d with {n} entries (one per row of X), got shape {values.shape}", name)
    if classification:
        return [check_label(v, f"{name}[{i}]", i) for i, v in enumerate(values)]
    return [check_target(v, f"{name}[{i}]", limit, i) for i, v in enumerate(values)]
