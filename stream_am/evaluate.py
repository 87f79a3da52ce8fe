"""Batched prequential evaluation, continual-learning metrics and drift recovery.

Prequential (test-then-train): every mini-batch is first predicted by the current model, scored, and only
then learnt. Any river classifier works; ``predict_many``/``learn_many`` are used when the model has them,
``predict_one``/``learn_one`` otherwise.

Continual metrics follow Lopez-Paz & Ranzato (2017) and Chaudhry et al. (2018) on an accuracy matrix ``R``
where ``R[i, j]`` is the held-out accuracy on task ``j`` after learning tasks ``0..i``.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from river import compose
from river import metrics as river_metrics

from stream_am import checks
from stream_am.estimators import inputs

__all__ = [
    "PrequentialResult",
    "Prequential",
    "accuracy_on",
    "continual_metrics",
    "DriftRecovery",
    "drift_recovery",
    "rolling_accuracy",
]


def _has(model: Any, method: str) -> bool:
    """Whether ``model`` really implements ``method`` (a river pipeline only if every step does)."""
    if isinstance(model, compose.Pipeline):
        steps = list(model.steps.values())
        transform = method.replace("predict", "transform").replace("proba_", "").replace("learn", "transform")
        return all(hasattr(s, transform) for s in steps[:-1]) and hasattr(steps[-1], method)
    return hasattr(model, method)


def _predict_batch(model: Any, xs: list[dict], frame: pd.DataFrame) -> list[Any]:
    preds = list(model.predict_many(frame)) if _has(model, "predict_many") else []
    return preds if len(preds) == len(xs) else [model.predict_one(x) for x in xs]  # (river's unfitted ones: none)


def _learn_batch(model: Any, xs: list[dict], ys: list[Any], frame: pd.DataFrame) -> None:
    if _has(model, "learn_many"):
        model.learn_many(frame, pd.Series(ys, index=frame.index))
    else:
        for x, y in zip(xs, ys, strict=True):
            model.learn_one(x, y)


def accuracy_on(model: Any, xs: Sequence[dict], ys: Sequence[Any]) -> float:
    """Accuracy of ``model`` on a held-out set, without learning from it.

    Examples
    --------
    >>> from river import naive_bayes
    >>> model = naive_bayes.GaussianNB()
    >>> for i in range(40):
    ...     model.learn_one({"a": float(i % 2)}, i % 2)
    >>> accuracy_on(model, [{"a": 0.0}, {"a": 1.0}, {"a": 0.9}], [0, 1, 0])
    0.6666666666666666
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys must have the same length, got {len(xs)} and {len(ys)}")
    if not xs:
        raise ValueError("xs must not be empty")
    preds = _predict_batch(model, list(xs), inputs.records_frame(list(xs)))
    return float(np.mean([p == y for p, y in zip(preds, ys, strict=True)]))


def _outcomes(correct: Any) -> np.ndarray:
    """``correct`` as a 1-d float array of finite values (``ValueError`` naming it otherwise)."""
    values = np.asarray(correct, dtype=float)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ValueError(f"correct must be a 1-d array of finite values (1 right, 0 wrong), got shape {values.shape}")
    return values


def rolling_accuracy(correct: np.ndarray, window: int) -> np.ndarray:
    """Trailing-window accuracy ``a[t] = mean(correct[max(0, t - window + 1) : t + 1])``.

    Examples
    --------
    >>> rolling_accuracy(np.array([1, 0, 1, 1]), window=2).tolist()
    [1.0, 0.5, 0.5, 1.0]
    """
    checks.check_int("window", window, low=1)
    c = np.concatenate([[0.0], np.cumsum(_outcomes(correct))])
    t = np.arange(1, len(c))
    lo = np.maximum(0, t - int(window))  # (Python's int: numpy's unsigned or narrow ones wrap in their own type)
    return (c[t] - c[lo]) / (t - lo)


