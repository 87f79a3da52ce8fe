"""Semantics of the stream estimators: batching, flush, standardisation, labels, numpy API, parameters."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pandas as pd
import pytest
import torch
from discovery import stream_estimator_classes
from estimator_helpers import FACTORIES, state_key, stream
from river import base

from stream_am import AMClassifier, AMRegressor, OnlineAM
from stream_am.baselines import BackpropClassifier, BackpropRegressor
from stream_am.estimators.am import AM_HYPERPARAMETERS
from stream_am.nn import Sign

ALL = tuple(stream_estimator_classes())  # discovered: a new stream estimator is tested here too
CLASSIFIER_CLASSES = [c for c in ALL if issubclass(c, base.Classifier)]
REGRESSOR_CLASSES = [c for c in ALL if issubclass(c, base.Regressor)]


def test_learn_one_buffers_and_steps_every_batch_size():
    model = AMClassifier(hidden_sizes=(4,), batch_size=5, code_steps=1)
    rows = stream(model, 12)
    for i, (x, y) in enumerate(rows):
        assert model.learn_one(x, y) is None
        assert (model.n_steps, model.n_buffered) == ((i + 1) // 5, (i + 1) % 5)
    assert model._engine.samples_seen == 10
    model.flush()
    assert (model.n_steps, model.n_buffered, model._engine.samples_seen) == (3, 0, 12)
    model.flush()  # empty buffer: nothing happens
    assert model.n_steps == 3


def test_predictions_use_the_last_completed_step():
    model = BackpropClassifier(hidden_sizes=(4,), batch_size=5, standardize=False)
    rows = stream(model, 9)
    for x, y in rows[:5]:
        model.learn_one(x, y)
    probe = [model.predict_proba_one(x) for x, _ in rows]
    for x, y in rows[5:7] + [({**rows[0][0], "new": 1.0}, "x")]:  # buffered, no step, no new label
        model.learn_one(x, y)
    assert [model.predict_proba_one(x) for x, _ in rows] == probe


@pytest.mark.parametrize("cls", CLASSIFIER_CLASSES)
def test_classifier_before_learning_and_before_the_first_step(cls):
    model = cls(batch_size=4)
    assert model.predict_one({"a": 1.0}) is None and model.predict_proba_one({"a": 1.0}) == {}
    assert model.predict_many(pd.DataFrame({"a": [1.0, 2.0]})).tolist() == [None, None]
    assert model.predict_proba_many(pd.DataFrame({"a": [1.0]})).shape == (1, 0)
    with pytest.raises(ValueError, match="not fitted yet"):  # NotFittedError, a ValueError
        model.predict(np.ones((1, 1)))
    model.learn_one({"a": 1.0}, "cat")
    model.learn_one({"a": 2.0}, "dog")
    assert model.predict_proba_one({"a": 3.0}) == {"cat": 0.5, "dog": 0.5}
    assert model.predict_one({"a": 3.0}) == "cat"


@pytest.mark.parametrize("cls", REGRESSOR_CLASSES)
def test_regressor_predicts_the_target_mean_before_the_first_step(cls):
    model = cls(batch_size=4)
    assert model.predict_one({"a": 1.0}) == 0.0
    model.learn_one({"a": 1.0}, 10.0)
    model.learn_one({"a": 2.0}, 20.0)
    assert model.predict_one({"a": 3.0}) == 15.0
    assert model.clone({"standardize_target": False}).predict_one({"a": 1.0}) == 0.0


def test_standardisation_statistics_match_numpy():
    model = BackpropClassifier(batch_size=7)
    rows = stream(model, 30)
    for x, y in rows:
        model.learn_one(x, y)
    mean, scale = model._moments.mean_scale()
    for j, f in enumerate(model._index.names):
        values = np.array([x[f] for x, _ in rows if f in x])
        assert model._moments.count[j] == len(values)
        np.testing.assert_allclose([mean[j], scale[j]], [values.mean(), values.std()], rtol=1e-12)


def test_standardize_false_feeds_raw_values_and_zero_for_missing():
    model = BackpropRegressor(batch_size=2, standardize=False)
    model.learn_one({"a": 3.0, "b": 4.0}, 1.0)
    model.learn_one({"b": 5.0}, 1.0)
    assert model._frame is None  # nothing standardises the inputs
    assert model._network_input(*model._buffer.rows()[:2], None).shape == (0, 2)
    model2 = BackpropRegressor(batch_size=3, standardize=False)
    model2.learn_one({"a": 3.0, "b": 4.0}, 1.0)
    model2.learn_one({"b": 5.0}, 1.0)
    x = model2._network_input(*model2._buffer.rows()[:2], model2._frame)
    assert x.tolist() == [[3.0, 4.0], [0.0, 5.0]]


def test_feature_order_is_first_seen_and_key_order_free():
    model = AMClassifier()
    model.learn_one({"z": 1.0, "b": 2.0}, 0)
    model.learn_one({"a": 1.0, "b": 2.0, "c": 3.0}, 1)
    assert model._index.names == ["b", "z", "a", "c"] and model.n_features_in_ == 4
    names = [frozenset({"b"}), frozenset({"a"}), frozenset({"a", "b"})]  # (< is "a subset of": no order)
    orders = set()
    for keys in (names, names[::-1], names[1:] + names[:1]):
        model = AMClassifier()
        model.learn_one(dict.fromkeys(keys, 1.0), 0)
        orders.add(tuple(model._index.names))
    assert len(orders) == 1


def test_partial_fit_classes_and_classes_():
    model = AMClassifier(batch_size=4)
    X = np.arange(12.0).reshape(6, 2)
    assert model.partial_fit(X, [1, 1, 2, 2, 1, 2], classes=[2, 1, 3]) is model
    assert model.classes_.tolist() == [1, 2, 3] and model._engine.n_outputs == 3  # declared: sorted
    assert model.predict_proba(X).shape == (6, 3)
    assert set(model.predict(X).tolist()) <= {1, 2, 3}
    model.partial_fit(X[:2], [3, 3], classes=[1, 2, 3])  # the same set again is fine
    with pytest.raises(ValueError, match="^y = 4 is not one of the declared classes"):  # (one label: y)
        model.learn_one({0: 1.0, 1: 2.0}, 4)
    with pytest.raises(ValueError, match="y\\[1\\] = 4 is not one of the declared classes"):
        model.learn_many(pd.DataFrame({0: [1.0, 2.0], 1: [0.0, 0.0]}), pd.Series([3, 4]))


def test_a_tensor_label_is_its_python_scalar():
    """A 0-d tensor hashes by identity: kept as such, every sample would bring a class of its own."""
    model = AMClassifier(batch_size=2)
    for i in range(6):
        model.learn_one({"a": float(i)}, torch.tensor(i % 2))
    model.learn_one({"a": 1.0}, 1)
    assert model._classes == [0, 1]


def test_classes_must_cover_labels_already_learned():
    model = BackpropClassifier()
    model.learn_one({0: 1.0}, "a")
    with pytest.raises(ValueError, match="lacks labels already learned"):
        model.partial_fit(np.ones((1, 1)), ["b"], classes=["b"])


def test_numpy_labels_become_python_scalars():
    model = BackpropClassifier(batch_size=2)
    model.learn_one({"a": 1.0}, np.bool_(True))
    model.learn_many(pd.DataFrame({"a": [0.0]}), pd.Series([False]))
    assert model._classes == [True, False] and all(type(c) is bool for c in model.predict_proba_one({"a": 1.0}))


def test_sign_activation_builds_a_sign_network():
    model = AMClassifier(activation="sign", hidden_sizes=(5,), batch_size=4, code_steps=1)
    for x, y in stream(model, 4):
        model.learn_one(x, y)
    assert any(isinstance(m, Sign) for m in model._engine.module)


@pytest.mark.parametrize("cls", ALL)
@pytest.mark.parametrize(
    ("field", "value"),
    [("hidden_sizes", [8]), ("hidden_sizes", (0,)), ("activation", "swish"), ("batch_size", 0),
     ("batch_size", 2.0), ("standardize", 1), ("device", "tpu:x"), ("seed", -1)],
)
def test_bad_parameters_name_the_field(cls, field, value):
    with pytest.raises(ValueError, match=field):
        cls(**{field: value})


@pytest.mark.parametrize(
    ("cls", "field", "value"),
    [(AMClassifier, "variant", "sgd"), (AMRegressor, "readout", "x"), (AMClassifier, "mu", 0.0),
     (AMClassifier, "code_steps", -1), (AMRegressor, "memory_decay", 1.0), (BackpropClassifier, "optimizer", "rmsprop"),
     (BackpropRegressor, "lr", 0.0), (BackpropClassifier, "momentum", 1.0), (AMRegressor, "standardize_target", "yes")],
)
def test_bad_specific_parameters_name_the_field(cls, field, value):
    with pytest.raises(ValueError, match=field):
        cls(**{field: value})


@pytest.mark.parametrize("cls", [AMClassifier, AMRegressor])
def test_am_defaults_mirror_online_am(cls):
    engine = inspect.signature(OnlineAM).parameters
    ours = inspect.signature(cls).parameters
    for name in (*AM_HYPERPARAMETERS, "variant", "readout", "device", "seed"):
        assert ours[name].default == engine[name].default, name


@pytest.mark.parametrize("cls", ALL)
def test_constructor_stores_arguments_and_creates_no_tensors(cls):
    model = cls(hidden_sizes=(3, 2), batch_size=9, seed=4)
    assert (model.hidden_sizes, model.batch_size, model.seed) == ((3, 2), 9, 4)
    assert model._engine is None and model._buffer is None
    assert repr(model) == repr(model.clone())


def test_engine_is_built_on_the_first_step_from_the_seed():
    a, b = FACTORIES["BackpropClassifier-0"](), FACTORIES["BackpropClassifier-0"]()
    for m in (a, b):
        for x, y in stream(m, 5):
            m.learn_one(x, y)
    assert _same_weights(a, b)
    c = a.clone({"seed": 2})
    for x, y in stream(c, 5):
        c.learn_one(x, y)
    assert not _same_weights(a, c)


def _same_weights(a, b):
    pairs = zip(a._engine.module.parameters(), b._engine.module.parameters(), strict=True)
    return all(torch.equal(p, q) for p, q in pairs)


def test_load_refuses_another_class(tmp_path):
    path = AMClassifier().save(tmp_path / "m")
    with pytest.raises(ValueError, match="holds an AMClassifier, not an AMRegressor"):
        AMRegressor.load(path)
    with pytest.raises(ValueError, match="config.json"):
        AMRegressor.load(tmp_path / "nothing")


def test_save_refuses_names_json_cannot_keep(tmp_path):
    model = BackpropClassifier()
    model.learn_one({("a", 1): 1.0, frozenset({1}): 2.0}, "y")
    with pytest.raises(ValueError, match="feature names holds frozenset"):
        model.save(tmp_path / "m")
    model2 = BackpropClassifier()
    model2.learn_one({("a", 1): 1.0, 3: 2.0}, (1, "b"))
    restored = BackpropClassifier.load(model2.save(tmp_path / "m2"))
    assert restored._index.names == model2._index.names and restored._classes == [(1, "b")]


@pytest.mark.parametrize("cls", ALL)
def test_empty_samples_frames_and_linear_networks(cls):
    model = cls(batch_size=2)
    for i in range(4):
        model.learn_one({}, i % 2)  # no features at all: the network starts with zero inputs
    model.learn_many(pd.DataFrame({"a": []}, dtype=float), pd.Series([], dtype=object))
    model.learn_one({"a": 1.0}, 1)
    model.learn_one({"a": 2.0}, 0)
    assert (model.n_steps, model.engine.n_inputs) == (3, 1)
    linear = cls(hidden_sizes=(), batch_size=3)  # first layer == output layer: both growths hit it
    for i in range(7):
        linear.learn_one({f"f{i % 3}": float(i)}, i % 2)
    assert linear.engine.n_inputs == 3 and len(linear.engine.module) == 1


def test_seed_none_draws_fresh_initial_weights():
    a, b = AMClassifier(seed=None, batch_size=4), AMClassifier(seed=None, batch_size=4)
    for m in (a, b):
        for i in range(4):
            m.learn_one({"x": float(i)}, i % 2)
    assert not _same_weights(a, b)


def test_feature_names_in_lists_features_in_input_order():
    from stream_am import AMClassifier

    clf = AMClassifier(seed=0)
    clf.learn_one({"b": 1.0, "a": 2.0}, True)
    clf.learn_one({"c": 1.0}, False)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c"] and clf.n_features_in_ == 3


def test_load_can_override_the_saved_device(tmp_path):
    from stream_am import AMClassifier

    clf = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    for i in range(12):
        clf.learn_one({"a": float(i % 3), "b": float(i % 2)}, i % 2 == 0)
    clf.save(tmp_path / "m")
    loaded = AMClassifier.load(tmp_path / "m", device="cpu")
    assert loaded.device == "cpu"
    assert loaded.predict_proba_one({"a": 1.0, "b": 0.0}) == clf.predict_proba_one({"a": 1.0, "b": 0.0})
    with pytest.raises(ValueError, match="device"):
        AMClassifier.load(tmp_path / "m", device="tpu")


@pytest.mark.parametrize("batch_size", [1, 32])
def test_a_feature_that_arrives_late_is_learned(batch_size):
    # the only informative feature arrives after 320 samples; with zero weights for it (before 2026-12-02) no
    # layer learned it: 0.49 to 0.63 on the last 1,000 samples (three seeds), against 0.83 to 0.86 now
    rng = np.random.default_rng(0)
    n, t0 = 1500, 320
    y = rng.integers(2, size=n)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"n{i}" for i in range(5)])
    X["late"] = np.where(np.arange(n) >= t0, 50 + 2.5 * (y - 0.5) + rng.normal(size=n), np.nan)
    model, hits = AMClassifier(seed=0, batch_size=batch_size), []
    for lo in range(0, n, 50):
        chunk = X.iloc[lo : lo + 50].dropna(axis=1, how="all")
        target = pd.Series(y[lo : lo + 50], index=chunk.index)
        if lo >= t0 + 200:
            hits.extend(np.asarray(model.predict_many(chunk)) == target.to_numpy())
        model.learn_many(chunk, target)
    print(f"late-feature accuracy {np.mean(hits):.3f}")
    assert np.mean(hits) > 0.75


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("cls", [AMClassifier, AMRegressor])
def test_a_feature_not_yet_stepped_on_is_ignored_by_predictions(cls, standardize, tmp_path):
    # between a feature's arrival and the step that first learns it, its frame is a placeholder (mean 0,
    # scale 1): its raw value reached weights drawn for it, and a late value of 1,000 moved a regressor's
    # predictions by thousands (an adversarial review of e9f2e5b)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(64, 3)), columns=["a", "b", "c"])
    y = pd.Series(rng.integers(2, size=64) if cls is AMClassifier else rng.normal(size=64))
    model = cls(seed=0, standardize=standardize)
    model.learn_many(X, y)
    late = X.iloc[:5].assign(price=1000.0 + rng.normal(size=5))
    model.learn_many(late, y.iloc[:5])  # buffered: no step yet
    assert model.n_steps == 2
    predict = model.predict_proba_many if isinstance(model, AMClassifier) else model.predict_many
    assert np.array_equal(np.asarray(predict(late)), np.asarray(predict(X.iloc[:5])))
    model.save(tmp_path / "m")  # and so after a reload, also of a state saved before meta.stepped
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    for drop in (False, True) if standardize else (False,):  # (without: no frame told what was new)
        if drop:
            del config["meta"]["stepped"]
            (tmp_path / "m" / "config.json").write_text(json.dumps(config))
        loaded = cls.load(tmp_path / "m")
        predict = loaded.predict_proba_many if cls is AMClassifier else loaded.predict_many
        assert np.array_equal(np.asarray(predict(late)), np.asarray(predict(X.iloc[:5])))
    model.learn_many(X.iloc[5:32].assign(price=1000.0), y.iloc[5:32])  # the step that learns it
    predict = model.predict_proba_many if cls is AMClassifier else model.predict_many
    assert not np.array_equal(np.asarray(predict(late)), np.asarray(predict(X.iloc[:5])))


@pytest.mark.parametrize("cls", [AMClassifier, AMRegressor])
def test_river_clone_takes_new_parameters_and_refuses_unknown_ones_naming_them(cls):
    model = cls(seed=0, batch_size=8)
    copy = model.clone({"seed": 3})
    assert type(copy) is cls and copy.seed == 3 and copy.batch_size == 8 and model.seed == 0
    for bad, named in (({"nope": 1}, "'nope'"), ({1: 2}, "1"), (["seed"], "new_params")):
        with pytest.raises(ValueError, match=named):
            model.clone(bad)
    with pytest.raises(ValueError, match="hidden_sizes"):
        model.clone({"hidden_sizes": (0,)})


def test_integer_labels_beyond_int64_stay_exact_and_distinct(tmp_path):
    X = pd.DataFrame([[0.1, 0.2], [0.3, -0.1], [1.0, 2.0], [-1.0, 0.5]], columns=["a", "b"])
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    model.learn_many(X, pd.Series([2**63 - 1, 1, 2, 3], dtype=object))
    assert model.classes_.dtype == np.int64
    model.learn_many(X, pd.Series([2**63, 1, 2, 3], dtype=object))  # (numpy made the five labels floats: two equal)
    expected = [2**63 - 1, 1, 2, 3, 2**63]
    assert model.classes_.tolist() == expected and [type(c) for c in model.classes_] == [int] * 5
    assert model.predict_proba_many(X).columns.tolist() == expected
    loaded = AMClassifier.load(model.save(tmp_path / "m"))
    assert loaded.classes_.tolist() == expected
    pd.testing.assert_frame_equal(loaded.predict_proba_many(X), model.predict_proba_many(X))


@pytest.mark.parametrize("cls", [AMClassifier, BackpropClassifier])
@pytest.mark.parametrize("hidden", [(), (4,)])
@pytest.mark.parametrize("chunk", [1, 3, 7, 60])
def test_learn_many_registers_features_and_labels_row_by_row_as_learn_one(cls, hidden, chunk):
    """On a linear network a new feature draws weights for the outputs there are: a chunk whose new label came
    before a new feature used to register the feature first (helper-57's review)."""
    rng = np.random.default_rng(0)
    rows, labels = [], []
    for i in range(60):  # a new class at rows 0, 5, 11, 23, 40; a new feature at rows 0, 6, 12, 24, 41
        rows.append({f"f{j}": float(rng.normal()) for j in range(1 + sum(i > r for r in (5, 11, 23, 40)))})
        labels.append("abcde"[sum(i >= r for r in (5, 11, 23, 40))] if i % 3 else "a")
    one, many = (cls(hidden_sizes=hidden, batch_size=4, seed=0) for _ in range(2))
    for x, y in zip(rows, labels, strict=True):
        one.learn_one(x, y)
    for s in range(0, 60, chunk):
        many.learn_many(pd.DataFrame(rows[s:s + chunk]), pd.Series(labels[s:s + chunk]))
    assert state_key(one) == state_key(many)
