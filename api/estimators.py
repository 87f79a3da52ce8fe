"""The one place that knows how the server calls stream_am estimators.

Learning goes through :func:`learn` both when a request is acknowledged and when the event log is
replayed after a restart, so both take exactly the same estimator calls in the same order.
"""

from __future__ import annotations

import importlib
import math
import re
import secrets
import threading
from pathlib import Path
from typing import Any

__all__ = [
    "ESTIMATORS",
    "build",
    "config",
    "describe",
    "fingerprint",
    "fix_seed",
    "frame",
    "is_classifier",
    "labels",
    "learn",
    "load",
    "predict",
    "save",
    "unnamed_features",
    "use_torch_threads",
    "with_seed",
]

ESTIMATORS = ("AMClassifier", "AMRegressor")
Row = dict[str, float]
_thread_state = threading.local()


def use_torch_threads(n: int | None) -> None:
    """Apply torch's intra-op thread count to the calling thread (once per thread).

    The setting does not reliably reach threads started elsewhere (the writer, the request pool),
    so every thread that runs the model applies it itself.
    """
    if n is None or getattr(_thread_state, "torch_threads", None) == n:
        return
    import torch

    torch.set_num_threads(n)
    _thread_state.torch_threads = n


def _class(name: str) -> Any:
    if name not in ESTIMATORS:
        raise ValueError(f"estimator: expected one of {ESTIMATORS}, got {name!r}")
    return getattr(importlib.import_module("stream_am"), name)


def build(name: str, params: dict[str, Any]) -> Any:
    """A fresh estimator; JSON lists become tuples (``hidden_sizes``); errors name ``params.<parameter>``."""
    from stream_am.server.errors import FieldError

    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    cls = _class(name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, OverflowError) as exc:
        raise FieldError(_param_field(str(exc), params), f"params: {exc}") from exc


def with_seed(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with a drawn ``seed`` in place of ``None``.

    A model is rebuilt by replaying its log (a restart before its first checkpoint, a rebuild after a failed
    group): a seed drawn at its first step would differ on every replay, and so would the model.
    """
    return {**params, "seed": secrets.randbits(31)} if "seed" in params and params["seed"] is None else params


def fix_seed(estimator: Any) -> bool:
    """Give an estimator that would draw its seed at its first step (``seed=None``, no step yet) a drawn one
    (see :func:`with_seed`); ``True`` when it did."""
    if getattr(estimator, "seed", 0) is not None or estimator.engine is not None:
        return False
    estimator.seed = secrets.randbits(31)
    return True


def _param_field(msg: str, params: dict[str, Any]) -> str:
    """``params.<name>`` for the parameter an estimator's error message is about (``params`` if unclear)."""
    quoted = re.search(r"argument '(\w+)'", msg)  # TypeError: unexpected keyword argument 'x'
    if quoted:
        return f"params.{quoted.group(1)}"
    for key in sorted(params, key=len, reverse=True):
        if msg.startswith(key) or msg.startswith(f"{key}="):
            return f"params.{key}"
    return "params"


def is_classifier(name: str) -> bool:
    return name == "AMClassifier"


def _frame(rows: list[Row]) -> Any:
    """The rows as one float64 DataFrame over the union of their features (NaN marks a missing one).

    ``learn_many`` on it is bitwise the same as ``learn_one`` on each row, and the whole batch is validated
    before anything is learned.
    """
    import numpy as np
    import pandas as pd

    keys = list(rows[0])
    if all(list(r) == keys for r in rows):
        values = np.array([[r[k] for k in keys] for r in rows], dtype=np.float64)
    else:
        keys = list(dict.fromkeys(k for r in rows for k in r))
        position = {k: j for j, k in enumerate(keys)}
        values = np.full((len(rows), len(keys)), np.nan)
        for i, r in enumerate(rows):
            for k, v in r.items():
                values[i, position[k]] = v
    return pd.DataFrame(values, columns=keys, copy=False)


def frame(rows: list[Row]) -> Any:
    """The DataFrame :func:`learn` and :func:`labels` would build."""
    return _frame(rows)


def learn(estimator: Any, rows: list[Row], targets: list[Any], frame: Any = None) -> None:
    """Learn a batch in order with one ``learn_many`` (bitwise a ``learn_one`` loop in stream_am).

    The estimator validates the whole batch first: a refused batch leaves it unchanged. Live learning and
    replay take this same path. ``frame`` is ``frame(rows)`` when the caller built it already.
    """
    import pandas as pd

    frame = _frame(rows) if frame is None else frame
    estimator.learn_many(frame, pd.Series(targets, dtype=object))  # keeps Python label types


def predict(
    estimator: Any, rows: list[Row], classifier: bool
) -> tuple[list[Any], list[dict[str, float | None]] | None]:
    """Predictions (and class probabilities for classifiers); never changes the estimator.

    One row goes through ``predict_*_one``, several through ``predict_*_many``. A non-finite output (a
    diverged model) is answered as ``null``, never as an invalid JSON number.
    """
    frame = _frame(rows) if len(rows) > 1 else None
    if not classifier:
        if frame is not None:
            return [_number(v) for v in estimator.predict_many(frame).tolist()], None
        return [_number(estimator.predict_one(x)) for x in rows], None
    if frame is not None:
        table = estimator.predict_proba_many(frame)
        classes = [_label(c) for c in table.columns]
        probas = [dict(zip(classes, map(float, row), strict=True)) for row in table.to_numpy()]
    else:
        probas = [{_label(k): float(v) for k, v in estimator.predict_proba_one(x).items()} for x in rows]
    preds = [max(p, key=p.__getitem__) if p and all(map(math.isfinite, p.values())) else None for p in probas]
    return preds, [{str(k): _number(v) for k, v in p.items()} for p in probas]


def labels(estimator: Any, rows: list[Row], frame: Any) -> list[Any]:
    """Predicted labels (or values) only, for prequential scoring; never changes the estimator."""
    frame = _frame(rows) if frame is None else frame
    return [_label(v) for v in estimator.predict_many(frame).tolist()]


def fingerprint(estimator: Any) -> tuple[int, int, int, int]:
    """Counters that any learning changes: steps, buffered samples, features, classes."""
    classes = getattr(estimator, "classes_", ())  # both raise AttributeError before learning (scikit-learn)
    return estimator.n_steps, estimator.n_buffered, getattr(estimator, "n_features_in_", 0), len(classes)


def _label(y: Any) -> Any:
    return y.item() if hasattr(y, "item") else y


def _number(y: Any) -> float | None:
    if y is None:
        return None
    value = float(y)
    return value if math.isfinite(value) else None


def describe(estimator: Any) -> tuple[list[Any], list[str]]:
    """Known classes and feature names (empty before learning)."""
    classes = getattr(estimator, "classes_", None)
    features = getattr(estimator, "feature_names_in_", None)
    features = [] if features is None else list(features)  # an object array once named features are learned
    return [_label(c) for c in (list(classes) if classes is not None else [])], [str(f) for f in features]


def unnamed_features(estimator: Any) -> list[Any]:
    """The estimator's feature names that are not strings: no request can give them (requests name features by
    strings, a list instance's ``"0"``, ``"1"``, ...)."""
    names = getattr(estimator, "feature_names_in_", None)
    return [f for f in ([] if names is None else list(names)) if not isinstance(f, str)]


def config(estimator: Any) -> dict[str, Any]:
    """The full constructor configuration, JSON-ready (tuples become lists)."""
    params = estimator._get_params()
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


def save(estimator: Any, directory: Path) -> None:
    estimator.save(directory)


def load(name: str, directory: Path) -> Any:
    return _class(name).load(directory)
