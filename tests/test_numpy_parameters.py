"""Parameters given as numpy's numbers (a grid of ``numpy.arange`` or ``numpy.logspace``) are taken as the Python
numbers of the same value: the model learns as with those, bit for bit, saves, loads and clones (checks.native)."""

from __future__ import annotations

import inspect
import math
import pickle

import numpy as np
import pandas as pd
import pytest
from river import drift
from sklearn.model_selection import GridSearchCV

from stream_am import AMClassifier, AMRegressor, OnlineAM, checks
from stream_am.backprop import BackpropLearner
from stream_am.drift import DriftAware
from stream_am.estimators import build_mlp
from stream_am.evaluate import PrequentialResult, drift_recovery, rolling_accuracy
from stream_am.strategies import ReplayClassifier
from tests.discovery import cases, estimator_classes, stream_estimator_classes

RNG = np.random.default_rng(0)
X = pd.DataFrame(RNG.normal(size=(96, 3)), columns=["a", "b", "c"])
LABELS = pd.Series((X["a"] + X["b"] > 0).astype(int))


def _numpy(value):
    """``value`` as numpy's: an int as ``np.int64``, a float as ``np.float32`` (another value: compare with
    ``checks.native`` of it), a tuple item by item; anything else as it is."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return np.int64(value)
    if isinstance(value, float):
        return np.float32(value)
    if isinstance(value, tuple):
        return tuple(_numpy(v) for v in value)
    return value


def _all_params(cls, params):
    """Every constructor parameter: ``params`` over the defaults."""
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()
                if p.default is not inspect.Parameter.empty}
    return {**defaults, **params}


def _target(model):
    return LABELS.astype(float) if "Regressor" in type(model).__name__ else LABELS


def _answers(model):
    out = model.predict_many(X)
    return np.asarray(model.predict_proba_many(X) if hasattr(model, "predict_proba_many") else out, dtype=float)


@pytest.mark.parametrize(("case", "cls", "params"), list(cases(stream_estimator_classes())))
def test_numpy_parameters_learn_as_their_python_numbers_bit_for_bit(case, cls, params, tmp_path):
    given = {k: _numpy(v) for k, v in _all_params(cls, params).items()}
    assert any(isinstance(v, np.generic) for v in given.values())
    model, reference = cls(**given), cls(**{k: checks.native(v) for k, v in given.items()})
    assert model.get_params() == given and all(model.get_params()[k] is v for k, v in given.items())  # as given
    for m in (model, reference):
        m.learn_many(X, _target(m))
    np.testing.assert_array_equal(_answers(model), _answers(reference))
    loaded = type(model).load(model.save(tmp_path / "m"))
    assert loaded.get_params() == {k: checks.native(v) for k, v in given.items()}
    np.testing.assert_array_equal(_answers(loaded), _answers(model))
    copies = [pickle.loads(pickle.dumps(m)) for m in (model, reference)]  # (a pickle keeps them as given)
    for m in (model, *copies):  # (past a block of the companions: they learn from the parameters too)
        for _ in range(3):
            m.learn_many(X, _target(m))
    np.testing.assert_array_equal(_answers(copies[0]), _answers(copies[1]))
    for name, value in given.items():  # the same values set again, as numpy's or Python's, change nothing
        setattr(model, name, value)
        setattr(model, name, checks.native(value))


def test_a_grid_search_over_numpy_ranges_fits():
    grid = {"batch_size": np.arange(16, 48, 16), "memory_decay": np.logspace(-4, -3, 2), "hidden_sizes": [(8,)]}
    search = GridSearchCV(AMClassifier(seed=0), grid, cv=2).fit(X.to_numpy(), LABELS.to_numpy())
    assert isinstance(search.best_params_["batch_size"], np.integer)
    assert 0.5 <= search.best_score_ <= 1.0


def test_the_engine_holds_numpy_numbers_as_python_numbers():
    am = OnlineAM(build_mlp(np.int64(3), np.int64(2), (np.int64(4),), seed=np.int64(1)),
                  memory_decay=np.float32(1e-3), code_steps=np.int64(2), seed=np.int64(5))
    assert type(am.memory_decay) is float and am.memory_decay == float(np.float32(1e-3))
    assert type(am.code_steps) is int and type(am.seed) is int
    am.ridge = np.float32(0.5)
    assert type(am.ridge) is float
    with pytest.raises(ValueError, match=r"^code_steps must be an int in \[0, 9223372036854775807\]"):
        am.code_steps = np.int64(-1)
    with pytest.raises(ValueError, match="^solve_every must be an int in"):  # (a state holds it in an int64)
        am.solve_every = np.uint64(2**63)
    with pytest.raises(ValueError, match="^ridge must be a finite number"):
        am.ridge = np.float32("nan")


@pytest.mark.parametrize(("kw", "field"), [({"batch_size": np.int64(0)}, "batch_size"),
                                           ({"batch_size": np.float64(8.0)}, "batch_size"),
                                           ({"batch_size": np.bool_(True)}, "batch_size"),
                                           ({"hidden_sizes": (np.int64(0),)}, "hidden_sizes"),
                                           ({"memory_decay": np.float32(1.5)}, "memory_decay"),
                                           ({"memory_decay": np.longdouble("1e4000")}, "memory_decay"),
                                           ({"seed": np.uint64(2**64 - 1)}, "seed"),
                                           ({"batch_size": np.timedelta64(16)}, "batch_size"),
                                           ({"hidden_sizes": (np.timedelta64(4),)}, "hidden_sizes"),
                                           ({"memory_decay": np.timedelta64(0)}, "memory_decay"),
                                           # in range in its own type, not as the Python float that learns
                                           ({"memory_decay": np.longdouble(1) - np.longdouble(2) ** -60},
                                            "memory_decay"),
                                           ({"lambda_c": np.float32(950463.75), "mu": np.float32(9.504637e-33)},
                                            "lambda_c")])
def test_numpy_numbers_out_of_range_are_refused_naming_the_field(kw, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        AMClassifier(**kw)


def test_drift_aware_takes_numpy_factors():
    model = DriftAware(AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0), drift.ADWIN(),
                       forget_factor=np.float32(0.5), boost_samples=np.int64(10))
    for x, y in zip(X.to_dict("records"), LABELS, strict=True):
        model.learn_one(x, y)
    model.classifier.forget(np.float32(0.5))
    assert model.predict_one(X.iloc[0].to_dict()) in (0, 1)
    assert math.isfinite(float(model.classifier.predict_proba_one(X.iloc[0].to_dict())[0]))


def test_a_regressor_saved_with_numpy_parameters_loads_with_python_ones(tmp_path):
    model = AMRegressor(hidden_sizes=(np.int64(4),), ridge=np.float64(2.0), seed=np.int64(1))
    model.learn_many(X, LABELS.astype(float))
    loaded = AMRegressor.load(model.save(tmp_path / "r"))
    assert loaded.hidden_sizes == (4,) and type(loaded.hidden_sizes[0]) is int and type(loaded.ridge) is float


def _other_cases():
    streams = set(stream_estimator_classes())
    return [case for case in cases(estimator_classes()) if case[1] not in streams]


@pytest.mark.parametrize(("case", "cls", "params"), _other_cases())
def test_the_wrappers_take_numpy_parameters_as_their_python_numbers(case, cls, params):
    given = {k: _numpy(v) for k, v in _all_params(cls, params).items()}
    model, reference = cls(**given), cls(**{k: checks.native(v) for k, v in given.items()})
    rows = X.to_dict("records")
    for m in (model, reference):
        for x, y in zip(rows, LABELS, strict=True):
            m.learn_one(x, y)
    assert [model.predict_proba_one(x) for x in rows[:8]] == [reference.predict_proba_one(x) for x in rows[:8]]


def test_a_half_precision_eps_of_zero_is_refused_as_zero_is():
    with pytest.raises(ValueError, match="^eps must"):
        BackpropLearner(build_mlp(3, 2, (4,), seed=0), eps=np.float16(1e-8))  # (0 in float32)


def test_an_unsigned_boost_ends():
    model = DriftAware(AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0), drift.ADWIN(), boost_decay=0.2,
                       boost_samples=np.uint8(50), domain_shift=None)
    rng = np.random.default_rng(1)
    for i, x in enumerate(rng.normal(size=(2000, 2))):
        model.learn_one({"a": x[0], "b": x[1]}, int((x[0] > 0) != (i >= 600)))
    assert model.drifts_ and model.classifier.engine.memory_decay == model.classifier.memory_decay


def test_replay_draws_as_many_rows_with_a_float32_ratio_and_takes_a_huge_one():
    learned = []
    for ratio in (np.float32(0.1), float(np.float32(0.1)), 1e308):
        inner = AMClassifier(hidden_sizes=(4,), batch_size=16, seed=0)
        model = ReplayClassifier(inner, buffer_size=50, replay_ratio=ratio, batch_size=5)
        for x, y in zip(X.to_dict("records") * 2, list(LABELS) * 2, strict=True):
            model.learn_one(x, y)
        learned.append(inner.n_steps * 16 + inner.n_buffered)  # (rows the classifier learned)
    assert learned[0] == learned[1] < learned[2]


def test_the_evaluation_helpers_take_numpy_ints():
    correct = np.tile([1, 0, 1, 1], 250).astype(bool)
    np.testing.assert_array_equal(rolling_accuracy(correct, np.uint64(2)), rolling_accuracy(correct, 2))
    assert drift_recovery(correct, [np.uint16(400)], window=np.uint8(150)) == drift_recovery(correct, [400], window=150)
    with pytest.raises(ValueError, match="needs 150 samples before and 300 after"):
        drift_recovery(np.ones(300, bool), [200], window=np.uint8(150))
    result = PrequentialResult(correct=correct, metrics={}, seconds=0.0)
    assert [a.tolist() for a in result.curve(np.uint64(50), np.uint8(10))] == [a.tolist() for a in result.curve(50, 10)]


def test_an_equal_numpy_string_is_no_change_after_learning():
    model = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0)
    model.learn_many(X, LABELS)
    model.memory_clock = np.str_("class")
    model.engine.memory_clock = np.str_("class")
    with pytest.raises(ValueError, match="^memory_clock"):
        model.memory_clock = np.str_("sample")


def test_build_mlp_checks_its_seed():
    for seed in (np.bool_(True), np.float32(1.0), -1, "5"):
        with pytest.raises(ValueError, match="^seed must"):
            build_mlp(3, 2, (4,), seed=seed)
    assert build_mlp(3, 2, (4,), seed=np.uint8(7))[0].weight.equal(build_mlp(3, 2, (4,), seed=7)[0].weight)
