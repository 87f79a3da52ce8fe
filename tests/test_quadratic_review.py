"""An adversarial review of the classifier's quadratic companion (stream_am.estimators.basis, .companion with a
basis, and how AMClassifier builds, grows, drops, saves and loads it): learn_one against learn_many, save and load
mid-stream, growth past its width, hostile states, magnitudes and the server's size count. The last two tests were
failing before the sixteenth session's fix (gathered rows bounded per basis at load, clipped when re-expressed)."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest
from stream_am.server.model_limits import class_memory

from stream_am import AMClassifier, AMRegressor
from stream_am.estimators import companion as companion_module
from stream_am.estimators import sums as sums_module
from stream_am.estimators.basis import QUADRATIC, QUADRATIC_DECAY, QUADRATIC_MAX_FEATURES


def _same(a: Any, b: Any) -> None:
    """The two estimators' saved states are equal, bit for bit."""
    (ma, aa), (mb, ab) = a._payload(), b._payload()
    assert ma == mb, [k for k in ma if ma[k] != mb.get(k)]
    assert set(aa) == set(ab), set(aa) ^ set(ab)
    for k in aa:
        assert (aa[k].dtype, aa[k].shape) == (ab[k].dtype, ab[k].shape) and aa[k].tobytes() == ab[k].tobytes(), k


