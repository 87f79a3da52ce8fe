"""Argument types for the command lines (``stream-am demo``, ``stream-am scenario``): whole numbers in a range
and seeds, refused by argparse with a message naming the option (``prog: error: argument --seed: ...``).

Examples
--------
>>> import argparse
>>> parser = argparse.ArgumentParser(prog="demo")
>>> _ = parser.add_argument("--seed", type=seed, default=0)
>>> _ = parser.add_argument("--every", type=whole(1), default=300)
>>> parser.parse_args(["--seed", "7", "--every", "5"])
Namespace(seed=7, every=5)
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from stream_am.checks import MAX_SEED

__all__ = ["PROBE_NAME_LENGTH", "digits", "given", "given_path", "integer", "interrupted", "make_writable",
           "not_a_directory", "remove_made", "seed", "unseen", "whole"]


def digits(text: str) -> int | None:
    """The whole number ``text`` writes in ASCII decimal digits, with an optional sign, or ``None``.

    Stricter than ``int``, which also reads ``8_0`` as 80, other scripts' digits and surrounding blanks.

    >>> digits("-12"), digits("8_0"), digits(" 5"), digits("")
    (-12, None, None, None)
    """
    body = text[1:] if text[:1] in "+-" and text else text
    if not (body.isascii() and body.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:  # (past Python's limit on the digits of an int read from text)
        return None


def integer(text: str) -> int:
    """An argparse type: a whole number in ASCII decimal digits (:func:`digits`)."""
    value = digits(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return value


def whole(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number in ``[low, high]`` (no upper end when ``high`` is ``None``)."""

    def parse(text: str) -> int:
        value = digits(text)
        if value is None or value < low or (high is not None and value > high):
            where = f">= {low}" if high is None else f"in [{low}, {high}]"
            raise argparse.ArgumentTypeError(f"expected a whole number {where}, got {text!r}")
        return value

    return parse


def interrupted(prog: str, what: str = "") -> int:
    """Say on stderr that ``prog`` was interrupted (Ctrl-C: ``KeyboardInterrupt``), with ``what`` it leaves, and
    return the status a shell gives a command stopped by SIGINT, 130 (a command line's answer, not a traceback)."""
    print(f"{prog}: interrupted{'; ' + what if what else ''}", file=sys.stderr)
    return 130


#: an argparse type: a seed, a whole number in ``[0, 2**63 - 1]`` (what torch's and numpy's generators take)
seed = whole(0, MAX_SEED)
#: the length of the name of :func:`make_writable`'s probe file (see there)
PROBE_NAME_LENGTH = 64


def given(text: str) -> str:
    """An argparse type: any text but the empty one (an empty directory option would be the current directory)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a value, got an empty one")
    return text


def given_path(text: str) -> Path:
    """An argparse type: a path, not the empty one."""
    return Path(given(text))


def unseen(path: Path) -> str | None:
    """Why ``path`` cannot be looked at (a parent without search permission, a name over the file system's limit:
    ``Path.exists`` raises for them); ``None`` when it can, whether or not it exists."""
    try:
        path.exists()
    except OSError as err:
        return err.strerror or str(err)
    return None


def not_a_directory(path: Path) -> Path | None:
    """The existing file that stands in the way of ``path`` being (or becoming) a directory: ``path`` itself or
    its nearest existing parent when that is not a directory; ``None`` when nothing does, and when a path on the
    way cannot be looked at (a parent without search permission, a name over the file system's limit): then the
    caller's :func:`make_writable`, which raises ``OSError`` for it, refuses it with the reason.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile() as f:
    ...     not_a_directory(Path(f.name) / "sub" / "dir") == Path(f.name)
    True
    >>> not_a_directory(Path(tempfile.gettempdir()) / "surely-absent" / "dir") is None
    True
    """
    for p in (path, *path.parents):
        try:
            if p.exists():
                return None if p.is_dir() else p
        except (OSError, ValueError):  # cannot be looked at (no search permission, a name too long, a NUL
            return None  # character): the caller's make_writable refuses it, with the reason
    return None


def make_writable(directory: Path, made: list[Path]) -> None:
    """Make ``directory`` and its missing parents (each added to ``made``) and write and remove a probe file in it,
    so that a directory a command cannot use is refused before it starts; ``OSError`` when that fails. A check that
    must leave nothing behind passes ``made`` to :func:`remove_made` after it."""
    made.extend(p for p in (directory, *directory.parents) if not p.exists())
    directory.mkdir(parents=True, exist_ok=True)
    # The probe's name is at least as long as any name a command writes there later (a scenario's temporary
    # ``.<output name>.<32 hex>.tmp`` has up to 57 characters), so that a directory whose path leaves no room for
    # those names under the system's limit (PATH_MAX) is refused here, not when they are written after a run.
    probe = directory / f".stream-am-probe-{secrets.token_hex(PROBE_NAME_LENGTH)}"[:PROBE_NAME_LENGTH]
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"probe")
    finally:
        os.close(fd)
        probe.unlink()


def remove_made(made: list[Path]) -> None:
    """Remove the directories :func:`make_writable` made, the deepest first (one that is not empty stays)."""
    for path in sorted(made, key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir()
        except (OSError, ValueError):  # (not empty, gone, or a path no directory can have: a NUL character)
            pass
