"""``execute(scenario, RunConfig(...))`` checks every field of the configuration, the scenario's learners and the
output directory before it removes an earlier run's files: a refused run raises ``ValueError`` naming the field
and changes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from stream_am.scenarios import _checks, _common
from stream_am.scenarios._common import Outcome, RunConfig, Scenario, UnknownLearners, execute

from stream_am.checks import MAX_SEED
from stream_am.distributed.options import MAX_HIDDEN, MAX_LAYERS

EARLIER = '{"scenario": "earlier"}\n'


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> tuple[Scenario, list[RunConfig]]:
    """A scenario that measures nothing (it records the configurations it ran with), and no warm-up."""
    ran: list[RunConfig] = []

    def run(cfg: RunConfig) -> Outcome:
        ran.append(cfg)
        return Outcome(config={}, learners={name: {"accuracy": 0.5} for name in cfg.pick(("A", "B"))}, curves={})

    monkeypatch.setattr(_common, "warm_up", lambda: None)
    return Scenario("fake", "test", "measures nothing", run, ("A", "B")), ran


def _earlier(out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(EARLIER)
    return out / "results.json"


BAD = [
    ("learners", {"learners": ("nope",)}),
    ("learners", {"learners": "A"}),  # a str: ``in`` would find "A" in "AM-mem sample"
    ("learners", {"learners": ()}),
    ("learners", {"learners": ("A", 3)}),
    ("hidden", {"hidden": (0,)}),
    ("hidden", {"hidden": (MAX_HIDDEN + 1,)}),
    ("hidden", {"hidden": (8,) * (MAX_LAYERS + 1)}),
    ("hidden", {"hidden": [16]}),
    ("hidden", {"hidden": (16.0,)}),
    ("hidden", {"hidden": (True,)}),
    ("memory_decay", {"memory_decay": 2.0}),
    ("memory_decay", {"memory_decay": -0.1}),
    ("memory_decay", {"memory_decay": float("nan")}),
    ("memory_decay", {"memory_decay": "0.1"}),
    ("batch_size", {"batch_size": 0}),
    ("batch_size", {"batch_size": _checks.MAX_BATCH_SIZE + 1}),
    ("batch_size", {"batch_size": 32.0}),
    ("seed", {"seed": -1}),
    ("seed", {"seed": 1.5}),
    ("seed", {"seed": 2**64}),
    ("seed", {"seed": True}),
    ("quick", {"quick": 1}),
    ("progress", {"progress": None}),
    ("html", {"html": "yes"}),
]


@pytest.mark.parametrize(("field", "bad"), BAD)
def test_a_bad_field_is_refused_naming_it_before_an_earlier_run_is_removed(field, bad, fake, tmp_path):
    scenario, ran = fake
    earlier = _earlier(tmp_path)
    with pytest.raises(ValueError, match=rf"^RunConfig\.{field}\b"):
        execute(scenario, RunConfig(out=tmp_path, **{"progress": False, **bad}))
    assert ran == [] and earlier.read_text() == EARLIER and list(tmp_path.iterdir()) == [earlier]


def test_a_learner_the_scenario_lacks_is_unknown_learners(fake, tmp_path):
    scenario, ran = fake
    earlier = _earlier(tmp_path)
    with pytest.raises(UnknownLearners, match="RunConfig.learners: none of the learners"):
        execute(scenario, RunConfig(out=tmp_path, progress=False, learners=("nope",)))
    assert ran == [] and earlier.read_text() == EARLIER


def test_an_out_that_is_not_a_path_is_refused(fake, tmp_path):
    scenario, ran = fake
    earlier = _earlier(tmp_path)
    with pytest.raises(ValueError, match=r"^RunConfig\.out must be a pathlib\.Path, got .* \(a str\)"):
        execute(scenario, RunConfig(out=str(tmp_path), progress=False))  # type: ignore[arg-type]
    assert ran == [] and earlier.read_text() == EARLIER


def test_an_out_that_cannot_hold_results_is_refused_and_nothing_is_left(fake, tmp_path):
    scenario, ran = fake
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"^RunConfig\.out: .* is not a directory"):
        execute(scenario, RunConfig(out=tmp_path / "file" / "sub", progress=False))
    earlier = _earlier(tmp_path / "out")
    (tmp_path / "out" / "results.md").mkdir()
    with pytest.raises(ValueError, match=r"^RunConfig\.out: .*results\.md there is a directory"):
        execute(scenario, RunConfig(out=tmp_path / "out", progress=False))
    with pytest.raises(ValueError, match=r"^RunConfig\.out: .*File name too long"):
        execute(scenario, RunConfig(out=tmp_path / "new" / ("a" * 300), progress=False))
    assert ran == [] and earlier.read_text() == EARLIER
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "out"]  # not "new"


def test_the_limits_are_the_last_values_taken(fake, tmp_path):
    scenario, ran = fake
    cfg = RunConfig(out=tmp_path / "run", progress=False, seed=MAX_SEED, batch_size=_checks.MAX_BATCH_SIZE,
                    hidden=(MAX_HIDDEN,) + (1,) * (MAX_LAYERS - 1), memory_decay=0, learners=["B", "AM-mem"])
    doc = execute(scenario, cfg)
    assert ran == [cfg] and list(doc["learners"]) == ["B"]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["config"]["seed"] == MAX_SEED


def test_an_out_through_a_missing_directory_and_back_is_the_directory_the_system_resolves(fake, tmp_path):
    scenario, ran = fake
    for name in ("results.md", "accuracy.png", "report.html"):
        (tmp_path / name).write_text("earlier")
    (tmp_path / "notes.txt").write_text("mine")
    execute(scenario, RunConfig(out=tmp_path / "missing" / "..", progress=False))
    assert json.loads((tmp_path / "results.json").read_text())["scenario"] == "fake"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["missing", "notes.txt", "results.json", "results.md"]
    assert (tmp_path / "results.md").read_text().startswith("# fake")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may search any directory")
def test_an_out_under_a_directory_without_search_permission_is_refused(fake, tmp_path):
    scenario, ran = fake
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o000)
    try:
        with pytest.raises(ValueError, match=r"^RunConfig\.out: .*Permission denied"):
            execute(scenario, RunConfig(out=locked / "sub" / "dir", progress=False))
    finally:
        locked.chmod(0o700)
    assert ran == [] and list(locked.iterdir()) == []


def test_no_hidden_layer_is_taken_and_a_misspelt_learner_is_not(fake, tmp_path):
    scenario, ran = fake
    execute(scenario, RunConfig(out=tmp_path / "linear", progress=False, hidden=()))  # the learners' linear models
    assert ran[-1].hidden_sizes == ()
    earlier = _earlier(tmp_path / "typo")
    with pytest.raises(ValueError, match=r"^RunConfig\.learners: unknown learner 'Bx'"):
        execute(scenario, RunConfig(out=tmp_path / "typo", progress=False, learners=("B", "Bx")))
    with pytest.raises(ValueError, match=r"^RunConfig\.out: .*null"):
        execute(scenario, RunConfig(out=tmp_path / "nul\x00x", progress=False))
    assert len(ran) == 1 and earlier.read_text() == EARLIER
