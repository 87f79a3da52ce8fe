"""Hostile inputs to the continual-learning wrappers (ReplayClassifier, EWCClassifier, DriftAware).

Every refused input is a ``ValueError`` naming its field, and changes nothing: pending samples, the reservoir,
random generators, detector state, counters and the wrapped model's weights stay bit for bit as they were.
"""

from __future__ import annotations

import copy
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from fake_engine import FixedClassifier
from river import drift

from stream_am import AMClassifier
from stream_am.checks import InputError
from stream_am.drift import DriftAware
from stream_am.strategies import EWCClassifier, ReplayClassifier


def _am(**kwargs):
    return AMClassifier(hidden_sizes=(4,), batch_size=4, code_steps=2, seed=0, **kwargs)


def _rows(n, start=0):
    return [({"a": float(i % 3), "b": float(i % 2)}, i % 2) for i in range(start, start + n)]


def _frame(rows):
    return pd.DataFrame([x for x, _ in rows]), pd.Series([y for _, y in rows])


def _refused(call, field, key=None):
    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(info.value, InputError) and info.value.field == field
    assert str(info.value).startswith(field if key is None else f"{field}[{key!r}]")


def _tensors_equal(a, b):
    return len(a) == len(b) and all(torch.equal(s, t) for s, t in zip(a, b, strict=True))


# -- ReplayClassifier -----------------------------------------------------------------------------------------
def _replay(**kwargs):
    model = ReplayClassifier(_am(**kwargs), buffer_size=8, batch_size=4, seed=0)
    for x, y in _rows(9):  # two steps done, one sample pending
        model.learn_one(x, y)
    return model


def _replay_snapshot(model):
    return (copy.deepcopy(model._pending), copy.deepcopy(model.buffer_), model.n_seen_,
            model._rng.bit_generator.state, pickle.dumps(model.classifier))


@pytest.mark.parametrize(("x", "y", "field", "key"), [
    ({"a": 1.0, "b": 0.0}, None, "y", None),
    ({"a": 1.0, "b": 0.0}, float("nan"), "y", None),
    ({"a": 1.0, "b": 0.0}, "one", "y", None),  # labels so far are ints
    ({"a": float("nan"), "b": 0.0}, 1, "x", "a"),  # NaN in a dict is refused, as by AMClassifier.learn_one
    ({"a": math.inf, "b": 0.0}, 1, "x", "a"),
    ({"a": "3", "b": 0.0}, 1, "x", "a"),
])
def test_replay_refused_learn_one_keeps_the_pending_samples(x, y, field, key):
    model = _replay()
    model.learn_one(*_rows(1, 9)[0])
    model.learn_one(*_rows(1, 10)[0])  # three pending: the refused sample would have been the fourth
    before = _replay_snapshot(model)
    _refused(lambda: model.learn_one(x, y), field, key)
    assert _replay_snapshot(model) == before
    model.learn_one(*_rows(1, 11)[0])  # the next valid sample completes the batch of the three pending ones
    assert model._pending == [] and model.n_seen_ == 12


@pytest.mark.parametrize("bad", ["inf", "text", "label", "type", "length"])
def test_replay_refused_learn_many_changes_nothing(bad):
    model = _replay()
    X, y = _frame(_rows(4, 20))
    if bad == "inf":
        X.loc[2, "a"] = math.inf
    elif bad == "text":
        X["a"] = X["a"].astype(str)
    elif bad == "label":
        y = pd.Series([0, 1, None, 1], dtype=object)
    elif bad == "type":
        y = pd.Series(["0", "1", "0", "1"])
    else:
        y = y[:3]
    before = _replay_snapshot(model)
    with pytest.raises(ValueError, match="^[Xy]"):
        model.learn_many(X, y)
    assert _replay_snapshot(model) == before


