"""Reference continual-learning strategies (stream_am.strategies): reservoir replay and online EWC."""

import numpy as np
import pandas as pd
import pytest
import torch
from river import base

from stream_am.strategies import EWCClassifier, ReplayClassifier


class Spy(base.MiniBatchClassifier):
    def __init__(self):
        self.batches = []

    def learn_one(self, x, y):
        raise AssertionError("replay must learn in mini-batches")

    def learn_many(self, X, y):
        self.batches.append((X.copy(), y.copy()))

    def predict_proba_one(self, x):
        return {0: 1.0}

    def predict_proba_many(self, X):
        return pd.DataFrame({0: np.ones(len(X))}, index=X.index)


def _frame(start, n):
    return pd.DataFrame({"i": np.arange(start, start + n, dtype=float)}), pd.Series(np.arange(start, start + n) % 2)


def test_replay_mixes_reservoir_samples_into_each_batch():
    spy = Spy()
    model = ReplayClassifier(spy, buffer_size=10, replay_ratio=0.5, seed=0)
    X, y = _frame(0, 8)
    model.learn_many(X, y)
    X2, y2 = _frame(8, 8)
    before = X2.copy()
    model.learn_many(X2, y2)
    assert len(spy.batches[0][0]) == 8 and len(spy.batches[1][0]) == 12
    replayed = spy.batches[1][0]["i"].to_numpy()[8:]
    assert set(replayed) <= set(range(8))  # drawn from what was stored before this batch
    pd.testing.assert_frame_equal(X2, before)  # the caller's data is untouched
    assert model.predict_many(X2).tolist() == [0] * 8


def test_reservoir_is_bounded_and_uniform():
    counts = np.zeros(200)
    for seed in range(40):
        model = ReplayClassifier(Spy(), buffer_size=20, seed=seed)
        for start in range(0, 200, 10):
            model.learn_many(*_frame(start, 10))
        assert len(model.buffer_) == 20 and model.n_seen_ == 200
        for x, _ in model.buffer_:
            counts[int(x["i"])] += 1
    # each sample is kept with probability 20/200: early and late halves equally often
    assert abs(counts[:100].sum() - counts[100:].sum()) < 0.25 * counts.sum()


def test_replay_learn_one_batches_and_is_seeded():
    def run(seed):
        spy = Spy()
        model = ReplayClassifier(spy, buffer_size=5, batch_size=4, seed=seed)
        for i in range(40):
            model.learn_one({"i": float(i)}, i % 2)
        return [b[0]["i"].tolist() for b in spy.batches]

    assert len(run(0)) == 10 and run(0) == run(0)
    with pytest.raises(ValueError, match="buffer_size"):
        ReplayClassifier(Spy(), buffer_size=0)


def _blobs(seed, classes, n=64):
    rng = np.random.default_rng(seed)
    y = rng.choice(classes, size=n)
    X = pd.DataFrame({"a": np.cos(y) * 3 + rng.normal(size=n) * 0.3, "b": np.sin(y) * 3 + rng.normal(size=n) * 0.3})
    return X, pd.Series(y)


def test_ewc_learns_grows_and_keeps_adam_state_consistent():
    model = EWCClassifier(hidden_sizes=(16,), lr=0.02, consolidate_every=128, seed=0)
    for k in range(20):
        model.learn_many(*_blobs(k, [0, 1]))
    for k in range(20):
        model.learn_many(*_blobs(100 + k, [0, 1, 2]))
    X, y = _blobs(999, [0, 1, 2])
    assert (model.predict_many(X) == y).mean() > 0.9
    assert sorted(model.classes_) == [0, 1, 2] and model.n_consolidations_ == 20
    for p in model._net.parameters():
        assert model._opt.state[p]["exp_avg"].shape == p.shape
    assert all(f.shape == p.shape for f, p in zip(model._fisher, model._net.parameters(), strict=True))


def test_ewc_penalty_anchors_the_weights():
    def drift(lam):
        model = EWCClassifier(hidden_sizes=(8,), lr=0.02, ewc_lambda=lam, consolidate_every=320, seed=0)
        for k in range(5):
            model.learn_many(*_blobs(k, [0, 1]))
        anchor = [a.clone() for a in model._anchor]
        for k in range(10):
            model.learn_many(*_blobs(50 + k, [2, 3]))
        return sum(((p.detach()[: a.shape[0]] - a) ** 2).sum().item()
                   for p, a in zip(model._net.parameters(), anchor, strict=True))

    assert drift(1e4) < 0.5 * drift(0.0)


def test_ewc_predictions_are_pure_and_seeded():
    a, b = EWCClassifier(hidden_sizes=(4,), seed=3), EWCClassifier(hidden_sizes=(4,), seed=3)
    assert a.predict_one({"a": 1.0, "b": 0.0}) is None
    for m in (a, b):
        m.learn_many(*_blobs(0, [0, 1]))
    X, _ = _blobs(1, [0, 1])
    state = [p.detach().clone() for p in a._net.parameters()]
    pd.testing.assert_frame_equal(a.predict_proba_many(X), b.predict_proba_many(X))
    assert all(torch.equal(s, p) for s, p in zip(state, a._net.parameters(), strict=True))
    assert sum(a.predict_proba_one({"a": 1.0, "b": 0.0}).values()) == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs", [{"activation": "nope"}, {"lr": 0.0}, {"consolidate_every": 0},
                                    {"ewc_lambda": -1.0}, {"fisher_decay": 2.0}])
def test_ewc_rejects_bad_params(kwargs):
    with pytest.raises(ValueError):
        EWCClassifier(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ewc_lambda": -1.0}, "ewc_lambda"),
        ({"fisher_decay": 1.5}, "fisher_decay"),
        ({"lr": float("nan")}, "lr"),
        ({"consolidate_every": 2.5}, "consolidate_every"),
    ],
)
def test_ewc_parameter_errors_name_the_field(kwargs, field):
    from stream_am.strategies import EWCClassifier

    with pytest.raises(ValueError, match=f"^{field} must"):
        EWCClassifier(**kwargs)


def test_ewc_accepts_the_closed_upper_bound_of_fisher_decay():
    from stream_am.strategies import EWCClassifier

    assert EWCClassifier(fisher_decay=1.0).fisher_decay == 1.0
