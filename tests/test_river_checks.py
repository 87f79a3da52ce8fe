"""river's own estimator checks (``river.checks``) over every public estimator, one test per check.

No check is skipped: ``_unit_test_skips`` is empty for all of them, which this file also asserts.
"""

from __future__ import annotations

import pytest
from river import checks

from stream_am import AMClassifier, AMRegressor
from stream_am.baselines import BackpropClassifier, BackpropRegressor


def _cases():
    for cls in (AMClassifier, AMRegressor, BackpropClassifier, BackpropRegressor):
        for params in cls._unit_test_params():
            model = cls(**params)
            label = f"{cls.__name__}[{params.get('variant', params.get('optimizer', 'default'))}]"
            for i, check in enumerate(checks.yield_checks(model)):
                yield pytest.param(model, check, id=f"{label}-{check.__name__}-{i}")


@pytest.mark.parametrize(("model", "check"), list(_cases()))
def test_river_check(model, check):
    assert check.__name__ not in model._unit_test_skips()
    check(model.clone())


def test_every_variant_is_covered():
    variants = {(type(m).__name__, m.variant) for m in (AMClassifier(**p) for p in AMClassifier._unit_test_params())}
    assert variants == {("AMClassifier", "mem"), ("AMClassifier", "adam")}
    variants = {(type(m).__name__, m.variant) for m in (AMRegressor(**p) for p in AMRegressor._unit_test_params())}
    assert variants == {("AMRegressor", "mem"), ("AMRegressor", "adam")}
