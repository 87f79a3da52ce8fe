"""A served model's acknowledged state and its single writer: restore, learn, log, acknowledge, checkpoint.

The writer thread takes up to ``write_group`` queued jobs, learns them in order on its private estimator,
appends them to the event log in one ``synchronous=FULL`` transaction, records the new acknowledged state (the
head) and answers the jobs. Nothing is acknowledged before its commit returned.

Each job is validated, then applied: a job the estimator refuses (422) or that fails unexpectedly (503
naming the cause) is answered alone; the model is rebuilt to the state before that job when it had changed,
and the well-formed jobs of the group are learned and acknowledged as usual. :class:`ServedModel`
(``service.py``) adds the requests' side: submitting jobs and reading snapshots.
"""

from __future__ import annotations

import copy
import json
import queue
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from stream_am.server import checkpoints, estimators
from stream_am.server.errors import FieldError, Overloaded, Unavailable, input_field
from stream_am.server.eventlog import EventLog
from stream_am.server.history import History
from stream_am.server.jobs import LearnJob, LearnResult, Snapshot, take_group
from stream_am.server.model_limits import check_growth
from stream_am.server.prequential import Prequential
from stream_am.server.recovery import restore_point
from stream_am.server.settings import Settings
from stream_am.server.trouble import Trouble

from stream_am.checks import InputError

__all__ = ["BUILT_WITH", "IMPORTED", "ModelWriter"]

#: a marker file in the directory of an imported model: it cannot be rebuilt from its log alone
IMPORTED = "imported"
#: the model's full constructor configuration at its creation, every default spelled out: a model rebuilt from its
#: log alone is built from it, so another version's defaults never change what the log's updates were learned by
BUILT_WITH = "built_with.json"

Row = dict[str, float]


