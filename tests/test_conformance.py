"""One conformance suite over every estimator: purity, RNG hygiene, persistence, growth, batching, errors."""

from __future__ import annotations

import copy
import json
import pickle
import random

import numpy as np
import pandas as pd
import pytest
import torch
from estimator_helpers import (
    CLASSIFIERS,
    FACTORIES,
    assert_prefix_kept,
    assert_same_snapshot,
    engine_state,
    frames,
    is_classifier,
    snapshot,
    state_key,
    stream,
)

NAMES = list(FACTORIES)


def _learn(model, rows):
    for x, y in rows:
        model.learn_one(x, y)


def _probe(model, rows):
    out = []
    for x, _ in rows:
        out.append(model.predict_proba_one(x) if is_classifier(model) else model.predict_one(x))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_predictions_are_pure(name):
    model = FACTORIES[name]()
    rows = stream(model, 23)
    _learn(model, rows)  # 4 steps and 3 buffered samples
    before = snapshot(model)
    probe = [{**x, "never_seen": 3.0} for x, _ in rows[:6]]
    frame = pd.DataFrame(probe)
    for x in probe:
        model.predict_one(x)
        if is_classifier(model):
            model.predict_proba_one(x)
    model.predict_many(frame)
    if is_classifier(model):
        model.predict_proba_many(frame)
    assert_same_snapshot(before, snapshot(model))
    assert "never_seen" not in model._index.names


@pytest.mark.parametrize("name", NAMES)
def test_numpy_predictions_are_pure(name):
    model = FACTORIES[name]()
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.arange(12) % 2 if is_classifier(model) else X.sum(1)
    model.partial_fit(X, y)
    before = snapshot(model)
    model.predict(X)
    if is_classifier(model):
        model.predict_proba(X)
    assert_same_snapshot(before, snapshot(model))


@pytest.mark.parametrize("name", NAMES)
def test_no_global_rng_is_touched(name, tmp_path):
    torch_state, np_state, py_state = torch.random.get_rng_state(), np.random.get_state(), random.getstate()
    model = FACTORIES[name]()
    rows = stream(model, 30)
    _learn(model, rows[:20])
    model.learn_many(pd.DataFrame([x for x, _ in rows[20:]]), pd.Series([y for _, y in rows[20:]]))
    _probe(model, rows[:3])
    model.flush()
    type(model).load(model.save(tmp_path / "m"))
    pickle.loads(pickle.dumps(model))
    model.clone()
    assert torch.equal(torch_state, torch.random.get_rng_state())
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert np_state[0] == after[0] and np.array_equal(np_state[1], after[1]) and np_state[2:] == after[2:]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("how", ["pickle", "save"])
def test_persistence_predicts_and_continues_identically(name, how, tmp_path):
    model = FACTORIES[name]()
    rows = stream(model, 40)
    _learn(model, rows[:17])  # mid-buffer: the partial buffer must survive too
    if how == "pickle":
        copy_ = pickle.loads(pickle.dumps(model))
    else:
        path = model.save(tmp_path / "model")
        assert sorted(p.name for p in path.iterdir()) == ["config.json", "state.safetensors"]
        json.loads((path / "config.json").read_text())
        copy_ = type(model).load(path)
    assert _probe(copy_, rows) == _probe(model, rows)
    _learn(model, rows[17:])
    _learn(copy_, rows[17:])
    assert _probe(copy_, rows) == _probe(model, rows)
    assert state_key(copy_) == state_key(model)


@pytest.mark.parametrize("name", NAMES)
def test_persistence_before_any_learning(name, tmp_path):
    model = FACTORIES[name]()
    others = (pickle.loads(pickle.dumps(model)), type(model).load(model.save(tmp_path / "m")), copy.deepcopy(model))
    for other in others:
        assert repr(other) == repr(model)
        assert state_key(other) == state_key(model)


