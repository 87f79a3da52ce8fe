"""Models saved by earlier versions load and answer as they did, then keep learning: files made as those versions
wrote them (no ``variants``, ``solve_every`` or memory ``updates`` in the state, one Adam step count per layer, no
``memory_clock`` or ``companion`` parameter). The versions before 2026-11-30 wrote these; they were refused
("state['variants'] must hold one code ...") or loaded with the class clock they never had."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from stream_am import AMClassifier

ROWS = [({"a": float(np.sin(i)), "b": float(np.cos(3 * i)), "c": float(i % 5)}, int(np.sin(i) + 0.2 * (i % 5) > 0.4))
        for i in range(120)]


def _as_older_version_saved_it(path: Path) -> None:
    state_path = path / "state.safetensors"
    state = load_file(str(state_path))
    old: dict[str, np.ndarray] = {}
    for key, value in state.items():
        if key in ("engine.variants", "engine.solve_every") or re.fullmatch(r"engine\.memory\.\w+\.updates", key):
            continue
        step = re.fullmatch(r"(engine\.adam\.\d+\.)(\d+)\.step", key)
        if step:  # (one count per layer: every parameter of a layer steps together)
            old[f"{step.group(1)}step"] = value.reshape(1)
            continue
        old[key] = value
    save_file(old, str(state_path))
    config_path = path / "config.json"
    config = json.loads(config_path.read_text())
    for name in ("memory_clock", "companion"):
        config["params"].pop(name)
    for name in ("companion", "quadratic"):
        config["meta"].pop(name, None)
    config_path.write_text(json.dumps(config))


@pytest.mark.parametrize("variant", ["mem", "adam"])
def test_a_model_an_older_version_saved_loads_answers_and_learns_as_it_would_have(tmp_path, variant):
    model = AMClassifier(hidden_sizes=(8,), batch_size=16, seed=0, variant=variant, memory_clock="sample",
                         companion=False, solve_every=1)
    for x, y in ROWS[:80]:
        model.learn_one(x, y)
    path = model.save(tmp_path / "m")
    _as_older_version_saved_it(path)
    loaded = AMClassifier.load(path)
    assert (loaded.memory_clock, loaded.companion) == ("sample", False)
    for x, y in ROWS[80:]:
        assert loaded.predict_proba_one(x) == model.predict_proba_one(x)
        loaded.learn_one(x, y)
        model.learn_one(x, y)
    assert loaded.n_steps == model.n_steps > 5
