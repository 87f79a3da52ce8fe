"""A predictor's view of the published snapshots: the newest state of every model, kept fresh by a thread.

Every ``snapshot_poll_interval`` the thread reads each model's HEAD.json; when a newer snapshot is published
it loads it (checksums verified) and swaps it in whole, so an answer always comes from one published state.
A heartbeat whose version the loaded state already holds moves the state's ``current_as_of`` forward. A
snapshot that cannot be loaded (pruned meanwhile, damaged) is retried at the next look; the loaded one keeps
serving, and the staleness bound tells when it may no longer.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

from stream_am.server import snapshots
from stream_am.server.periodic import Periodic
from stream_am.server.settings import Settings
from stream_am.server.snapshots import Head, Loaded

__all__ = ["SnapshotView"]

_log = logging.getLogger("stream_am.api")


class SnapshotView:
    """The snapshots a predictor answers from, by model name."""

    def __init__(self, settings: Settings) -> None:
        self.root: Path = settings.snapshots
        self.loads = 0
        self.load_failures = 0
        self.load_lag: deque[float] = deque(maxlen=1000)  # seconds from current at the writer to serving here
        self._models: dict[str, Loaded] = {}
        self._failed: dict[str, str] = {}  # name -> why its newest snapshot could not be loaded (logged once)
        self._looks = Periodic("snapshot-view", settings.snapshot_poll_interval, self.refresh)

    def start(self) -> None:
        """A first look at once, then one every ``snapshot_poll_interval`` (a failed look is logged, and retried)."""
        self._looks.start()

    def stop(self) -> None:
        self._looks.stop()

    def get(self, name: str) -> Loaded | None:
        """The state a predict of ``name`` would use, or None (the writer answers): not published here, or
        withdrawn or replaced by another incarnation since the last look. HEAD.json is read on every call, so a
        model whose delete or replacement the writer acknowledged (it withdraws the snapshots first) is never
        answered from here afterwards."""
        loaded = self._models.get(name)
        if loaded is None:
            return None
        head = snapshots.read_head(self.root / name)
        return loaded if head is not None and head.model_id == loaded.model_id else None

    def models(self) -> dict[str, Loaded]:
        return dict(self._models)

    def refresh(self) -> None:
        """One look at every model's heartbeat; load what is newer, forget what was withdrawn."""
        names = {p.name for p in self.root.iterdir() if p.is_dir()} if self.root.is_dir() else set()
        for name in names:
            head = snapshots.read_head(self.root / name)
            if head is not None:
                self._observe(name, head)
            elif name in self._models and not (self.root / name / snapshots.HEAD).exists():
                self._models.pop(name, None)  # withdrawn: the writer answers for it now
        for name in set(self._models) - names:
            self._models.pop(name, None)

    def _observe(self, name: str, head: Head) -> None:
        loaded = self._models.get(name)
        if loaded is not None and loaded.model_id != head.model_id:
            loaded = None  # another incarnation: never answer from the old one's state
            self._models.pop(name, None)
        if head.published >= 0 and (loaded is None or head.published > loaded.version):
            loaded = self._load(name, head) or loaded
        if loaded is not None and loaded.version >= head.version:
            loaded.current_as_of = max(loaded.current_as_of, head.written_at)

    def _load(self, name: str, head: Head) -> Loaded | None:
        try:
            fresh = snapshots.load(self.root / name, head)
        except Exception as exc:  # pruned meanwhile or damaged: retried at the next look
            self.load_failures += 1
            why = f"{type(exc).__name__}: {exc}"
            if self._failed.get(name) != why:
                _log.warning("snapshot %d of model %r cannot be loaded (retrying): %s", head.published, name, why)
            self._failed[name] = why
            return None
        self._failed.pop(name, None)
        self._models[name] = fresh
        self.loads += 1
        self.load_lag.append(max(0.0, time.time() - fresh.current_as_of))
        return fresh
