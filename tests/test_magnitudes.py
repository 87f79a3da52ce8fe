"""Hostile but well-formed values: the engine's magnitude bound keeps every state finite, and values, labels and
feature names a model cannot use are refused before anything changes (found by an adversarial review)."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from stream_am import AMClassifier, AMRegressor, OnlineAM, checks
from stream_am.checks import MAX_VALUE
from stream_am.estimators import build_mlp, inputs


def _finite(am: OnlineAM) -> bool:
    state = am.state_dict()
    return all(bool(torch.isfinite(v).all()) for v in state.values() if torch.is_tensor(v) and v.is_floating_point())


def _payload(model: Any) -> tuple[Any, dict[str, bytes]]:
    meta, arrays = model._payload()
    return meta, {k: np.ascontiguousarray(v).tobytes() for k, v in arrays.items()}


@pytest.mark.parametrize("variant", ["adam", "mem", "auto"])
def test_values_ten_times_the_bound_keep_every_state_finite(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound's margin: with the bound lifted, values of 10x ``MAX_VALUE`` keep every state of the float32
    engine finite (1e12 overflowed Adam's second moments and the readout's memory, under the former 1e15)."""
    big = 10 * MAX_VALUE
    monkeypatch.setattr(checks, "MAX_VALUE", 100 * MAX_VALUE)
    for hidden, batch, constant in itertools.product([(2,), (8,), (64,)], [2, 32], [False, True]):
        rng = np.random.default_rng(0)
        am = OnlineAM(build_mlp(3, 3, hidden, seed=0), variant=variant, seed=0)
        for _ in range(6):
            sign = rng.choice([-1.0, 1.0], (batch, 1))
            X = torch.tensor(np.full((batch, 3), big) * sign if constant else rng.uniform(-big, big, (batch, 3)),
                             dtype=torch.float32)
            am.partial_fit(X, torch.tensor(rng.integers(0, 3, batch)))
        assert _finite(am), (hidden, batch, constant)
        assert torch.isfinite(am.predict(X)).all()


def test_estimators_refuse_unscaled_values_beyond_the_bound_and_change_nothing() -> None:
    assert inputs.MAX_RAW_MAGNITUDE == MAX_VALUE == 1e9
    model = AMClassifier(standardize=False, hidden_sizes=(4,), batch_size=2, seed=0)
    model.learn_one({"a": 1.0}, "x")
    before = _payload(model)
    with pytest.raises(ValueError, match=r"x\['a'\].*magnitude limit 1e\+09"):
        model.learn_one({"a": 2e9}, "y")
    assert _payload(model) == before
    reg = AMRegressor(standardize_target=False, hidden_sizes=(4,), batch_size=2, seed=0)
    with pytest.raises(ValueError, match="y.*magnitude limit"):
        reg.learn_one({"a": 1.0}, 2e9)


def test_online_am_refuses_values_beyond_the_bound_and_changes_nothing() -> None:
    am = OnlineAM(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 3)), seed=0)
    am.partial_fit(torch.ones(4, 3), torch.tensor([0, 1, 2, 0]))
    before = {k: v.clone() for k, v in am.state_dict().items() if torch.is_tensor(v)}
    with pytest.raises(ValueError, match="x contains NaN, infinite or values beyond"):
        am.partial_fit(torch.full((4, 3), 1e19), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="x is on the 'meta' device"):
        am.partial_fit(torch.ones(4, 3, device="meta"), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="y is on the 'meta' device"):
        am.partial_fit(torch.ones(4, 3), torch.tensor([0, 1, 2, 0], device="meta"))
    with pytest.raises(ValueError, match="x is on the 'meta' device"):
        am.predict(torch.ones(4, 3, device="meta"))
    after = am.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items())
    reg = OnlineAM(nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, 1)), loss="mse", seed=0)
    with pytest.raises(ValueError, match="y contains NaN, infinite or values beyond"):
        reg.partial_fit(torch.ones(4, 3), torch.full((4, 1), 1e20))
    assert reg.state_dict() == {} or reg.samples_seen == 0


@pytest.mark.parametrize(
    "label", [("x", [1]), ("k", float("nan")), (1, (2, float("nan"))), pd.NA, Decimal("sNaN"), Decimal("NaN")]
)
def test_labels_that_do_not_find_themselves_are_refused_before_anything_changes(label: Any) -> None:
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    model.learn_one({"a": 1.0}, ("x", 1))
    before = _payload(model)
    with pytest.raises(ValueError, match="y must be a hashable class label equal to itself"):
        model.learn_one({"a": 1.0, "new": 2.0}, label)  # a new feature too: not registered
    assert _payload(model) == before and model.feature_names_in_ == ["a"]


