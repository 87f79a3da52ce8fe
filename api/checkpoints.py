"""Atomic, checksummed checkpoints: the estimator's own files (JSON + safetensors) plus ``server.json``.

A checkpoint is written into a temporary directory, every file is fsynced, and the directory is
renamed to ``ckpt-<seq>``; a crash leaves either the old set of checkpoints or the new one.
``server.json`` holds the SHA-256 of every model file; :func:`verify` checks them, so a flipped byte or a
truncated file is found (and named) before anything is loaded. :func:`quarantine` moves a damaged
checkpoint aside (``corrupt-ckpt-<seq>``) where it is kept for inspection and no longer counted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CorruptCheckpoint", "listing", "quarantine", "prune", "seq_of", "verify", "write"]

_PREFIX = "ckpt-"
_META = "server.json"
_SUMS = "sha256"


class CorruptCheckpoint(ValueError):
    """A checkpoint that cannot be trusted; the message names the file."""


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sums(directory: Path) -> dict[str, str]:
    return {p.relative_to(directory).as_posix(): _digest(p) for p in sorted(directory.rglob("*")) if p.is_file()}


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
        (tmp / _META).write_text(json.dumps({**meta, "seq": seq, _SUMS: _sums(tmp / "model")}))
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


def listing(root: Path) -> list[Path]:
    """Checkpoint directories, newest first; leftover temporary directories are removed."""
    if not root.is_dir():
        return []
    for tmp in root.glob(".tmp-*"):
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(root.glob(f"{_PREFIX}*"), reverse=True)


def seq_of(path: Path) -> int:
    return int(path.name[len(_PREFIX):])


def verify(path: Path) -> dict[str, Any]:
    """The checkpoint's metadata once every file matches its checksum; else :class:`CorruptCheckpoint`.

    Checkpoints written before checksums existed (no ``sha256`` entry) are accepted as they are.
    """
    meta_file = path / _META
    try:
        meta = json.loads(meta_file.read_text())
        if not isinstance(meta, dict) or int(meta["seq"]) != seq_of(path):
            raise ValueError("not a checkpoint description for this directory")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptCheckpoint(f"{meta_file}: unreadable ({type(exc).__name__}: {exc})") from exc
    sums = meta.get(_SUMS)
    if sums is None:
        return meta
    model = path / "model"
    found = {p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file()} if model.is_dir() else set()
    for name in sorted(set(sums) | found):
        file = model / name
        if name not in sums:
            raise CorruptCheckpoint(f"{file}: not part of the checkpoint")
        if name not in found:
            raise CorruptCheckpoint(f"{file}: missing")
        if _digest(file) != sums[name]:
            raise CorruptCheckpoint(f"{file}: checksum mismatch (damaged or truncated)")
    return meta


def quarantine(path: Path) -> Path:
    """Move a damaged checkpoint aside (kept for inspection, no longer listed or pruned)."""
    target = path.with_name(f"corrupt-{path.name}")
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    os.rename(path, target)
    return target


def prune(root: Path, keep: int) -> int:
    """Keep the ``keep`` newest checkpoints; return the sequence number of the oldest one kept (0: none)."""
    paths = sorted(root.glob(f"{_PREFIX}*"), reverse=True)
    for path in paths[keep:]:
        # renamed first (atomic), then removed: a crash mid-removal leaves a temporary directory that
        # :func:`listing` clears, never a half-deleted checkpoint
        doomed = root / f".tmp-{uuid.uuid4().hex}"
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    kept = paths[:keep]
    return seq_of(kept[-1]) if kept else 0
