"""Published snapshots: how the writer hands acknowledged states to predictor processes, through a directory.

Layout under the snapshot directory (``<state_dir>/snapshots`` unless ``snapshot_dir`` says otherwise; a
shared directory lets predictors run on other hosts)::

    <model>/ckpt-<version>/   one published state: the estimator's files and server.json (checksummed,
                              written to a temporary directory and renamed, see :mod:`checkpoints`)
    <model>/HEAD.json         the writer's heartbeat: {"model_id", "estimator", "version", "published",
                              "written_at"}, replaced atomically

``current_at`` in a snapshot's metadata is a wall-clock time at which it held every acknowledged update;
HEAD.json says that at ``written_at`` the acknowledged state was ``version``. A predictor whose loaded
version equals HEAD's version therefore knows it was current at ``written_at``: the staleness bound of its
answers is the time since the newest such moment (:class:`Loaded`). The times are wall clocks: predictors on
other hosts need synchronised clocks (NTP) for the bound to hold.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stream_am.server import checkpoints, estimators

__all__ = ["HEAD", "Head", "Loaded", "clear_leftovers", "load", "publish", "read_head", "remove", "write_head"]

HEAD = "HEAD.json"


@dataclass(frozen=True)
class Head:
    """The writer's last word on a model: its acknowledged ``version`` at ``written_at``."""

    model_id: str  # the model's incarnation: a model deleted and created again gets a new one
    estimator: str
    version: int
    published: int  # the newest published snapshot (-1: none yet)
    written_at: float


@dataclass
class Loaded:
    """A snapshot a predictor has in memory, and the newest moment it is known to have been current."""

    model_id: str
    estimator: Any
    classifier: bool
    version: int
    samples_seen: int
    current_as_of: float

    def staleness(self, now: float | None = None) -> float:
        """An upper bound, in seconds, on how long ago this state stopped holding every acknowledged update."""
        return max(0.0, (time.time() if now is None else now) - self.current_as_of)


def publish(directory: Path, version: int, meta: dict[str, Any], estimator: Any, keep: int) -> Path:
    """Write the state ``version`` of a model atomically, then drop all but the ``keep`` newest ones."""
    path = checkpoints.write(directory, version, meta, lambda d: estimators.save(estimator, d))
    checkpoints.prune(directory, keep)
    return path


def write_head(directory: Path, head: Head) -> None:
    """Replace HEAD.json atomically (a reader sees the old heartbeat or the new one, never a torn one)."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".head-{uuid.uuid4().hex}"
    tmp.write_text(json.dumps(head.__dict__))
    os.replace(tmp, directory / HEAD)


def clear_leftovers(directory: Path) -> None:
    """Remove the temporary files a writer killed mid-write left (a half-written snapshot, a heartbeat not yet
    renamed): only the writer holding the snapshot directory calls this, so none of them is being written."""
    checkpoints.listing(directory)  # clears .tmp-* directories
    for tmp in directory.glob(".head-*"):
        tmp.unlink(missing_ok=True)


def read_head(directory: Path) -> Head | None:
    """The heartbeat of a model, or None when there is none (or it cannot be read: the next look retries)."""
    try:
        data = json.loads((directory / HEAD).read_text())
        return Head(
            str(data["model_id"]), str(data["estimator"]), int(data["version"]), int(data["published"]),
            float(data["written_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load(directory: Path, head: Head) -> Loaded:
    """The published snapshot HEAD names, checksums verified; raises if it is gone, damaged or not this model's."""
    path = directory / f"ckpt-{head.published:020d}"
    meta = checkpoints.verify(path)
    if meta.get("model_id") != head.model_id:
        raise checkpoints.CorruptCheckpoint(f"{path}: belongs to another incarnation of the model")
    estimator = estimators.load(head.estimator, path / "model")
    return Loaded(
        head.model_id, estimator, estimators.is_classifier(head.estimator), int(meta["model_version"]),
        int(meta["samples_seen"]), float(meta["current_at"]),
    )


def remove(directory: Path) -> None:
    """Withdraw every snapshot of a model (deleted, replaced by an import, or quarantined)."""
    head = directory / HEAD
    head.unlink(missing_ok=True)  # first: predictors stop answering before the files go
    shutil.rmtree(directory, ignore_errors=True)
