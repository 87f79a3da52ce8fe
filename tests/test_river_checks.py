"""river's own estimator checks (``river.checks``) over every public estimator, one test per check.

The estimators are discovered (tests/discovery.py), with each parameter set of their ``_unit_test_params``.
A check an estimator lists in ``_unit_test_skips`` (its reason is written there) is skipped, as river's
own ``check_estimator`` does: such a check fails on some of river's datasets and passes on others (DriftAware's
learn_many check), so it cannot be a strict expected failure. The AM and backprop estimators list none
(``test_the_stream_estimators_skip_no_check``).
"""

from __future__ import annotations

import pytest
from discovery import SLOW, cases, estimator_classes, stream_estimator_classes
from river import checks

from stream_am import AMClassifier, AMRegressor


def _cases():
    for label, cls, params in cases(estimator_classes()):
        model = cls(**params)
        marks = [pytest.mark.slow] if cls.__name__ in SLOW else []
        for i, check in enumerate(checks.yield_checks(model)):
            mark = list(marks)
            if check.__name__ in model._unit_test_skips():
                mark.append(pytest.mark.skip(reason=f"listed in {cls.__name__}._unit_test_skips, with its reason"))
            yield pytest.param(model, check, id=f"{label}-{check.__name__}-{i}", marks=mark)


@pytest.mark.parametrize(("model", "check"), list(_cases()))
def test_river_check(model, check):
    check(model.clone())


def test_discovery_finds_every_public_estimator():
    names = {c.__name__ for c in estimator_classes()}
    assert {"AMClassifier", "AMRegressor", "BackpropClassifier", "BackpropRegressor", "DriftAware",
            "EWCClassifier", "ReplayClassifier"} <= names


def test_the_stream_estimators_skip_no_check():
    for _, cls, params in cases(stream_estimator_classes()):
        assert cls(**params)._unit_test_skips() == set(), cls


def test_every_variant_is_covered():
    for cls in (AMClassifier, AMRegressor):
        variants = {cls(**p).variant for p in cls._unit_test_params()}
        assert variants == {"mem", "adam", "auto"}, cls
