"""The loss a drift detector reads (:class:`~stream_am.drift.DriftAware`): a classifier's 0/1 error, or its clipped
log-loss ``min(-log p(y), 10) / 10``, on one sample or on many samples at once; and :func:`feed`, which gives the
losses to a river drift detector up to its first upward detection.

The samples are checked already, as the classifier checks them: one dict of float values per sample (a missing
feature is absent). :func:`records_frame` gives many of them to ``predict_many`` as one DataFrame of float64
columns, whatever the feature names (a tuple stays one name) and values were; pandas' own inference
(``DataFrame.from_records``) would make a column of ``object`` dtype of a bool beside a float, which the
classifier refuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from river import base

__all__ = ["SIGNALS", "records_frame", "sample_loss", "batch_losses", "feed"]

SIGNALS = ("error", "log_loss")


def records_frame(rows: list[dict]) -> pd.DataFrame:
    """One float64 row per dict of ``rows``, one column per feature name in order of first appearance; NaN where a
    dict lacks a feature (a missing value to the estimators).

    Examples
    --------
    >>> frame = records_frame([{"a": True, ("b", 1): 2}, {"a": 0.5}])
    >>> list(frame.columns), frame.dtypes.tolist()
    (['a', ('b', 1)], [dtype('float64'), dtype('float64')])
    >>> frame.to_numpy().tolist()
    [[1.0, 2.0], [0.5, nan]]
    """
    index: dict[Any, int] = {}
    for row in rows:
        for name in row:
            index.setdefault(name, len(index))
    values = np.full((len(rows), len(index)), np.nan)
    for i, row in enumerate(rows):
        values[i, [index[name] for name in row]] = [float(v) for v in row.values()]
    return pd.DataFrame(values, columns=pd.Index(list(index), dtype=object, tupleize_cols=False))


def sample_loss(classifier: Any, signal: str, x: dict, y: Any) -> float:
    """The ``signal`` of the classifier's answer to ``x`` against the label ``y`` (one ``predict_*_one`` call)."""
    if signal == "error":
        return float(classifier.predict_one(x) != y)
    return _clipped_log_loss(classifier.predict_proba_one(x).get(y, 0.0))


def batch_losses(classifier: Any, signal: str, rows: list[dict], labels: list[Any]) -> list[float]:
    """The ``signal`` of each of ``rows`` against its label, from one ``predict_many`` (or ``predict_proba_many``)
    call: what :func:`sample_loss` gives row by row, the model unchanged."""
    X = records_frame(rows)
    if signal == "error":
        preds = classifier.predict_many(X).tolist()
        return [float(p != t) for p, t in zip(preds, labels, strict=True)]
    proba = classifier.predict_proba_many(X)
    return [_clipped_log_loss(float(proba[t].iloc[i]) if t in proba else 0.0) for i, t in enumerate(labels)]


def _clipped_log_loss(p: float) -> float:
    return min(-math.log(max(p, 1e-300)), 10.0) / 10.0


def feed(detector: base.DriftDetector, fresh: Callable[[], base.DriftDetector], seen: set[Any], losses: list[float],
         labels: list[Any]) -> tuple[base.DriftDetector, set[Any], int | None]:
    """Update ``detector`` with ``losses`` in order up to its first upward detection; the detector (another one,
    ``fresh()``, from the last label not in ``seen``: a new class's first sample is not fed, its errors are not a
    drift of the known classes), ``seen`` with the labels fed, and the index of the sample detected (None if none).
    A detection counts only if the detector's ``estimation``, where it has one, rose (ADWIN fires when the loss
    falls too). ``seen`` is not changed: a new set replaces it.

    Examples
    --------
    >>> from river import drift
    >>> detector = drift.PageHinkley(min_instances=5, threshold=1.0)
    >>> losses = [0.0] * 20 + [1.0] * 20
    >>> feed(detector, drift.PageHinkley, {0}, losses, [0] * 40)[1:]  # the loss of the known label rises
    ({0}, 21)
    >>> feed(drift.PageHinkley(min_instances=5, threshold=1.0), drift.PageHinkley, {0}, losses, [0] * 20 + [1] * 20)[1:]
    ({0, 1}, None)
    """
    for i, (loss, label) in enumerate(zip(losses, labels, strict=True)):
        if label not in seen:
            seen, detector = seen | {label}, fresh()
            continue
        before = getattr(detector, "estimation", None)
        detector.update(loss)
        if detector.drift_detected:
            after = getattr(detector, "estimation", None)
            if before is None or after is None or after > before:
                return detector, seen, i
    return detector, seen, None