@pytest.mark.parametrize("name", NAMES)
def test_learn_many_and_partial_fit_equal_learn_one_bitwise(name):
    one, many = FACTORIES[name](), FACTORIES[name]()
    rows = stream(one, 47)
    sizes = [3, 9, 1, 12, 4, 18]
    columns = [["a", "b"], ["a", "b", "c", "d"], ["c"], ["d", "b"], ["a"], ["b", "a", "d", "c"]]
    for frame, target, dicts in frames(rows, sizes, columns):
        _learn(one, dicts)
        many.learn_many(frame, target)
        assert state_key(one) == state_key(many)
    assert one.n_steps == 9
    more = stream(one, 13, seed=5, features="bcxy")  # missing keys: NaN in the frame, new features mid-call
    more[0] = ({"y": 1.0}, more[0][1])
    _learn(one, more)
    many.learn_many(pd.DataFrame([x for x, _ in more]), pd.Series([y for _, y in more]))
    assert state_key(one) == state_key(many)
    X = np.random.default_rng(1).normal(size=(23, 3))
    y = [r[1] for r in stream(one, 23)]
    one_np, many_np = FACTORIES[name](), FACTORIES[name]()
    for i in range(23):
        one_np.learn_one({j: float(v) for j, v in enumerate(X[i])}, y[i])
    many_np.partial_fit(X[:11], y[:11])
    many_np.partial_fit(X[11:], y[11:])
    assert state_key(one_np) == state_key(many_np)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_emerging_class_keeps_learned_state(name):
    model = FACTORIES[name]()
    rows = [(x, y) for x, y in stream(model, 40) if y in ("x", "y")][:10]  # two full steps, two classes
    _learn(model, rows)
    old = engine_state(model)
    model.learn_one(rows[0][0], "new class")  # buffered: grows the output layer, no step
    grown = assert_prefix_kept(old, engine_state(model))
    assert any(k.startswith("module.") for k in grown)
    assert model._engine.n_outputs == 3 and list(model.predict_proba_one(rows[0][0])) == ["x", "y", "new class"]


@pytest.mark.parametrize("name", NAMES)
def test_emerging_feature_keeps_learned_state(name):
    model = FACTORIES[name]()
    rows = stream(model, 10, features="ab", n_classes=2)
    _learn(model, rows)
    old = engine_state(model)
    n_in = model._engine.n_inputs
    model.learn_one({**rows[0][0], "z": 1.0, "c": 2.0}, rows[0][1])
    grown = assert_prefix_kept(old, engine_state(model))
    assert any(k.startswith("module.") for k in grown)
    assert model._engine.n_inputs == n_in + 2 and model._index.names == ["a", "b", "c", "z"]


