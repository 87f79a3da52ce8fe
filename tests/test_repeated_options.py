"""A list option given twice takes every value given (``--source a.csv --source b.csv`` reads both files), where
argparse kept the last list only and dropped the earlier files or learners without a word."""

from __future__ import annotations

import json
from pathlib import Path

import stream_am.scenarios.cli as scenario_cli
from stream_am.scenarios._common import RunConfig

from stream_am import scenarios
from stream_am.distributed.job import main as job_main

ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def test_a_repeated_source_reads_every_file(tmp_path, monkeypatch, capsys):
    for key in ENV:  # the job sets them for its group of one
        monkeypatch.setenv(key, "x")
        monkeypatch.delenv(key)
    files = []
    for k, n in enumerate((3, 5)):
        path = tmp_path / f"part-{k}.csv"
        path.write_text("a,label\n" + "".join(f"{i / 10},{i % 2}\n" for i in range(n)))
        files.append(str(path))
    argv = ["--source", files[0], "--source", files[1], "--target", "label", "--n-classes", "2", "--hidden", "4",
            "--batch-size", "2", "--report-every", "0", "--checkpoint-dir", str(tmp_path / "ck")]
    assert job_main(argv) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["samples"] == 8
    recorded = json.loads((tmp_path / "ck" / "checkpoint.json").read_text())["source"]
    assert [Path(p).name for p in recorded] == ["part-0.csv", "part-1.csv"]


def test_repeated_learners_run_every_learner_named(tmp_path, monkeypatch):
    seen: list[RunConfig] = []

    def fake(scenario: scenarios.Scenario, cfg: RunConfig) -> dict:
        seen.append(cfg)
        return {"config": {"wall_time_s": 0.0}}

    monkeypatch.setattr(scenario_cli, "execute", fake)
    argv = ["run", "digits", "--learners", "LogReg", "--learners", "HAT", "--out", str(tmp_path), "--no-progress"]
    assert scenario_cli.main(argv) == 0
    assert seen[0].learners == ("LogReg", "HAT")


def test_a_learner_named_twice_runs_once(tmp_path, monkeypatch):
    seen: list[RunConfig] = []
    monkeypatch.setattr(scenario_cli, "execute", lambda s, cfg: seen.append(cfg) or {"config": {"wall_time_s": 0}})
    argv = ["run", "digits", "--learners", "HAT", "--learners", "HAT", "--out", str(tmp_path), "--no-progress"]
    assert scenario_cli.main(argv) == 0
    assert seen[0].pick(scenarios.get("digits").learners) == ["HAT"]