def test_feature_names_unequal_to_themselves_and_values_beyond_float64_are_refused() -> None:
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    model.learn_one({"a": 1.0}, 0)
    before = _payload(model)
    with pytest.raises(ValueError, match="x has a feature name that is not equal to itself"):
        model.learn_one({float("nan"): 1.0}, 0)
    with pytest.raises(ValueError, match=r"x\['a'\] must be finite"):
        model.learn_one({"a": 10**400}, 0)
    with pytest.raises(ValueError, match=r"X\['a'\] must be real numbers, got dtype complex"):
        model.learn_many(pd.DataFrame({"a": [1 + 5j]}), pd.Series([0]))
    with pytest.raises(ValueError, match="X has a feature name that is not equal to itself"):
        model.learn_many(pd.DataFrame({float("nan"): [1.0]}), pd.Series([0]))
    assert _payload(model) == before
    sk = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    with pytest.raises(ValueError, match="X must hold real numbers that fit float64"):
        sk.partial_fit([[10**400]], [1])
    with pytest.raises(ValueError, match="(?i)complex"):
        sk.partial_fit(np.array([[1 + 5j]]), [1])


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.parametrize(
    "field, value",
    [("seed", 2**70), ("seed", -1), ("weight_lr", 1e20), ("output_lr", 11.0), ("ridge", 1e308), ("code_lr", 1e100),
     ("lambda_w", 1e308), ("lambda_c", 1e7), ("mu", 1e7)],
)
def test_online_am_refuses_settings_that_would_overflow_its_float32_state(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"^{field} must be"):
        OnlineAM(_net(), **{field: value})


@pytest.mark.parametrize("built", [False, True])
def test_a_hyperparameter_set_after_construction_is_checked_and_a_refused_one_changes_nothing(built: bool) -> None:
    am = OnlineAM(_net(), seed=0)
    if built:
        am.partial_fit(torch.ones(4, 3), torch.tensor([0, 1, 0, 1]))
    for field, value in [("memory_decay", float("nan")), ("memory_decay", 2.0), ("code_lr", "x"), ("ridge", -1.0)]:
        before = getattr(am, field)
        with pytest.raises(ValueError, match=f"^{field} must be"):
            setattr(am, field, value)
        assert getattr(am, field) == before
    am.memory_decay = 0.01  # a valid value still reaches the memories
    assert not built or all(u.decay == 0.01 for u in am._updaters if hasattr(u, "decay"))


def test_prediction_needs_finite_values_only_so_a_standardised_outlier_is_still_answered() -> None:
    """Found by a review of the bound: with ``standardize=True`` a new row's z-score is unbounded before the row
    joins the moments (a feature of spread 1e-9 seen at 25 instead of 20), so prediction (and learning after a
    prequential prediction) must not apply the learning bound."""
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    for i in range(8):
        model.learn_one({"a": 20.0 + (i % 2) * 1e-9, "b": float(i)}, i % 2)
    assert model.predict_one({"a": 25.0, "b": 0.0}) in (0, 1)
    model.learn_one({"a": 25.0, "b": 0.0}, 1)  # in the moments now: its z-score is bounded by sqrt(n)
    am = OnlineAM(_net(), seed=0)
    am.partial_fit(torch.ones(4, 3), torch.tensor([0, 1, 0, 1]))
    assert am.predict(torch.full((2, 3), 1e12)).shape == (2, 2)
    with pytest.raises(ValueError, match="x contains NaN, infinite values"):
        am.predict(torch.tensor([[float("nan"), 0.0, 0.0]]))


@pytest.mark.parametrize("mu, lambda_c", [(1e-300, 1.0), (5e-324, 1e-3), (1e-39, 1.0)])
def test_a_codes_l1_weight_beyond_float32_is_refused_at_construction(mu: float, lambda_c: float) -> None:
    """Found by tests/api/test_api_fuzz.py: ``mu`` and ``lambda_c`` each in range, but the codes' L1 weight
    ``lambda_c / mu`` beyond float32, were accepted and the first step raised a RuntimeError (a 503 in the server)."""
    with pytest.raises(ValueError, match="^lambda_c must be at most"):
        OnlineAM(_net(), mu=mu, lambda_c=lambda_c)
    am = OnlineAM(_net(), mu=mu, seed=0)  # a tiny mu alone is accepted, and learns
    am.partial_fit(torch.ones(4, 3), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ValueError, match="^lambda_c must be at most"):
        am.lambda_c = lambda_c
    assert am.lambda_c == 0.0


def test_the_estimators_refuse_a_codes_l1_weight_beyond_float32_naming_lambda_c() -> None:
    from stream_am import AMClassifier, AMRegressor

    for cls in (AMClassifier, AMRegressor):
        with pytest.raises(ValueError, match="^lambda_c must be at most"):
            cls(hidden_sizes=(8,), batch_size=2, seed=0, mu=1e-300, lambda_c=1.0)
        model = cls(hidden_sizes=(8,), batch_size=2, seed=0, mu=1e-300)  # a tiny mu alone learns
        model.learn_one({"a": 1.0}, 1)
        model.learn_one({"a": 0.0}, 0)
        assert model.n_features_in_ == 1
