"""A served model's learning history: bounded points, drift marks and class counts, for the dashboard.

The writer feeds it through two hooks: :meth:`History.observe` with every batch it learns (live or
replayed from the log), and :meth:`History.publish` with every acknowledged state. A *point* is the
state at one publication: samples learned, version, the prequential metric over the last ``window``
scored samples and over all of them. Points are made at most once per ``interval`` seconds (the newest
state waits, and is added by the next publication or read that comes after the interval); when
``max_points`` are kept, every second point of the older half is dropped, so the whole run stays
visible at a coarser grain. Points and marks share one increasing ``seq``, so a reader asks for what
is new with ``since``.

Marks: ``drift`` when the server's own drift monitor (ADWIN on the prequential error, which never
touches the model) sees the error rise; ``forget`` when the estimator itself reports a detection
(an estimator with a ``drifts_`` list, e.g. :class:`stream_am.drift.DriftAware`).

:meth:`History.state` is a JSON document stored in each checkpoint, so the history survives restarts
with the model; the samples replayed from the log after that checkpoint are observed again. The drift
monitor starts afresh after a restart.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from river import drift
from stream_am.server.settings import Settings

__all__ = ["History"]

Point = dict[str, Any]


class History:
    """Bounded, thread-safe learning history of one model (see the module docstring)."""

    def __init__(
        self,
        classifier: bool,
        window: int,
        max_points: int,
        interval: float,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.classifier = classifier
        self.window = window
        self.max_points = max_points
        self.interval = interval
        self._lock = threading.Lock()
        state = state or {}
        self._seq = int(state.get("seq", 0))
        self._points: list[Point] = list(state.get("points", []))
        self._marks: list[Point] = list(state.get("marks", []))
        self._recent: deque[float] = deque(state.get("recent", []), maxlen=window)
        self._classes: dict[Any, int] = {label: int(n) for label, n in state.get("classes", [])}
        self._checkpoint: dict[str, Any] | None = state.get("checkpoint")
        self._pending: Point | None = None
        self._reported = int(state.get("reported", 0))  # detections of the estimator already marked
        self._monitor = drift.ADWIN()

    @classmethod
    def configured(cls, classifier: bool, settings: Settings, state: dict[str, Any] | None = None) -> History:
        """A history sized by the server settings (``history_window``, ``history_points``, ``history_interval``)."""
        return cls(classifier, settings.history_window, settings.history_points, settings.history_interval, state)

    # -- hooks of the writer ---------------------------------------------------------------------
    def observe(self, estimator: Any, targets: Sequence[Any], preds: Sequence[Any] | None, samples: int) -> None:
        """One learned batch: its targets, the predictions it was scored with (or None), samples after it."""
        with self._lock:
            first = samples - len(targets)
            if self.classifier:
                for y in targets:
                    self._classes[y] = self._classes.get(y, 0) + 1
            for i, (p, y) in enumerate(zip(preds or [], targets, strict=False)):
                error = self._error(p, y)
                self._recent.append(error)
                before = self._monitor.estimation
                self._monitor.update(error)
                if self._monitor.drift_detected and self._monitor.estimation > before:
                    self._mark("drift", first + i + 1)
            reported = getattr(estimator, "drifts_", None)
            if isinstance(reported, list):
                for at in reported[min(self._reported, len(reported)):]:
                    self._mark("forget", int(at))
                self._reported = len(reported)

    def publish(self, samples: int, version: int, metrics: dict[str, Any]) -> None:
        """An acknowledged state: becomes a point now, or once ``interval`` has passed since the last one."""
        now = round(time.time(), 3)
        point = {"t": now, "samples": samples, "version": version, "scored": metrics.get("scored")}
        point["cumulative"] = {k: _finite(v) for k, v in metrics.items() if k != "scored"}
        with self._lock:
            point["window"] = self._window_metrics()
            if self._points and self._points[-1]["version"] == version and self._points[-1]["samples"] == samples:
                return  # nothing new (a restart, or a rebuild after a failed group)
            self._pending = point
            self._flush(now)

    def checkpointed(self, seq: int, samples: int) -> dict[str, Any]:
        """Note a checkpoint of the model and return the state to store in it."""
        with self._lock:
            self._checkpoint = {"t": round(time.time(), 3), "seq": seq, "samples": samples}
            return self.state()

    # -- reads -----------------------------------------------------------------------------------
    def read(self, since: int = 0, limit: int | None = None) -> dict[str, Any]:
        """Points and marks with ``seq > since`` (the newest ``limit`` points), oldest first."""
        with self._lock:
            self._flush(time.time())
            points = [p for p in self._points if p["seq"] > since]
            if limit is not None:
                points = points[max(len(points) - limit, 0):] if limit else []  # (all of them, if fewer)
            return {
                "seq": self._seq,
                "window": self.window,
                "points": points,
                "marks": [m for m in self._marks if m["seq"] > since],
            }

    def summary(self) -> dict[str, Any]:
        """Counters for the dashboard: class counts, marks, last checkpoint, samples/s over ~10 s."""
        now = time.time()
        with self._lock:
            self._flush(now)
            classes = sorted(self._classes.items(), key=lambda kv: (-kv[1], str(kv[0])))
            marks = [m["kind"] for m in self._marks]
            return {
                "classes": [[label, n] for label, n in classes],
                "drifts": marks.count("drift"),
                "forgets": marks.count("forget"),
                "last_checkpoint": self._checkpoint,
                "samples_per_s": self._rate(now),
                "window_metrics": self._window_metrics(),
            }

    def state(self) -> dict[str, Any]:
        """A JSON document from which ``History(..., state=...)`` resumes (the caller holds the lock)."""
        points = self._points if self._pending is None else [*self._points, {**self._pending, "seq": self._seq + 1}]
        return {
            "seq": self._seq if self._pending is None else self._seq + 1,
            "points": points,
            "marks": self._marks,
            "recent": list(self._recent),
            "classes": [[label, n] for label, n in self._classes.items()],
            "checkpoint": self._checkpoint,
            "reported": self._reported,
        }

    # -- internals (lock held) -------------------------------------------------------------------
    def _error(self, pred: Any, target: Any) -> float:
        if self.classifier:
            return float(not (pred is not None and pred == target and type(pred) is type(target)))
        return abs(float(target) - (float(pred) if pred is not None else 0.0))

    def _window_metrics(self) -> dict[str, float | None]:
        errors = list(self._recent)
        n = len(errors)
        if not n:
            return {"accuracy": None} if self.classifier else {"mae": None, "rmse": None}
        if self.classifier:
            return {"accuracy": 1.0 - sum(errors) / n}
        return {"mae": _finite(sum(errors) / n), "rmse": _finite(math.sqrt(sum(e * e for e in errors) / n))}

    def _mark(self, kind: str, samples: int) -> None:
        self._seq += 1
        self._marks.append({"seq": self._seq, "t": round(time.time(), 3), "samples": samples, "kind": kind})
        del self._marks[: max(0, len(self._marks) - self.max_points)]

    def _flush(self, now: float) -> None:
        """Add the waiting point when ``interval`` has passed since the last one."""
        pending = self._pending
        if pending is None or (self._points and now - self._points[-1]["t"] < self.interval):
            return
        self._seq += 1
        self._points.append({**pending, "seq": self._seq})
        self._pending = None
        if len(self._points) > self.max_points:
            half = len(self._points) // 2
            self._points = self._points[:half][::2] + self._points[half:]

    def _rate(self, now: float, span: float = 10.0) -> float:
        """Samples learned per second over the last ``span`` seconds (0 when nothing was learned)."""
        points = self._points if self._pending is None else [*self._points, self._pending]
        if not points:
            return 0.0
        newest = points[-1]
        older = [p for p in points if p["t"] <= now - span]
        base = older[-1] if older else points[0]
        elapsed = now - base["t"]
        return (newest["samples"] - base["samples"]) / elapsed if elapsed > 0 else 0.0


def _finite(value: Any) -> Any:
    """JSON has no infinities: a metric that overflowed is reported as None."""
    return value if not isinstance(value, float) or math.isfinite(value) else None
