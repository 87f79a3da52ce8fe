"""Smoke-run every scenario in quick mode through the CLI and check what it writes."""

import json
import re

import pytest
from stream_am.scenarios.cli import main

from stream_am import scenarios

REQUIRED = {
    "stationary": {"phishing", "bananas", "image-segments", "digits"},
    "drift": {"agrawal-abrupt", "agrawal-gradual", "hyperplane", "recurring", "rbf-drift"},
    "continual": {"split-digits", "permuted-digits", "split-segments", "split-rbf", "split-led", "permuted-rbf"},
    "non-differentiable": {"sign-digits"},
}


def test_list_prints_every_scenario(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for family, names in REQUIRED.items():
        for name in names:
            assert name in scenarios.REGISTRY and scenarios.get(name).family == family
            assert name in out


def test_unknown_scenario_is_an_error(capsys, tmp_path):
    assert main(["run", "nope", "--quick", "--out", str(tmp_path)]) == 2
    assert "unknown scenario 'nope'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="known: phishing"):
        scenarios.get("nope")


@pytest.mark.parametrize("name", scenarios.names())
def test_quick_run_writes_results_and_plots(name, tmp_path):
    assert main(["run", name, "--quick", "--out", str(tmp_path), "--seed", "1", "--no-progress", "--html"]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["scenario"] == name and doc["config"]["seed"] == 1 and doc["config"]["quick"] is True
    assert len(doc["learners"]) >= 6
    table = (tmp_path / "results.md").read_text()
    for learner, metrics in doc["learners"].items():
        assert f"| {learner} |" in table
        assert all(isinstance(v, (int, float, list)) for v in metrics.values() if v is not None)
    assert (tmp_path / "accuracy.png").stat().st_size > 1000
    report = (tmp_path / "report.html").read_text()
    assert all(f"<td>{learner}</td>" in report and f"<title>{learner}</title>" in report for learner in doc["learners"])
    assert not re.search(r"""(src|href)=|url\(|@import|<script""", report)  # one file: nothing to load
    assert f"window: {doc['config']['window']:,} samples" in report
    family = scenarios.get(name).family
    if family == "continual":
        T = doc["config"]["n_tasks"]
        assert (tmp_path / "accuracy_matrix.png").exists()
        assert report.count("<figure>") == len(doc["learners"])
        for metrics in doc["learners"].values():
            assert {"final_avg_acc", "forgetting", "bwt", "fwt", "joint_avg_acc"} <= set(metrics)
            assert len(metrics["accuracy_matrix"]) == T and len(metrics["accuracy_matrix"][0]) == T
    elif family == "drift" and doc["config"]["drift_points"]:
        assert {"mean_drop", "mean_recovery"} <= set(doc["learners"]["AM-mem"])
        assert "detections" in doc["learners"]["AM-mem+drift"]
    else:
        assert all(0.0 <= m["accuracy"] <= 1.0 for m in doc["learners"].values())


def test_same_seed_same_results(tmp_path):
    docs = []
    for k in range(2):
        assert main(["run", "sign-bananas", "--quick", "--out", str(tmp_path / str(k)), "--no-progress"]) == 0
        docs.append(json.loads((tmp_path / str(k) / "results.json").read_text()))
    for a, b in zip(docs[0]["learners"].values(), docs[1]["learners"].values(), strict=True):
        assert a["accuracy"] == b["accuracy"] and a["macro_f1"] == b["macro_f1"]


def test_hidden_option_and_bad_values(tmp_path, capsys):
    assert main(["run", "phishing", "--quick", "--hidden", "8", "4", "--out", str(tmp_path), "--no-progress"]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["config"]["hidden_sizes"] == [8, 4]
    assert not (tmp_path / "report.html").exists()  # only with --html
    assert main(["run", "phishing", "--quick", "--hidden", "0", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit) as exit_:
        main(["run", "phishing", "--quick", "--threads", "0", "--out", str(tmp_path)])
    assert exit_.value.code == 2 and "argument --threads: expected a whole number" in capsys.readouterr().err


@pytest.mark.parametrize(("flags", "tty", "shown"), [
    ([], False, False), ([], True, True), (["--progress"], False, True), (["--no-progress"], True, False),
])
def test_progress_bars_only_on_a_terminal_unless_asked(monkeypatch, tmp_path, flags, tty, shown):
    import stream_am.scenarios.cli as scenario_cli

    seen = []
    monkeypatch.setattr(scenario_cli, "_on_a_terminal", lambda: tty)
    monkeypatch.setattr(scenario_cli, "execute", lambda s, cfg: seen.append(cfg.progress) or
                        {"config": {"wall_time_s": 0.0}})
    assert scenario_cli.main(["run", "phishing", "--quick", "--out", str(tmp_path), *flags]) == 0
    assert seen == [shown]


def test_learners_option_runs_only_the_named_learners(tmp_path, capsys):
    args = ["run", "split-rbf", "--quick", "--out", str(tmp_path), "--no-progress"]
    assert main([*args, "--learners", "AM-mem sample", "Replay"]) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert list(doc["learners"]) == ["AM-mem sample", "Replay"]
    assert main([*args, "--learners", "ARF"]) == 2
    assert "argument --learners: unknown learner 'ARF' (split-rbf has AM-mem," in capsys.readouterr().err


def test_memory_decay_option_sets_the_am_learners_and_refuses_bad_values(tmp_path, capsys):
    from scenarios._common import RunConfig, make_learner

    cfg = RunConfig(out=tmp_path, quick=True, memory_decay=0.003)
    assert make_learner("AM-mem", cfg).memory_decay == 0.003
    assert make_learner("AM-Adam+drift", cfg).classifier.memory_decay == 0.003
    assert make_learner("AM-mem eta=0", cfg).memory_decay == 0.0  # that learner is defined by its decay
    assert make_learner("AM-mem", RunConfig(out=tmp_path)).memory_decay == 0.001  # the estimator's default
    args = ["run", "split-rbf", "--quick", "--out", str(tmp_path), "--no-progress", "--learners", "AM-mem"]
    assert main([*args, "--memory-decay", "0.003"]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["config"]["memory_decay"] == 0.003
    for bad in ("1", "-0.1", "nan"):
        assert main([*args, "--memory-decay", bad]) == 2
        assert "argument --memory-decay: must be in [0, 1)" in capsys.readouterr().err


def test_warm_up_draws_no_global_random_number_and_runs_once() -> None:
    import random

    import numpy as np
    import torch
    from stream_am.scenarios import _common

    _common.warm_up.cache_clear()
    numpy_state = np.random.get_state()
    states = (torch.get_rng_state(), numpy_state[1].copy(), numpy_state[2:], random.getstate())
    _common.warm_up()
    after = np.random.get_state()
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(after[1], states[1]) and after[2:] == states[2] and random.getstate() == states[3]
    assert _common.warm_up.cache_info().misses == 1
    _common.warm_up()  # a second call does nothing
    assert _common.warm_up.cache_info().misses == 1 and _common.warm_up.cache_info().hits == 1
