"""The numpy API's inputs (:mod:`~stream_am.estimators.sklearn_api`), read as scikit-learn reads them, and refused
where they cannot be learned: :func:`sk_rows` (``X``) and :func:`declared_labels` (``partial_fit``'s ``classes``).
Every refusal is a ``ValueError`` naming the argument, but scikit-learn's own ``TypeError`` for sparse input and for
objects that are no numbers (a dict, a complex number), which its estimator checks expect."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.utils.validation import check_array

__all__ = ["sk_rows", "declared_labels"]


def sk_rows(X: Any) -> np.ndarray:
    """``X`` as a 2-d float64 array of finite values (``check_array``'s reading), else ``ValueError`` naming ``X``:
    Python ints beyond float64 in an object array (numpy raised ``OverflowError``), dates and durations (which numpy
    counts in days or seconds), masked arrays (whose masks numpy would drop)."""
    if isinstance(X, np.ma.MaskedArray):
        raise ValueError("X is a masked array: fill or drop its masked cells first (X.filled(value)), as its "
                         "mask would be ignored")
    if getattr(getattr(X, "dtype", None), "kind", None) in ("m", "M"):
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype} (dates and durations: convert them first)")
    try:
        rows = check_array(X, dtype="numeric", ensure_all_finite=False, ensure_min_samples=1)
        if rows.dtype.kind not in "biuf":  # e.g. Python ints beyond float64, kept as objects
            rows = rows.astype(np.float64)
    except OverflowError as err:  # (a TypeError, for objects that are no numbers, is scikit-learn's own answer)
        raise ValueError(f"X must hold real numbers that fit float64: {err}") from err
    bad = np.argwhere(~np.isfinite(rows))
    if len(bad):
        i, j = bad[0]
        raise ValueError(f"X[{j}] has a non-finite value {rows[i, j]!r} in row {i}: NaN and inf are not accepted")
    return rows


def declared_labels(classes: Any) -> list[Any]:
    """``classes`` as a list of its labels: any collection of them (tuple labels kept; a set too, as they are
    sorted), or a 1-d array; not one str."""
    if isinstance(classes, np.ndarray):
        if classes.ndim != 1:
            raise ValueError(f"classes must be a 1-d array of labels, got shape {classes.shape}")
        return classes.tolist()
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
        raise ValueError(f"classes must be a collection of labels (a list, a set, an array), got "
                         f"{type(classes).__name__} {classes!r:.80}")
    return list(classes)
