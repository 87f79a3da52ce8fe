"""The batches a classifier's linear companion has gathered and not learned yet (stream_am.estimators.companion,
``BLOCK``): saved and restored exactly, checked at load, grown and re-expressed with the network's inputs."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from stream_am import AMClassifier
from stream_am.estimators import companion as companion_module


def _gathering(n: int = 300) -> AMClassifier:
    """A classifier whose companion holds gathered batches: three classes past ``NEW`` rows each, batch 8."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    model = AMClassifier(hidden_sizes=(4,), batch_size=8, seed=0).partial_fit(X, y)
    assert model._companion._pending, "the stream must end with batches gathered"
    return model


def _edit(path: Path, meta: Any = None, arrays: Any = None) -> None:
    if meta is not None:
        config = json.loads((path / "config.json").read_text())
        meta(config["meta"]["companion"])
        (path / "config.json").write_text(json.dumps(config))
    if arrays is not None:
        state = dict(load_file(str(path / "state.safetensors")))
        arrays(state)
        save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path / "state.safetensors"))


def _setitem(key: str, value: Any) -> Any:
    return lambda d: d.__setitem__(key, value)


def _first(change: Any) -> Any:
    return lambda meta: change(meta["pending"][0])


EDITS = {
    "pending-not-a-list": (dict(meta=_setitem("pending", {"size": 8})), "pending"),
    "size-zero": (dict(meta=_first(lambda b: b.__setitem__(0, 0))), "pending"),
    "size-bool": (dict(meta=_first(lambda b: b.__setitem__(0, True))), "pending"),
    "size-float": (dict(meta=_first(lambda b: b.__setitem__(0, 8.0))), "pending"),
    "loss-negative": (dict(meta=_first(lambda b: b.__setitem__(1, -1.0))), "pending"),
    "loss-nan": (dict(meta=_first(lambda b: b.__setitem__(1, float("nan")))), "pending"),
    "accuracy-above-1": (dict(meta=_first(lambda b: b.__setitem__(2, 1.5))), "pending"),
    "a-batch-dropped": (dict(meta=lambda m: m["pending"].pop()), "pending_rows"),
    "a-full-block": (dict(meta=_setitem("pending", [[companion_module.BLOCK, 0.5, 0.5]])), "pending"),
    "rows-missing": (dict(arrays=lambda a: a.pop("companion.pending_rows")), "pending_rows"),
    "rows-nan": (dict(arrays=lambda a: a["companion.pending_rows"].__setitem__((0, 0), np.nan)), "pending_rows"),
    "rows-float32": (dict(arrays=lambda a: a.__setitem__("companion.pending_rows",
                                                         a["companion.pending_rows"].astype(np.float32))),
                     "pending_rows"),
    "rows-narrow": (dict(arrays=lambda a: a.__setitem__("companion.pending_rows", a["companion.pending_rows"][:, :2])),
                    "pending_rows"),
    "labels-out-of-range": (dict(arrays=lambda a: a["companion.pending_labels"].__setitem__(0, 3)), "pending_labels"),
    "labels-negative": (dict(arrays=lambda a: a["companion.pending_labels"].__setitem__(0, -1)), "pending_labels"),
    "labels-float": (dict(arrays=lambda a: a.__setitem__("companion.pending_labels",
                                                         a["companion.pending_labels"].astype(np.float64))),
                     "pending_labels"),
    "arrays-without-meta": (dict(meta=lambda m: m.pop("pending")), "pending"),
    # found by a review: rows past float32's range loaded, and the block's squares then passed the bound on the
    # sums, so the model's next save did not load (and a server's writer retried it without end)
    "rows-beyond-float32": (dict(arrays=lambda a: a["companion.pending_rows"].__setitem__((0, 0), 1e80)),
                            "pending_rows"),
    # found by a review: an int too large for a float raised OverflowError, not a ValueError naming the field
    "loss-huge-int": (dict(meta=_first(lambda b: b.__setitem__(1, 10**400))), "pending"),
    "score-huge-int": (dict(meta=_setitem("scores", [-(10**400), -0.5])), "scores"),
}


@pytest.mark.parametrize("case", list(EDITS))
def test_load_refuses_edited_gathered_batches_naming_the_field(case, tmp_path):
    path = _gathering().save(tmp_path / "m")
    edit, field = EDITS[case]
    _edit(path, **edit)
    with pytest.raises(ValueError, match=field):
        AMClassifier.load(path)


