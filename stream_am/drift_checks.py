"""Checks of :class:`~stream_am.drift.DriftAware`'s arguments, and of what its classifier must offer to forget.

A classifier the wrapper cannot make forget is refused before it learns a sample: at construction where that is
known already (a stream estimator without ``forget``, such as the backprop baselines), else at the first call
that finds its engine without ``forget`` (or, with a boost, without ``memory_decay``). Before, such a classifier
learnt until the first detection, which raised an ``AttributeError`` in the middle of the commit: the detection
counted, the batch was not learnt.
"""

from __future__ import annotations

import math
from typing import Any

from river import base

from stream_am import checks
from stream_am.drift_signal import SIGNALS
from stream_am.estimators.base import StreamEstimator

__all__ = ["check_arguments", "checked_engine"]


def check_arguments(classifier: Any, detector: Any, signal: Any, forget_factor: Any, boost_decay: Any,
                    boost_samples: Any, domain_shift: Any) -> None:
    """``ValueError`` naming the first of :class:`~stream_am.drift.DriftAware`'s arguments that is invalid."""
    checks.check_choice("signal", signal, SIGNALS)
    if not isinstance(classifier, base.Classifier):
        raise ValueError(f"classifier must be a river classifier, got {type(classifier).__name__}")
    if isinstance(classifier, StreamEstimator) and not callable(getattr(classifier, "forget", None)):
        raise ValueError(f"classifier must be able to forget (an AM classifier): {type(classifier).__name__} has no "
                         "forget(factor)")
    if not isinstance(detector, (type(None), base.DriftDetector, base.BinaryDriftDetector)):
        raise ValueError(f"detector must be a river drift detector or None, got {type(detector).__name__}")
    if isinstance(detector, base.BinaryDriftDetector) and signal != "error":
        raise ValueError(f"detector {type(detector).__name__} reads 0/1 values: signal must be 'error'")
    checks.check_float("forget_factor", forget_factor, 0.0, 1.0, low_inclusive=False, high_inclusive=True)
    if boost_decay is not None:
        checks.check_float("boost_decay", boost_decay, 0.0, 1.0)
    checks.check_int("boost_samples", boost_samples, low=0)
    if domain_shift is not None:
        checks.check_float("domain_shift", domain_shift, 0.0, math.inf)


def checked_engine(classifier: Any, boost: bool) -> Any:
    """``classifier.engine`` (None before its first step); ``TypeError`` if there is none to make forget: no
    ``engine`` attribute, or an engine that neither it nor the classifier can ``forget``, or (``boost``) without
    a ``memory_decay``."""
    if not hasattr(classifier, "engine"):
        raise TypeError(f"{type(classifier).__name__} has no `engine` attribute to make forget")
    engine, name = classifier.engine, type(classifier).__name__
    if engine is None:
        return None
    if not callable(getattr(classifier, "forget", None)) and not callable(getattr(engine, "forget", None)):
        raise TypeError(f"{name}'s engine {type(engine).__name__} has no forget(factor), nor has {name}")
    if boost and not hasattr(engine, "memory_decay"):
        raise TypeError(f"{name}'s engine {type(engine).__name__} has no memory_decay to boost (boost_decay)")
    return engine
