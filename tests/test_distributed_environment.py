"""The job's environment (what torchrun sets: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT) is checked like its
options: a variable missing or not a number is refused naming it, status 2, no traceback, nothing created."""

from __future__ import annotations

import pytest

from stream_am.distributed.job import main

ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def _clear(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset torchrun's variables, and unset them again after the test (a group of one sets them)."""
    for key in ENV:
        monkeypatch.setenv(key, "x")
        monkeypatch.delenv(key)


@pytest.mark.parametrize(("env", "named"), [
    ({"RANK": "0"}, "WORLD_SIZE"),  # (a RANK left in the shell: torch's env:// raised a traceback)
    ({"WORLD_SIZE": "2"}, "RANK"),
    ({"WORLD_SIZE": "0"}, "WORLD_SIZE"),  # (a ZeroDivisionError)
    ({"WORLD_SIZE": "x"}, "WORLD_SIZE"),  # (int()'s traceback)
    ({"RANK": "x", "WORLD_SIZE": "1"}, "RANK"),  # (int()'s message, naming nothing)
    ({"RANK": "2", "WORLD_SIZE": "2"}, "RANK"),
    ({"RANK": "-1", "WORLD_SIZE": "2"}, "RANK"),
    ({"RANK": "0", "WORLD_SIZE": "1"}, "MASTER_ADDR"),
    ({"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "port"}, "MASTER_PORT"),
])
def test_a_bad_environment_is_refused_naming_the_variable(env, named, tmp_path, monkeypatch, capsys):
    _clear(monkeypatch)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    source = tmp_path / "s.csv"
    source.write_text("a,label\n0.5,1\n0.25,0\n")
    argv = ["--source", str(source), "--target", "label", "--n-classes", "2", "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m stream_am.distributed: error: ") and named in err and "Traceback" not in err, err
    assert not (tmp_path / "ck").exists()


def test_a_master_address_alone_is_a_group_of_one(tmp_path, monkeypatch, capsys):
    _clear(monkeypatch)
    monkeypatch.setenv("MASTER_ADDR", "192.0.2.1")  # (set for some other tool: the job picks its own address)
    monkeypatch.setenv("MASTER_PORT", "1")
    source = tmp_path / "s.csv"
    source.write_text("a,label\n0.5,1\n0.25,0\n")
    argv = ["--source", str(source), "--target", "label", "--n-classes", "2", "--hidden", "4", "--report-every", "0",
            "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(argv) == 0, capsys.readouterr().err
