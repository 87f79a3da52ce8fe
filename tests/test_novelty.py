"""How new input rows are to a model's remembered inputs (stream_am.estimators.novelty, AMClassifier.input_novelty)."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from stream_am import AMClassifier
from stream_am.estimators.companion import LinearCompanion
from stream_am.estimators.novelty import CAP, novelty


def _remembering(rows):
    companion = LinearCompanion(rows.shape[1], 2, decay=0.0, ridge=1e-3)
    b = np.hstack([np.ones((len(rows), 1)), rows])
    companion.A[0] = b.T @ b
    return companion


def test_rows_like_the_remembered_ones_read_near_zero_and_moved_ones_far_above():
    rng = np.random.default_rng(0)
    companion = _remembering(rng.normal(size=(2000, 5)))
    like = [novelty(companion, rng.normal(size=(64, 5))) for _ in range(50)]
    assert abs(np.mean(like)) < 1.0 and max(abs(v) for v in like) < 4.5
    wider = rng.normal(size=(64, 5)) * np.array([1, 1, 1, 1, 3.0])  # one feature spreads three times as far
    assert novelty(companion, wider) > 10
    assert novelty(companion, rng.normal(size=(64, 5)) + 1.0) > 10  # moved


def test_one_far_row_moves_the_figure_by_at_most_its_cap():
    rng = np.random.default_rng(1)
    companion = _remembering(rng.normal(size=(2000, 4)))
    rows = rng.normal(size=(64, 4))
    far = rows.copy()
    far[0] = 1e6
    d, n = 4, 64
    assert 0 < novelty(companion, far) - novelty(companion, rows) <= CAP * d / n / np.sqrt(2 * d / n) + 1e-9


def test_too_few_rows_remembered_tell_nothing():
    companion = _remembering(np.random.default_rng(2).normal(size=(7, 3)))  # fewer than twice the features
    assert novelty(companion, np.zeros((4, 3))) is None
    assert novelty(LinearCompanion(3, 2, decay=0.0, ridge=1e-3), np.zeros((4, 3))) is None


def test_a_model_without_features_tells_nothing():
    """With the bias alone no row can be new: None. Before, the spread was 0, and the figure -inf or NaN (with a
    RuntimeWarning) for a model that had learnt only empty rows."""
    assert novelty(_remembering(np.zeros((50, 0))), np.zeros((4, 0))) is None
    model = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0)
    for k in range(64):
        model.learn_one({}, k % 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model._companion is not None and model.input_novelty(pd.DataFrame(index=range(3))) is None


def _learnt(n=800, companion=True, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    y = pd.Series((X["a"] + X["b"] > 0).astype(int))
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0, companion=companion)
    model.learn_many(X, y)
    return model, X


def test_an_am_classifier_reads_its_own_inputs_as_known_and_others_as_new():
    model, X = _learnt()
    assert model._quadratic is not None and model._companion is not None
    assert model.input_novelty(X[-64:]) < 5.0
    assert model.input_novelty(X[-64:] * 4.0) > 10.0
    assert model.input_novelty(X[-64:].assign(d=1.0)) == model.input_novelty(X[-64:])  # (not learnt: dropped)


def test_input_novelty_is_none_without_a_companion_or_rows_and_changes_nothing():
    assert AMClassifier().input_novelty(pd.DataFrame({"a": [1.0]})) is None  # before the first step
    model, X = _learnt(companion=False)
    assert model.input_novelty(X[:10]) is None
    model, X = _learnt()
    assert model.input_novelty(X[:0]) is None
    before = pickle.dumps(model)
    model.input_novelty(X[:64])
    assert pickle.dumps(model) == before


def test_input_novelty_checks_its_rows_as_predictions_do():
    model, X = _learnt()
    bad = X[:4].copy()
    bad.iloc[2, 0] = np.inf
    with pytest.raises(ValueError) as exc:
        model.input_novelty(bad)
    with pytest.raises(ValueError) as expected:
        model.predict_many(bad)
    assert str(exc.value) == str(expected.value)
