"""Drift-aware AM: a river drift detector on the prequential loss that makes the AM memory forget.

:class:`DriftAware` wraps an estimator that exposes its :class:`~stream_am.learner.OnlineAM` as
``.engine``. Before each mini-batch is learnt, the wrapper scores it with the current model and feeds the
0/1 loss (or the clipped log-loss) of every sample to the detector, in order, but that the first sample of a label it
has not learnt starts the detector again, and is not fed (a new class's first errors are not a drift of the known
classes, and on a class-incremental stream every task's start read as one). When the detector fires, the engine's
remembered statistics are scaled by ``forget_factor`` (the classifier's ``forget`` where it has one, as the AM
estimators do, which also scales their linear companion's sums; else ``engine.forget``), so the next
least-squares solves are dominated by the new concept; optionally the engine's per-sample ``memory_decay`` is
raised to ``boost_decay`` for ``boost_samples`` samples, then restored (the companion keeps its own). ``drifts_``
lists the sample counts at which it forgot.

A call whose input is refused changes nothing: the wrapper checks samples as the stream estimators do (finite
numbers, NaN in a DataFrame = missing; a label that is hashable, not None, not NaN, of one type per model),
runs the detector on a copy, and keeps that copy only once the classifier has learnt. (Only when the detector
fires, or a boost ends, does the engine change before it learns, so that it learns the batch after
forgetting; a refusal that the wrapper's checks cannot foresee then leaves that change made.)
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from river import base, drift

from stream_am import checks
from stream_am.strategies_checks import labelled_frame, labelled_row
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
    ...     model.learn_one({}, int(i >= 30 or i % 10 == 5))  # label 1 known before the switch
    forget 0.5
    >>> model.drifts_
    [33]
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
        self._a_label: list[Any] = []  # one accepted label: its type is the model's
        self._seen: set[Any] = set()  # the labels learnt: a batch holding another starts the detector again

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

    def _engine(self) -> Any:
        if not hasattr(self.classifier, "engine"):
            raise TypeError(f"{type(self.classifier).__name__} has no `engine` attribute to make forget")
        return self.classifier.engine

    def _new_detector(self) -> base.DriftDetector:
        return drift.ADWIN() if self.detector is None else self.detector.clone()

    def _detect(self, losses: list[float], labels: list[Any]) -> tuple[base.DriftDetector, int | None]:
        """A copy of the detector fed ``losses`` in order, started again at each label not seen before (whose first
        sample it is not fed: as ``learn_one`` sample by sample would); the ``n_seen_`` of its first upward
        detection. Changes nothing."""
        detector = self._new_detector() if self._detector is None else copy.deepcopy(self._detector)
        seen = self.__dict__.get("_seen", set())  # (a wrapper pickled before it kept them: none seen yet)
        fired_at = None
        for i, (loss, label) in enumerate(zip(losses, labels, strict=True)):
            if label not in seen:
                seen = seen | {label}  # (a new set: the wrapper's own changes only once the batch is learnt)
                detector = self._new_detector()
                continue
            before = getattr(detector, "estimation", None)
            detector.update(loss)
            if not detector.drift_detected or fired_at is not None:
                continue
            after = getattr(detector, "estimation", None)
            if before is not None and after is not None and after <= before:
                continue  # ADWIN also fires when the loss falls: nothing to forget then
            fired_at = self.n_seen_ + i + 1
        return detector, fired_at

    def _learn(self, losses: list[float], labels: list[Any], learn: Callable[[], None]) -> None:
        """Score with the detector, make the engine forget on a detection (at most one per call), and ``learn``."""
        engine = self._engine()
        detector, fired_at = self._detect(losses, labels)
        ends_boost = self._saved_decay is not None and self._boost_left <= len(losses)
        if engine is not None and (fired_at is not None or ends_boost):  # forget, then learn the batch
            self._commit(detector, fired_at, len(losses), labels, engine)
            learn()
        else:  # nothing changes before the classifier has accepted the batch
            learn()
            self._commit(detector, fired_at, len(losses), labels, engine)
        self.__dict__.setdefault("_seen", set()).update(labels)  # (learnt: a refused batch's labels are not)

    def _commit(self, detector: base.DriftDetector, fired_at: int | None, n: int, labels: list[Any],
                engine: Any) -> None:
        self._detector = detector
        self.n_seen_ += n
        self._a_label = self._a_label or labels[:1]
        if fired_at is not None:
            self.drifts_.append(fired_at)
        if engine is None:  # not built yet: nothing remembered
            return
        if fired_at is not None:  # the estimator's forget reaches what the engine's does not (its companion)
            getattr(self.classifier, "forget", engine.forget)(self.forget_factor)
            if self.boost_decay is not None:
                if self._saved_decay is None:
                    self._saved_decay = engine.memory_decay
                engine.memory_decay = self.boost_decay
                self._boost_left = self.boost_samples
        elif self._saved_decay is not None:
            self._boost_left -= n
            if self._boost_left <= 0:
                engine.memory_decay, self._saved_decay = self._saved_decay, None

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        checks.check_can_learn()
        _, label = labelled_row(x, y, self._a_label)
        proba = self.classifier.predict_proba_one(x) if self.signal == "log_loss" else None
        self._learn([self._loss(x, label, proba)], [label], lambda: self.classifier.learn_one(x, y))

    def learn_many(self, X: pd.DataFrame, y: pd.Series, **kwargs: Any) -> None:
        checks.check_can_learn()
        _, ys = labelled_frame(X, y, self._a_label)
        if self.signal == "error":
            preds = self.classifier.predict_many(X).tolist()
            losses = [float(p != t) for p, t in zip(preds, ys, strict=True)]
        else:
            proba = self.classifier.predict_proba_many(X)
            losses = [
                min(-math.log(max(float(proba[t].iloc[i]) if t in proba else 0.0, 1e-300)), 10.0) / 10.0
                for i, t in enumerate(ys)
            ]
        self._learn(losses, ys, lambda: self.classifier.learn_many(X, y))
