"""The scikit-learn protocol of the numpy API: clone, parameters, fit with epochs, score, Pipeline, GridSearchCV."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_regression
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from stream_am import AMClassifier, AMRegressor
from stream_am.baselines import BackpropClassifier, BackpropRegressor

CLASSES = [AMClassifier, AMRegressor, BackpropClassifier, BackpropRegressor]


def _data(cls, n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    if cls in (AMClassifier, BackpropClassifier):
        return X, np.where(X[:, 0] + X[:, 1] > 0, "pos", "neg")
    return X, 3.0 * X[:, 0] - X[:, 2] + 0.1 * rng.normal(size=n)


@pytest.mark.parametrize("cls", CLASSES)
def test_clone_keeps_every_parameter_unchanged(cls):
    model = cls(hidden_sizes=(5, 3), batch_size=7, epochs=2, seed=3)
    copy = clone(model)
    assert type(copy) is cls and copy is not model
    assert copy.get_params() == model.get_params()
    assert model.get_params() == model._get_params()


@pytest.mark.parametrize("cls", CLASSES)
def test_set_params_validates_and_forgets(cls):
    X, y = _data(cls)
    model = cls(batch_size=8).fit(X, y)
    assert model.n_steps > 0
    with pytest.raises(ValueError, match="batch_size"):
        model.set_params(batch_size=0)
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        model.set_params(nope=1)
    assert model.batch_size == 8 and model.n_steps > 0  # unchanged by the failed calls
    assert model.set_params(batch_size=16, seed=1) is model
    assert (model.batch_size, model.seed, model.n_steps, model.n_buffered) == (16, 1, 0, 0)
    with pytest.raises(NotFittedError):
        model.predict(X)


@pytest.mark.parametrize("cls", CLASSES)
def test_fit_resets_then_learns_epochs_passes_and_flushes(cls):
    X, y = _data(cls, n=50)
    once = cls(batch_size=16, epochs=1).fit(X, y)
    assert once.n_steps == 4 and once.n_buffered == 0  # 3 full steps, then the flush of the last 2 rows
    three = cls(batch_size=16, epochs=3).fit(X, y)
    assert three.n_steps == 10  # 150 rows: 9 full steps and a flush
    streamed = cls(batch_size=16)
    for _ in range(3):
        streamed.partial_fit(X, y, **({"classes": sorted(set(y))} if hasattr(streamed, "predict_proba") else {}))
    streamed.flush()
    np.testing.assert_array_equal(three.predict(X), streamed.predict(X))  # fit == partial_fit x epochs + flush
    again = clone(three).fit(X[:10] * 5.0, y[:10]).fit(X, y)  # a second fit forgets the first
    np.testing.assert_array_equal(again.predict(X), three.predict(X))


def test_fit_declares_sorted_classes_and_partial_fit_sorts_declared_ones():
    X, y = _data(AMClassifier)
    assert AMClassifier().fit(X, y).classes_.tolist() == ["neg", "pos"]
    model = AMClassifier().partial_fit(X[:3], [9, 3, 6], classes=[9, 3, 6, 1])
    assert model.classes_.tolist() == [1, 3, 6, 9]
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        AMClassifier().fit(X, X[:, 0])


@pytest.mark.parametrize("cls", CLASSES)
def test_score_is_accuracy_or_r2(cls):
    X, y = _data(cls, n=400)
    model = cls(epochs=3).fit(X, y)
    if cls in (AMClassifier, BackpropClassifier):
        assert model.score(X, y) == pytest.approx(np.mean(model.predict(X) == y))
        assert model.score(X, y) > 0.9
    else:
        residual = ((y - model.predict(X)) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        assert model.score(X, y) == pytest.approx(1 - residual)
        assert model.score(X, y) > 0.8


def test_pipeline_and_grid_search_on_digits():
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    pipe = make_pipeline(StandardScaler(), AMClassifier(hidden_sizes=(32,), standardize=False, seed=0))
    search = GridSearchCV(pipe, {"amclassifier__epochs": [1, 2], "amclassifier__variant": ["mem", "adam"]}, cv=2)
    search.fit(X, y)
    assert set(search.best_params_) == {"amclassifier__epochs", "amclassifier__variant"}
    assert 0.7 < search.best_score_ <= 1.0
    assert search.best_estimator_[-1].classes_.tolist() == list(range(10))


def test_regressor_in_a_grid_search():
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    search = GridSearchCV(AMRegressor(hidden_sizes=(16,)), {"batch_size": [16, 32]}, cv=2).fit(X, y)
    assert search.best_score_ > 0.5


def test_dataframe_column_names_are_kept_checked_and_saved(tmp_path):
    X, y = _data(AMClassifier)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    model = AMClassifier().fit(frame, y)
    assert model.feature_names_in_.tolist() == ["a", "b", "c", "d"] and model.n_features_in_ == 4
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        model.predict(frame[["b", "a", "c", "d"]])
    for copy in (pickle.loads(pickle.dumps(model)), AMClassifier.load(model.save(tmp_path / "m"))):
        assert copy.feature_names_in_.tolist() == ["a", "b", "c", "d"]
        np.testing.assert_array_equal(copy.predict(frame), model.predict(frame))


def test_attributes_absent_before_learning_and_for_plain_arrays():
    model = AMRegressor()
    assert not hasattr(model, "n_features_in_") and not hasattr(model, "feature_names_in_")
    with pytest.raises(NotFittedError):
        model.predict(np.ones((1, 2)))
    model.partial_fit(np.ones((3, 2)), [1.0, 2.0, 3.0])
    assert model.n_features_in_ == 2 and not hasattr(model, "feature_names_in_")
    assert model.predict(np.ones((1, 2))).tolist() == [2.0]  # before the first step: the target mean


def test_sparse_input_is_refused_with_a_clear_error():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sparse"):
        AMClassifier().fit(scipy_sparse.csr_matrix(np.eye(3)), [0, 1, 2])


def test_epochs_is_validated():
    with pytest.raises(ValueError, match="epochs"):
        AMClassifier(epochs=0)


def test_labels_declared_after_learning_follow_the_learned_ones_sorted():
    model = BackpropClassifier()
    model.learn_one({0: 1.0}, "m")
    model.partial_fit(np.ones((1, 1)), ["m"], classes=["z", "m", "a"])
    assert model.classes_.tolist() == ["m", "a", "z"]


@pytest.mark.parametrize("cls", [AMClassifier, AMRegressor])
def test_a_refused_fit_or_first_partial_fit_changes_nothing(cls: type) -> None:
    X = pd.DataFrame({"a": np.arange(40.0), "b": np.arange(40.0) % 3})
    y = (np.arange(40) % 2).astype(float if cls is AMRegressor else int)
    bad = pd.DataFrame({"c": [1e300] * 40, "d": [0.0] * 40})  # over the magnitude limit: refused
    model = cls(hidden_sizes=(4,), batch_size=8, seed=0).fit(X, y)
    before = model.predict(X)
    with pytest.raises(ValueError):
        model.fit(bad, y)
    assert list(model.feature_names_in_) == ["a", "b"]
    np.testing.assert_array_equal(model.predict(X), before)
    fresh = cls(hidden_sizes=(4,), batch_size=8, seed=0)
    with pytest.raises(ValueError):
        fresh.partial_fit(bad, y)
    with pytest.raises(AttributeError):
        fresh.feature_names_in_  # noqa: B018
    fresh.partial_fit(X, y)  # the refused columns were not kept: the valid ones are learned
    assert list(fresh.feature_names_in_) == ["a", "b"]


@pytest.mark.parametrize(("y", "field"), [
    ([1, "1", True, 1.0], "y[1]"),  # numpy alone would make them four strings, three of them one class
    ([True, 2, 3, 4], "y[1]"),  # or merge True with 1
    (np.array(["a", None, "b", "a"], dtype=object), "y[1]"),
    (np.array(["a", 1, "b", "a"], dtype=object), "y[1]"),
])
def test_classifier_labels_of_several_types_are_refused_naming_the_label(y, field) -> None:
    X = np.arange(12.0).reshape(4, 3)
    model = AMClassifier(hidden_sizes=(4,), batch_size=2, seed=0)
    with pytest.raises(ValueError, match=field.replace("[", r"\[")):
        model.fit(X, y)
    with pytest.raises(ValueError, match=field.replace("[", r"\[")):
        model.partial_fit(X, y)
    assert not model.__sklearn_is_fitted__()


def test_partial_fit_names_the_label_of_another_type_than_the_learned_ones() -> None:
    X = np.arange(12.0).reshape(4, 3)
    model = AMClassifier(hidden_sizes=(4,), batch_size=2, seed=0).partial_fit(X[:2], [1, 2])
    before = pickle.dumps(model)
    with pytest.raises(ValueError, match=r"y\[1\] = '2' is a str"):  # the str the user passed, not a converted 1
        model.partial_fit(X[:2], [1, "2"])
    assert pickle.dumps(model) == before
    assert AMClassifier(hidden_sizes=(4,), batch_size=2).fit(X[:3], [np.int64(0), 1, 2]).classes_.tolist() == [0, 1, 2]


@pytest.mark.parametrize("bad", [2**1100, 1 + 0j, "1.0"])
def test_regressor_targets_that_are_not_real_numbers_are_refused_naming_the_target(bad) -> None:
    X = np.arange(9.0).reshape(3, 3)
    for y in (np.array([1.0, bad, 3.0], dtype=object), [1.0, bad, 3.0]):
        model = AMRegressor(hidden_sizes=(4,), batch_size=2, seed=0)
        with pytest.raises(ValueError, match=r"y\[1\]"):
            model.fit(X, y)
        with pytest.raises(ValueError, match=r"y\[1\]"):
            model.partial_fit(X, y)
        assert not model.__sklearn_is_fitted__()
    assert AMRegressor(hidden_sizes=(4,), batch_size=2, seed=0).fit(X, [1, 2.5, True]).n_features_in_ == 3
