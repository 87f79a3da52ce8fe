"""Drift-aware AM: a river drift detector on the prequential loss that makes the AM memory forget.

:class:`DriftAware` wraps an estimator that exposes its :class:`~stream_am.learner.OnlineAM` as ``.engine``. Each
sample is scored by the current model; the 0/1 loss (or the clipped log-loss) is fed to the detector in order, but
that a label's first sample starts the detector again, unfed (a new class's first errors are not a drift of the
known ones: on a class-incremental stream every task's start read as one). When the detector fires, the memories
are scaled by ``forget_factor`` (the classifier's ``forget`` where it has one, which reaches the companions' sums
too; else ``engine.forget``), so the next solves follow the new concept; optionally the engine's ``memory_decay`` is
``boost_decay`` for ``boost_samples`` samples, then restored. ``drifts_`` lists the sample counts at which it forgot.

Each sample is scored with the model that then learns it (after a forget, the samples after the detection are
scored anew). A stream classifier (:class:`~stream_am.AMClassifier`) answers from its last step until the next, so
``learn_one`` holds its samples and scores them in one call when the classifier is about to step or the sample
brings a label or a feature new to it (which change its answers): the losses of one prediction per sample, at a
fraction of the cost. Held samples whose answers a direct call on the classifier changed (its ``flush``, a label or a
feature learnt; not a direct ``forget``) count as seen, unscored.

A refused call changes nothing: samples are checked first (by a stream classifier's own checks), the detector runs
on a copy, kept once the classifier learnt (but a forget or a boost's end, which the classifier must learn after).

A rise of the loss has two causes that want opposite answers: a changed concept (the same inputs, new labels),
where forgetting the old memory helps, and a new domain (new inputs, the same labels: permuted pixels), where the
old memory is still right for the old inputs. A classifier with ``input_novelty`` (:class:`~stream_am.AMClassifier`,
:mod:`stream_am.estimators.novelty`) tells them apart: at a detection, if the last :data:`RECENT` inputs (with the
batch's own) read ``domain_shift`` standard deviations new or more, the detector starts again and nothing is
forgotten (``shifts_`` lists those).
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable
from typing import Any

import pandas as pd
from river import base, drift

from stream_am import checks
from stream_am.drift_checks import check_arguments, checked_engine
from stream_am.drift_signal import batch_losses, feed, records_frame, sample_loss
from stream_am.estimators import inputs
from stream_am.estimators.classifier import StreamClassifier
from stream_am.strategies_checks import labelled_frame, labelled_row
from stream_am.wrapping import ClassifierWrapper

__all__ = ["DriftAware", "RECENT"]

RECENT = 64  # inputs (the latest learnt, then the batch's) whose novelty tells a new domain from a changed concept
CHUNK = 256  # samples scored in one call (after a forget, those after the detection are scored anew)


class DriftAware(ClassifierWrapper):
    """Adapt an AM classifier's memory forgetting when a drift detector fires on its loss.

    Parameters
    ----------
    classifier
        A river classifier with an ``engine`` attribute (an ``OnlineAM``, or anything with ``forget(factor)`` and a
        ``memory_decay`` attribute) once it has learnt. One it cannot make forget is refused before it learns
        (:mod:`stream_am.drift_checks`): a stream estimator without ``forget`` (the backprop baselines) here.
    detector
        A river drift detector (a binary one with ``signal="error"``), cloned before use; ``None`` means
        ``river.drift.ADWIN()``. A detection counts only if the loss went up: for detectors with an ``estimation``
        (ADWIN) the window mean must not have fallen; give Page-Hinkley ``mode="up"``.
    signal
        ``"error"`` feeds the 0/1 loss (the classic ADWIN input); ``"log_loss"`` ``min(-log p(y), 10) / 10``.
    forget_factor
        Factor in ``(0, 1]`` applied by ``engine.forget`` at each detection.
    boost_decay, boost_samples
        If set, ``memory_decay`` used for ``boost_samples`` samples after a detection.
    domain_shift
        Standard deviations of ``classifier.input_novelty`` at or above which a detection is a new domain, not a
        drift: nothing is forgotten (module docstring); ``None`` forgets at every detection, as does a
        classifier without ``input_novelty``. The standard deviation is that of Gaussian rows; the rows of real
        streams (discrete, skewed features) spread more, hence the margin of the default (what concept drifts and
        new domains read: ``benchmarks/README.md``).

    A parameter set as an attribute after construction (``model.forget_factor = 0.5``) is checked as the
    constructor checks it at the next ``learn_*`` call, which it refuses (``ValueError`` naming it) before
    anything changes.

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
        check_arguments(classifier, detector, signal, forget_factor, boost_decay, boost_samples, domain_shift)
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
        self._held_at: tuple[int, int, int] | None = None  # the classifier's steps, labels and features then
        self._features: set[Any] = set()  # the feature names learnt: a sample bringing another is scored at once

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A wrapper pickled by an earlier version: what it did not keep starts empty; it forgets at every detection.
        The classifier is rebuilt with its own ``memory_decay``: a boost on when pickled is applied again."""
        self.__dict__.update(domain_shift=None, drifts_=[], shifts_=[], n_seen_=0, _detector=None, _saved_decay=None,
                             _boost_left=0, _a_label=[], _seen=set(), _recent=deque(maxlen=RECENT),
                             _held_samples=[], _held_at=None, _features=set())
        self.__dict__.update(state)
        engine = getattr(self.classifier, "engine", None)
        if self._saved_decay is not None and engine is not None:
            engine.memory_decay = self.boost_decay

    def _unit_test_skips(self) -> set[str]:
        return {"check_learn_many_matches_learn_one"}  # the detector scores a batch with the pre-batch model

    @classmethod
    def _unit_test_params(cls) -> Any:
        from stream_am import AMClassifier

        yield {"classifier": AMClassifier(hidden_sizes=(4,), batch_size=4, code_steps=2)}

    def _new_detector(self) -> base.DriftDetector:
        return drift.ADWIN() if self.detector is None else self.detector.clone()

    def _detect(self, detector: base.DriftDetector, seen: set[Any], losses: list[float], labels: list[Any],
                first: int) -> tuple[base.DriftDetector, set[Any], int | None]:
        """:func:`~stream_am.drift_signal.feed` a copy of the detector the losses of samples from the ``first``-th."""
        return feed(detector, self._new_detector, seen, losses, labels)

    def _shifted(self, rows: list[dict]) -> bool:
        """Whether the latest inputs learnt and ``rows`` (:data:`RECENT` in all) are a new domain to the classifier."""
        novelty = getattr(self.classifier, "input_novelty", None)
        if self.domain_shift is None or novelty is None:
            return False
        score = novelty(records_frame([*self._recent, *rows][-RECENT:]))
        return score is not None and score >= float(self.domain_shift)  # (numpy's float32 compares in float32)

    def _run(self, samples: list[tuple[dict, Any]], losses_of: Callable[[int, int], list[float]],
             learn: Callable[[], None]) -> None:
        """Feed the detector the losses of ``samples`` (checked rows and labels; ``losses_of(i, j)``: those of the
        ``i``-th to the ``j``-th, as the classifier answers now) and ``learn``. At a detection the engine forgets
        (unless the inputs so far are a new domain: the detector starts again; before the first step: nothing to
        forget) and the samples after it are scored anew. Only a forget, or a boost's end, comes before ``learn``."""
        engine = checked_engine(self.classifier, self.boost_decay is not None)
        labels, n = [t for _, t in samples], len(samples)
        detector = self._new_detector() if self._detector is None else copy.deepcopy(self._detector)
        seen, first, done, start, fed = self._seen, self.n_seen_, 0, 0, 0  # (committed to ``done``, fed to ``fed``)
        pending: list[tuple[base.DriftDetector, int, int, str | None]] = []  # parts fed, not committed yet
        while fed < n:
            stop = min(fed + CHUNK, n)
            detector, seen, fired = self._detect(detector, seen, losses_of(fed, stop), labels[fed:stop], first + fed)
            if fired is None:
                fed = stop
                continue
            fed += fired + 1
            shifted = engine is not None and self._shifted([r for r, _ in samples[done:fed]])
            committed = self._new_detector() if shifted else detector
            pending.append((committed, start, fed, None if engine is None else "shift" if shifted else "forget"))
            if pending[-1][3] == "forget":  # (which changes the answers of the samples after it)
                pending, done = self._commit_all(pending, samples, engine), fed
            start, detector = fed, copy.deepcopy(committed)
        if start < n:
            pending.append((detector, start, n, None))
        ends_boost = self._saved_decay is not None and self._boost_left <= n - done
        if ends_boost:  # (restored, then learnt)
            pending = self._commit_all(pending, samples, engine)
        learn()
        self._commit_all(pending, samples, engine)

    def _commit_all(self, parts: list[tuple[base.DriftDetector, int, int, str | None]], samples: list[tuple[dict, Any]],
                    engine: Any) -> list:
        for detector, start, end, event in parts:
            self._commit(detector, samples[start:end], engine, event)
        return []

    def _commit(self, detector: base.DriftDetector | None, samples: list[tuple[dict, Any]], engine: Any,
                event: str | None) -> None:
        """Keep ``detector``, count ``samples`` seen; ``event`` at the last: ``"forget"``, ``"shift"`` or None."""
        self._detector = detector
        self.n_seen_ += len(samples)
        self._a_label = self._a_label or [t for _, t in samples[:1]]
        self._seen.update(t for _, t in samples)
        self._recent.extend(r for r, _ in samples[-RECENT:])
        for row, _ in samples:
            self._features.update(row)
        if event == "shift":
            self.shifts_.append(self.n_seen_)
        if event != "forget":
            if self._saved_decay is not None:
                self._boost_left -= len(samples)
                if self._boost_left <= 0:
                    engine.memory_decay, self._saved_decay = self._saved_decay, None
            return
        self.drifts_.append(self.n_seen_)  # the estimator's forget reaches what the engine's does not (its companion)
        getattr(self.classifier, "forget", engine.forget)(self.forget_factor)
        if self.boost_decay is not None:
            if self._saved_decay is None:
                self._saved_decay = engine.memory_decay
            engine.memory_decay = self.boost_decay
            self._boost_left = int(self.boost_samples)  # (numpy's unsigned would wrap below 0)

    def _defers(self) -> bool:  # whether learn_one may score samples later, together (the stream classifiers)
        return isinstance(self.classifier, StreamClassifier)

    def _held(self, classifier: StreamClassifier) -> list[tuple[dict, Any]]:
        """The samples ``learn_one`` learnt and has not scored yet; none if the classifier's answers may have changed
        since (a direct call: a step, a label, a feature): those count as seen, unscored (the call's checks passed)."""
        if self._held_samples and _answers(classifier) != self._held_at:
            held, self._held_samples = self._held_samples, []
            self._commit(self._detector, held, classifier.engine, None)
        return self._held_samples

    def _check_arguments(self) -> None:  # (the parameters are public attributes: a user may have set one since)
        check_arguments(self.classifier, self.detector, self.signal, self.forget_factor, self.boost_decay,
                        self.boost_samples, self.domain_shift)

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        checks.check_can_learn()
        self._check_arguments()
        classifier = self.classifier
        if not self._defers() or not isinstance(classifier, StreamClassifier):
            row, label = labelled_row(x, y, self._a_label)
            loss = sample_loss(classifier, self.signal, x, label)
            self._run([(row, label)], lambda i, j: [loss], lambda: classifier.learn_one(x, y))
            return
        names, values, label = classifier._checked_one(x, y)  # (refused here, before anything changes)
        row = dict(zip(names, values[0].tolist(), strict=True))
        held = self._held(classifier)
        if classifier.n_buffered + 1 < classifier.batch_size and label in self._seen and self._features.issuperset(row):
            answers = _answers(classifier)
            classifier.learn_one(x, y)  # buffered: the answers stay those of the last step
            held.append((row, label))
            self._held_at = answers
            self._held(classifier)  # (they changed if the classifier knew less than the wrapper: a direct `fit`)
            return
        self._settle([*held, (row, label)], lambda: classifier.learn_one(x, y))

    def learn_many(self, X: pd.DataFrame, y: pd.Series, **kwargs: Any) -> None:
        checks.check_can_learn()
        self._check_arguments()
        classifier = self.classifier
        if self._defers() and isinstance(classifier, StreamClassifier):
            names, values, present, labels = classifier._checked_many(X, y)
            rows, held = inputs.records(names, values, present), self._held(classifier)
        else:
            (rows, labels), held = labelled_frame(X, y, self._a_label), []
        if not rows:  # (nothing to score: the held samples wait)
            classifier.learn_many(X, y)
            return
        self._settle([*held, *zip(rows, labels, strict=True)], lambda: classifier.learn_many(X, y))

    def _settle(self, samples: list[tuple[dict, Any]], learn: Callable[[], None]) -> None:
        """:meth:`_run` on ``samples`` (the held ones, then the call's), scored together; committed, none is held."""
        seen = self.n_seen_
        try:
            self._run(samples, lambda i, j: batch_losses(self.classifier, self.signal, [r for r, _ in samples[i:j]],
                                                         [t for _, t in samples[i:j]]), learn)
        finally:
            if self.n_seen_ != seen:
                self._held_samples = []


def _answers(classifier: StreamClassifier) -> tuple[int, int, int]:
    """What a stream classifier's answers change with: its steps, its labels, its features."""
    return classifier.n_steps, classifier._n_outputs(), len(classifier._index)