def test_gathered_batches_are_saved_pickled_and_learned_on_exactly(tmp_path):
    model = _gathering()
    loaded, unpickled = AMClassifier.load(model.save(tmp_path / "m")), pickle.loads(pickle.dumps(model))
    for other in (loaded, unpickled):
        assert other._companion.meta() == model._companion.meta()
        for key, a in model._companion.arrays().items():
            assert np.array_equal(other._companion.arrays()[key], a), key
    X = np.random.default_rng(1).normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    for m in (model, loaded, unpickled):
        m.partial_fit(X, y)
    assert np.array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(unpickled.predict_proba(X), model.predict_proba(X))
    assert np.array_equal(loaded._companion.W, model._companion.W)


def test_a_state_saved_before_the_companion_gathered_loads_with_none_gathered(tmp_path):
    model = _gathering()
    path = model.save(tmp_path / "m")

    def drop(arrays: dict[str, Any]) -> None:
        arrays.pop("companion.pending_rows")
        arrays.pop("companion.pending_labels")

    _edit(path, meta=lambda m: m.pop("pending"), arrays=drop)
    loaded = AMClassifier.load(path)
    assert loaded._companion._pending == [] and np.array_equal(loaded._companion.W, model._companion.W)
    loaded.learn_one({0: 0.5, 1: -0.5, 2: 1.0}, 1)


def test_gathered_rows_grow_with_new_features_and_move_with_a_re_expression():
    model = _gathering()
    companion = model._companion
    rows, labels = companion._gathered()
    scale, shift = torch.tensor([2.0, 0.5, 1.0]), torch.tensor([1.0, -1.0, 0.0])
    companion.reexpress_inputs(scale, shift)
    np.testing.assert_allclose(companion._gathered()[0], rows * scale.numpy() + shift.numpy())
    companion.grow_inputs(2)
    grown, same = companion._gathered()
    assert grown.shape == (rows.shape[0], 5) and not grown[:, 3:].any() and np.array_equal(same, labels)
    model = _gathering()
    model.learn_one({0: 0.1, 1: 0.2, 2: 0.3, "new": 1.0}, 2)  # a new feature: the model grows; it learns on
    assert model._companion._gathered()[0].shape[1] == 4 and model._companion.A.shape[1] == 5


def test_forget_scales_what_was_learned_and_gathered_and_refuses_a_bad_factor_unchanged():
    """``AMClassifier.forget`` scales the engine's memories and the companion's sums; what was gathered is learned
    first (as batch-by-batch learning would have held it), the weights stay; a bad factor changes nothing."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(208, 4)), rng.integers(0, 3, 208)
    AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).forget(0.5)  # before the first step: nothing to scale
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(X, y)
    twin = copy.deepcopy(model)
    companion, engine_state = model._companion, model.engine.state_dict()
    assert companion is not None and companion._pending  # rows gathered, not yet learned
    for bad in (0.0, 1.5, float("nan"), "0.5"):
        with pytest.raises(ValueError, match="factor"):
            model.forget(bad)
    assert all(torch.equal(v, model.engine.state_dict()[k]) for k, v in engine_state.items())
    assert companion._pending and np.array_equal(companion.A, twin._companion.A)
    model.forget(0.25)
    twin._companion._learn_block()  # what forget learns first
    np.testing.assert_array_equal(companion.A, 0.25 * twin._companion.A)
    np.testing.assert_array_equal(companion.W, twin._companion.W)
    assert not companion._pending
    twin.engine.forget(0.25)
    for k, v in twin.engine.state_dict().items():
        assert torch.equal(v, model.engine.state_dict()[k]), k


def test_forget_by_one_changes_nothing_not_even_when_the_gathered_rows_are_learned():
    """A factor of 1 is a no-op: it does not learn the gathered rows early, which would move the blocks'
    boundaries and so the companion's later weights and answers (an adversarial review found it did)."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(400, 4)), rng.integers(0, 3, 400)
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(X[:208], y[:208])
    twin = copy.deepcopy(model)
    assert model._companion is not None and model._companion._pending
    model.forget(1.0)
    assert len(model._companion._pending) == len(twin._companion._pending)
    model.partial_fit(X[208:], y[208:])
    twin.partial_fit(X[208:], y[208:])
    np.testing.assert_array_equal(model._companion.W, twin._companion.W)
    np.testing.assert_array_equal(model.predict_proba(X), twin.predict_proba(X))
