"""What is failing in a model's background work: logged once per cause, retried with backoff, shown in /health.

A full disk makes every checkpoint and every log append fail the same way; logging a traceback each time
(thousands per minute) hides the cause, and retrying at once makes it worse. :class:`Trouble` logs a
failure when its cause changes, doubles the wait before the next retry (1 s up to a ceiling) and logs the
recovery; ``problems`` is what ``/health`` reports.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["Trouble"]

_log = logging.getLogger("stream_am.api")


class Trouble:
    """Failures of one model's operations (``"checkpoint"``, ``"event log"``, ...), with retry backoff."""

    def __init__(self, name: str, max_delay: float) -> None:
        self.name = name
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._problems: dict[str, str] = {}
        self._delay: dict[str, float] = {}
        self._retry_at: dict[str, float] = {}

    def failed(self, what: str, exc: BaseException) -> str:
        """Record a failure of ``what``; returns the message naming the cause."""
        msg = f"{what} failed: {type(exc).__name__}: {exc}"
        with self._lock:
            new = self._problems.get(what) != msg
            self._problems[what] = msg
            delay = min(self.max_delay, 2 * self._delay[what]) if what in self._delay else 1.0
            self._delay[what] = delay
            self._retry_at[what] = time.monotonic() + delay
        if new:  # once per cause, not once per attempt
            _log.error("model %r: %s (retrying with backoff, up to %gs)", self.name, msg, self.max_delay,
                       exc_info=exc)
        return msg

    def ok(self, what: str) -> None:
        with self._lock:
            recovered = self._problems.pop(what, None)
            self._delay.pop(what, None)
            self._retry_at.pop(what, None)
        if recovered is not None:
            _log.warning("model %r: %s works again", self.name, what)

    def due(self, what: str) -> bool:
        """Whether ``what`` may be tried now (its backoff has passed)."""
        with self._lock:
            return time.monotonic() >= self._retry_at.get(what, 0.0)

    def wait(self, what: str) -> float:
        """Seconds until ``what`` may be retried (0 when it is not failing)."""
        with self._lock:
            return max(0.0, self._retry_at.get(what, 0.0) - time.monotonic())

    @property
    def problems(self) -> dict[str, str]:
        with self._lock:
            return dict(self._problems)
