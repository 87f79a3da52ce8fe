"""A background round: a daemon thread that repeats one step every ``interval`` seconds until stopped.

Used by the writer's snapshot publisher, a predictor's view of the snapshots and the processes' watch on
their launcher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Periodic"]

_log = logging.getLogger("stream_am.api")


class Periodic:
    """Runs ``step`` once at :meth:`start` (in the caller's thread), then every ``interval`` seconds in a daemon
    thread named ``name``, until :meth:`stop` or until ``step`` returns False.

    ``step`` handles the failures it expects; one that escapes is logged and the next round runs: the thread
    never dies of it.
    """

    def __init__(self, name: str, interval: float, step: Callable[[], bool | None]) -> None:
        self.name = name
        self.interval = interval
        self.step = step
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._round() is False:
            return
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self._round() is False:
                return

    def _round(self) -> bool | None:
        try:
            return self.step()
        except Exception:
            _log.exception("%s: a round failed; the next one runs in %.2f s", self.name, self.interval)
            return None
