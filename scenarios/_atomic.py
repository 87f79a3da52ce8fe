"""Outputs written whole or not at all: through a temporary file beside the output, then ``os.replace``, so that a
reader, or a run cut short, finds the old file or the new one, never part of one (results, tables, plots and the
HTML report alike)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["temp_path", "write_atomic", "write_figure"]


def temp_path(path: Path) -> Path:
    """The temporary file ``path`` is written through, beside it: ``.<name>.<32 hex digits>.tmp`` (a directory the
    check of ``--out`` accepts has room for it: :data:`~stream_am.arguments.PROBE_NAME_LENGTH`)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same directory, then ``os.replace``:
    a reader, or a run cut short, finds the old file or the new one, never part of one."""
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # (the umask applies, as to any new file)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_figure(fig: Any, path: Path, **kwargs: Any) -> None:
    """``fig.savefig(path, **kwargs)`` (a matplotlib figure; the format from ``path``'s suffix), written whole."""
    _replace(path, lambda tmp: fig.savefig(tmp, format=path.suffix[1:], **kwargs))


def _replace(path: Path, write: Callable[[Path], None]) -> None:
    tmp = temp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