def test_replay_refusal_by_the_wrapped_classifier_changes_nothing_either():
    model = _replay(standardize=False)  # the classifier refuses unscaled values beyond 1e9; the wrapper passes them
    X, y = _frame(_rows(4, 20))
    X.loc[0, "b"] = 1e16
    before = _replay_snapshot(model)
    with pytest.raises(ValueError, match="magnitude"):
        model.learn_many(X, y)
    assert _replay_snapshot(model) == before


def test_replay_nan_in_a_frame_is_a_missing_feature_and_an_empty_frame_changes_nothing():
    model = ReplayClassifier(_am(), buffer_size=100, seed=0)
    X, y = _frame(_rows(4, 20))
    X.loc[1, "a"] = np.nan
    model.learn_many(X, y)
    assert [x for x, _ in model.buffer_][:2] == [{"a": 2.0, "b": 0.0}, {"b": 1.0}]
    before = _replay_snapshot(model)
    model.learn_many(X[:0], y[:0])
    assert _replay_snapshot(model) == before


@pytest.mark.parametrize("seed", ["x", -1, 1.5, True, 2**64])
def test_replay_seed_must_be_a_non_negative_int(seed):
    with pytest.raises(ValueError, match="^seed must"):
        ReplayClassifier(_am(), seed=seed)


# -- EWCClassifier ----------------------------------------------------------------------------------------------
def _ewc(n=9):
    model = EWCClassifier(hidden_sizes=(4,), batch_size=4, consolidate_every=4, seed=0)
    for x, y in _rows(n):
        model.learn_one(x, y)
    return model


def _ewc_snapshot(model):
    net = [t.clone() for t in model._net.state_dict().values()] if model._features is not None else []
    opt = [t.clone() for s in model._opt.state.values() for t in s.values()] if net else []
    extra = [t.clone() for t in (*model._fisher, *model._window, *model._anchor)] if net else []
    return net, opt, extra, (copy.deepcopy(model._pending), list(model.classes_), model.n_consolidations_,
                             model._features, getattr(model, "_n_window", None))


def _ewc_unchanged(before, after):
    return all(_tensors_equal(a, b) for a, b in zip(before[:3], after[:3], strict=True)) and before[3] == after[3]


@pytest.mark.parametrize(("x", "y", "field", "key"), [
    ({"a": 1.0, "b": 0.0}, None, "y", None),
    ({"a": 1.0, "b": 0.0}, float("nan"), "y", None),
    ({"a": 1.0, "b": 0.0}, True, "y", None),  # labels so far are ints: True is not 1 here
    ({"a": 1.0, "b": 0.0}, [1], "y", None),
    ({"a": float("nan"), "b": 0.0}, 1, "x", "a"),  # not read as 0
    ({"a": "3", "b": 0.0}, 1, "x", "a"),
    ({"a": 1e16, "b": 0.0}, 1, "x", "a"),  # reaches the float32 network unscaled
])
def test_ewc_refused_learn_one_keeps_the_pending_batch_and_the_network(x, y, field, key):
    model = _ewc()
    model.learn_one(*_rows(1, 9)[0])
    model.learn_one(*_rows(1, 10)[0])  # three pending
    before = _ewc_snapshot(model)
    _refused(lambda: model.learn_one(x, y), field, key)
    assert _ewc_unchanged(before, _ewc_snapshot(model))
    model.learn_one(*_rows(1, 11)[0])  # completes the batch of the three pending samples
    assert model._pending == [] and model.n_consolidations_ == 3


@pytest.mark.parametrize("bad", ["inf", "text", "label", "type", "length", "not a frame"])
def test_ewc_refused_learn_many_changes_nothing(bad):
    model = _ewc(8)
    X, y = _frame(_rows(4, 20))
    if bad == "inf":
        X.loc[2, "a"] = -math.inf
    elif bad == "text":
        X["a"] = X["a"].astype(str)
    elif bad == "label":
        y = pd.Series([0, 1, None, 1], dtype=object)
    elif bad == "type":
        y = pd.Series([0.0, 1.0, 0.0, 1.0])
    elif bad == "length":
        y = y[:3]
    else:
        X = X.to_numpy()
    before = _ewc_snapshot(model)
    with pytest.raises(ValueError, match="^[Xy]"):
        model.learn_many(X, y)
    assert _ewc_unchanged(before, _ewc_snapshot(model))


