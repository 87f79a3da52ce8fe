"""The classifier's linear companion (stream_am.estimators.companion): built where it should be, learning every
step, re-expressed and grown with the network, answering by its rule, saved and restored exactly."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from river import datasets

from stream_am import AMClassifier, AMRegressor, OnlineAM
from stream_am.estimators import companion as companion_module
from stream_am.estimators.companion import FAMILIAR, LinearCompanion


def _linear_stream(n: int, seed: int = 0, flip_at: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A linear concept on 4 features; from ``flip_at`` on, its labels flip (an abrupt drift)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X @ np.array([1.0, -1.0, 0.5, 0.0]) > 0).astype(int)
    if flip_at is not None:
        y[flip_at:] = 1 - y[flip_at:]
    return X, y


def test_the_companion_is_built_where_the_first_layer_keeps_a_memory_and_learns_every_step():
    X, y = _linear_stream(96)
    built = {
        "default": AMClassifier(hidden_sizes=(8,), batch_size=16),
        "mem": AMClassifier(hidden_sizes=(8,), batch_size=16, variant="mem"),
        "adam": AMClassifier(hidden_sizes=(8,), batch_size=16, variant="adam"),
        "linear": AMClassifier(hidden_sizes=(), batch_size=16),
        "off": AMClassifier(hidden_sizes=(8,), batch_size=16, companion=False),
    }
    for model in built.values():
        model.partial_fit(X, y)
    has = {name: model._companion is not None for name, model in built.items()}
    assert has == {"default": True, "mem": True, "adam": False, "linear": False, "off": False}
    age = (1 - AMClassifier().memory_decay) ** 16
    for name in ("default", "mem"):
        companion = built[name]._companion
        assert companion.A.shape == (2, 5, 5) and companion.R.shape == (5, 5)
        keep = 0.5 ** (16 / companion_module.HALF_LIFE)
        learned = 6 - len(companion._pending)  # six steps: the gathered ones are not learned yet
        assert 0 < learned and companion._rows_pending[-1].shape[1] == 4
        assert float(companion.R[0, 0]) == pytest.approx(sum(16 * keep**k for k in range(learned)))
        assert 0 < float(companion.A[:, 0, 0].sum()) <= sum(16 * age**k for k in range(learned))
    assert AMRegressor(hidden_sizes=(8,), batch_size=16).partial_fit(X, y.astype(float))._companion is None


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_companion_must_be_a_bool(bad):
    with pytest.raises(ValueError, match="companion"):
        AMClassifier(companion=bad)


def test_scores_follow_the_losses_the_steps_measure_before_learning(monkeypatch):
    X, y = _linear_stream(64)
    model = AMClassifier(hidden_sizes=(8,), batch_size=32, seed=0)
    model.partial_fit(X[:32], y[:32])
    companion = model._companion
    scores, accuracy, measured = list(companion.scores), list(companion.accuracy), {}
    original = OnlineAM.partial_fit

    def recorded(self, x, target):
        measured["network"] = self.predict(x).double(), target  # before learning
        rows = companion.basis.rows(companion_module._numpy_rows(x))
        measured["companion"] = torch.from_numpy(rows @ companion.W), target
        return original(self, x, target)

    monkeypatch.setattr(OnlineAM, "partial_fit", recorded)
    model.partial_fit(X[32:], y[32:])
    keep = 0.5 ** (32 / companion_module.HALF_LIFE)
    for i, who in enumerate(("network", "companion")):
        out, target = measured[who]
        loss = float(torch.nn.functional.cross_entropy(out, target))
        hits = float((out.argmax(1) == target).double().mean())
        assert companion.scores[i] == pytest.approx(keep * scores[i] - (1 - keep) * loss, rel=1e-5), who
        assert companion.accuracy[i] == pytest.approx(keep * accuracy[i] + (1 - keep) * hits, rel=1e-9), who


def test_the_sums_are_the_rows_learned_on_the_clock_of_each_class_and_the_weights_their_proximal_ridge_fit():
    X, y = _linear_stream(96)
    y[:32] = 0  # the first batch holds class 0 alone: class 1's sums do not age at that step
    model = AMClassifier(hidden_sizes=(8,), batch_size=32, seed=0, standardize=False).partial_fit(X, y)
    companion = model._companion
    rows = np.concatenate([np.ones((96, 1)), X.astype(np.float32).astype(np.float64)], axis=1)  # as learned
    age = (1 - model.memory_decay) ** 32
    encoded = np.array([model.classes_.tolist().index(label) for label in y])  # (first seen, first)
    for c in (0, 1):
        step = np.arange(96) // 32
        ages = [sum(1 for s in range(k + 1, 3) if (encoded[step == s] == c).any()) for k in range(3)]
        w = np.array([age ** ages[k] for k in step.tolist()]) * (encoded == c)
        np.testing.assert_allclose(companion.A[c], (w[:, None] * rows).T @ rows, rtol=1e-12, atol=1e-12)
    keep = 0.5 ** (32 / companion_module.HALF_LIFE)
    w = np.array([keep**2] * 32 + [keep] * 32 + [1.0] * 32)
    np.testing.assert_allclose(companion.R, (w[:, None] * rows).T @ rows, rtol=1e-12, atol=1e-12)
    before = companion.W.copy()
    model.partial_fit(X[:32], y[:32])  # class 0 alone, whose sums hold more than NEW rows: gathered, not learned
    np.testing.assert_array_equal(companion.W, before)
    assert [n for n, _, _ in companion._pending] == [32]
    more = companion_module.BLOCK // 32 - 1
    model.partial_fit(np.tile(X[:32], (more, 1)), np.tile(y[:32], more))  # BLOCK rows: learned, one solve
    assert companion._pending == []
    A = companion.A.sum(0)
    ridge = model.ridge * A.diagonal().mean()
    M = A + ridge * np.eye(5)
    np.testing.assert_allclose(companion.W, np.linalg.solve(M, companion.A[:, :, 0].T + ridge * before),
                               rtol=1e-7, atol=1e-9)


def test_a_block_learns_the_sums_batch_by_batch_learning_gives(monkeypatch):
    """The companion gathers batches and learns them at once, with the weights each row would have had batch by
    batch: a class ages by the samples of the later batches holding it, the recent sum by all of them."""
    g = torch.Generator().manual_seed(0)
    sizes = [32, 16, 48, 32]  # BLOCK rows in all, the last batch completes the block
    assert sum(sizes) == companion_module.BLOCK
    batches = [(torch.randn(n, 3, generator=g), torch.randint(0, 4, (n,), generator=g)) for n in sizes]
    batches[1] = (batches[1][0], torch.full((16,), 3))  # a batch of one class: the others do not age at it
    warm = (torch.randn(256, 3, generator=g), torch.arange(256) % 4)  # every class past NEW rows
    blocked, stepped = LinearCompanion(3, 4, 1e-2, 1e-3), LinearCompanion(3, 4, 1e-2, 1e-3)
    blocked.learn(*warm, {"loss": 1.0, "accuracy": 0.5})
    monkeypatch.setattr(companion_module, "BLOCK", 1)
    stepped.learn(*warm, {"loss": 1.0, "accuracy": 0.5})
    for x, y in batches:
        stepped.learn(x, y, {"loss": 0.5, "accuracy": 0.75})
    monkeypatch.setattr(companion_module, "BLOCK", sum(sizes))
    for i, (x, y) in enumerate(batches):
        blocked.learn(x, y, {"loss": 0.5, "accuracy": 0.75})
        assert len(blocked._pending) == (i + 1) % len(sizes)  # gathered until the block is full
    np.testing.assert_allclose(blocked.A, stepped.A, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(blocked.R, stepped.R, rtol=1e-12, atol=1e-12)
    assert blocked.scores[0] == pytest.approx(stepped.scores[0], rel=1e-12)  # the network's measures
    assert blocked.accuracy[0] == pytest.approx(stepped.accuracy[0], rel=1e-12)
    assert not np.allclose(blocked.W, LinearCompanion(3, 4, 1e-2, 1e-3).W)


def test_the_answer_is_the_companions_only_where_it_is_trusted_and_more_confident():
    X, y = _linear_stream(640)
    model = AMClassifier(hidden_sizes=(8,), batch_size=32, seed=0).partial_fit(X, y)
    companion, model._quadratic = model._companion, None  # its rules alone (the chain: test_quadratic_companion.py)
    probe = np.random.default_rng(1).normal(size=(200, 4))
    alone = copy.deepcopy(model)
    alone._companion = None
    network = alone.predict_proba(probe)
    x = torch.from_numpy(model._frame.apply(probe).astype(np.float32))
    rows = companion.basis.rows(companion_module._numpy_rows(x))
    mine = torch.softmax(torch.from_numpy(rows @ companion.W), dim=1).numpy()
    companion.accuracy = [0.9, 0.8]  # rule 1 off: the companion is less accurate on the recent stream
    companion.scores = [-0.5, -0.4]  # rule 2 on
    companion._watch()  # (what rule 1 needs is derived from the measures at each step)
    got = model.predict_proba(probe)
    take = mine.max(axis=1) > network.max(axis=1)
    assert 0 < take.sum() < len(probe)  # both answer some rows of this probe
    np.testing.assert_allclose(got[take], mine[take], rtol=1e-6)
    np.testing.assert_array_equal(got[~take], network[~take])
    companion.scores = [-0.4, -0.5]  # neither rule: the network alone
    companion._watch()  # (what rule 1 needs is derived from the measures at each step)
    np.testing.assert_array_equal(model.predict_proba(probe), network)
    companion.accuracy = [0.8, 0.9]  # more accurate, but a lower score: neither rule
    companion._watch()  # (what rule 1 needs is derived from the measures at each step)
    np.testing.assert_array_equal(model.predict_proba(probe), network)
    companion.scores = [-0.5, -0.4]  # both rules: the rows that look like the recent ones, and the confident ones
    companion._watch()  # (what rule 1 needs is derived from the measures at each step)
    familiar = companion.familiar(x)
    got = model.predict_proba(probe)
    either = familiar | take
    assert (familiar & ~take).any()
    np.testing.assert_allclose(got[either], mine[either], rtol=1e-6)
    np.testing.assert_array_equal(got[~either], network[~either])
    assert familiar.mean() > 0.9  # the probe is drawn as the stream was
    far = torch.from_numpy(model._frame.apply(probe + 6.0).astype(np.float32))  # six scales away: not recent
    assert not companion.familiar(far).any()


def test_a_re_expression_moves_the_rows_in_the_sums_exactly():
    X, y = _linear_stream(96)
    companion = AMClassifier(hidden_sizes=(8,), batch_size=32, seed=0).partial_fit(X, y)._companion
    A = torch.from_numpy(companion.R.copy())
    count, mean = A[0, 0], A[0, 1:] / A[0, 0]
    cov = A[1:, 1:] / count - torch.outer(mean, mean)
    scale = torch.tensor([2.0, 0.5, 1.0, 3.0], dtype=torch.float64)
    shift = torch.tensor([1.0, -1.0, 0.0, 0.5], dtype=torch.float64)
    probe = torch.randn(20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    familiar = companion.familiar(probe)
    companion.reexpress_inputs(scale, shift, max_gain=1.0)
    new = torch.from_numpy(companion.R)
    new_mean = new[0, 1:] / new[0, 0]
    torch.testing.assert_close(new[0, 0], count)
    torch.testing.assert_close(new_mean, scale * mean + shift)
    torch.testing.assert_close(new[1:, 1:] / count - torch.outer(new_mean, new_mean), scale[:, None] * cov * scale)
    assert (companion.familiar(probe * scale + shift) == familiar).all()  # the same rows, in the new coordinates


def test_on_a_linear_concept_that_flips_the_companion_takes_over_and_on_xor_it_does_not():
    X, y = _linear_stream(4000, flip_at=2000)
    flipping = AMClassifier(hidden_sizes=(32,), batch_size=32, seed=0).partial_fit(X, y)
    network, linear = flipping._companion.accuracy
    assert linear > network and flipping._companion.scores[1] > flipping._companion.scores[0], (network, linear)
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(4000, 2))
    xor = AMClassifier(hidden_sizes=(32,), batch_size=32, seed=0).partial_fit(Z, (Z[:, 0] * Z[:, 1] > 0).astype(int))
    network, linear = xor._companion.scores
    assert network > linear + 0.1  # log-likelihood, per sample
    assert xor._companion.accuracy[0] > xor._companion.accuracy[1] + 0.1


def test_learn_one_and_learn_many_give_the_same_companions_bit_for_bit():
    X, y = _linear_stream(200)
    one = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0)
    for row, label in zip(X, y, strict=True):
        one.learn_one(dict(enumerate(row)), int(label))
    many = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0)
    many.learn_many(pd.DataFrame(X), pd.Series(y))
    for part in ("_companion", "_quadratic"):  # (4 features: both companions)
        mine, theirs = getattr(one, part), getattr(many, part)
        assert mine.meta() == theirs.meta() and np.array_equal(mine.A, theirs.A) and np.array_equal(mine.R, theirs.R)


def test_a_refresh_re_expresses_the_companion_as_the_network():
    """Across a refresh of the frame the companion computes the same function of the raw inputs."""
    rng = np.random.default_rng(0)
    model = AMClassifier(hidden_sizes=(8,), batch_size=8, seed=0)
    X = rng.normal(3.0, 2.0, size=(8 * 40, 3))
    model.partial_fit(X, (X[:, 0] > 3).astype(int))  # 40 steps: past the early refreshes
    probe = rng.normal(3.0, 2.0, size=(50, 3))

    def raw(m: AMClassifier) -> np.ndarray:
        companion = m._companion
        rows = companion_module._numpy_rows(torch.from_numpy(m._frame.apply(probe)))
        return companion.basis.rows(rows) @ companion.W

    before, A, mean = raw(model), model._companion.A.copy(), model._frame.mean.copy()
    model._frame.refresh(model._moments, *model._engines())
    assert not np.array_equal(model._frame.mean, mean) and not np.array_equal(model._companion.A, A)  # a real change
    np.testing.assert_allclose(raw(model), before, rtol=0, atol=1e-9)  # the same function


def test_new_features_and_classes_grow_the_companion():
    model = AMClassifier(hidden_sizes=(8,), batch_size=4, seed=0)
    for i in range(8):
        model.learn_one({"a": float(i % 3)}, i % 2)
    model.learn_one({"a": 1.0, "b": 2.0}, 2)
    assert model._companion.A.shape == (3, 3, 3) and model._companion.R.shape == (3, 3)
    assert (model.engine.n_inputs, model.engine.n_outputs) == (2, 3)
    assert not model._companion.A[:, 2].any() and not model._companion.A[2].any()  # nothing learned of them yet
    for i in range(12):
        model.learn_one({"a": float(i % 3), "b": float(i % 2)}, i % 3)
    assert sum(model.predict_proba_one({"a": 1.0, "b": 0.0}).values()) == pytest.approx(1.0)


def test_save_load_and_pickle_keep_the_companions_exactly(tmp_path):
    import pickle

    stream = list(datasets.Phishing().take(300))
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0)
    for x, y in stream[:150]:
        model.learn_one(x, y)
    loaded = AMClassifier.load(model.save(tmp_path / "m"))
    unpickled = pickle.loads(pickle.dumps(model))
    for other in (loaded, unpickled):
        for part in ("_companion", "_quadratic"):  # (phishing's 9 features: both companions)
            mine, theirs = getattr(model, part), getattr(other, part)
            assert isinstance(theirs, LinearCompanion) and theirs.meta() == mine.meta() and theirs.basis is mine.basis
            assert np.array_equal(theirs.A, mine.A) and np.array_equal(theirs.R, mine.R)
    for x, y in stream[150:]:
        for m in (model, loaded, unpickled):
            m.learn_one(x, y)
    x = stream[0][0]
    assert loaded.predict_proba_one(x) == unpickled.predict_proba_one(x) == model.predict_proba_one(x)


def test_rule_one_reads_each_rows_squared_mahalanobis_distance_to_the_recent_inputs():
    X, y = _linear_stream(640)
    companion = AMClassifier(hidden_sizes=(8,), batch_size=32, seed=0).partial_fit(X, y)._companion
    companion.scores, companion.accuracy = [-0.5, -0.4], [0.8, 0.9]  # rule 1 applies
    companion._watch()
    probe = torch.randn(400, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2.0
    rows = np.hstack([np.ones((400, 1)), probe.numpy()])
    R = companion.R + companion.ridge * np.trace(companion.R) / len(companion.R) * np.eye(len(companion.R))
    leverage = companion.R[0, 0] * np.einsum("ij,ji->i", rows, np.linalg.solve(R, rows.T)) - 1.0
    bound = 4 + FAMILIAR * math.sqrt(8)
    clear = np.abs(leverage - bound) > 1e-6 * bound  # (rows on the bound itself may fall either side)
    assert 0 < (leverage <= bound).sum() < 400 and clear.sum() > 390
    np.testing.assert_array_equal(companion.familiar(probe)[clear], (leverage <= bound)[clear])


def test_a_state_whose_sums_and_gathered_rows_hold_more_rows_than_were_learned_is_refused():
    X, y = _linear_stream(200)
    model = AMClassifier(hidden_sizes=(8,), batch_size=8, seed=0).partial_fit(X, y)
    meta, arrays = copy.deepcopy(model._payload())
    meta["companion"]["pending"] = [[100, 0.5, 0.5]]  # each within bounds, together more than the 200 learned
    arrays["companion.pending_rows"], arrays["companion.pending_labels"] = np.zeros((100, 4)), np.zeros(100, np.int64)
    with pytest.raises(ValueError, match=r"companion\.A's row counts and the 100 rows of meta\.companion\.pending"):
        AMClassifier(hidden_sizes=(8,), batch_size=8, seed=0)._restore(meta, arrays)