def _in_inference_mode(call):
    """``call`` made inside ``torch.inference_mode()`` (learning there is refused before anything changes)."""

    def run(model):
        with torch.inference_mode():
            return call(model)

    return run


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_raises_and_changes_nothing(name):
    model = FACTORIES[name]()
    clf = is_classifier(model)
    rows = stream(model, 13)
    _learn(model, rows)
    X = np.random.default_rng(0).normal(size=(6, 2))
    numpy_model = FACTORIES[name]()
    if clf:
        numpy_model.partial_fit(X, ["p", "q"] * 3, classes=["p", "q"])
    else:
        numpy_model.partial_fit(X, X[:, 0])
    good_y = rows[0][1]
    numpy_model_y = ["p", "q"] if clf else X[:, 0]
    cases = [
        (model, lambda m: m.learn_one({"a": "text"}, good_y), "x['a']"),
        (model, lambda m: m.learn_one({"a": float("nan")}, good_y), "x['a']"),
        (model, lambda m: m.learn_one({"a": None}, good_y), "x['a']"),
        (model, lambda m: m.learn_one([1.0, 2.0], good_y), "x must be a dict"),
        (model, lambda m: m.learn_one({"a": 1.0}, None if clf else "ten"), "y"),
        (model, lambda m: m.learn_many(pd.DataFrame({"a": [1.0, 2.0]}), pd.Series([good_y])), "y must be 1-d with 2"),
        (model, lambda m: m.learn_many(pd.DataFrame({"a": [1.0, np.inf]}), pd.Series([good_y] * 2)), "X['a']"),
        (model, lambda m: m.learn_many(pd.DataFrame({"s": ["u", "v"]}), pd.Series([good_y] * 2)), "X['s']"),
        (model, lambda m: m.predict_one({"a": "text"}), "x['a']"),
        (numpy_model, lambda m: m.partial_fit(np.ones((2, 3)), [good_y] * 2), "X has 3 features, but"),
        (numpy_model, lambda m: m.partial_fit(np.array([[1.0, np.nan]]), [good_y]), "X[1]"),
        (numpy_model, lambda m: m.predict(np.ones((2, 5))), "expecting 2 features"),
        (model, lambda m: m.partial_fit(np.ones((1, 4)), [good_y]), "named features"),
        (model, _in_inference_mode(lambda m: m.learn_one(rows[0][0], good_y)), "inference_mode"),
        (model, _in_inference_mode(lambda m: m.learn_many(pd.DataFrame([x for x, _ in rows[:3]]),
                                                         pd.Series([y for _, y in rows[:3]]))), "inference_mode"),
        (numpy_model, _in_inference_mode(lambda m: m.partial_fit(X[:2], numpy_model_y[:2])), "inference_mode"),
    ]
    if clf:
        cases += [
            (numpy_model, lambda m: m.partial_fit(X[:2], ["p", "other"]), "y[1] = 'other'"),
            (numpy_model, lambda m: m.partial_fit(X[:2], ["p", "q"], classes=["p", "r"]), "classes"),
        ]
    for target, call, message in cases:
        before = snapshot(target)
        with pytest.raises(ValueError) as info:
            call(target)
        assert message in str(info.value), (message, str(info.value))
        assert_same_snapshot(before, snapshot(target))


@pytest.mark.parametrize("name", NAMES)
def test_learning_does_not_mutate_inputs(name):
    model = FACTORIES[name]()
    rows = stream(model, 12)
    frame = pd.DataFrame([x for x, _ in rows])
    target = pd.Series([y for _, y in rows])
    frame_copy, target_copy, rows_copy = frame.copy(), target.copy(), copy.deepcopy(rows)
    model.learn_many(frame, target)
    _learn(model, rows)
    pd.testing.assert_frame_equal(frame, frame_copy)
    pd.testing.assert_series_equal(target, target_copy)
    assert rows == rows_copy


@pytest.mark.parametrize("name", NAMES)
def test_state_lives_on_the_requested_device(name):
    model = FACTORIES[name]().clone({"device": "cpu"})
    _learn(model, stream(model, 10))
    assert all(v.device.type == "cpu" for v in model._engine.state_dict().values())


@pytest.mark.gpu
@pytest.mark.parametrize("name", NAMES)
def test_cuda_state_persistence_and_continued_learning(name, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    model = FACTORIES[name]().clone({"device": "cuda"})
    rows = stream(model, 40)
    _learn(model, rows[:17])
    assert all(p.device.type == "cuda" for p in model.engine.module.parameters())
    assert all(v.device.type == "cuda" for k, v in model.engine.state_dict().items() if k.startswith("module."))
    copies = [pickle.loads(pickle.dumps(model)), type(model).load(model.save(tmp_path / "m"))]
    for other in copies:
        assert _probe(other, rows) == _probe(model, rows)
    for m in (model, *copies):
        _learn(m, rows[17:])
    for other in copies:
        assert _probe(other, rows) == _probe(model, rows)
        assert state_key(other) == state_key(model)


@pytest.mark.parametrize("name", NAMES)
def test_the_engine_follows_the_engine_protocol(name):
    from stream_am.engine import Engine

    model = FACTORIES[name]()
    _learn(model, stream(model, 12))
    assert isinstance(model.engine, Engine)
    assert model.engine.n_steps == model.n_steps >= 2 and model.engine.samples_seen == 10