@dataclass
class PrequentialResult:
    """What a prequential run measured.

    ``correct[t]`` is whether sample ``t`` was predicted right before it was learnt; ``metrics`` holds the
    final value of each river metric (``accuracy`` always); ``seconds`` the wall time spent in the model.
    """

    correct: np.ndarray
    metrics: dict[str, float]
    seconds: float
    marks: list[int] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return len(self.correct)

    def curve(self, window: int, n_points: int = 200) -> tuple[np.ndarray, np.ndarray]:
        """Rolling accuracy sampled at about ``n_points`` evenly spaced sample counts."""
        checks.check_int("n_points", n_points, low=0)
        acc = rolling_accuracy(self.correct, window)
        idx = np.unique(np.linspace(0, len(acc) - 1, min(int(n_points), len(acc))).astype(int))
        return idx + 1, acc[idx]


class Prequential:
    """Stateful test-then-train evaluator of one model; call :meth:`run` on successive streams.

    Parameters
    ----------
    model
        A river classifier; ``predict_many``/``learn_many`` are used when present.
    batch_size
        Samples per test-then-train step.
    metrics
        Extra river metrics by name, fed only samples that got a prediction. ``accuracy`` is always
        computed and counts a missing prediction (``None``, before anything was learnt) as wrong.
    on_batch
        Called as ``on_batch(n_seen)`` after each step (a progress bar's ``update`` fits).

    Examples
    --------
    >>> from river import linear_model
    >>> stream = [({"a": float(i % 2)}, i % 2 == 1) for i in range(200)]
    >>> ev = Prequential(linear_model.LogisticRegression(), batch_size=20)
    >>> res = ev.run(stream).result()
    >>> res.n_samples, res.metrics["accuracy"]
    (200, 0.95)
    """

    def __init__(
        self,
        model: Any,
        batch_size: int = 32,
        metrics: dict[str, river_metrics.base.Metric] | None = None,
        on_batch: Callable[[int], Any] | None = None,
    ) -> None:
        checks.check_int("batch_size", batch_size, low=1)
        self.model = model
        self.batch_size = int(batch_size)
        self.metrics = dict(metrics or {})
        self._accuracy = river_metrics.Accuracy()
        self.on_batch = on_batch
        self._correct: list[bool] = []
        self._marks: list[int] = []
        self._seconds = 0.0

    def step(self, xs: list[dict], ys: list[Any]) -> None:
        """Predict, score, then learn one mini-batch (``xs`` and ``ys`` of one length, else nothing changes)."""
        if len(xs) != len(ys):
            raise ValueError(f"xs and ys must have the same length, got {len(xs)} and {len(ys)}")
        frame = inputs.records_frame(xs)
        t0 = time.perf_counter()
        preds = _predict_batch(self.model, xs, frame)
        self._seconds += time.perf_counter() - t0
        for p, y in zip(preds, ys, strict=True):
            self._correct.append(bool(p == y))
            self._accuracy.update(y, p)
            if p is not None:  # no prediction yet (nothing learnt): counted wrong by accuracy only
                for m in self.metrics.values():
                    m.update(y, p)
        t0 = time.perf_counter()
        _learn_batch(self.model, xs, ys, frame)
        self._seconds += time.perf_counter() - t0
        if self.on_batch is not None:
            self.on_batch(len(xs))

    def run(self, stream: Iterable[tuple[dict, Any]], n: int | None = None) -> Prequential:
        """Consume ``stream`` (at most ``n`` samples) in mini-batches; returns ``self``."""
        if n is not None:
            checks.check_int("n", n)
        it = iter(stream) if n is None else itertools.islice(stream, int(n))
        while True:
            chunk = list(itertools.islice(it, self.batch_size))
            if not chunk:
                break
            self.step([dict(x) for x, _ in chunk], [y for _, y in chunk])
        return self

    def mark(self) -> None:
        """Remember the current sample count (a task boundary or a drift point, for plots)."""
        self._marks.append(len(self._correct))

    def result(self) -> PrequentialResult:
        values = {"accuracy": float(self._accuracy.get())}
        values.update({name: float(m.get()) for name, m in self.metrics.items()})
        correct = np.array(self._correct, dtype=bool)
        return PrequentialResult(correct, values, self._seconds, list(self._marks))


