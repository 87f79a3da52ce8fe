"""``stream-am serve`` refuses bad options and settings before anything starts: one line naming the option (and
its ``STREAM_AM_*`` variable), exit status 2, nothing left on disk. Found by an adversarial review: each of these
ended in tracebacks, in a server that kept running without its snapshots, or in a state directory left behind."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from stream_am import cli

LINUX_PROC = Path("/proc/self").is_dir()  # a directory nobody can make anything in, even root
needs_proc = pytest.mark.skipif(not LINUX_PROC, reason="needs Linux's /proc")


@pytest.fixture
def no_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the server (or the multi-process launcher) would start."""
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: pytest.fail("the server must not start"))
    import stream_am.server.launcher as launcher

    monkeypatch.setattr(launcher, "serve_replicas", lambda *a, **k: pytest.fail("the launcher must not start"))


def _one_line(capsys: pytest.CaptureFixture[str], *expected: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("stream-am serve: "), err
    assert "Traceback" not in err and "pydantic" not in err and "validation error" not in err, err
    for text in expected:
        assert text in err, err
    return err


@needs_proc
@pytest.mark.parametrize("state_dir", ["/proc/xx", "/proc/xx/deeper", "/proc"])
@pytest.mark.usefixtures("no_start")
def test_a_state_dir_that_cannot_be_made_or_written_is_refused(
    state_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve", "--state-dir", state_dir, "--port", "0"]) == 2
    _one_line(capsys, "--state-dir (STREAM_AM_STATE_DIR)", repr(state_dir), "cannot be created and written")


@pytest.mark.usefixtures("no_start")
def test_a_socket_in_a_missing_directory_is_refused_before_anything_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["serve", "--uds", str(tmp_path / "nonexist" / "dir" / "sock"), "--state-dir", "sd10"]) == 2
    _one_line(capsys, "--uds", "does not exist")
    assert list(tmp_path.iterdir()) == []
    assert cli.main(["serve", "--uds", "/tmp/" + "a" * 120, "--state-dir", "sd10"]) == 2  # (too long to bind)
    _one_line(capsys, "--uds", "at most")
    assert list(tmp_path.iterdir()) == []


def test_a_socket_in_the_state_directory_yet_to_be_made_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher's writer listens in its state directory: that one is made before the server starts."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: seen.update(kwargs))
    state = tmp_path / "new" / "state"
    assert cli.main(["serve", "--role", "writer", "--state-dir", str(state), "--uds", str(state / "w.sock")]) == 0
    assert seen["uds"] == str(state / "w.sock") and (state / "snapshots").is_dir()
    assert not [p for p in state.iterdir() if p.name.startswith(".stream-am-probe")]  # the probe was removed


@pytest.mark.usefixtures("no_start")
def test_a_host_and_port_that_cannot_be_listened_on_are_refused_before_the_state_dir_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--port", str(port), "--state-dir", str(tmp_path / "st")]) == 2
    _one_line(capsys, "--host/--port", f"127.0.0.1:{port}", "another process listens there")
    assert not (tmp_path / "st").exists()
    # 192.0.2.1 (TEST-NET-1, RFC 5737) is no interface's address
    assert cli.main(["serve", "--host", "192.0.2.1", "--port", "0", "--state-dir", str(tmp_path / "st")]) == 2
    _one_line(capsys, "--host/--port", "192.0.2.1:0")
    assert not (tmp_path / "st").exists()


@pytest.mark.parametrize(
    "argv, env, expected",
    [(["--port", "-1"], {}, "--port (STREAM_AM_PORT): Input should be greater than or equal to 0"),
     (["--port", "70000"], {}, "--port (STREAM_AM_PORT): Input should be less than or equal to 65535"),
     ([], {"STREAM_AM_PORT": "abc"}, "--port (STREAM_AM_PORT): Input should be a valid integer"),
     ([], {"STREAM_AM_MAX_BATCH": "0"}, "stream-am serve: STREAM_AM_MAX_BATCH: Input should be greater than"),
     (["--role", "predictor"], {}, "--writer-url (STREAM_AM_WRITER_URL): a predictor needs the writer's address"),
     ([], {"STREAM_AM_STATE_DIR": ""}, "--state-dir (STREAM_AM_STATE_DIR): must not be empty"),
     ([], {"stream_am_host": ""}, "--host (STREAM_AM_HOST): must not be empty")],
)
@pytest.mark.usefixtures("no_start")
def test_settings_errors_are_one_line_naming_the_option(
    argv: list[str], env: dict[str, str], expected: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["serve", *argv]) == 2
    err = _one_line(capsys, expected)
    assert "abc" not in err and "errors.pydantic.dev" not in err  # never the value
    assert list(tmp_path.iterdir()) == []


@pytest.mark.usefixtures("no_start")
def test_a_snapshot_dir_that_is_a_file_and_several_errors_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    afile = tmp_path / "a.csv"
    afile.write_text("x")
    assert cli.main(["serve", "--snapshot-dir", str(afile), "--state-dir", str(tmp_path / "st")]) == 2
    _one_line(capsys, f"--snapshot-dir (STREAM_AM_SNAPSHOT_DIR): {str(afile)!r} exists and is not a directory")
    monkeypatch.setenv("STREAM_AM_API_KEY", "hunter2 pw")
    assert cli.main(["serve", "--port", "-1", "--state-dir", str(tmp_path / "st")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert sorted(line.split(":")[1].strip() for line in lines) == ["--port (STREAM_AM_PORT)", "STREAM_AM_API_KEY"]
    assert not any("hunter2" in line for line in lines)  # the key's value is never printed
    assert not (tmp_path / "st").exists()


@needs_proc
@pytest.mark.parametrize("role", [["--predictors", "1", "--port", "0"], ["--role", "writer", "--port", "0"]])
@pytest.mark.usefixtures("no_start")
def test_a_snapshot_dir_that_cannot_be_written_is_refused_and_the_new_state_dir_removed(
    role: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "new" / "st"
    assert cli.main(["serve", *role, "--state-dir", str(state), "--snapshot-dir", "/proc/zz"]) == 2
    _one_line(capsys, "--snapshot-dir (STREAM_AM_SNAPSHOT_DIR)", "'/proc/zz'", "cannot be created and written")
    assert list(tmp_path.iterdir()) == []  # the state directory (and its new parent) made for the check are gone


def test_a_snapshot_dir_a_single_process_server_does_not_use_is_not_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("uvicorn.run", lambda *a, **k: None)
    args = ["serve", "--state-dir", str(tmp_path / "st"), "--snapshot-dir", str(tmp_path / "snap"), "--port", "0"]
    assert cli.main(args) == 0
    assert (tmp_path / "st").is_dir() and not (tmp_path / "snap").exists()


@pytest.mark.parametrize("option", ["--state-dir", "--uds", "--host", "--snapshot-dir", "--writer-url"])
@pytest.mark.usefixtures("no_start")
def test_an_empty_option_is_refused_naming_it(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["serve", option, ""])
    assert exit_.value.code == 2
    assert f"argument {option}: expected a value, got an empty one" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # (an empty --state-dir used to serve from the current directory)

