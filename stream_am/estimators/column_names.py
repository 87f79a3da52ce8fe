"""scikit-learn's conventions for labels and DataFrame column names, used by :mod:`.sklearn_api`.

A DataFrame whose column names are all strings gives the estimator ``feature_names_in_``; later calls must
bring the same names in the same order (a clear ``ValueError`` otherwise), and scikit-learn's warnings are
raised where one call has names and the other has none.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["check_names", "column_names", "object_array", "sorted_labels"]


def sorted_labels(labels: list[Any]) -> list[Any]:
    """Labels sorted as ``np.unique`` sorts them; in the given order when they cannot be compared."""
    try:
        return sorted(labels)
    except TypeError:
        return labels


def column_names(X: Any) -> np.ndarray | None:
    """A DataFrame's column names when they are all strings (scikit-learn's rule), else ``None``."""
    if not isinstance(X, pd.DataFrame) or not all(isinstance(c, str) for c in X.columns):
        return None
    return object_array(list(X.columns))


def object_array(names: list[Any] | None) -> np.ndarray | None:
    if names is None:
        return None
    out = np.empty(len(names), dtype=object)
    out[:] = names
    return out


def check_names(fitted: np.ndarray | None, given: np.ndarray | None) -> None:
    """scikit-learn's column-name check: the same names in the same order, or a clear ``ValueError``."""
    if fitted is None and given is None:
        return
    if fitted is None:
        warnings.warn("X has feature names, but the estimator was fitted without feature names", stacklevel=3)
        return
    if given is None:
        warnings.warn("X does not have valid feature names, but the estimator was fitted with feature names",
                      stacklevel=3)
        return
    if len(fitted) == len(given) and (fitted == given).all():
        return
    lines = ["The feature names should match those that were passed during fit."]
    unseen = sorted(set(given) - set(fitted))
    missing = sorted(set(fitted) - set(given))
    if unseen:
        lines.append("Feature names unseen at fit time:\n" + "".join(f"- {n}\n" for n in unseen[:5]))
    if missing:
        lines.append("Feature names seen at fit time, yet now missing:\n" + "".join(f"- {n}\n" for n in missing[:5]))
    if not unseen and not missing:
        lines.append("Feature names must be in the same order as they were in fit.\n")
    raise ValueError("\n".join(lines))
