"""A directory option whose path cannot be looked at (a name over the file system's limit, a parent without
search permission) is refused naming the option, not a traceback: ``Path.exists`` raises for such a path."""

from __future__ import annotations

from pathlib import Path

import pytest
from stream_am.server import preflight
from stream_am.server.settings import Settings

from stream_am import arguments
from stream_am.distributed import options

LONG = "a" * 300  # one name over the 255 bytes of common file systems


def test_not_a_directory_does_not_report_a_path_it_cannot_look_at(tmp_path):
    assert arguments.not_a_directory(tmp_path / LONG / "sub") is None
    with pytest.raises(OSError):  # the caller's make_writable refuses it, with the reason
        arguments.make_writable(tmp_path / LONG / "sub", [])
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_dir_with_a_name_too_long_is_refused_naming_the_flag(tmp_path):
    source = tmp_path / "rows.csv"
    source.write_text("x,y\n1,0\n")
    args = options.parser().parse_args(["--source", str(source), "--target", "y", "--n-classes", "2",
                                        "--checkpoint-dir", str(tmp_path / LONG)])
    with pytest.raises(ValueError, match="^--checkpoint-dir: .* cannot be looked at"):
        options.check_args(args, 1)


def test_a_state_dir_or_socket_with_a_name_too_long_is_refused_naming_the_option(tmp_path):
    settings = Settings(state_dir=str(tmp_path / LONG))
    assert (preflight.path_problem(settings, None) or "").startswith("--state-dir ")
    uds = str(Path("/tmp") / f"{LONG}.sock")
    assert (preflight.path_problem(Settings(state_dir=str(tmp_path)), uds) or "").startswith(f"--uds {uds!r}: ")
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_beyond_the_path_limit_is_refused_when_looked_for(tmp_path):
    from stream_am.distributed.checkpoint import load_checkpoint

    deep = tmp_path.joinpath(*["p" * 200] * 20)  # each name fits, the whole path with the file's name does not
    with pytest.raises(ValueError, match="checkpoint.safetensors cannot be looked at"):
        load_checkpoint(deep)
