"""Every public estimator of the library, found by walking the package (as river's test_estimators.py does).

A new estimator is tested the day it exists: the river checks (test_river_checks.py), the conformance suite
(test_conformance.py, over the stream estimators) and the wrapper checks (test_wrappers_conformance.py) all
draw their classes from here; no test lists estimators by hand.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from typing import Any

from river import base

import stream_am
from stream_am.estimators.base import StreamEstimator

__all__ = ["estimator_classes", "stream_estimator_classes", "cases", "SLOW"]

_NOT_LIBRARY = ("stream_am.server", "stream_am.scenarios", "stream_am.cli", "stream_am.__main__")

#: estimators whose river checks take too long for the default run (they run in the ``slow`` pass)
SLOW = {
    "EWCClassifier": "a Fisher pass per step: river's checks take about 30 s",
    "DriftAware": "river's checks take about 25 s on 2 shared cores",
}


def _modules() -> Iterator[Any]:
    for info in pkgutil.walk_packages(stream_am.__path__, "stream_am."):
        if not info.name.startswith(_NOT_LIBRARY):
            yield importlib.import_module(info.name)


def estimator_classes() -> list[type]:
    """Public, concrete river estimators defined in the library, by name."""
    found: dict[str, type] = {}
    for module in _modules():
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                obj.__module__ == module.__name__
                and not name.startswith("_")
                and issubclass(obj, base.Estimator)
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return [found[k] for k in sorted(found)]


def stream_estimator_classes() -> list[type]:
    """The estimators built on :class:`StreamEstimator` (features, buffering, an engine, save/load)."""
    return [c for c in estimator_classes() if issubclass(c, StreamEstimator)]


def cases(classes: list[type]) -> Iterator[tuple[str, type, dict[str, Any]]]:
    """``(id, class, params)`` for every class and every parameter set of its ``_unit_test_params``."""
    for cls in classes:
        for i, params in enumerate(cls._unit_test_params()):
            yield f"{cls.__name__}-{i}", cls, params
