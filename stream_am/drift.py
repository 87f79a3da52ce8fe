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

Each sample is scored with the model that then learns it. A stream estimator (:class:`~stream_am.AMClassifier`)
answers from its last step until the next, so ``learn_one`` holds its samples and scores them in one call when the
classifier is about to step or a label is new to it (which changes its answers): the losses of one prediction per
sample, at a fraction of the cost. Held samples the classifier's own ``flush`` stepped count as seen, unscored.

A call whose input is refused changes nothing: the wrapper checks samples as the stream estimators do (finite
numbers, NaN in a DataFrame = missing; a label that is hashable, not None, not NaN, of one type per model),
runs the detector on a copy, and keeps that copy only once the classifier has learnt. (Only when the detector
fires, or a boost ends, does the engine change before it learns, so that it learns the batch after
forgetting; a refusal that the wrapper's checks cannot foresee then leaves that change made.)

A rise of the loss has two causes that want opposite answers: a changed concept (the same inputs, new labels),
where forgetting the old memory helps, and a new domain (new inputs, the same labels: permuted pixels), where the
old memory is still right for the old inputs. A classifier with ``input_novelty`` (:class:`~stream_am.AMClassifier`,
:mod:`stream_am.estimators.novelty`) tells them apart: at a detection, if the last :data:`RECENT` inputs (with the
batch's own) read ``domain_shift`` standard deviations new or more, the detector starts again and nothing is
forgotten (``shifts_`` lists those).
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable
from typing import Any

import pandas as pd
from river import base, drift

from stream_am import checks
from stream_am.estimators.base import StreamEstimator
from stream_am.strategies_checks import labelled_frame, labelled_row
from stream_am.wrapping import ClassifierWrapper

__all__ = ["DriftAware", "RECENT"]

_SIGNALS = ("error", "log_loss")
RECENT = 64  # inputs (the latest learnt, then the batch's) whose novelty tells a new domain from a changed concept


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
    domain_shift
        Standard deviations of ``classifier.input_novelty`` at or above which a detection is a new domain, not a
        drift: nothing is forgotten (module docstring); ``None`` forgets at every detection, as does a
        classifier without ``input_novelty``. The standard deviation is that of Gaussian rows; the rows of real
        streams (discrete, skewed features) spread more, hence the margin of the default (what concept drifts and
        new domains read: ``benchmarks/README.md``).

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
        domain_shift: float | None = 10.0,
    ) -> None:
        checks.check_choice("signal", signal, _SIGNALS)
        checks.check_float("forget_factor", forget_factor, 0.0, 1.0, low_inclusive=False, high_inclusive=True)
        if boost_decay is not None:
            checks.check_float("boost_decay", boost_decay, 0.0, 1.0)
        checks.check_int("boost_samples", boost_samples, low=0)
        if domain_shift is not None:
            checks.check_float("domain_shift", domain_shift, 0.0, math.inf)
        self.classifier = classifier
        self.detector = detector
        self.signal = signal
        self.forget_factor = forget_factor
        self.boost_decay = boost_decay
        self.boost_samples = boost_samples
        self.domain_shift = domain_shift
        self.drifts_: list[int] = []
        self.shifts_: list[int] = []  # detections taken for a new domain: nothing forgotten
        self.n_seen_ = 0
        self._detector: base.DriftDetector | None = None
        self._saved_decay: float | None = None
        self._boost_left = 0
        self._a_label: list[Any] = []  # one accepted label: its type is the model's
        self._seen: set[Any] = set()  # the labels learnt: a batch holding another starts the detector again
        self._recent: deque[dict] = deque(maxlen=RECENT)  # the latest inputs learnt
        self._held_samples: list[tuple[dict, Any]] = []  # learnt by learn_one, scored at the classifier's step
        self._held_at = 0  # the classifier's steps when they were learnt

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

    def _shifted(self, rows: list[dict]) -> bool:
        """Whether the latest inputs learnt and ``rows`` (:data:`RECENT` in all) are a new domain to the classifier."""
        novelty = getattr(self.classifier, "input_novelty", None)
        if self.__dict__.get("domain_shift") is None or novelty is None:  # (pickled before it existed: None)
            return False
        recent = [*self.__dict__.get("_recent", ()), *rows][-RECENT:]  # (pickled before it kept them: none)
        score = novelty(pd.DataFrame.from_records(recent))
        return score is not None and score >= self.domain_shift

    def _learn(self, losses: list[float], labels: list[Any], learn: Callable[[], None], rows: list[dict]) -> None:
        """Score with the detector, make the engine forget on a detection (at most one per call) unless the inputs
        are a new domain (then start the detector again), and ``learn``."""
        engine = self._engine()
        detector, fired_at = self._detect(losses, labels)
        shifted = fired_at if fired_at is not None and engine is not None and self._shifted(rows) else None
        if shifted is not None:
            detector, fired_at = self._new_detector(), None
        ends_boost = self._saved_decay is not None and self._boost_left <= len(losses)
        if engine is not None and (fired_at is not None or ends_boost):  # forget, then learn the batch
            self._commit(detector, fired_at, len(losses), labels, engine)
            learn()
        else:  # nothing changes before the classifier has accepted the batch
            learn()
            self._commit(detector, fired_at, len(losses), labels, engine)
        self.__dict__.setdefault("_seen", set()).update(labels)  # (learnt: a refused batch's labels are not)
        self.__dict__.setdefault("_recent", deque(maxlen=RECENT)).extend(rows[-RECENT:])
        if shifted is not None:
            self.__dict__.setdefault("shifts_", []).append(shifted)

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

    def _defers(self) -> bool:
        """Whether ``learn_one`` may score samples later, together (a stream estimator predicts from its last step:
        a sample's answer stays the same until the step that learns it, or a new label, changes it)."""
        return isinstance(self.classifier, StreamEstimator)

    def _losses(self, X: pd.DataFrame, ys: list[Any]) -> list[float]:
        """The signal of each row of ``X`` against its label (one call to the classifier)."""
        if self.signal == "error":
            preds = self.classifier.predict_many(X).tolist()
            return [float(p != t) for p, t in zip(preds, ys, strict=True)]
        proba = self.classifier.predict_proba_many(X)
        return [min(-math.log(max(float(proba[t].iloc[i]) if t in proba else 0.0, 1e-300)), 10.0) / 10.0
                for i, t in enumerate(ys)]

    def _held(self, classifier: StreamEstimator) -> list[tuple[dict, Any]]:
        """The samples ``learn_one`` learnt and has not scored yet; none if the classifier stepped since (then their
        answers are gone: they count as seen, unscored)."""
        held = self.__dict__.get("_held_samples", [])  # (pickled before it kept them: none)
        if held and classifier.n_steps != self._held_at:
            self.n_seen_ += len(held)
            held = self._held_samples = []
        return held

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        checks.check_can_learn()
        _, label = labelled_row(x, y, self._a_label)
        classifier = self.classifier
        if not self._defers() or not isinstance(classifier, StreamEstimator):
            proba = classifier.predict_proba_one(x) if self.signal == "log_loss" else None
            self._learn([self._loss(x, label, proba)], [label], lambda: classifier.learn_one(x, y), [dict(x)])
            return
        held = self._held(classifier)
        if classifier.n_buffered + 1 < classifier.batch_size and label in self.__dict__.get("_seen", ()):
            steps = classifier.n_steps
            classifier.learn_one(x, y)  # buffered: the answers stay those of the last step
            held.append((dict(x), label))
            self._held_samples, self._held_at = held, steps
            self._a_label = self._a_label or [label]
            return
        # scored now: this sample steps the classifier, or its label is new to it
        rows, labels = [*(r for r, _ in held), dict(x)], [*(t for _, t in held), label]
        self._settle(self._losses(pd.DataFrame.from_records(rows), labels), labels, lambda: classifier.learn_one(x, y),
                     rows)

    def learn_many(self, X: pd.DataFrame, y: pd.Series, **kwargs: Any) -> None:
        checks.check_can_learn()
        _, ys = labelled_frame(X, y, self._a_label)
        classifier = self.classifier
        held = self._held(classifier) if self._defers() and isinstance(classifier, StreamEstimator) else []
        rows = [r for r, _ in held]
        scored = pd.concat([pd.DataFrame.from_records(rows), X], ignore_index=True) if held else X
        labels = [*(t for _, t in held), *ys]
        self._settle(self._losses(scored, labels), labels, lambda: classifier.learn_many(X, y),
                     [*rows, *X.iloc[-RECENT:].to_dict("records")])

    def _settle(self, losses: list[float], labels: list[Any], learn: Callable[[], None], rows: list[dict]) -> None:
        """:meth:`_learn`, after which the held samples are scored: once committed (even if ``learn`` then refused,
        after a forget), they are no longer held."""
        seen = self.n_seen_
        try:
            self._learn(losses, labels, learn, rows)
        finally:
            if self.n_seen_ != seen:
                self._held_samples = []