class ModelWriter:
    """The acknowledged state of one model and the thread that alone changes it (see the module docstring)."""

    log: EventLog
    history: History
    _head: Snapshot  # the acknowledged state's counters and metrics (no estimator copy)
    _snapshot: Snapshot  # the newest copy predictions read (see ServedModel.current)

    def __init__(self, name: str, estimator: str, params: dict[str, Any], directory: Path, settings: Settings):
        self.name = name
        self.estimator_name = estimator
        self.params = params
        self.directory = directory
        self.settings = settings
        self.classifier = estimators.is_classifier(estimator)
        self._queue: queue.Queue[LearnJob | None] = queue.Queue(maxsize=settings.max_queue)
        self._thread: threading.Thread | None = None
        self._closed = False
        self._submit_lock = threading.Lock()
        self._est_lock = threading.RLock()  # held by the writer while its estimator is ahead of the head
        self._reads = False
        self.checkpoints_written = 0
        self.samples_learned = 0  # learned by this process (for /metrics)
        self.trouble = Trouble(name, settings.retry_max_seconds)
        self.broken: str | None = None  # why the model cannot serve any more (it could not be rebuilt)

    def _built_with(self) -> dict[str, Any]:
        """The configuration the model was created with (its request's params for a model created by a version
        that did not record it)."""
        path = self.directory / BUILT_WITH
        if not path.is_file():
            return self.params
        config = json.loads(path.read_text())
        if not isinstance(config, dict):
            raise ValueError(f"{path}: not a configuration")
        return config

    # -- restore ---------------------------------------------------------------------------------
    def _restore(self) -> None:
        """The acknowledged state: the newest intact checkpoint the log continues, plus the log after it."""
        load = lambda path: estimators.load(self.estimator_name, path)  # noqa: E731
        scratch = not (self.directory / IMPORTED).exists()
        est, meta = restore_point(self.name, self.directory / "checkpoints", self.log, load, from_scratch=scratch)
        self._est = est if est is not None else estimators.build(self.estimator_name, self._built_with())
        self._seq = self._ckpt_seq = int(meta.get("seq", 0))
        self._samples = int(meta.get("samples_seen", 0))
        self._version = int(meta.get("model_version", 0))
        self._metrics = Prequential(self.classifier, meta.get("metrics"))
        self.history = History.configured(self.classifier, self.settings, meta.get("history"))
        for seq, payload in self.log.replay(self._seq):
            self._apply(payload["x"], payload["y"], payload.get("p"))
            self._seq = seq
        self._since_ckpt = 0
        self._ckpt_time = time.monotonic()
        self._publish()

    def _apply(self, rows: list[Row], targets: list[Any], preds: list[Any] | None, frame: Any = None) -> None:
        estimators.learn(self._est, rows, targets, frame)
        if preds is not None:
            self._metrics.update(preds, targets)
        self._samples += len(rows)
        self._version += 1
        self.history.observe(self._est, targets, preds, self._samples)

    def _publish(self, copy_now: bool = True) -> None:
        """Record the acknowledged state; copy the estimator now or leave it to :meth:`current`."""
        self._head = Snapshot(None, self._version, self._samples, self._metrics.summary(), self._metrics.state())
        self.history.publish(self._samples, self._version, self._head.metrics)
        if copy_now:
            self._copy()

    def _copy(self) -> None:
        self._reads = False
        self._snapshot = replace(self._head, estimator=copy.deepcopy(self._est))
    # -- writer thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        estimators.use_torch_threads(self.settings.torch_threads)
        while True:
            try:
                first = self._queue.get(timeout=self._wait())
            except queue.Empty:
                self._guarded(self._maybe_checkpoint)
                continue
            jobs, stop = take_group(self._queue, first, self.settings.write_group)
            if jobs:
                with self._est_lock:
                    self._guarded(self._process, jobs)
                self._guarded(self._maybe_checkpoint)
            if stop:
                return

    def _guarded(self, step: Any, *args: Any) -> None:
        """Run a writer step; an error escaping it never kills the writer thread, and is logged once.

        Steps handle the failures of requests themselves; what escapes is answered with 503 naming the cause
        (the model is quarantined if it could not be rebuilt, see :meth:`_rebuild`).
        """
        try:
            step(*args)
        except Exception as exc:
            cause = self.trouble.failed(f"writer step {getattr(step, '__name__', step)}", exc)
            error = (Unavailable(f"model {self.name!r} is quarantined: {self.broken}") if self.broken is not None
                     else Overloaded(f"model {self.name!r}: {cause}; retry"))
            for job in args[0] if args else []:
                if not job.future.done():
                    job.future.set_exception(error)

    def _wait(self) -> float | None:
        if self._seq == self._ckpt_seq:
            return None
        due = self.settings.checkpoint_every_seconds - (time.monotonic() - self._ckpt_time)
        return max(0.01, due, self.trouble.wait("checkpoint"))

    def _process(self, jobs: list[LearnJob]) -> None:
        payloads: list[dict[str, Any]] = []
        consumed: list[str] = []
        done: list[tuple[LearnJob, LearnResult]] = []
        for job in jobs:
            if not job.future.set_running_or_notify_cancel():
                continue
            before = estimators.fingerprint(self._est)
            try:
                rows, preds, frame = self._resolve(job, consumed)
                self._apply(rows, job.targets, preds, frame)
            except ValueError as exc:  # refused: validated before anything changed (checked, to be sure)
                if estimators.fingerprint(self._est) != before:
                    self._rebuild(payloads)
                rows_field = "instances" if job.ids is None else "ids"
                job.future.set_exception(input_field(exc, rows_field) if isinstance(exc, InputError) else exc)
                continue
            except Exception as exc:  # unexpected: this job alone fails, the model goes back to before it
                cause = self.trouble.failed("learning", exc)
                self._rebuild(payloads)
                job.future.set_exception(Overloaded(f"model {self.name!r}: {cause}; retry"))
                continue
            payloads.append({"x": rows, "y": job.targets, "p": preds})
            consumed.extend(job.ids or [])
            done.append((job, LearnResult(len(rows), self._samples, self._version)))
        if not payloads:
            return
        try:
            self._seq = self.log.append(payloads, consumed)
        except Exception as exc:  # e.g. a full disk: nothing of the group is acknowledged
            cause = self.trouble.failed("event log", exc)
            self._fail_group([job for job, _ in done], Unavailable(f"model {self.name!r}: {cause}; retry"))
            return
        self.trouble.ok("event log")
        self.trouble.ok("learning")
        n = sum(r.learned for _, r in done)
        self._since_ckpt += n
        self.samples_learned += n
        self._publish(copy_now=False)  # the head first: a reader that gets the answer must see it
        for job, result in done:
            job.future.set_result(result)
        if self._reads:  # predictions are being served: copy now rather than make one of them wait
            self._copy()

    def _resolve(self, job: LearnJob, consumed: list[str]) -> tuple[list[Row], list[Any] | None, Any]:
        """Rows, predictions to score (None: not scored) and the rows' DataFrame (or None)."""
        if job.ids is None:
            assert job.rows is not None
            self._check_growth(job.rows, job.targets, "instances")
            frame = estimators.frame(job.rows)
            if not self.settings.prequential:
                return job.rows, None, frame
            return job.rows, estimators.labels(self._est, job.rows, frame), frame
        stored = self.log.get_pending(job.ids)
        for k, i in enumerate(job.ids):
            if i not in stored or i in consumed:
                raise FieldError(f"ids[{k}]", f"no stored prediction awaits a label under id {i!r}")
        rows = [stored[i]["x"] for i in job.ids]
        self._check_growth(rows, job.targets, "ids")
        return rows, [stored[i]["p"] for i in job.ids], None

    def _check_growth(self, rows: list[Row], targets: list[Any], rows_field: str) -> None:
        classes, features = estimators.describe(self._est)
        check_growth(features, classes, rows, targets if self.classifier else None, self.settings, rows_field,
                     self._est if self.classifier else None)

    def _rebuild(self, payloads: list[dict[str, Any]]) -> None:
        """Back to the acknowledged state (checkpoint + log), then the jobs of this group learned so far.

        If even that fails (the checkpoints and log no longer reproduce the model), it is quarantined.
        """
        try:
            self._restore()
            for p in payloads:
                self._apply(p["x"], p["y"], p["p"])
        except Exception as exc:
            self.broken = self.trouble.failed("rebuilding the model", exc)
            raise

    def _fail_group(self, jobs: list[LearnJob], error: Exception) -> None:
        """Nothing of the group could be made durable: rebuild the acknowledged state, fail the group."""
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)
        self._rebuild([])

    def _maybe_checkpoint(self) -> None:
        if self._seq == self._ckpt_seq or not self.trouble.due("checkpoint"):
            return
        due_time = time.monotonic() - self._ckpt_time >= self.settings.checkpoint_every_seconds
        if self._since_ckpt >= self.settings.checkpoint_every_samples or due_time:
            try:
                self._checkpoint()
            except Exception as exc:  # the log keeps everything: nothing acknowledged is lost
                self.trouble.failed("checkpoint", exc)
            else:
                self.trouble.ok("checkpoint")

    def _checkpoint(self) -> None:
        meta = {
            "samples_seen": self._samples,
            "model_version": self._version,
            "metrics": self._metrics.state(),
            "estimator": self.estimator_name,
            "history": self.history.checkpointed(self._seq, self._samples),
        }
        root = self.directory / "checkpoints"
        checkpoints.write(root, self._seq, meta, lambda d: estimators.save(self._est, d))
        oldest = checkpoints.prune(root, self.settings.keep_checkpoints)
        self.log.compact(oldest)  # the log goes back to the oldest kept checkpoint: a damaged newer one is survivable
        self._ckpt_seq = self._seq
        self._since_ckpt = 0
        self._ckpt_time = time.monotonic()
        self.checkpoints_written += 1
