"""Messages between request handlers and a model's writer thread, and the snapshot predictions read."""

from __future__ import annotations

import queue
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LearnJob", "LearnResult", "Snapshot", "take_group"]

Row = dict[str, float]


@dataclass(frozen=True)
class Snapshot:
    """An acknowledged state: a private copy of the estimator that nothing learns on any more."""

    estimator: Any
    version: int
    samples_seen: int
    metrics: dict[str, float | int | None]
    metrics_state: dict[str, Any]


@dataclass(frozen=True)
class LearnResult:
    """The answer to one learn request, once it is in the durable log."""

    learned: int
    samples_seen: int
    model_version: int


@dataclass
class LearnJob:
    """A validated learn request: ``rows`` (features given) or ``ids`` (stored by a predict)."""

    rows: list[Row] | None
    ids: list[str] | None
    targets: list[Any]
    future: Future[LearnResult] = field(default_factory=Future)


def take_group(jobs: queue.Queue[LearnJob | None], first: LearnJob | None, limit: int) -> tuple[list[LearnJob], bool]:
    """``first`` and the jobs queued behind it, at most ``limit``; ``True`` when the stop marker (None) came."""
    group, stop = ([first] if first is not None else []), first is None
    while not stop and len(group) < limit:
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:
            stop = True
        else:
            group.append(job)
    return group, stop
