"""The classifier's quadratic companion (stream_am.estimators.basis and .companion on its basis): built for narrow
inputs only, its features re-expressed and grown exactly, dropped past its width, learning a concept the linear one
cannot, saved and restored exactly, and refused when a saved state holds one it could not have."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stream_am import AMClassifier
from stream_am.estimators import companion as companion_module
from stream_am.estimators.basis import LINEAR, QUADRATIC, QUADRATIC_DECAY, QUADRATIC_MAX_FEATURES


@pytest.mark.parametrize("basis", [LINEAR, QUADRATIC], ids=lambda b: b.name)
def test_a_change_of_coordinates_maps_the_features_by_a_triangular_matrix(basis):
    rng = np.random.default_rng(0)
    x, scale, shift = rng.normal(size=(6, 4)), rng.uniform(0.5, 2.0, 4), rng.normal(size=4)
    T = basis.transform(scale, shift)
    assert T.shape == (basis.width(4), basis.width(4)) and np.array_equal(np.tril(T), T)
    np.testing.assert_allclose(basis.rows(x * scale + shift), basis.rows(x) @ T.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("basis", [LINEAR, QUADRATIC], ids=lambda b: b.name)
def test_new_inputs_leave_the_old_features_where_embed_says_and_add_zeros(basis):
    x = np.random.default_rng(1).normal(size=(5, 3))
    grown = basis.rows(np.hstack([x, np.zeros((5, 2))]))
    at = basis.embed(3, 2)
    assert np.array_equal(grown[:, at], basis.rows(x))
    assert not np.delete(grown, at, axis=1).any()


@pytest.mark.parametrize("d", [0, 1, 2, 9, 20])
def test_the_quadratic_congruence_equals_the_dense_products(d):
    rng = np.random.default_rng(d)
    X = rng.normal(size=(3, 40, QUADRATIC.width(d)))
    A = X.transpose(0, 2, 1) @ X
    T = QUADRATIC.transform(rng.uniform(0.5, 2.0, d), rng.normal(size=d))
    dense = T @ A @ T.T
    np.testing.assert_allclose(QUADRATIC.congruence(T, A), dense, rtol=1e-10, atol=1e-10 * np.abs(dense).max())
    np.testing.assert_allclose(QUADRATIC.congruence(T, A[0]), dense[0], rtol=1e-10, atol=1e-10 * np.abs(dense).max())
    linear = T[: d + 1, : d + 1] @ A[:, : d + 1, : d + 1] @ T[: d + 1, : d + 1].T  # (the linear one: structured too)
    np.testing.assert_allclose(LINEAR.congruence(T[: d + 1, : d + 1], A[:, : d + 1, : d + 1]), linear, rtol=1e-10,
                               atol=1e-10 * np.abs(linear).max())


def test_the_quadratic_features_are_the_bias_the_inputs_and_their_products():
    x = np.array([[2.0, 3.0]])
    assert QUADRATIC.rows(x).tolist() == [[1.0, 2.0, 3.0, 4.0, 6.0, 9.0]] and QUADRATIC.width(2) == 6


def _ring(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A class inside a ring of the other: no line separates them; a quadratic boundary does, exactly."""
    X = np.random.default_rng(seed).normal(size=(n, 3))
    return X, (np.einsum("ij,ij->i", X, X) > 2.4).astype(int)


def test_the_quadratic_companion_is_built_for_narrow_inputs_only_and_learns_every_step():
    X, y = _ring(96)
    narrow = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(X, y)
    wide = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(
        np.hstack([X, np.zeros((96, QUADRATIC_MAX_FEATURES))]), y)
    off = AMClassifier(hidden_sizes=(8,), batch_size=16, companion=False).partial_fit(X, y)
    adam = AMClassifier(hidden_sizes=(8,), batch_size=16, variant="adam").partial_fit(X, y)
    quadratic = narrow._quadratic
    assert quadratic is not None and quadratic.basis is QUADRATIC and narrow._companion.basis is LINEAR
    assert wide._quadratic is None and wide._companion is not None
    assert off._quadratic is None and adam._quadratic is None
    assert quadratic.A.shape == (2, QUADRATIC.width(3), QUADRATIC.width(3))
    assert quadratic.decay == pytest.approx(QUADRATIC_DECAY * narrow.memory_decay)
    assert quadratic.A[:, 0, 0].sum() + sum(n for n, _, _ in quadratic._pending) == pytest.approx(96, rel=0.2)


def test_on_a_ring_the_quadratic_companion_beats_the_linear_one_and_answers():
    X, y = _ring(3000)
    model = AMClassifier(hidden_sizes=(8,), batch_size=32, seed=0).partial_fit(X, y)
    network, quadratic = model._quadratic.accuracy
    assert quadratic > max(network, model._companion.accuracy[1]) + 0.05, (network, quadratic)
    Z, labels = _ring(500, seed=1)
    assert (model.predict(Z) == labels).mean() > 0.9


