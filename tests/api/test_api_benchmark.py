"""Smoke test of ``benchmarks/http_load.py`` at a tiny size (a real server on loopback)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "http_load.py"


@pytest.mark.slow
def test_http_load_benchmark_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("http_load", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--requests", "6", "--concurrency", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "predict, 1 instance" in out and "in-process learn_many" in out
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert len(rows) == 5 and all(r["samples_per_s"] is None or r["samples_per_s"] > 0 for r in rows)
