"""One served model: requests submit learn jobs to its single writer and read prediction snapshots.

Write path: a request puts a :class:`LearnJob` on the model's queue and waits for the writer thread
(:class:`~stream_am.server.writer.ModelWriter`), which answers once the job is in the durable log.

Read path: ``predict`` uses a snapshot, a private copy of the estimator that is never learned on, so every
prediction sees one consistent acknowledged state. After a commit the writer copies its estimator into a
new snapshot when predictions were served since the last copy; otherwise the copy is made lazily by the
first prediction that finds the snapshot older than the acknowledged state (it waits for the writer's
current group). A learn-only stream therefore pays for no copies, and a mixed one rarely waits.
"""

from __future__ import annotations

import copy
import queue
import sqlite3
import threading
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from stream_am.server import estimators
from stream_am.server.errors import FieldConflict, ModelNotFound, Overloaded, Unavailable, input_field
from stream_am.server.eventlog import EventLog, IdHeld
from stream_am.server.jobs import LearnJob, LearnResult, Snapshot
from stream_am.server.writer import BUILT_WITH, IMPORTED, ModelWriter

from stream_am.checks import InputError

__all__ = ["BUILT_WITH", "IMPORTED", "ServedModel"]

Row = dict[str, float]


class ServedModel(ModelWriter):
    """A named estimator served over HTTP: requests submit jobs to its writer and read its snapshots."""

    _closed: bool  # set by ModelWriter.__init__ (named here too: type checkers see the server's imports as Any)
    _snapshot: Snapshot

    # -- lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Restore the newest checkpoint, replay the log after it, publish, start the writer."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = EventLog(self.directory / "events.sqlite", self.settings.max_pending_ids)
        estimators.use_torch_threads(self.settings.torch_threads)
        try:
            self._restore()
        except BaseException:
            self.log.close()
            raise
        self._thread = threading.Thread(target=self._run, name=f"writer-{self.name}", daemon=True)
        self._thread.start()

    def close(self, checkpoint: bool = True) -> None:
        """Stop accepting writes, drain the queue, write a final checkpoint if anything is new."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if checkpoint and self._seq > self._ckpt_seq and self.broken is None:
            try:
                self._checkpoint()
            except Exception as exc:  # e.g. a full disk: the log still holds every acknowledged update
                self.trouble.failed("checkpoint", exc)
        self.log.close()

    # -- public operations -----------------------------------------------------------------------
    def submit(self, job: LearnJob) -> Future[LearnResult]:
        with self._submit_lock:
            if self.broken is not None:
                raise Unavailable(f"model {self.name!r} is quarantined: {self.broken}")
            if self._closed:
                raise Overloaded(f"model {self.name!r} is closing")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise Overloaded(f"model {self.name!r}: the write queue is full") from None
        return job.future

    def predict(
        self, rows: list[Row], ids: list[str] | None, wait: bool = True, min_version: int | None = None
    ) -> tuple[list[Any], Any, int] | None:
        """Predict on the current snapshot; with ``ids``, keep instances and predictions for a label.

        With ``wait=False`` it answers None instead of waiting for a snapshot copy. A ``min_version`` above the
        acknowledged state's version is a :class:`FieldConflict`, raised once the rows have passed the model's
        checks (their errors come first) and before anything is stored.
        """
        estimators.use_torch_threads(self.settings.torch_threads)
        self._reads = True
        snap = self._snapshot
        if snap.version != self._head.version:
            if not wait:
                return None
            snap = self.current()
        try:
            preds, probas = estimators.predict(snap.estimator, rows, self.classifier)
        except InputError as exc:
            raise input_field(exc, row=0 if len(rows) == 1 else None) from None
        if min_version is not None and snap.version < min_version:  # the snapshot is the acknowledged state
            raise FieldConflict("min_model_version", f"model {self.name!r} holds {snap.version} learn requests "
                                f"(every acknowledged one), fewer than {min_version}")
        if ids is not None:
            try:
                self.log.put_pending([(i, {"x": r, "p": p}) for i, r, p in zip(ids, rows, preds, strict=True)])
            except sqlite3.ProgrammingError:  # the model was deleted meanwhile
                raise ModelNotFound(f"model {self.name!r} not found") from None
            except IdHeld as exc:
                raise FieldConflict(f"ids[{exc.index}]", str(exc)) from None
        return preds, probas, snap.version

    def pending_count(self) -> int:
        try:
            return self.log.pending_count()
        except sqlite3.ProgrammingError:
            return 0

    @property
    def head(self) -> Snapshot:
        """Counters and metrics of the acknowledged state (without an estimator copy)."""
        return self._head

    def current(self, reading: bool = True) -> Snapshot:
        """A snapshot of the acknowledged state: every update answered so far is in it.

        ``reading=False`` (the snapshot publisher) does not count as serving predictions, which would make the
        writer copy its estimator after every group.
        """
        if reading:
            self._reads = True
        snap = self._snapshot
        if snap.version == self._head.version:
            return snap
        with self._est_lock:  # the writer is between groups when this is acquired
            if self._snapshot.version != self._head.version:
                try:
                    estimator = copy.deepcopy(self._est)
                except Exception as exc:  # (a fault of the model's state, not of any request: no 422 naming one)
                    raise Unavailable(f"model {self.name!r} cannot be copied to answer from: "
                                      f"{type(exc).__name__}: {exc}") from exc
                self._snapshot = replace(self._head, estimator=estimator)
            return self._snapshot

    def queue_depth(self) -> int:
        return self._queue.qsize()

