"""Atomic checkpoints: the estimator's own files (JSON + safetensors) plus ``server.json``.

A checkpoint is written into a temporary directory, every file is fsynced, and the directory is
renamed to ``ckpt-<seq>``; a crash leaves either the old set of checkpoints or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["latest", "prune", "write"]

_PREFIX = "ckpt-"
_META = "server.json"


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(root: Path, seq: int, meta: dict[str, Any], save_model: Callable[[Path], object]) -> Path:
    """Write checkpoint ``seq`` atomically; ``save_model(d)`` writes the estimator files into ``d``."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        save_model(tmp / "model")
        (tmp / _META).write_text(json.dumps({**meta, "seq": seq}))
        _fsync_tree(tmp)
        final = root / f"{_PREFIX}{seq:020d}"
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def latest(root: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest complete checkpoint and its metadata; leftover temporary directories are removed."""
    if not root.is_dir():
        return None
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    for path in sorted(root.glob(f"{_PREFIX}*"), reverse=True):
        meta = path / _META
        if meta.is_file():
            return path, json.loads(meta.read_text())
    return None


def prune(root: Path, keep: int) -> None:
    """Keep the ``keep`` newest checkpoints."""
    for path in sorted(root.glob(f"{_PREFIX}*"), reverse=True)[keep:]:
        shutil.rmtree(path, ignore_errors=True)
