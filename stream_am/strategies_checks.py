"""Checks of the continual-learning strategies' inputs (:mod:`stream_am.strategies`): the estimators' own rules.

A strategy refuses exactly what :class:`~stream_am.AMClassifier` refuses, with the same messages: a feature
dict must hold finite real numbers (NaN in a dict is refused, NaN in a DataFrame means missing), a label must
be hashable, not None and not NaN, and one model has one label type. The checks only read their arguments,
so a strategy can run all of them before it changes anything.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from stream_am.estimators import inputs

__all__ = ["labelled_row", "labelled_frame", "first_features"]


def labelled_row(x: Any, y: Any, known: list[Any], limit: float = inputs.MAX_MAGNITUDE) -> tuple[dict, Hashable]:
    """The sample ``(x, y)`` checked: ``x`` with float values, and the label. ``known``: labels learned so far
    (their type is the model's; empty before the first).

    Examples
    --------
    >>> labelled_row({"a": 1, "b": True}, 1, [0])
    ({'a': 1.0, 'b': 1.0}, 1)
    >>> labelled_row({"a": float("nan")}, 1, [0])
    Traceback (most recent call last):
    ...
    stream_am.checks.InputError: x['a'] must be finite, got nan
    """
    names, row = inputs.dict_row(x, limit)
    label = inputs.check_label(y)
    inputs.check_label_types([label], known, "y", single=True)
    return dict(zip(names, row[0].tolist(), strict=True)), label


def labelled_frame(
    X: Any, y: Any, known: list[Any], limit: float = inputs.MAX_MAGNITUDE
) -> tuple[list[dict], list[Any]]:
    """The mini-batch ``(X, y)`` checked: one dict of float values per row of the DataFrame ``X`` (a NaN cell
    is a missing feature, left out of its dict), and the labels; ``known`` as in :func:`labelled_row`.

    Examples
    --------
    >>> import pandas as pd
    >>> labelled_frame(pd.DataFrame({"a": [1.0, float("nan")], "b": [0, 1]}), pd.Series([0, 1]), [])
    ([{'a': 1.0, 'b': 0.0}, {'b': 1.0}], [0, 1])
    """
    names, rows, present = inputs.frame_rows(X, limit=limit)
    labels = inputs.labels_of(y, len(rows), classification=True)
    inputs.check_label_types(labels, known, "y")
    return inputs.records(names, rows, present), labels


def first_features(fixed: bool, n_features: int, field: str) -> None:
    """``ValueError`` naming ``field`` if the step that fixes an :class:`~stream_am.strategies.EWCClassifier`'s
    features (``fixed``: they are fixed already) would see none: its network would never have an input."""
    if not fixed and not n_features:
        raise ValueError(f"{field} has no features: EWCClassifier fixes its features at its first step, which "
                         "needs at least one")
