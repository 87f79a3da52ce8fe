"""The ``stream-am`` console script: ``serve`` arguments, ``--version``, lazy subcommands."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from stream_am import cli


def _fake_module(monkeypatch: pytest.MonkeyPatch, name: str, calls: list[list[str]]) -> None:
    module = types.ModuleType(name)

    def main(argv: list[str]) -> int:
        calls.append(argv)
        return 3

    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)


def test_scenario_and_demo_delegate(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []
    _fake_module(monkeypatch, "stream_am.scenarios.cli", calls)
    _fake_module(monkeypatch, "stream_am.demo", calls)
    assert cli.main(["scenario", "run", "drift", "--seed", "1"]) == 3
    assert cli.main(["demo", "--quick"]) == 3
    assert calls == [["run", "drift", "--seed", "1"], ["--quick"]]


def test_scenario_without_its_extra_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None if name == "tqdm" else real(name))
    monkeypatch.delitem(sys.modules, "stream_am.scenarios.cli", raising=False)
    assert cli.main(["scenario", "list"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "scenarios extra (tqdm missing)" in err and "stream-am[scenarios]" in err
    assert "stream_am.scenarios.cli" not in sys.modules  # refused before the suite was imported


def test_serve_builds_settings_from_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, host: str, port: int, **kwargs: Any) -> None:
        seen.update(app=app, host=host, port=port, settings=app.state.settings)

    monkeypatch.setattr("uvicorn.run", fake_run)
    monkeypatch.setenv("STREAM_AM_MAX_BATCH", "5")
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "9123", "--state-dir", str(tmp_path)]) == 0
    assert seen["host"] == "0.0.0.0" and seen["port"] == 9123
    assert seen["settings"].state_dir == tmp_path and seen["settings"].max_batch == 5


@pytest.mark.parametrize("port", ["80_80", "\uff18\uff10", "8080.0"])
def test_serve_refuses_a_port_written_as_python_reads_it(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["serve", "--port", port])
    assert info.value.code == 2 and "--port" in capsys.readouterr().err


def test_unknown_command_exits_with_usage() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["bogus"])
    assert info.value.code == 2


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    import stream_am

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"stream-am {stream_am.__version__}"


def test_library_and_demo_do_not_import_the_server() -> None:
    import subprocess

    code = (
        "import sys, stream_am, stream_am.cli, stream_am.demo; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'stream_am.server', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_installed_names_are_project_specific() -> None:
    import importlib.util

    assert importlib.util.find_spec("stream_am.server") is not None
    assert importlib.util.find_spec("stream_am.scenarios") is not None
    import stream_am.scenarios
    import stream_am.server

    assert stream_am.server.__name__ == "stream_am.server" and stream_am.scenarios.__name__ == "stream_am.scenarios"


def test_serve_on_a_state_dir_in_use_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fcntl = pytest.importorskip("fcntl")
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("a second server must not start"))
    with open(tmp_path / ".lock", "ab") as held:  # what a running server holds
        fcntl.flock(held.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert cli.main(["serve", "--state-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in use by another stream_am server" in err and "Traceback" not in err


def test_serve_on_a_read_only_state_dir_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("the server must not start"))
    monkeypatch.setattr("os.access", lambda path, mode: False)  # as for a root-owned bind mount
    assert cli.main(["serve", "--state-dir", str(tmp_path)]) == 2  # (a refused setting, as every other)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--state-dir (STREAM_AM_STATE_DIR)" in err and "not writable" in err


def test_serve_refuses_a_uds_path_that_is_not_a_socket_and_a_state_dir_under_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by an adversarial review: uvicorn removes the --uds path when it stops, so `--uds data.txt` deleted
    the user's file; a state directory under a file failed with a traceback."""
    precious = tmp_path / "data.txt"
    precious.write_text("precious")
    assert cli.main(["serve", "--uds", str(precious), "--state-dir", str(tmp_path / "st")]) == 2
    assert "--uds" in capsys.readouterr().err and precious.read_text() == "precious"
    assert cli.main(["serve", "--uds", str(precious / "x.sock"), "--state-dir", str(tmp_path / "st")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    for state_dir in (precious, precious / "sub"):
        assert cli.main(["serve", "--state-dir", str(state_dir)]) == 2
        assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["serve", "--log-level", "bogus"])
    assert "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize(
    "argv, option",
    [(["demo", "--every", "0"], "--every"), (["demo", "--every", "-5"], "--every"),
     (["demo", "--seed", "-1"], "--seed"),
     (["scenario", "run", "bananas", "--quick", "--seed", "-1"], "--seed"),
     (["scenario", "run", "bananas", "--quick", "--seed", str(2**70)], "--seed"),
     (["scenario", "run", "bananas", "--quick", "--threads", "100000"], "--threads")],
)
def test_demo_and_scenario_options_out_of_range_are_argument_errors(
    argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by an adversarial review: each of these ended in a traceback (or printed nothing)."""
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2 and f"argument {option}" in capsys.readouterr().err


def test_scenario_refuses_an_output_path_through_a_file_before_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        assert cli.main(["scenario", "run", "bananas", "--quick", "--out", str(out)]) == 2
        assert "argument --out" in capsys.readouterr().err
    assert blocker.read_text() == "x"


def test_serve_refuses_a_host_that_does_not_resolve_before_making_its_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by an adversarial review: it failed in uvicorn after the state directory was made (``.invalid``
    never resolves, RFC 2606)."""
    assert cli.main(["serve", "--host", "nowhere.invalid", "--state-dir", str(tmp_path / "st")]) == 2
    assert "--host 'nowhere.invalid' does not resolve" in capsys.readouterr().err
    assert not (tmp_path / "st").exists()
