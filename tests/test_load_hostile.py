"""Hostile checkpoints: a ``config.json`` or ``state.safetensors`` edited by hand (or by an attacker) is refused at
``load`` with a ``ValueError`` naming the file, key or field that is wrong, never loaded into a model that fails
later or predicts NaN."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import load_file, save_file

from stream_am import AMClassifier, AMRegressor, OnlineAM
from stream_am.baselines import BackpropClassifier, BackpropRegressor
from stream_am.estimators import build_mlp

Edit = Callable[[dict[str, Any]], None]


def _trained(cls: type = AMClassifier, n: int = 10) -> Any:
    """A small model mid-buffer (batch 4, 10 samples: two steps, two samples buffered), three features."""
    model = cls(hidden_sizes=(4,), batch_size=4, seed=0)
    for i in range(n):
        target = ("x", "y", "z")[i % 3] if hasattr(model, "predict_proba_one") else float(i % 5)
        model.learn_one({"a": float(i % 4), "b": float(i % 3) - 1.0, "c": 0.5 * i}, target)
    return model


def _saved(tmp_path: Path, cls: type = AMClassifier) -> Path:
    return _trained(cls).save(tmp_path / "model")


def _edit_config(path: Path, edit: Edit) -> None:
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


def _edit_state(path: Path, edit: Edit) -> None:
    arrays = dict(load_file(str(path / "state.safetensors")))
    edit(arrays)
    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(path / "state.safetensors"))


def _meta(key: str, value: Any) -> Edit:
    return lambda config: config["meta"].__setitem__(key, value)


def _array(key: str, change: Callable[[np.ndarray], np.ndarray]) -> Edit:
    return lambda arrays: arrays.__setitem__(key, change(arrays[key].copy()))


def _set(a: np.ndarray, index: Any, value: Any) -> np.ndarray:
    a[index] = value
    return a


CONFIG_EDITS: dict[str, tuple[Edit, str]] = {
    "class-dropped": (lambda c: c["meta"]["classes"].pop(), "classes"),
    "frame_new-not-an-int": (_meta("frame_new", "yes"), "frame_new"),
    "frame_new-above-the-features": (_meta("frame_new", 9), "frame_new"),
    "stepped-not-an-int": (_meta("stepped", 1.5), "stepped"),
    "stepped-negative": (_meta("stepped", -1), "stepped"),
    "stepped-above-the-features": (_meta("stepped", 9), "stepped"),
    "stepped-disagrees-with-frame_new": (_meta("stepped", 2), "stepped"),
    "class-added": (lambda c: c["meta"]["classes"].append(["str", "w"]), "classes"),
    "class-duplicated": (lambda c: c["meta"]["classes"].__setitem__(2, ["str", "x"]), "classes"),
    "class-of-another-type": (lambda c: c["meta"]["classes"].__setitem__(2, ["int", 2]), "classes"),
    "feature-dropped": (lambda c: c["meta"]["features"].pop(), "features"),
    "feature-duplicated": (lambda c: c["meta"]["features"].__setitem__(2, ["str", "a"]), "features"),
    "n_learned-negative": (_meta("n_learned", -3), "n_learned"),
    "n_learned-not-an-int": (_meta("n_learned", "10"), "n_learned"),
    "n_learned-below-the-buffer": (_meta("n_learned", 1), "n_learned"),
    "n_learned-without-room-to-count": (_meta("n_learned", 2**63 - 1), "n_learned"),
    "started-not-a-bool": (_meta("started", "yes"), "started"),
    "engine-wrong-width": (_meta("engine", [3, 5]), "engine"),
    "last_stats-not-a-dict": (_meta("last_stats", 5), "last_stats"),
    "classes_declared-missing": (lambda c: c["meta"].pop("classes_declared"), "classes_declared"),
    "unknown-type-tag": (lambda c: c["params"].__setitem__("seed", ["set", [1]]), "seed.*'set'"),
    "tag-value-mismatch": (lambda c: c["params"].__setitem__("batch_size", ["int", "4"]), "batch_size"),
    "malformed-tag": (lambda c: c["meta"]["features"].__setitem__(0, "a"), r"features\[0\]"),
    "class-key-missing": (lambda c: c.pop("class"), '"class"'),
    "unknown-parameter": (lambda c: c["params"].__setitem__("colour", ["str", "red"]), "colour"),
    "parameter-invalid": (lambda c: c["params"].__setitem__("batch_size", ["int", 0]), "batch_size"),
    "meta-missing": (lambda c: c.pop("meta"), '"meta"'),
    "meta-key-missing": (lambda c: c["meta"].pop("n_learned"), "n_learned"),
    "companion-not-a-dict": (_meta("companion", [-0.5, -0.5]), "companion"),
    "companion-key-missing": (lambda c: c["meta"]["companion"].pop("accuracy"), "companion"),
    "companion-score-positive": (lambda c: c["meta"]["companion"].__setitem__("scores", [-0.5, 0.5]), "scores"),
    "companion-score-nan": (lambda c: c["meta"]["companion"].__setitem__("scores", [-0.5, float("nan")]), "scores"),
    "companion-score-bool": (lambda c: c["meta"]["companion"].__setitem__("scores", [True, -0.5]), "scores"),
    "companion-scores-three": (lambda c: c["meta"]["companion"].__setitem__("scores", [-0.5] * 3), "scores"),
    "companion-recent-positive": (lambda c: c["meta"]["companion"].__setitem__("recent", [-0.5, 0.5]), "recent"),
    "quadratic-recent-one": (lambda c: c["meta"]["quadratic"].__setitem__("recent", [-0.5]), "quadratic.recent"),
    "companion-accuracy-above-1": (lambda c: c["meta"]["companion"].__setitem__("accuracy", [0.5, 1.5]), "accuracy"),
    "companion-dropped": (_meta("companion", None), "companion"),
    "companion-switched-off": (lambda c: c["params"].__setitem__("companion", ["bool", False]), "companion"),
    "companion-not-a-bool": (lambda c: c["params"].__setitem__("companion", ["int", 1]), "companion"),
}

STATE_EDITS: dict[str, tuple[Edit, str]] = {
    "buffer.y-out-of-range": (_array("buffer.y", lambda a: _set(a, 0, 7)), "buffer.y"),
    "buffer.y-negative": (_array("buffer.y", lambda a: _set(a, 0, -1)), "buffer.y"),
    "buffer.y-longer-than-the-buffer": (_array("buffer.y", lambda a: np.zeros(9, dtype=np.int64)), "buffer.y"),
    "buffer.y-float": (_array("buffer.y", lambda a: a.astype(np.float64)), "buffer.y"),
    "buffer.x-wrong-shape": (_array("buffer.x", lambda a: a[:, :2]), "buffer.x"),
    "buffer.x-nan": (_array("buffer.x", lambda a: _set(a, (0, 0), np.nan)), "buffer.x"),
    "buffer.x-huge": (_array("buffer.x", lambda a: _set(a, (0, 0), 1e300)), "buffer.x"),
    "buffer.x-past-the-rows": (_array("buffer.x", lambda a: _set(a, (3, 0), 1.0)), "buffer.x"),
    "buffer.mask-wrong-dtype": (_array("buffer.mask", lambda a: a.astype(np.float32)), "buffer.mask"),
    "moments.count-too-short": (_array("moments.count", lambda a: a[:2]), "moments.count"),
    "moments.count-negative": (_array("moments.count", lambda a: _set(a, 0, -5)), "moments.count"),
    "moments.count-above-n_learned": (_array("moments.count", lambda a: _set(a, 0, 99)), "moments.count"),
    "moments.sum-nan": (_array("moments.sum", lambda a: _set(a, 1, np.nan)), "moments.sum"),
    "moments.sum_sq-negative": (_array("moments.sum_sq", lambda a: _set(a, 1, -1.0)), "moments.sum_sq"),
    "moments.shift-inf": (_array("moments.shift", lambda a: _set(a, 2, np.inf)), "moments.shift"),
    "moments.sum-beyond-its-squares": (_array("moments.sum", lambda a: _set(a, 0, 1e6)), "moments.sum"),
    "moments-missing": (lambda arrays: arrays.pop("moments.sum"), "moments.sum"),
    "frame.scale-zero": (_array("frame.scale", lambda a: _set(a, 0, 0.0)), "frame.scale"),
    "frame.scale-inf": (_array("frame.scale", lambda a: _set(a, 1, np.inf)), "frame.scale"),
    "frame.mean-nan": (_array("frame.mean", lambda a: _set(a, 2, np.nan)), "frame.mean"),
    "frame.mean-wrong-shape": (_array("frame.mean", lambda a: a[:2]), "frame.mean"),
    "frame.scale-missing": (lambda arrays: arrays.pop("frame.scale"), "frame.scale"),
    "frame.gain-negative": (_array("frame.gain", lambda a: _set(a, 0, -1.0)), "frame.gain"),
    "frame.gain-nan": (_array("frame.gain", lambda a: _set(a, 1, np.nan)), "frame.gain"),
    "frame.gain-beyond-reach": (_array("frame.gain", lambda a: _set(a, 1, 1e-30)), "frame.gain"),
    "engine.samples_seen-without-room": (_array("engine.samples_seen", lambda a: np.full_like(a, 2**63 - 4)),
                                         "samples_seen"),
    "engine.updates-without-room": (_array("engine.memory.0.updates", lambda a: np.full_like(a, 2**63 - 1)), "updates"),
    "frame.gain-wrong-shape": (_array("frame.gain", lambda a: a[:1]), "frame.gain"),
    "frame.gain-alone": (lambda arrays: [arrays.pop(k) for k in ("frame.mean", "frame.scale")], "frame.gain"),
    "engine-missing": (lambda arrays: [arrays.pop(k) for k in list(arrays) if k.startswith("engine.")], "engine"),
    "unexpected-array": (lambda arrays: arrays.__setitem__("extra", np.zeros(2)), "extra"),
    "companion-missing": (lambda arrays: arrays.pop("companion.A"), "companion.A"),
    "companion-too-narrow": (_array("companion.R", lambda a: a[:, :2]), "companion.R"),
    "companion-class-dropped": (_array("companion.A", lambda a: a[:2]), "companion.A"),
    "companion-weights-missing": (lambda arrays: arrays.pop("companion.W"), "companion.W"),
    "companion-weights-inf": (_array("companion.W", lambda a: _set(a, (0, 0), np.inf)), "companion.W"),
    "companion-nan": (_array("companion.R", lambda a: _set(a, (0, 0), np.nan)), "companion.R"),
    "companion-huge": (_array("companion.A", lambda a: _set(a, (0, 1, 1), 1e200)), "companion.A"),
    "companion-float32": (_array("companion.A", lambda a: a.astype(np.float32)), "companion.A"),
    "companion-count-above-n_learned": (_array("companion.A", lambda a: _set(a, (0, 0, 0), 99.0)), "companion.A"),
    "companion-recent-above-n_learned": (_array("companion.R", lambda a: _set(a, (0, 0), 99.0)), "companion.R"),
    "companion-negative-diagonal": (_array("companion.A", lambda a: _set(a, (1, 2, 2), -1.0)), "companion.A"),
    "companion-asymmetric": (_array("companion.A", lambda a: _set(a, (0, 1, 2), a[0, 1, 2] + 1.0)), "companion.A"),
    "companion-not-semi-definite": (_array("companion.A", lambda a: _set(_set(a, (0, 1, 2), 1e3 + np.abs(a[0]).max()),
                                                                         (0, 2, 1), 1e3 + np.abs(a[0]).max())),
                                    "companion.A"),
    "companion-recent-not-semi-definite": (_array("companion.R", lambda a: _set(_set(a, (1, 3), 1e4), (3, 1), 1e4)),
                                           "companion.R"),
    "companion-arrays-without-meta": (lambda arrays: arrays.__setitem__("companion.C", np.zeros(2)), "companion.C"),
}


@pytest.mark.parametrize("case", list(CONFIG_EDITS))
def test_load_refuses_an_edited_config_naming_the_field(case, tmp_path):
    path = _saved(tmp_path)
    edit, field = CONFIG_EDITS[case]
    _edit_config(path, edit)
    with pytest.raises(ValueError, match=field):
        AMClassifier.load(path)


@pytest.mark.parametrize("case", list(STATE_EDITS))
def test_load_refuses_an_edited_state_naming_the_array(case, tmp_path):
    path = _saved(tmp_path)
    edit, field = STATE_EDITS[case]
    _edit_state(path, edit)
    with pytest.raises(ValueError, match=field):
        AMClassifier.load(path)


@pytest.mark.parametrize("cls", [AMRegressor, BackpropRegressor])
@pytest.mark.parametrize(("key", "value", "field"), [
    ("target_moments.sum", np.nan, "target_moments.sum"),
    ("target_moments.count", -1, "target_moments.count"),
    ("buffer.y", np.inf, "buffer.y"),
    ("buffer.y", 1e30, "buffer.y"),
])
def test_load_refuses_a_regressor_with_corrupt_target_state(cls, key, value, field, tmp_path):
    path = _saved(tmp_path, cls)
    _edit_state(path, _array(key, lambda a: _set(a, 0, value)))
    with pytest.raises(ValueError, match=field):
        cls.load(path)


def test_a_backprop_classifier_is_checked_as_well(tmp_path):
    path = _saved(tmp_path, BackpropClassifier)
    _edit_config(path, lambda c: c["meta"]["classes"].pop())
    with pytest.raises(ValueError, match="classes"):
        BackpropClassifier.load(path)


def test_unreadable_state_file_is_a_value_error_naming_it(tmp_path):
    path = _saved(tmp_path)
    (path / "state.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="state.safetensors"):
        AMClassifier.load(path)
    (path / "state.safetensors").unlink()
    with pytest.raises(ValueError, match="state.safetensors"):
        AMClassifier.load(path)


def test_a_config_that_is_not_an_object_is_refused(tmp_path):
    path = _saved(tmp_path)
    (path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="config.json"):
        AMClassifier.load(path)


def test_pickled_state_is_checked_too():
    model = _trained()
    state = model.__getstate__()
    state["meta"]["n_learned"] = -3
    with pytest.raises(ValueError, match="n_learned"):
        pickle.loads(pickle.dumps(model)).__setstate__(state)


def test_n_learned_must_equal_the_buffer_before_the_first_step(tmp_path):
    path = _trained(n=2).save(tmp_path / "m")  # two samples buffered, no engine yet
    _edit_config(path, _meta("n_learned", 3))
    with pytest.raises(ValueError, match="n_learned = 3"):
        AMClassifier.load(path)


@pytest.mark.parametrize("cls", [AMClassifier, AMRegressor, BackpropClassifier, BackpropRegressor])
def test_intact_checkpoint_before_the_first_step_loads_and_continues_bit_identically(cls, tmp_path):
    """Mid-buffer checkpoints with an engine are covered by test_conformance; this one has samples, no engine."""
    model = _trained(cls, n=2)
    loaded = cls.load(model.save(tmp_path / "m"))
    for m in (model, loaded):
        for i in range(7):
            target = "xyw"[i % 3] if hasattr(m, "predict_proba_one") else float(i)
            m.learn_one({"a": float(i), "d": 2.0 - i}, target)
    probe = {"a": 0.5, "b": -1.0, "c": 2.0, "d": 1.0}
    assert (loaded.n_steps, loaded.n_buffered) == (model.n_steps, model.n_buffered) == (2, 1)
    predict = "predict_proba_one" if hasattr(model, "predict_proba_one") else "predict_one"
    assert getattr(loaded, predict)(probe) == getattr(model, predict)(probe)


def test_a_model_saved_before_the_companion_loads_without_one(tmp_path: Path) -> None:
    """A file without the ``companion`` parameter was saved before it existed: it loads as it was, alone."""
    model = _trained(AMClassifier)
    vars(model)["companion"] = False  # what an older version saved: no companion parameter, meta or arrays
    model._companion = model._quadratic = None  # (vars: a learned model refuses a new parameter, parameters.py)
    path = model.save(tmp_path / "m")
    _edit_config(path, lambda c: [c["params"].pop("companion"), c["meta"].pop("companion"), c["meta"].pop("quadratic")])
    loaded = AMClassifier.load(path)
    assert loaded.companion is False and loaded._companion is None
    probe = {"a": 1.0, "b": 0.0, "c": 2.0}
    assert loaded.predict_proba_one(probe) == model.predict_proba_one(probe)


def test_a_model_pickled_before_the_companion_unpickles_without_one() -> None:
    model = _trained(AMClassifier)
    vars(model)["companion"], model._companion, model._quadratic = False, None, None  # (as above)
    state = model.__getstate__()
    state["params"].pop("companion")  # what an older version pickled
    state["meta"].pop("companion")
    state["meta"].pop("quadratic")
    restored = AMClassifier.__new__(AMClassifier)
    restored.__setstate__(state)
    assert restored.companion is False and restored._companion is None
    probe = {"a": 1.0, "b": 0.0, "c": 2.0}
    assert restored.predict_proba_one(probe) == model.predict_proba_one(probe)


def test_a_parameter_the_file_lacks_takes_its_default(tmp_path: Path) -> None:
    """A model saved before a parameter existed still loads (the parameter takes its default)."""
    model = AMClassifier(hidden_sizes=(4,), batch_size=4, seed=0)
    for i in range(6):
        model.learn_one({"a": float(i % 3), "b": float(i % 2)}, i % 2)
    model.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    config["params"].pop("epochs")
    config_path.write_text(json.dumps(config))
    loaded = AMClassifier.load(tmp_path / "m")
    assert loaded.epochs == AMClassifier().epochs
    assert loaded.predict_proba_one({"a": 1.0, "b": 0.0}) == model.predict_proba_one({"a": 1.0, "b": 0.0})


def test_a_never_solving_engine_and_a_feature_of_subnormal_squares_save_and_load(tmp_path):
    """Two states ordinary use reaches, which the load checks must accept: ``solve_every`` is a setting (any int >=
    1), not a counter bounded by 2**62; squares of 1e-162 are subnormal, so the moments' sum**2 exceeds count *
    sum_sq by a fourth of it (a variance of -1e-325: rounding)."""
    engine = OnlineAM(build_mlp(2, 2, (4,), seed=0), solve_every=2**62 + 1)
    engine.partial_fit(torch.zeros(8, 2), torch.tensor([0, 1] * 4))
    OnlineAM(build_mlp(2, 2, (4,), seed=0), solve_every=2**62 + 1).load_state_dict(engine.state_dict())
    X = pd.DataFrame({"a": np.r_[0.0, np.full(399, 2.5e-162)], "b": np.random.default_rng(0).normal(size=400)})
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0).partial_fit(X, (X["b"] > 0).astype(int))
    AMClassifier.load(model.save(tmp_path / "m"))
