"""The writer's snapshot publisher: every ``publish_interval``, each served model's acknowledged state.

A model whose acknowledged version moved since its last publication gets a new snapshot (copied from the
writer's estimator between two write groups, saved outside the writer's lock); every model gets a fresh
heartbeat (HEAD.json), which is what lets predictors bound their staleness while nothing changes. Models that
are no longer served (quarantined, or deleted or replaced meanwhile) have their snapshots withdrawn; a delete or
an import that replaces a model withdraws its snapshots itself (:meth:`Publisher.withdraw`) before it is
acknowledged. See :mod:`snapshots` for the layout.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import IO

from stream_am.server import snapshots
from stream_am.server.periodic import Periodic
from stream_am.server.registry import Registry
from stream_am.server.service import ServedModel
from stream_am.server.settings import Settings
from stream_am.server.trouble import Trouble

from stream_am.locks import DirectoryInUse, lock_directory

__all__ = ["Publisher"]


class Publisher:
    """A thread publishing the registry's models into ``settings.snapshots``."""

    def __init__(self, registry: Registry, settings: Settings) -> None:
        self.registry = registry
        self.settings = settings
        self.root = settings.snapshots
        self.published: dict[str, tuple[str, int]] = {}  # name -> (model_id, version)
        self.publications = 0
        self.trouble = Trouble("snapshots", settings.retry_max_seconds)
        self._lock = threading.Lock()  # one model's publication, or a withdrawal, at a time
        self._held: IO[bytes] | None = None  # the snapshot directory's lock: one writer publishes there
        self._rounds = Periodic("snapshot-publisher", settings.publish_interval, self._round)

    def start(self) -> None:
        """Take the snapshot directory (RuntimeError naming ``snapshot_dir`` when another writer holds it: two
        would withdraw each other's models), then a first round at once (predictors find every model as soon as
        the writer serves), then the thread."""
        try:
            self._take()
        except OSError as exc:  # the storage failing, not another writer: reported; the rounds take it later
            self.trouble.failed("publishing snapshots", exc)
        self._rounds.start()

    def _take(self) -> None:
        if self._held is None:
            self.root.mkdir(parents=True, exist_ok=True)
            try:
                self._held = lock_directory(self.root)
            except DirectoryInUse:
                raise RuntimeError(f"snapshot_dir: {self.root} is in use by another writer; only one writer may "
                                   "publish into a snapshot directory") from None

    def stop(self) -> None:
        self._rounds.stop()
        if self._held is not None:
            self._held.close()  # releases the lock
            self._held = None

    def withdraw(self, name: str) -> None:
        """Remove the snapshots of ``name`` now: called once the registry no longer serves the model as it was
        (deleted, replaced by an import), before that is acknowledged, so that no predictor answers for it
        afterwards (a predictor reads HEAD.json on every predict). A publication of the old model under way
        ends first; later rounds publish only what the registry serves."""
        with self._lock:
            directory = self.root / name
            if (directory / snapshots.HEAD).is_file():  # only what this publisher wrote
                snapshots.remove(directory)
            self.published.pop(name, None)

    def _round(self) -> None:
        try:
            self._take()
            self.publish_all()
        except Exception as exc:  # e.g. a full disk: predictors keep the last snapshot and forward when stale
            self.trouble.failed("publishing snapshots", exc)
        else:
            self.trouble.ok("publishing snapshots")

    def publish_all(self) -> None:
        """One round: publish what changed, beat every heart, withdraw what is gone."""
        served = {model.name: model for model in self.registry.all()}
        failures: list[str] = []
        for model in served.values():
            try:
                with self._lock:
                    if self.registry.serves(model):  # not deleted or replaced (and withdrawn) since the round began
                        self._publish(model)
            except Exception as exc:  # one model's failure does not keep the others' heartbeats from predictors
                failures.append(f"{model.name!r}: {type(exc).__name__}: {exc}")
        # only the directories this publisher writes (they hold a HEAD.json): never a user's own files
        ours = {p.name for p in self.root.iterdir() if p.is_dir() and (p / snapshots.HEAD).is_file()}
        for name in ours - set(served):
            self.withdraw(name)
        if failures:
            raise RuntimeError(f"{len(failures)} of {len(served)} models: " + "; ".join(failures))

    def _publish(self, model: ServedModel) -> None:
        directory: Path = self.root / model.name
        model_id = model.directory.name
        now = time.time()  # before the state is read: at this moment every acknowledged update is in it
        last = self.published.get(model.name)
        head = model.head
        if last is None:  # first round of this process: a restarted writer keeps what it published before
            snapshots.clear_leftovers(directory)
            found = snapshots.read_head(directory)
            last = (found.model_id, found.published) if found is not None else (model_id, -1)
        if last[0] != model_id:
            snapshots.remove(directory)  # another incarnation's files must never be read as this one's
            last = (model_id, -1)
        if head.version != last[1]:
            snap = model.current(reading=False)
            meta = {
                "model_id": model_id,
                "estimator": model.estimator_name,
                "model_version": snap.version,
                "samples_seen": snap.samples_seen,
                "current_at": now,
            }
            snapshots.publish(directory, snap.version, meta, snap.estimator, self.settings.keep_snapshots)
            last = (model_id, snap.version)
            self.published[model.name] = last
            self.publications += 1
        heartbeat = snapshots.Head(model_id, model.estimator_name, head.version, last[1], now)
        snapshots.write_head(directory, heartbeat)
