"""Found by a hostile review of OnlineAM, the backprop learner, the strategies and the evaluation helpers: each test
failed before its fix."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from river import naive_bayes
from torch import float64, nn

from stream_am import OnlineAM
from stream_am.backprop import BackpropLearner
from stream_am.baselines import BackpropClassifier
from stream_am.evaluate import Prequential, PrequentialResult, continual_metrics, drift_recovery, rolling_accuracy
from stream_am.strategies import EWCClassifier


def _net(n_out: int = 3) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Linear(8, n_out))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(16, 3, generator=g), torch.randint(0, 3, (16,), generator=g)


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("name, value, variant, readout", [
    ("weight_lr", 5.0, "adam", "memory"), ("output_lr", 5.0, "mem", "adam"), ("weight_steps", 5, "adam", "adam"),
    ("lambda_w", 10.0, "adam", "memory"), ("ridge", 1e3, "mem", "memory"), ("solve_every", 3, "mem", "memory"),
    ("mu", 50.0, "mem", "memory"),
])
def test_a_hyperparameter_set_between_steps_is_used_by_the_next_step(
        name: str, value: float, variant: str, readout: str) -> None:
    """Only ``memory_decay`` reached the built updaters: any other number set between steps was checked, stored
    and silently ignored (the next step was the same as without it)."""
    x, y = _batch()
    am = OnlineAM(_net(), variant=variant, readout=readout, seed=0)
    am.partial_fit(x, y)
    kept = copy.deepcopy(am)
    setattr(am, name, value)
    am.partial_fit(x, y), kept.partial_fit(x, y)
    am.partial_fit(x, y), kept.partial_fit(x, y)
    assert not _same(am.state_dict(), kept.state_dict())


def test_a_solve_every_set_between_steps_is_the_cadence_saved_and_loaded() -> None:
    """``solve_every=3`` set on a built learner was never used, and its own state (saved with the old cadence) was
    then refused by it and by a fresh learner made with ``solve_every=3``."""
    x, y = _batch()
    am = OnlineAM(_net(), variant="mem", seed=0)
    am.partial_fit(x, y)
    am.solve_every = 3
    assert am.solve_every_ == 3
    state = {k: v.clone() for k, v in am.state_dict().items()}
    am.load_state_dict(state)
    fresh = OnlineAM(_net(), variant="mem", seed=0, solve_every=3)
    fresh.load_state_dict(state)
    assert fresh.solve_every_ == 3


@pytest.mark.parametrize("key", ["module.0.weight", "memory.0.A", "memory.out.B"])
@pytest.mark.parametrize("edit", ["float32_overflow", "meta"])
def test_an_onlineam_state_beyond_float32_or_on_meta_is_refused_naming_its_key(key: str, edit: str) -> None:
    """A float64 value of 1e300 (finite there, inf in the learner's float32) was loaded, then every prediction
    was NaN and ``state_dict`` was refused on reload; a meta tensor raised a RuntimeError."""
    x, y = _batch()
    src = OnlineAM(_net(), variant="mem", seed=0)
    src.partial_fit(x, y)
    state = dict(src.state_dict())
    v = state[key]
    state[key] = torch.empty_like(v, device="meta") if edit == "meta" else torch.full_like(v, 1e300, dtype=float64)
    am = OnlineAM(_net(), variant="mem", seed=0)
    am.partial_fit(x[:4], y[:4])
    before = {k: v.clone() for k, v in am.state_dict().items()}
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        am.load_state_dict(state)
    assert _same(before, am.state_dict())


def test_complex_regression_targets_are_refused() -> None:
    """A complex ``y`` was accepted by ``loss="mse"``, its imaginary part silently dropped."""
    am = OnlineAM(_net(2), loss="mse", variant="mem", seed=0)
    with pytest.raises(ValueError, match="^y must hold real numbers"):
        am.partial_fit(torch.randn(4, 3), torch.randn(4, 2, dtype=torch.complex64))
    assert am.state_dict() == {}


def test_the_backprop_learner_refuses_a_state_beyond_float32_or_on_meta_and_takes_float64_moments() -> None:
    x, y = _batch()
    src = BackpropLearner(_net(), lr=0.01)
    src.partial_fit(x, y)
    state = src.state_dict()
    for key, value in [("module.0.weight", torch.full((8, 3), 1e300, dtype=torch.float64)),
                       ("optim.exp_avg.0.weight", torch.empty(8, 3, device="meta")),
                       ("samples_seen", torch.empty((), dtype=torch.int64, device="meta"))]:
        with pytest.raises(ValueError, match=key.replace(".", r"\.")):
            BackpropLearner(_net(), lr=0.01).load_state_dict({**state, key: value})
    # moments saved in float64 (a conversion on the way) used to load as float64 and break the next step
    bp = BackpropLearner(_net(), lr=0.01)
    bp.load_state_dict({k: v.double() if k.startswith("optim.exp_avg") else v for k, v in state.items()})
    bp.partial_fit(x, y)
    assert torch.isfinite(bp.predict(x)).all()


@pytest.mark.parametrize("kwargs, field", [
    ({"lr": 1e300}, "lr"), ({"eps": 1e-320}, "eps"), ({"seed": 2**64}, "seed"), ({"betas": "ab"}, "betas"),
])
def test_the_backprop_learner_refuses_settings_that_break_float32_at_construction(kwargs: dict, field: str) -> None:
    """``lr=1e300`` (inf in float32) and ``eps=1e-320`` (0 in float32) made NaN weights; a seed of 2**64 raised an
    overflow error at the first step, not naming ``seed``; ``betas="ab"`` a TypeError comparing str and int."""
    with pytest.raises(ValueError, match=f"^{field} must"):
        BackpropLearner(_net(), **kwargs)


def test_the_backprop_classifier_and_ewc_refuse_a_step_size_beyond_float32() -> None:
    """``BackpropClassifier(lr=1e300)`` predicted NaN probabilities; ``EWCClassifier(lr=1e300)`` raised a
    RuntimeError at its first step, ``EWCClassifier(ewc_lambda=1e300)`` predicted NaN."""
    with pytest.raises(ValueError, match="^lr must"):
        BackpropClassifier(lr=1e300)
    with pytest.raises(ValueError, match="^lr must"):
        EWCClassifier(lr=1e300)
    with pytest.raises(ValueError, match="^ewc_lambda must"):
        EWCClassifier(ewc_lambda=1e300)


def test_prequential_step_with_mismatched_lengths_changes_nothing() -> None:
    """``step(xs, ys)`` with more labels than rows scored the first rows, then raised from ``zip(strict=True)``."""
    ev = Prequential(naive_bayes.GaussianNB(), batch_size=2)
    with pytest.raises(ValueError, match="^xs and ys must have the same length"):
        ev.step([{"a": 1.0}], [1, 2])
    assert ev.result().n_samples == 0 and ev.result().metrics["accuracy"] == 0.0
    with pytest.raises(ValueError, match="^n must be an int"):
        ev.run([({"a": 1.0}, 1)], n=-1)


def test_the_evaluation_helpers_refuse_non_finite_or_malformed_inputs_naming_them() -> None:
    """NaN in ``correct`` or a NaN or negative ``tol`` made ``drift_recovery`` raise an IndexError; NaN or inf in
    ``R`` gave NaN or inf metrics; a 2-d ``correct`` was flattened; a negative ``n_points`` raised numpy's error."""
    correct = np.ones(100)
    for tol in (float("nan"), -5.0):
        with pytest.raises(ValueError, match="^tol must"):
            drift_recovery(correct, [50], window=5, tol=tol)
    with pytest.raises(ValueError, match="^correct must"):
        drift_recovery(np.full(100, np.nan), [50], window=5)
    with pytest.raises(ValueError, match=r"^points\[0\] must"):
        drift_recovery(correct, [50.5], window=5)
    assert drift_recovery(correct, np.array([50]), window=5)[0].recovery == 5  # numpy points still work
    with pytest.raises(ValueError, match="^R must hold finite"):
        continual_metrics(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="^baseline must hold finite"):
        continual_metrics(np.eye(2), np.array([np.inf, 0.0]))
    with pytest.raises(ValueError, match="^correct must"):
        rolling_accuracy(np.ones((2, 2)), 2)
    with pytest.raises(ValueError, match="^n_points must"):
        PrequentialResult(np.ones(3, dtype=bool), {}, 0.0).curve(2, n_points=-1)


def test_ewc_learns_after_the_bounds() -> None:
    model = EWCClassifier(hidden_sizes=(4,), batch_size=2, consolidate_every=2, lr=1e5, ewc_lambda=1e5)
    model.learn_many(pd.DataFrame({"a": [0.0, 1.0]}), pd.Series([0, 1]))
    assert all(np.isfinite(list(model.predict_proba_one({"a": 1.0}).values())))