def test_a_refresh_re_expresses_the_quadratic_companion_exactly():
    rng = np.random.default_rng(0)
    model = AMClassifier(hidden_sizes=(8,), batch_size=8, seed=0)
    X = rng.normal(3.0, 2.0, size=(8 * 40, 3))
    model.partial_fit(X, (np.abs(X[:, 0] - 3) > 1).astype(int))
    probe = rng.normal(3.0, 2.0, size=(50, 3))

    def raw(m: AMClassifier) -> np.ndarray:
        rows = companion_module._numpy_rows(torch.from_numpy(m._frame.apply(probe)))
        return QUADRATIC.rows(rows) @ m._quadratic.W

    before, A = raw(model), model._quadratic.A.copy()
    model._frame.refresh(model._moments, *model._engines())
    assert not np.array_equal(model._quadratic.A, A)
    np.testing.assert_allclose(raw(model), before, rtol=0, atol=1e-8)


def test_a_new_feature_grows_the_quadratic_companion_and_too_many_drop_it():
    model = AMClassifier(hidden_sizes=(8,), batch_size=4, seed=0)
    for i in range(8):
        model.learn_one({"a": float(i % 3)}, i % 2)
    A = model._quadratic.A.copy()
    model.learn_one({"a": 1.0, "b": 2.0}, 1)
    assert model._quadratic.A.shape == (2, 6, 6) and np.array_equal(model._quadratic.A[:, :2, :2], A[:, :2, :2])
    model.learn_one({f"f{i}": 1.0 for i in range(QUADRATIC_MAX_FEATURES)}, 0)
    assert model._quadratic is None and model._companion is not None
    assert sum(model.predict_proba_one({"a": 1.0}).values()) == pytest.approx(1.0)


def test_a_state_without_a_quadratic_companion_loads_without_one_and_a_misfit_one_is_refused():
    X, y = _ring(64)
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(X, y)
    meta, arrays = model._payload()
    older = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0)
    older._restore({**meta, "quadratic": None}, {k: v for k, v in arrays.items() if not k.startswith("quadratic.")})
    assert older._quadratic is None and older.predict(X).shape == (64,)
    off = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0, companion=False)
    with pytest.raises(ValueError, match="meta.companion"):
        off._restore(meta, arrays)
    bad = {**arrays, "quadratic.A": arrays["quadratic.A"][:, :-1, :-1].copy()}
    fresh = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0)
    with pytest.raises(ValueError, match="array quadratic.A"):
        fresh._restore(meta, bad)
    with pytest.raises(ValueError, match="unexpected array 'quadratic.A'"):
        fresh._restore({**meta, "quadratic": None}, arrays)
    assert fresh._engine is None  # nothing changed


def test_the_quadratic_companion_answers_first_and_the_linear_one_after_it():
    X, y = _ring(200)
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(X, y)
    seen = []

    def answer(name):
        def call(x, proba):
            seen.append((name, proba.copy()))
            out = np.zeros_like(proba)
            out[:, len(seen) - 1] = 1.0
            return out
        return call

    model._quadratic.answer, model._companion.answer = answer("quadratic"), answer("linear")
    got = model.predict_proba(X[:3])
    assert [name for name, _ in seen] == ["quadratic", "linear"]
    assert (seen[1][1][:, 0] == 1.0).all()  # the linear one is given what the quadratic one answered
    assert (got[:, 1] == 1.0).all()  # and has the last word


def _switch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A ring whose labels flip at ``n // 2``: an abrupt change of concept on the same inputs."""
    X, y = _ring(n, seed)
    y[n // 2 :] = 1 - y[n // 2 :]
    return X, y


def test_the_quadratic_companion_is_gated_by_its_recent_score_and_the_linear_one_is_not():
    X, y = _switch(4000)
    model = AMClassifier(hidden_sizes=(8,), batch_size=32, seed=0).partial_fit(X[:2000], y[:2000])
    quadratic, linear = model._quadratic, model._companion
    assert quadratic.gate and not linear.gate
    assert quadratic.scores[1] > quadratic.scores[0] and quadratic.recent[1] > quadratic.recent[0]
    model.partial_fit(X[2000:2256], y[2000:2256])  # two blocks after the switch
    # its memory of the old concept: the long score still ahead of the network's, the recent one under it
    assert quadratic.scores[1] > quadratic.scores[0] and quadratic.recent[1] < quadratic.recent[0]
    proba = np.full((5, 2), 0.5)
    rows = torch.from_numpy(model._frame.apply(X[:200]))
    assert quadratic.answer(rows[:5], proba) is proba  # it answers nothing
    assert not quadratic.familiar(rows).any()  # (nor derives what rule 1 reads while silent)
    quadratic.gate = False
    assert quadratic.answer(rows[:5], proba) is not proba
    quadratic._watch()  # (derived from the measures at each block)
    assert quadratic.familiar(rows).mean() > 0.5  # the inputs are the recent ones: rule 1 applies again


def test_the_recent_scores_are_saved_and_a_state_saved_before_them_reads_a_tie():
    X, y = _switch(600)
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(X, y)
    meta, arrays = model._payload()
    assert meta["quadratic"]["recent"] == model._quadratic.recent and model._quadratic.recent[0] < 0
    older = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0)
    older._restore({**meta, "quadratic": {k: v for k, v in meta["quadratic"].items() if k != "recent"}}, arrays)
    assert older._quadratic.recent == [0.0, 0.0] and older._quadratic.gate