def test_ewc_empty_learn_many_changes_nothing_and_builds_nothing():
    model = EWCClassifier(hidden_sizes=(4,), seed=0)
    model.learn_many(pd.DataFrame({"a": []}), pd.Series([], dtype=int))
    assert model._features is None and model.classes_ == [] and not hasattr(model, "_net")


def test_ewc_nan_in_a_frame_reads_as_zero():
    X, y = _frame(_rows(4))
    a, b = EWCClassifier(hidden_sizes=(4,), seed=0), EWCClassifier(hidden_sizes=(4,), seed=0)
    with_nan, with_zero = X.copy(), X.copy()
    with_nan.loc[1, "a"], with_zero.loc[1, "a"] = np.nan, 0.0
    a.learn_many(with_nan, y)
    b.learn_many(with_zero, y)
    assert _tensors_equal(list(a._net.state_dict().values()), list(b._net.state_dict().values()))


def test_ewc_new_classes_draw_no_global_random_number():
    model = _ewc(8)
    state = torch.random.get_rng_state()
    model.learn_many(pd.DataFrame({"a": [0.0, 1.0], "b": [1.0, 0.0]}), pd.Series([2, 3]))
    assert model.classes_ == [0, 1, 2, 3] and torch.equal(torch.random.get_rng_state(), state)


def test_ewc_predictions_refuse_what_learning_refuses():
    model = _ewc(8)
    _refused(lambda: model.predict_proba_one({"a": float("nan")}), "x", "a")
    _refused(lambda: model.predict_many(pd.DataFrame({"a": ["1"]})), "X", "a")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"hidden_sizes": (0,)}, "hidden_sizes"),
    ({"hidden_sizes": [8]}, "hidden_sizes"),
    ({"hidden_sizes": (8, True)}, "hidden_sizes"),
    ({"seed": -1}, "seed"),
    ({"seed": "x"}, "seed"),
    ({"seed": None}, "seed"),
    ({"batch_size": 0}, "batch_size"),
])
def test_ewc_parameter_errors_name_the_field_at_construction(kwargs, field):
    with pytest.raises(ValueError, match=f"^{field} must"):
        EWCClassifier(**kwargs)


# -- DriftAware -------------------------------------------------------------------------------------------------
class _Zero(FixedClassifier):
    """Predicts 0; refuses (as a stricter classifier would) any feature called ``refused``."""

    def __init__(self):
        super().__init__({0: 1.0})

    def learn_one(self, x, y):
        if "refused" in x:
            raise ValueError("x['refused'] is refused by the classifier")
        super().learn_one(x, y)

    def learn_many(self, X, y):
        if "refused" in X:
            raise ValueError("X['refused'] is refused by the classifier")
        super().learn_many(X, y)


def _drift_state(model):
    return (pickle.dumps(model._detector), model.n_seen_, list(model.drifts_), list(model.classifier.engine.forgets),
            sorted(model._seen))


def _switch(i):
    """Label 1 once in ten samples, then always from the 30th (both labels known before the switch)."""
    return int(i >= 30 or i % 10 == 5)


def _about_to_fire():
    """A DriftAware whose detector fires on the next sample with a loss of 1."""
    def make():
        return DriftAware(_Zero(), drift.PageHinkley(min_instances=10, threshold=3.0), forget_factor=0.5)

    probe = make()
    for i in range(60):
        probe.learn_one({"a": 0.0}, _switch(i))
    first = probe.drifts_[0]
    model = make()
    for i in range(first - 1):
        model.learn_one({"a": 0.0}, _switch(i))
    return model


