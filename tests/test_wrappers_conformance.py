"""The conformance suite for the discovered estimators that are not stream estimators (wrappers, strategies).

They have no engine state of their own to snapshot, so purity and round trips are checked on their whole
pickled state and on their predictions: predicting changes nothing, no global RNG is touched, a pickled copy
predicts and keeps learning exactly as the original. (The stream estimators get the fuller suite of
test_conformance.py.)
"""

from __future__ import annotations

import pickle
import random

import numpy as np
import pandas as pd
import pytest
import torch
from discovery import cases, estimator_classes

from stream_am.estimators.base import StreamEstimator

CASES = {label: (cls, params) for label, cls, params in cases(
    [c for c in estimator_classes() if not issubclass(c, StreamEstimator)])}


def stream(n, seed=0):
    """Binary boolean labels: every discovered classifier, river's binary ones included, can learn them."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        x = {f: float(rng.normal()) for f in "abc"}
        rows.append((x, bool(x["a"] + 0.5 * x["b"] > 0)))
    return rows


def _make(label):
    cls, params = CASES[label]
    return cls(**params)


def _predict(model, rows):
    if hasattr(model, "predict_proba_one"):
        return [model.predict_proba_one(x) for x, _ in rows]
    return [model.predict_one(x) for x, _ in rows]


def _learn(model, rows):
    for x, y in rows:
        model.learn_one(x, y)


def test_some_wrappers_are_discovered():
    assert {"DriftAware", "ReplayClassifier", "EWCClassifier"} <= {c.__name__ for c, _ in CASES.values()}


@pytest.mark.parametrize("label", list(CASES))
def test_predictions_are_pure_and_touch_no_global_rng(label):
    model = _make(label)
    rows = stream(24)
    states = (random.getstate(), np.random.get_state()[1].copy(), torch.random.get_rng_state())
    _learn(model, rows[:16])
    before = pickle.dumps(model)
    first = _predict(model, rows[16:])
    assert pickle.dumps(model) == before
    assert _predict(model, rows[16:]) == first
    assert random.getstate() == states[0]
    assert np.array_equal(np.random.get_state()[1], states[1])
    assert torch.equal(torch.random.get_rng_state(), states[2])


@pytest.mark.parametrize("label", list(CASES))
def test_pickle_round_trip_predicts_and_continues_identically(label):
    model = _make(label)
    rows = stream(32)
    _learn(model, rows[:16])
    copy = pickle.loads(pickle.dumps(model))
    assert _predict(copy, rows) == _predict(model, rows)
    _learn(model, rows[16:])
    _learn(copy, rows[16:])
    assert _predict(copy, rows) == _predict(model, rows)


@pytest.mark.parametrize("label", list(CASES))
def test_learning_inside_inference_mode_is_refused_and_changes_nothing(label):
    model, rows = _make(label), stream(60)
    _learn(model, rows[:40])
    before = pickle.dumps(model)
    with torch.inference_mode():
        for call in (lambda: model.learn_one(*rows[40]),
                     lambda: model.learn_many(pd.DataFrame([x for x, _ in rows[40:]]),
                                              pd.Series([y for _, y in rows[40:]]))):
            with pytest.raises(ValueError, match="inference_mode"):
                call()
    assert pickle.dumps(model) == before
