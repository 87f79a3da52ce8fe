"""Validate, then apply: a call the estimator refuses leaves it exactly as it was (issue 14)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from stream_am import AMClassifier, AMRegressor
from stream_am.checks import InputError
from stream_am.estimators import inputs


def _state(model: Any) -> tuple[Any, dict[str, bytes]]:
    meta, arrays = model._payload()
    extra = {"classes": list(getattr(model, "_classes", []))}
    return (meta, extra), {k: np.ascontiguousarray(v).tobytes() for k, v in arrays.items()}


def _rows(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"a": [(start + i) % 5 / 5.0 for i in range(n)], "b": [(i * 7 % 11) / 11.0 for i in range(n)]})


def test_rejected_batch_with_huge_value_leaves_classifier_unchanged() -> None:
    """Issue 14.1: a 1e300 in a 32-row batch used to stay buffered and overflow the feature statistics."""
    model = AMClassifier(hidden_sizes=(8,), batch_size=32, seed=0)
    model.learn_one({"y": 1.0}, "a")
    before = _state(model)
    bad = pd.DataFrame({"x": [1e300] + [float(i) for i in range(31)], "z": [-1e300] + [0.0] * 31})
    with pytest.raises(InputError, match="magnitude limit") as err:
        model.learn_many(bad, pd.Series(["b"] * 32))
    assert (err.value.field, err.value.row, err.value.key) == ("X", 0, "x")
    assert _state(model) == before
    assert model.n_buffered == 1 and model.feature_names_in_ == ["y"] and model.classes_.tolist() == ["a"]
    model.learn_many(_rows(40), pd.Series(["a", "b"] * 20))  # still learns
    assert model.n_steps == 1 and np.isfinite(model.predict_proba_many(_rows(4)).to_numpy()).all()


@pytest.mark.parametrize("target", [1e200, 1e308, -1e308, 10**400])
def test_huge_regression_target_is_refused_up_front(target: Any) -> None:
    """Issue 14.2: one huge target used to overflow the target statistics and break every later learn."""
    model = AMRegressor(hidden_sizes=(8,), batch_size=4, seed=0)
    model.learn_many(_rows(3), pd.Series([0.5, 1.0, 1.5]))
    before = _state(model)
    with pytest.raises(ValueError, match="y"):
        model.learn_one({"a": 1.0, "b": 0.0}, target)
    with pytest.raises(InputError) as err:
        model.learn_many(_rows(8), pd.Series([1.0, target] + [0.0] * 6, dtype=object))
    assert (err.value.field, err.value.row) == ("y", 1)
    assert _state(model) == before
    model.learn_many(_rows(9, 3), pd.Series(np.linspace(0, 2, 9)))
    assert model.n_steps == 3 and np.isfinite(model.predict_many(_rows(5)).to_numpy()).all()


def test_values_within_the_limits_never_overflow_the_statistics() -> None:
    big = inputs.MAX_MAGNITUDE
    model = AMRegressor(hidden_sizes=(4,), batch_size=4, seed=0)
    xs = pd.DataFrame({"a": [big, -big, big, -big, 0.0, 1.0, -big, big]})
    model.learn_many(xs, pd.Series([big, -big, 0.0, 1.0, -big, big, 2.0, 3.0]))
    assert model.n_steps == 2
    mean, scale = model._moments.mean_scale()
    assert np.isfinite(mean).all() and np.isfinite(scale).all()
    raw = AMRegressor(hidden_sizes=(4,), batch_size=4, standardize=False, seed=0)
    with pytest.raises(InputError, match="1e\\+09"):
        raw.learn_one({"a": 1e10}, 1.0)


def test_one_label_type_per_classifier() -> None:
    """Issue 14.10: [1, 0] after [True, False] used to merge into the boolean classes."""
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    model.learn_many(_rows(2), pd.Series([True, False]))
    before = _state(model)
    with pytest.raises(InputError, match="y\\[0\\] = 1 is a int.*bool") as err:
        model.learn_many(_rows(2), pd.Series([1, 0]))
    assert err.value.row == 0
    with pytest.raises(ValueError, match="one label type"):
        model.learn_one({"a": 1.0}, 1)
    with pytest.raises(ValueError, match="one label type"):
        model.learn_many(_rows(2), pd.Series([True, "True"], dtype=object))
    assert _state(model) == before
    other = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    with pytest.raises(ValueError, match="one label type"):
        other.learn_many(_rows(2), pd.Series([1, "1"], dtype=object))
    assert other.n_buffered == 0 and other.classes_.tolist() == []


def test_a_device_that_cannot_step_is_refused_before_buffering(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, device="cuda", seed=0)
    model.learn_many(_rows(3), pd.Series([0, 1, 0]))  # no step yet: buffered
    before = _state(model)
    with pytest.raises(ValueError, match="CUDA"):
        model.learn_many(_rows(4), pd.Series([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="CUDA"):
        model.learn_one({"a": 1.0}, 1)
    assert _state(model) == before


@pytest.mark.parametrize(
    ("params", "match"),
    [({"seed": 10**30}, "seed"), ({"device": "meta"}, "device"), ({"seed": -1}, "seed")],
)
def test_unusable_settings_are_refused_by_the_constructor(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        AMClassifier(**params)


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.partial_fit(np.array([[1.0, 2.0], [1e300, 0.0]]), [0, 1], classes=[0, 1, 2]),
        lambda m: m.partial_fit(np.array([[1.0, 2.0]]), [True], classes=[True, False]),
        lambda m: m.partial_fit(np.array([[1.0, 2.0], [3.0, 4.0]]), [0, 7], classes=[0, 1]),
        lambda m: m.learn_one({0: 1.0, 1: -1e21}, 0),
        lambda m: m.learn_one({0: 1.0, 5: 1.0}, "a"),
        lambda m: m.learn_many(pd.DataFrame({0: [1.0, np.nan], 1: [np.inf, 1.0]}), pd.Series([0, 1])),
    ],
)
def test_every_entry_point_refuses_without_changing_the_classifier(call: Any) -> None:
    model = AMClassifier(hidden_sizes=(4,), batch_size=2, seed=0)
    model.partial_fit(np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]]), [0, 1, 0])  # a step, then one buffered
    before = _state(model)
    with pytest.raises(ValueError):
        call(model)
    assert _state(model) == before


@pytest.mark.parametrize("param", ["memory_decay", "ridge", "lambda_c", "lambda_w"])
def test_a_float_parameter_given_an_int_too_large_for_a_float_is_a_value_error_naming_it(param: str) -> None:
    """Found by a review: ``math.isfinite(10**400)`` raises ``OverflowError``, which escaped the checks."""
    with pytest.raises(ValueError, match=param):
        AMClassifier(**{param: 10**400})


def test_a_frame_of_python_values_learns_as_its_rows_do_one_by_one() -> None:
    """pandas keeps Python values in an object column (a bool beside a missing cell, an int past 2**63): each cell
    is read as ``learn_one`` reads it, a missing one (None, NaN, pd.NA) is absent, and any other cell is refused."""
    dicts = [{"a": True, "b": 1.0}, {"b": 2.0}, {"a": 10**19, "b": 0.5}, {"a": False, "b": -1.0}, {"a": None}] * 8
    ys = [k % 2 for k in range(len(dicts))]
    frame = pd.DataFrame(dicts)
    assert frame["a"].dtype == object
    one, many = (AMClassifier(hidden_sizes=(8,), batch_size=8, seed=0) for _ in range(2))
    for x, y in zip(dicts, ys, strict=True):
        one.learn_one({k: v for k, v in x.items() if v is not None}, y)
    many.learn_many(frame, pd.Series(ys))
    assert _state(one) == _state(many)
    for cell, message in (("s", "a real number"), (1 + 0j, "a real number"), (10**400, "finite")):
        bad = frame.copy()
        bad.loc[3, "a"] = cell
        before = _state(many)
        with pytest.raises(InputError, match=rf"X\['a'\]\[3\] must be {message}"):
            many.learn_many(bad, pd.Series(ys))
        assert _state(many) == before


def _learned() -> AMClassifier:
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    model.partial_fit(np.random.default_rng(0).normal(size=(6, 2)), [0, 1, 0, 1, 0, 1])
    return model


@pytest.mark.parametrize(("call", "match"), [
    (lambda m: m.partial_fit(np.array([[10**400, 2.0]], dtype=object), [0]), "^X must hold real numbers"),
    (lambda m: m.predict(np.array([[10**400, 2.0]], dtype=object)), "^X must hold real numbers"),
    (lambda m: m.partial_fit(np.array([[np.datetime64("2020-01-01")] * 2] * 2), [0, 1]), "^X must hold real numbers"),
    (lambda m: m.partial_fit(np.ma.masked_array([[1.0, 2.0]] * 2, mask=[[0, 1]] * 2), [0, 1]), "^X is a masked"),
    (lambda m: m.partial_fit(np.zeros((2, 2)), [0, 1], classes=5), "^classes must be a collection of labels"),
    (lambda m: m.partial_fit(np.zeros((2, 2)), [0, 1], classes="01"), "^classes must be a collection of labels"),
    (lambda m: m.partial_fit(np.zeros((2, 2)), [0, 1], classes=np.zeros((2, 2))), "^classes must be a 1-d array"),
    (lambda m: m.learn_one({"a": np.timedelta64(5, "s")}, 0), r"^x\['a'\] must be a real number"),
    (lambda m: m.learn_many(pd.DataFrame({"a": pd.Series([np.timedelta64(5, "s")], dtype=object)}),
                            pd.Series([0])), r"^X\['a'\]\[0\] must be a real number"),
    (lambda m: m.learn_one({"a": 10**5000}, 0), r"^x\['a'\] must be finite, got <an int of 16,610 bits>"),
    (lambda m: m.learn_one({10**5000: 1.0}, 0), "^x has a feature name .* an int longer than 13,000 bits"),
    (lambda m: m.learn_one({"a": 1.0}, 10**5000), "^y must be a hashable class label .* <an int of 16,610 bits>"),
], ids=["int-beyond-float64", "predict-int-beyond-float64", "datetime64", "masked", "classes-not-a-list",
                                   "classes-a-str", "classes-2-d",
        "timedelta", "timedelta-in-a-frame", "int-too-long-to-write", "name-too-long-to-write",
        "label-too-long-to-write"])
def test_inputs_numpy_or_python_cannot_learn_are_refused_naming_them_and_change_nothing(call, match) -> None:
    """helper-57's review: these raised OverflowError, TypeError or an unnamed ValueError, or were learned wrong
    (dates as days, a masked array's hidden cells, (1,) and (True,) as one label)."""
    model = _learned()
    before = _state(model)
    with pytest.raises(ValueError, match=match):
        call(model)
    assert _state(model) == before


def test_a_longdouble_label_is_the_python_float_it_equals(tmp_path) -> None:
    model = AMClassifier(hidden_sizes=(4,), batch_size=2, seed=0)
    model.learn_one({"a": 1.0}, np.longdouble(2.5))
    model.learn_one({"a": 0.0}, 2.5)  # (was refused: "labels are of type longdouble")
    assert model.classes_.tolist() == [2.5] and type(model.classes_.tolist()[0]) is float
    assert AMClassifier.load(model.save(tmp_path / "m")).classes_.tolist() == [2.5]


def test_tuple_labels_of_other_item_types_are_refused_not_merged() -> None:
    model = AMClassifier(hidden_sizes=(4,), batch_size=2, seed=0)
    model.learn_one({"a": 1.0}, (1,))
    before = _state(model)
    with pytest.raises(ValueError, match=r"^y = \(True,\) equals the label \(1,\), whose items are of other types"):
        model.learn_one({"a": 1.0}, (True,))  # (equal keys: it was learned as the class (1,))
    assert _state(model) == before
    model.learn_one({"a": 0.0}, (2,))
    model.learn_one({"a": 0.5}, ("a", 2.5))  # (tuples of other shapes never equal these: learned, as before)
    assert model.classes_.tolist() == [(1,), (2,), ("a", 2.5)]


def test_a_tuple_of_numpy_items_is_the_same_label_as_of_python_items() -> None:
    """helper-60's review: labels zipped from numpy arrays kept their numpy items and were refused against the
    same label of Python items (yesterday one class)."""
    model = AMClassifier(hidden_sizes=(4,), batch_size=2, seed=0)
    model.learn_one({"a": 0.1}, (np.int64(0), np.int64(5)))
    model.learn_one({"a": 0.2}, (0, 5))
    model.learn_one({"a": 0.3}, (np.int32(0), np.int32(5)))
    assert model.classes_.tolist() == [(0, 5)] and [type(v) for v in model.classes_[0]] == [int, int]


def test_classes_may_be_any_collection_of_labels() -> None:
    for classes in ({0, 1}, {0: "a", 1: "b"}.keys(), range(2), (0, 1)):
        model = AMClassifier(hidden_sizes=(4,), batch_size=2, seed=0)
        model.partial_fit(np.zeros((2, 2)), [0, 1], classes=classes)
        assert model.classes_.tolist() == [0, 1]