@pytest.mark.parametrize(("y", "field", "key", "x"), [
    (None, "y", None, {"a": 0.0}),
    (float("nan"), "y", None, {"a": 0.0}),
    ("1", "y", None, {"a": 0.0}),  # labels so far are ints
    (1, "x", "a", {"a": float("nan")}),
])
def test_drift_refused_learn_one_is_not_observed_nor_forgotten(y, field, key, x):
    model = _about_to_fire()
    before = _drift_state(model)
    _refused(lambda: model.learn_one(x, y), field, key)
    assert _drift_state(model) == before and model.classifier.learnt == model.n_seen_
    model.learn_one({"a": 0.0}, 1)  # the same sample, valid, fires
    assert model.drifts_ and model.classifier.engine.forgets == [0.5]


@pytest.mark.parametrize("bad", ["label", "type", "inf"])
def test_drift_refused_learn_many_changes_nothing(bad):
    model = DriftAware(_am(), forget_factor=0.5)
    X, y = _frame(_rows(8))
    model.learn_many(X, y)
    X2, y2 = _frame(_rows(4, 8))
    if bad == "label":
        y2 = pd.Series([0, None, 1, 0], dtype=object)
    elif bad == "type":
        y2 = y2.astype(str)
    else:
        X2.loc[0, "a"] = math.inf
    before = (pickle.dumps(model._detector), model.n_seen_, list(model.drifts_), pickle.dumps(model.classifier))
    with pytest.raises(ValueError, match="^[Xy]"):
        model.learn_many(X2, y2)
    assert (pickle.dumps(model._detector), model.n_seen_, list(model.drifts_),
            pickle.dumps(model.classifier)) == before


def test_drift_refusal_by_the_wrapped_classifier_is_not_observed():
    model = DriftAware(_Zero(), drift.PageHinkley(min_instances=10, threshold=3.0))
    for _ in range(5):
        model.learn_one({"a": 0.0}, 0)
    before = _drift_state(model)
    with pytest.raises(ValueError, match="refused"):
        model.learn_one({"refused": 1.0}, 0)
    with pytest.raises(ValueError, match="refused"):
        model.learn_many(pd.DataFrame({"refused": [1.0, 2.0]}), pd.Series([0, 0]))
    assert _drift_state(model) == before


def test_ewc_refuses_a_first_step_without_features_and_keeps_nothing_of_it():
    model = EWCClassifier(hidden_sizes=(4,), batch_size=2, seed=0)
    with pytest.raises(ValueError, match="^X has no features"):
        model.learn_many(pd.DataFrame(index=range(3)), pd.Series([0, 1, 0]))
    with pytest.raises(ValueError, match="^x has no features"):
        model.learn_one({}, 1)
    assert model._features is None and model.classes_ == [] and model._pending == []
    model.learn_one({"a": 1.0}, 0)
    model.learn_one({}, 1)  # the pending row has a feature: this step fixes ["a"]
    assert model._features == ["a"] and model.classes_ == [0, 1]
    model.learn_many(pd.DataFrame(index=range(2)), pd.Series([1, 0]))  # fixed already: missing reads as 0
    assert model._features == ["a"]


@pytest.mark.parametrize("key", [None, ("t", 1)])
def test_a_none_or_tuple_feature_name_is_kept_through_the_strategies(key):
    """``pd.DataFrame`` of dicts makes a None key NaN (refused) and tuple keys a MultiIndex: a replay buffer that
    learned such rows refused every later call (helper-57's review)."""
    from stream_am.evaluate import accuracy_on

    replay = ReplayClassifier(AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0), buffer_size=8, batch_size=4)
    ewc = EWCClassifier(hidden_sizes=(4,), batch_size=4)
    for model in (replay, ewc):
        for i in range(12):
            model.learn_one({key: float(i % 2), "c": 1.0}, i % 2)
        model.learn_one({"c": 1.0}, 0)
        assert set(model.predict_proba_one({key: 1.0})) == {0, 1}
        assert 0.0 <= accuracy_on(model, [{key: 0.0}, {key: 1.0, "c": 1.0}], [0, 1]) <= 1.0
    assert set(replay.classifier.feature_names_in_) == {key, "c"}
