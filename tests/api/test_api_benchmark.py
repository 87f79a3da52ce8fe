"""Smoke test of ``benchmarks/http_load.py`` at a tiny size (a real server on loopback)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.mark.slow
def test_http_load_benchmark_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], load_benchmark: Callable[[str], ModuleType]
) -> None:
    module = load_benchmark("http_load")
    assert module.main(["--requests", "6", "--concurrency", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "predict, 1 instance" in out and "in-process learn_many" in out
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert len(rows) == 5 and all(r["samples_per_s"] is None or r["samples_per_s"] > 0 for r in rows)


@pytest.mark.slow
def test_replicas_benchmark_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], load_benchmark: Callable[[str], ModuleType]
) -> None:
    module = load_benchmark("replicas")
    argv = ["--requests", "8", "--learn-batches", "3", "--concurrency", "2", "--modes", "0,1", "--out", str(tmp_path)]
    assert module.main(argv) == 0
    out = capsys.readouterr().out
    assert "single process: predict 1 instance" in out and "1 predictor(s): predict 64 instances" in out
    results = json.loads((tmp_path / "results.json").read_text())
    assert len(results["rows"]) == 4 and all(r["req_per_s"] > 0 for r in results["rows"])
    single, replicated = results["mixed"]
    assert single["staleness_max_s"] == 0.0  # the writer answers with every acknowledged update
    assert 0.0 <= replicated["staleness_max_s"] <= 2.0  # max_staleness_seconds
