"""Where a model restarts from: the newest checkpoint that is intact and that the event log continues.

Checkpoints are tried newest first. A damaged one (checksum mismatch, truncated or unreadable file, or
a load that fails) is reported naming the file and moved aside; the next older one is used when the event
log still holds every event after it (the log is compacted only up to the oldest kept checkpoint). With no
usable checkpoint, a log that was never compacted rebuilds the model from scratch (not an imported model:
its learned state exists only in its checkpoints). Otherwise the model
cannot be recovered: :class:`Unrecoverable` names why, and the registry quarantines that model alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stream_am.server import checkpoints
from stream_am.server.eventlog import EventLog

__all__ = ["Unrecoverable", "restore_point"]

_log = logging.getLogger("stream_am.api")


class Unrecoverable(RuntimeError):
    """No intact checkpoint plus log reproduces the model; the message says what was found."""


def restore_point(
    name: str, root: Path, log: EventLog, load: Callable[[Path], Any], from_scratch: bool = True
) -> tuple[Any | None, dict[str, Any]]:
    """``(estimator, meta)`` of the checkpoint to replay the log after; ``(None, {})``: replay from the start."""
    problems: list[str] = []
    for path in checkpoints.listing(root):
        try:
            meta = checkpoints.verify(path)
            estimator = load(path / "model")
        except Exception as exc:  # any failure to read it: the file is damaged, whatever the library says
            reason = str(exc) if isinstance(exc, checkpoints.CorruptCheckpoint) else (
                f"{path / 'model'}: cannot be loaded ({type(exc).__name__}: {exc})")
            _log.error("model %r: checkpoint %s is damaged: %s; it is moved aside", name, path.name, reason)
            problems.append(reason)
            checkpoints.quarantine(path)
            continue
        if log.covers(int(meta.get("seq", 0))):
            if problems:
                _log.warning("model %r: recovered from the older checkpoint %s plus the log", name, path.name)
            return estimator, meta
        problems.append(f"{path}: intact, but the event log no longer holds the events after it")
    if from_scratch and log.covers(0):
        if problems:
            _log.warning("model %r: rebuilt from the complete event log", name)
        return None, {}
    raise Unrecoverable("; ".join(problems) or "no checkpoint, and the event log was compacted")