def _stream(n: int, seed: int = 1) -> tuple[list[dict], list[int]]:
    """Dict rows whose features appear over time (and are often absent), up to ``3 + n // 25``; labels whose
    classes appear late (a new one every 150 rows)."""
    rng = np.random.default_rng(seed)
    rows, ys = [], []
    for i in range(n):
        keys = [f"f{j}" for j in range(3 + i // 25) if rng.random() > 0.3]
        rows.append({k: float(rng.normal()) for k in keys})
        ys.append(int(rng.integers(0, 1 + min(i // 150, 3))))
    return rows, ys


def _learn(model: AMClassifier, rows: list[dict], ys: list[int], many: bool = False) -> AMClassifier:
    if many:
        for s in range(0, len(rows), 37):
            model.learn_many(pd.DataFrame(rows[s:s + 37]), pd.Series(ys[s:s + 37]))
    else:
        for r, y in zip(rows, ys, strict=True):
            model.learn_one(r, y)
    return model


def _model(**kw: Any) -> AMClassifier:
    return AMClassifier(**{"hidden_sizes": (8,), "batch_size": 8, "seed": 0, **kw})


# -- the basis and the documented figures ----------------------------------------------------------------------
def test_the_documented_widths_threshold_decay_and_size():
    assert (QUADRATIC.width(9), QUADRATIC.width(20), QUADRATIC_MAX_FEATURES, QUADRATIC_DECAY) == (55, 231, 20, 0.3)
    assert 10 * QUADRATIC.width(100) ** 2 * 8 == pytest.approx(2e9, rel=0.1)  # "10 classes of 100 features: 2 GB"
    for d in (0, 1):  # degenerate widths: no products, or one
        assert QUADRATIC.rows(np.ones((2, d))).shape == (2, QUADRATIC.width(d))
        assert QUADRATIC.transform(np.ones(d), np.zeros(d)).tolist() == np.eye(QUADRATIC.width(d)).tolist()
        assert QUADRATIC.embed(d, 2).shape == (QUADRATIC.width(d),)


def test_a_grown_companion_equals_one_that_learned_the_zero_padded_rows():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 2)).astype(np.float32), rng.integers(0, 2, 40)
    import torch

    grown = companion_module.LinearCompanion(2, 2, 0.01, 1e-3, basis=QUADRATIC)
    wide = companion_module.LinearCompanion(4, 2, 0.01, 1e-3, basis=QUADRATIC)
    for part, rows in ((grown, x), (wide, np.hstack([x, np.zeros((40, 2), np.float32)]))):
        part.learn(torch.from_numpy(rows), torch.from_numpy(y), {"loss": 0.5, "accuracy": 0.5})
    grown.grow_inputs(2)
    np.testing.assert_allclose(grown.A, wide.A, rtol=1e-12, atol=1e-12)
    # (W differs: the ridge scales with the width)
    assert not grown.W[np.setdiff1d(np.arange(15), QUADRATIC.embed(2, 2))].any()


def test_the_quadratic_memory_ages_at_0_3_times_memory_decay():
    model = _model(memory_decay=0.01, batch_size=8)
    X = np.random.default_rng(0).normal(size=(256, 2))
    model.partial_fit(X, np.zeros(256, dtype=int))
    for part, decay in ((model._quadratic, 0.3 * 0.01), (model._companion, 0.01)):
        batches = (256 - sum(n for n, _, _ in part._pending)) // 8  # a batch ages the earlier ones by its 8 rows
        assert part.A[0, 0, 0] == pytest.approx(8 * sum((1 - decay) ** (8 * j) for j in range(batches)), rel=1e-9)


# -- learn_one == learn_many, save/load == uninterrupted -------------------------------------------------------
def test_learn_one_equals_learn_many_bitwise_with_features_appearing_past_20_and_late_classes():
    rows, ys = _stream(560)
    one, many = _model(), _model()
    for s in range(0, 560, 70):
        _learn(one, rows[s:s + 70], ys[s:s + 70])
        _learn(many, rows[s:s + 70], ys[s:s + 70], many=True)
        _same(one, many)
    assert len(one._index) > QUADRATIC_MAX_FEATURES and one._quadratic is None and one._companion is not None


@pytest.mark.parametrize("cut", [300, 440, 460, 520])  # 15, 20 (kept), 21 and 23 features (dropped)
def test_save_load_pickle_deepcopy_then_learning_equals_uninterrupted_learning(cut, tmp_path):
    rows, ys = _stream(560)
    full = _learn(_model(), rows, ys)
    part = _learn(_model(), rows[:cut], ys[:cut])
    assert (part._quadratic is not None) == (len(part._index) <= QUADRATIC_MAX_FEATURES)
    for other in (AMClassifier.load(part.save(tmp_path / "m")), pickle.loads(pickle.dumps(part)),
                  copy.deepcopy(part)):
        _same(other, part)
        _same(_learn(other, rows[cut:], ys[cut:]), full)


def test_exactly_20_features_keep_it_and_the_21st_drops_it_for_good(tmp_path):
    model = _model().partial_fit(np.random.default_rng(0).normal(size=(16, 20)), [0, 1] * 8)
    assert model._quadratic is not None and model._quadratic.n_inputs == 20
    model.learn_one({**{i: 0.1 for i in range(20)}, "x": 1.0}, 1)
    assert model._quadratic is None
    loaded = AMClassifier.load(model.save(tmp_path / "m"))
    assert loaded._quadratic is None and class_memory(model, 21, 2) == class_memory(loaded, 21, 2)


# -- answering changes nothing and stays finite ---------------------------------------------------------------
def test_predictions_change_nothing():
    rows, ys = _stream(300)
    model = _learn(_model(), rows, ys)
    before = pickle.dumps(model)
    model.predict_proba_many(pd.DataFrame(rows[:50]))
    model.predict_proba_one({"f0": 1e20, "unknown": -1e20})
    model.predict_one({})
    _same(model, pickle.loads(before))


@pytest.mark.parametrize("standardize", [True, False])
def test_extreme_and_constant_features_give_finite_probabilities(standardize):
    rng = np.random.default_rng(0)
    big = 1e20 if standardize else 1e9
    X = np.column_stack([np.clip(rng.normal(size=240), -1, 1) * big, rng.normal(size=240) * 1e-30, np.full(240, 7.0),
                         np.where(rng.random(240) < 0.05, big, 1e-11 * rng.normal(size=240))])
    model = _model(standardize=standardize).partial_fit(X, rng.integers(0, 3, 240))
    assert model._quadratic is not None
    probe = np.vstack([X, np.full((1, 4), big), np.full((1, 4), -big), np.zeros((1, 4))])
    p = model.predict_proba(probe)
    assert np.isfinite(p).all() and np.allclose(p.sum(axis=1), 1.0)
    for key, a in model._payload()[1].items():
        assert np.isfinite(a).all(), key
    pickle.loads(pickle.dumps(model))


def test_forget_reaches_the_quadratic_companion():
    model = _model().partial_fit(np.random.default_rng(0).normal(size=(64, 3)), [0, 1] * 32)
    model._quadratic._learn_block() if model._quadratic._pending else None
    A = model._quadratic.A.copy()
    model.forget(0.5)
    np.testing.assert_array_equal(model._quadratic.A, A * 0.5)


# -- hostile saved states ------------------------------------------------------------------------------------
def _trained() -> AMClassifier:
    X = np.random.default_rng(0).normal(size=(300, 3))
    return _model().partial_fit(X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0))


def _set(key: str, f: Any) -> Any:
    return lambda meta, arrays: arrays.__setitem__(key, f(arrays[key]))


def _poke(key: str, at: tuple, value: float) -> Any:
    return _set(key, lambda a: (lambda b: (b.__setitem__(at, value), b)[1])(a.copy()))


HOSTILE = {
    "A-shape-linear": (_set("quadratic.A", lambda a: a[:, :4, :4].copy()), "quadratic.A"),
    "A-float32": (_set("quadratic.A", lambda a: a.astype(np.float32)), "quadratic.A"),
    "A-int": (_set("quadratic.A", lambda a: a.astype(np.int64)), "quadratic.A"),
    "A-list": (_set("quadratic.A", lambda a: a.tolist()), "quadratic.A"),
    "A-nan": (_poke("quadratic.A", (0, 1, 1), np.nan), "quadratic.A"),
    "A-inf": (_poke("quadratic.A", (0, 1, 1), np.inf), "quadratic.A"),
    "A-huge": (_poke("quadratic.A", (0, 1, 1), 1e200), "quadratic.A"),
    "A-asymmetric": (_poke("quadratic.A", (0, 1, 2), 1e3), "quadratic.A"),
    "A-negative-diagonal": (_poke("quadratic.A", (0, 5, 5), -1.0), "quadratic.A"),
    "A-count-above-n_learned": (_poke("quadratic.A", (0, 0, 0), 1e6), "quadratic.A"),
    "R-nan": (_poke("quadratic.R", (1, 1), np.nan), "quadratic.R"),
    "R-transposed-shape": (_set("quadratic.R", lambda a: a[:-1]), "quadratic.R"),
    "W-inf": (_poke("quadratic.W", (0, 0), -np.inf), "quadratic.W"),
    "W-transposed": (_set("quadratic.W", lambda a: a.T.copy()), "quadratic.W"),
    "W-float32": (_set("quadratic.W", lambda a: a.astype(np.float32)), "quadratic.W"),
    "rows-nan": (_poke("quadratic.pending_rows", (0, 0), np.nan), "quadratic.pending_rows"),
    "rows-wide": (_set("quadratic.pending_rows", lambda a: np.hstack([a, a[:, :1]])), "quadratic.pending_rows"),
    "labels-out-of-range": (_poke("quadratic.pending_labels", (0,), 7), "quadratic.pending_labels"),
    "arrays-missing": (lambda meta, arrays: arrays.pop("quadratic.W"), "quadratic.W"),
    "meta-not-a-dict": (lambda meta, arrays: meta.__setitem__("quadratic", [0.0]), "meta.quadratic"),
    "meta-score-positive": (lambda meta, arrays: meta["quadratic"].__setitem__("scores", [0.1, 0.0]),
                            "meta.quadratic.scores"),
    "meta-accuracy-nan": (lambda meta, arrays: meta["quadratic"].__setitem__("accuracy", [np.nan, 0.5]),
                          "meta.quadratic.accuracy"),
    "without-linear-companion": (lambda meta, arrays: (meta.__setitem__("companion", None), [
        arrays.pop(k) for k in list(arrays) if k.startswith("companion.")]), "meta.companion"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_quadratic_state_is_refused_naming_the_field_and_changes_nothing(case):
    source, target = _trained(), _trained()
    target.learn_one({0: 0.3, 1: 0.1, 2: -0.2}, 2)
    before = pickle.dumps(target)
    meta, arrays = copy.deepcopy(source._payload())
    assert source._quadratic is not None and source._quadratic._pending
    edit, field = HOSTILE[case]
    edit(meta, arrays)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        target._restore(meta, arrays)
    _same(target, pickle.loads(before))


def test_a_quadratic_on_more_than_20_inputs_or_a_model_without_one_is_refused():
    narrow = _trained()
    qmeta, qarrays = narrow._quadratic.meta(), narrow._quadratic.arrays("quadratic")
    wide = _model().partial_fit(np.random.default_rng(0).normal(size=(64, 21)), [0, 1, 2, 0] * 16)
    meta, arrays = wide._payload()
    big = companion_module.LinearCompanion(21, 3, 3e-4, 1e-3, basis=QUADRATIC)
    for model, m, a in ((_model(), {**meta, "quadratic": big.meta()}, {**arrays, **big.arrays("quadratic")}),
                        (_model(companion=False), {**narrow._payload()[0], "companion": None},
                         {k: v for k, v in narrow._payload()[1].items() if not k.startswith("companion.")})):
        with pytest.raises(ValueError, match="meta.quadratic"):
            model._restore(m, a)
        assert model._engine is None and model._quadratic is None
    regressor = AMRegressor(hidden_sizes=(8,), batch_size=8, seed=0)
    regressor.learn_many(pd.DataFrame(np.random.default_rng(0).normal(size=(16, 3))), pd.Series(np.arange(16.0)))
    before = pickle.dumps(regressor)
    with pytest.raises(ValueError, match="meta.quadratic"):
        regressor._restore({**regressor._payload()[0], "quadratic": qmeta}, {**regressor._payload()[1], **qarrays})
    _same(regressor, pickle.loads(before))


# -- the server's size limits ----------------------------------------------------------------------------------
def test_the_server_counts_the_quadratic_up_to_20_features_and_what_it_holds_fits_the_count():
    model = _model().partial_fit(np.random.default_rng(0).normal(size=(32, 20)), np.arange(32) % 3)
    with_quadratic, without = class_memory(model, 20, 3), class_memory(model, 21, 3)
    assert with_quadratic - without >= companion_module.size(20, 3, QUADRATIC) - 3 * 21 * 21 * 3
    q = model._quadratic
    held = q.A.size + q.R.size + sum(a.size for a in q._gathered())
    assert held <= companion_module.size(20, 3, QUADRATIC)
    assert class_memory(_model(), 20, 3) == with_quadratic  # priced the same before the first step


# -- hostile gathered rows: a state accepted at load stays loadable ----------------------------------------------
def test_a_quadratic_state_accepted_at_load_stays_loadable_after_learning():
    """Gathered rows bounded by float32's largest alone keep a block's squares far under the 1e150 bound on the
    sums, but on the quadratic basis a block's products are fourth powers (1.3e154 for 3e38): such rows are
    refused at load for the quadratic companion (its bound: the square root of float32's largest)."""
    model = _trained()
    meta, arrays = copy.deepcopy(model._payload())
    arrays["quadratic.pending_rows"][0, :] = 3e38
    loaded = _model()
    try:
        loaded._restore(meta, arrays)
    except ValueError as err:  # refused at load: fine
        assert "quadratic.pending_rows" in str(err)
        return
    X = np.random.default_rng(5).normal(size=(200, 3))
    loaded.partial_fit(X, (X[:, 0] > 0).astype(int))
    pickle.loads(pickle.dumps(loaded))  # (was: array quadratic.A must hold finite values at most 1e+150)


def test_gathered_rows_accepted_at_load_stay_loadable_after_a_refresh_re_expresses_them():
    """Gathered rows just under the load bound (float32's largest) are accepted; the next frame refresh (here
    forced by a new feature) scales them by its ratio (> 1 where the spread shrank): they are clipped to the bound,
    so the model's next save loads."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    model = _model().partial_fit(X, (X[:, 0] > 0).astype(int))
    meta, arrays = copy.deepcopy(model._payload())
    arrays["companion.pending_rows"][0, :] = 3.35e38
    loaded = _model()
    loaded._restore(meta, arrays)
    mean = model._moments.mean_scale()[0]
    for i in range(8):  # rows at the mean shrink the spread; the new feature refreshes the frame first
        loaded.learn_one({0: float(mean[0]), 1: float(mean[1]), 2: float(mean[2]), "new": 1.0}, i % 2)
    assert loaded._companion._pending  # (still gathered, re-expressed)
    pickle.loads(pickle.dumps(loaded))  # (was: array companion.pending_rows must hold ... at most 3.40282e+38)


def _near_the_bound(a: np.ndarray, spread: float = 1e74) -> np.ndarray:
    """Sums of rows whose features are ``spread`` times larger (counts unchanged), then within 0.9e150."""
    D = np.full(a.shape[-1], spread)
    D[0] = 1.0
    a = a * D[:, None] * D
    return a * min(1.0, 0.9e150 / np.abs(a).max())


def test_sums_and_weights_near_the_bound_stay_loadable_after_a_refresh_scales_them_up():
    """Sums and weights accepted at load (at most 1e150) that a refresh would carry past the bound (here 2e152) are
    scaled down to it (a fit reads its sums up to a common factor): the model's next save loads."""
    X = np.random.default_rng(0).normal(size=(300, 3))
    model = _model().partial_fit(X, (X[:, 0] > 0).astype(int))
    meta, arrays = copy.deepcopy(model._payload())
    for prefix in ("companion", "quadratic"):
        arrays[f"{prefix}.A"] = np.stack([_near_the_bound(a) for a in arrays[f"{prefix}.A"]])
        arrays[f"{prefix}.R"] = _near_the_bound(arrays[f"{prefix}.R"])
        arrays[f"{prefix}.W"] = arrays[f"{prefix}.W"] * (0.9e150 / np.abs(arrays[f"{prefix}.W"]).max())
    loaded = _model()
    loaded._restore(meta, arrays)
    mean = model._moments.mean_scale()[0]
    for i in range(8):  # rows at the mean shrink the spread; the new feature refreshes the frame first
        loaded.learn_one({0: float(mean[0]), 1: float(mean[1]), 2: float(mean[2]), "new": 1.0}, i % 2)
    for part in (loaded._companion, loaded._quadratic):
        assert max(np.abs(part.A).max(), np.abs(part.R).max(), np.abs(part.W).max()) <= 1e150
    again = pickle.loads(pickle.dumps(loaded))  # (was: array quadratic.A must hold finite values at most 1e+150)
    assert np.isfinite(again.predict_proba_one({0: 1.0, 1: 0.0, 2: -1.0, "new": 1.0})[0])


def test_held_scales_sums_down_without_changing_the_fit():
    model = _trained()
    part = copy.deepcopy(model._quadratic)
    scaled = copy.deepcopy(part)
    gain = 1e150 / np.abs(scaled.A).max() * 10.0  # ten times too much
    assert sums_module.held(scaled.A, gain) is scaled.A and np.abs(scaled.A).max() * gain == pytest.approx(5e149)
    part._solve()
    scaled._solve()
    np.testing.assert_allclose(scaled.W, part.W, rtol=1e-9, atol=1e-12)
    assert not sums_module.held(scaled.A, float("inf")).any()  # nothing finite to scale to: forgotten


def test_a_loaded_frame_far_from_its_moments_shifts_the_rows_by_at_most_max_value():
    """A frame mean of 1e20 (each bound kept) on moments near 0: the next refresh's shift, 1e20 scales, would
    overflow the first layer's float32 sums; it is clipped to 1e9 and the model's next save loads."""
    X = np.random.default_rng(0).normal(size=(300, 3))
    model = _model().partial_fit(X, (X[:, 0] > 0).astype(int))
    meta, arrays = copy.deepcopy(model._payload())
    arrays["frame.mean"][0] = 1e20
    loaded = _model()
    loaded._restore(meta, arrays)
    loaded.partial_fit(X[:64], (X[:64, 0] > 0).astype(int))
    assert np.isfinite(loaded.engine.state_dict()["memory.0.A"].numpy()).all()
    pickle.loads(pickle.dumps(loaded))  # (was: state['memory.0.A'] holds values that are not finite)
