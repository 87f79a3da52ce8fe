"""Ctrl-C (``KeyboardInterrupt``) ends every command line with one line and status 130, not a traceback
(helper-62's review): ``stream-am``, ``stream-am scenario run`` and the distributed job."""

from __future__ import annotations

import pytest
import stream_am.scenarios.cli as scenario_cli
from distributed_worker import write_csvs

from stream_am import cli
from stream_am.distributed import job


def _interrupt(*_args, **_kwargs):
    raise KeyboardInterrupt


def test_stream_am_serve(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(cli, "_serve", _interrupt)
    assert cli.main(["serve", "--state-dir", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "stream-am: interrupted\n"


def test_a_scenario_run_keeps_the_earlier_results(monkeypatch, capsys, tmp_path):
    (tmp_path / "results.json").write_text("{}")
    monkeypatch.setattr(scenario_cli, "execute", _interrupt)
    assert scenario_cli.main(["run", "digits", "--quick", "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.startswith("stream-am scenario run: interrupted;") and err.count("\n") == 1, err
    assert (tmp_path / "results.json").read_text() == "{}"


def test_the_distributed_job(monkeypatch, capsys, tmp_path):
    (source,) = write_csvs(tmp_path, files=1, rows=64)
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):  # (main sets them: undone at the end)
        monkeypatch.setenv(key, "x")
        monkeypatch.delenv(key)
    monkeypatch.setattr(job, "train", _interrupt)
    import torch.distributed as dist

    try:
        status = job.main(["--source", str(source), "--target", "label", "--n-classes", "3", "--hidden", "8",
                           "--checkpoint-dir", str(tmp_path / "ck")])
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    err = capsys.readouterr().err
    assert status == 130 and "interrupted; the last checkpoint written stays" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--version"]])
def test_other_exits_are_unchanged(argv):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 0


def test_a_group_of_one_puts_the_environment_back(monkeypatch, capsys, tmp_path):
    """helper-62's review: main, run as a group of one, left RANK, WORLD_SIZE and MASTER_* set in os.environ."""
    import os

    (source,) = write_csvs(tmp_path, files=1, rows=64)
    for key in ("RANK", "WORLD_SIZE", "MASTER_PORT"):
        monkeypatch.setenv(key, "x")
        monkeypatch.delenv(key)
    monkeypatch.setenv("MASTER_ADDR", "elsewhere.example")  # (ignored by a group of one, and kept)
    status = job.main(["--source", str(source), "--target", "label", "--n-classes", "3", "--hidden", "8",
                       "--checkpoint-dir", str(tmp_path / "ck"), "--report-every", "0"])
    assert status == 0, capsys.readouterr().err
    assert [k for k in ("RANK", "WORLD_SIZE", "MASTER_PORT") if k in os.environ] == []
    assert os.environ["MASTER_ADDR"] == "elsewhere.example"