def continual_metrics(R: np.ndarray, baseline: np.ndarray | None = None) -> dict[str, float]:
    """Average accuracy, forgetting, backward and forward transfer from an accuracy matrix.

    ``R[i, j]`` is the accuracy on task ``j`` after learning tasks ``0..i`` (``T x T``); ``baseline[j]`` the
    accuracy of the untrained model on task ``j`` (zeros when omitted).

    - ``final_avg_acc``: ``mean_j R[T-1, j]``.
    - ``forgetting``: ``mean_{j<T-1} max_{i<T-1} R[i, j] - R[T-1, j]`` (Chaudhry et al.).
    - ``bwt``: ``mean_{j<T-1} R[T-1, j] - R[j, j]`` (negative means forgetting).
    - ``fwt``: ``mean_{j>0} R[j-1, j] - baseline[j]``.

    Examples
    --------
    >>> R = np.array([[0.9, 0.1], [0.5, 0.8]])
    >>> {k: round(v, 3) for k, v in continual_metrics(R).items()}
    {'final_avg_acc': 0.65, 'forgetting': 0.4, 'bwt': -0.4, 'fwt': 0.1}
    """
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 1:
        raise ValueError(f"R must be a square T x T matrix, got shape {R.shape}")
    T = R.shape[0]
    b = np.zeros(T) if baseline is None else np.asarray(baseline, dtype=float)
    if b.shape != (T,):
        raise ValueError(f"baseline must have shape ({T},), got {b.shape}")
    for name, values in (("R", R), ("baseline", b)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must hold finite accuracies, got {values.tolist()}")
    out = {"final_avg_acc": float(R[-1].mean())}
    if T == 1:
        return {**out, "forgetting": 0.0, "bwt": 0.0, "fwt": 0.0}
    prev = R[:-1, :-1]
    out["forgetting"] = float(np.mean(prev.max(axis=0) - R[-1, :-1]))
    out["bwt"] = float(np.mean(R[-1, :-1] - np.diag(R)[:-1]))
    out["fwt"] = float(np.mean([R[j - 1, j] - b[j] for j in range(1, T)]))
    return out


@dataclass
class DriftRecovery:
    """Accuracy around one drift point (see :func:`drift_recovery`)."""

    point: int
    pre_acc: float
    min_acc: float
    drop: float
    recovery: int


def drift_recovery(
    correct: np.ndarray, points: Sequence[int], window: int = 200, tol: float = 0.02
) -> list[DriftRecovery]:
    """Accuracy drop after each drift point and the samples needed to recover.

    With ``a`` the trailing ``window`` accuracy of fully post-drift windows (``t >= p + window - 1``) until
    the next drift point (or the end):

    - ``pre_acc``: accuracy of the ``window`` samples before ``p``;
    - ``drop = pre_acc - min(a)``;
    - ``recovery``: samples after ``p`` until ``a`` first reaches ``min(pre_acc, a_end) - tol``, where
      ``a_end`` is the accuracy of the segment's last window (so a harder new concept can still be
      recovered from); at least ``window``. A point needs ``window`` samples before it and ``2 * window``
      before the next point.

    Examples
    --------
    >>> correct = np.array([1] * 10 + [0] * 4 + [1] * 10)
    >>> r = drift_recovery(correct, [10], window=4, tol=0.0)[0]
    >>> r.pre_acc, r.drop, r.recovery
    (1.0, 1.0, 8)
    """
    checks.check_int("window", window, low=1)
    checks.check_float("tol", tol, 0.0, math.inf)  # (a negative one may never be reached)
    window, tol, correct = int(window), float(tol), _outcomes(correct)  # (numpy's narrow ints would wrap)
    for i, p in enumerate(points):  # (numpy integers too: drift points often come from an array)
        checks.check_int(f"points[{i}]", p)
    bounds = [int(p) for p in points] + [len(correct)]
    out = []
    for p, end in zip(bounds[:-1], bounds[1:], strict=True):
        if p < window or end - p < 2 * window:
            raise ValueError(f"drift point {p} needs {window} samples before and {2 * window} after it")
        pre = float(correct[p - window : p].mean())
        a = rolling_accuracy(correct[p:end], window)[window - 1 :]
        target = min(pre, float(a[-1])) - tol
        rec = int(np.flatnonzero(a >= target)[0]) + window
        out.append(DriftRecovery(p, pre, float(a.min()), pre - float(a.min()), rec))
    return out
