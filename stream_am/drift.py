"""Drift-aware AM: a river drift detector on the prequential loss that makes the AM memory forget.

:class:`DriftAware` wraps an estimator that exposes its :class:`~stream_am.learner.OnlineAM` as
``.engine``. Before each mini-batch is learnt, the wrapper scores it with the current model and feeds the
0/1 loss (or the clipped log-loss) of every sample to the detector. When the detector fires, the engine's
remembered statistics are scaled by ``forget_factor`` (``engine.forget``), so the next least-squares solves
are dominated by the new concept; optionally the per-sample ``memory_decay`` is raised to ``boost_decay``
for ``boost_samples`` samples, then restored. ``drifts_`` lists the sample counts at which it forgot.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from river import base, drift

from stream_am import checks
from stream_am.wrapping import ClassifierWrapper

__all__ = ["DriftAware"]

_SIGNALS = ("error", "log_loss")


class DriftAware(ClassifierWrapper):
    """Adapt an AM classifier's memory forgetting when a drift detector fires on its loss.

    Parameters
    ----------
    classifier
        An estimator with an ``engine`` attribute (an ``OnlineAM``, or anything with ``forget(factor)``
        and a ``memory_decay`` attribute) once it has learnt.
    detector
        A river drift detector, cloned before use; ``None`` means ``river.drift.ADWIN()``. A detection
        counts only if the loss went up: for detectors with an ``estimation`` (ADWIN) the window mean must
        not have fallen; give Page-Hinkley ``mode="up"``.
    signal
        ``"error"`` feeds the 0/1 loss (the classic ADWIN input); ``"log_loss"`` feeds
        ``min(-log p(y), 10) / 10``.
    forget_factor
        Factor in ``(0, 1]`` applied by ``engine.forget`` at each detection.
    boost_decay
        If set, ``memory_decay`` used for ``boost_samples`` samples after a detection.
    boost_samples
        Length of the boost, in samples.

    Examples
    --------
    >>> from river import drift
    >>> class Engine:
    ...     memory_decay = 0.0
    ...     def forget(self, factor):
    ...         print("forget", factor)
    >>> class Zero(base.Classifier):
    ...     engine = Engine()
    ...     def learn_one(self, x, y):
    ...         pass
    ...     def predict_one(self, x):
    ...         return 0
    >>> model = DriftAware(Zero(), drift.PageHinkley(min_instances=10, threshold=3.0), forget_factor=0.5)
    >>> for i in range(60):
    ...     model.learn_one({}, int(i >= 30))
    forget 0.5
    >>> model.drifts_
    [34]
    """

    def __init__(
        self,
        classifier: base.MiniBatchClassifier,
        detector: base.DriftDetector | None = None,
        signal: str = "error",
        forget_factor: float = 0.1,
        boost_decay: float | None = None,
        boost_samples: int = 500,
    ) -> None:
        checks.check_choice("signal", signal, _SIGNALS)
        checks.check_float("forget_factor", forget_factor, 0.0, 1.0, low_inclusive=False, high_inclusive=True)
        if boost_decay is not None:
            checks.check_float("boost_decay", boost_decay, 0.0, 1.0)
        checks.check_int("boost_samples", boost_samples, low=0)
        self.classifier = classifier
        self.detector = detector
        self.signal = signal
        self.forget_factor = forget_factor
        self.boost_decay = boost_decay
        self.boost_samples = boost_samples
        self.drifts_: list[int] = []
        self.n_seen_ = 0
        self._detector: base.DriftDetector | None = None
        self._saved_decay: float | None = None
        self._boost_left = 0

    def _unit_test_skips(self) -> set[str]:
        return {"check_learn_many_matches_learn_one"}  # the detector scores a batch with the pre-batch model

    @classmethod
    def _unit_test_params(cls) -> Any:
        from stream_am import AMClassifier

        yield {"classifier": AMClassifier(hidden_sizes=(4,), batch_size=4, code_steps=2)}

    def _loss(self, x: dict, y: Any, proba: dict | None) -> float:
        if self.signal == "error":
            if proba is None:
                return float(self.classifier.predict_one(x) != y)
            return float(not proba or max(proba, key=proba.__getitem__) != y)
        p = (proba or {}).get(y, 0.0)
        return min(-math.log(max(p, 1e-300)), 10.0) / 10.0

    def _observe(self, losses: list[float]) -> None:
        """Feed the detector; on a detection (at most one per call) make the engine forget."""
        if self._detector is None:
            self._detector = drift.ADWIN() if self.detector is None else self.detector.clone()
        fired = False
        for loss in losses:
            self.n_seen_ += 1
            before = getattr(self._detector, "estimation", None)
            self._detector.update(loss)
            if not self._detector.drift_detected or fired:
                continue
            after = getattr(self._detector, "estimation", None)
            if before is not None and after is not None and after <= before:
                continue  # ADWIN also fires when the loss falls: nothing to forget then
            fired = True
            self.drifts_.append(self.n_seen_)
        if not hasattr(self.classifier, "engine"):
            raise TypeError(f"{type(self.classifier).__name__} has no `engine` attribute to make forget")
        engine = self.classifier.engine
        if engine is None:  # not built yet: nothing remembered
            return
        if fired:
            engine.forget(self.forget_factor)
            if self.boost_decay is not None:
                if self._saved_decay is None:
                    self._saved_decay = engine.memory_decay
                engine.memory_decay = self.boost_decay
                self._boost_left = self.boost_samples
        elif self._saved_decay is not None:
            self._boost_left -= len(losses)
            if self._boost_left <= 0:
                engine.memory_decay, self._saved_decay = self._saved_decay, None

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        checks.check_can_learn()
        proba = self.classifier.predict_proba_one(x) if self.signal == "log_loss" else None
        self._observe([self._loss(x, y, proba)])
        self.classifier.learn_one(x, y)

    def learn_many(self, X: pd.DataFrame, y: pd.Series, **kwargs: Any) -> None:
        checks.check_can_learn()
        ys = y.tolist()
        if self.signal == "error":
            preds = self.classifier.predict_many(X).tolist()
            losses = [float(p != t) for p, t in zip(preds, ys, strict=True)]
        else:
            proba = self.classifier.predict_proba_many(X)
            losses = [
                min(-math.log(max(float(proba[t].iloc[i]) if t in proba else 0.0, 1e-300)), 10.0) / 10.0
                for i, t in enumerate(ys)
            ]
        self._observe(losses)
        self.classifier.learn_many(X, y)
