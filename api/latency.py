"""Recent predict latencies per model, for the dashboard's p50 and p99."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

__all__ = ["PredictLatency"]

_DEFAULT_MODEL = "default"  # the model `POST /predict` serves (stream_am.server.registry.DEFAULT_MODEL)


class PredictLatency:
    """The last ``size`` answered predictions' durations per model, fed by the telemetry middleware."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._seconds: dict[str, deque[float]] = {}

    def observe(self, route: str, path_params: Mapping[str, Any], status: int, seconds: float) -> None:
        """Record a request if it was an answered prediction (``/predict`` or ``/models/{name}/predict``)."""
        if status != 200 or not route.endswith("/predict"):
            return
        name = str(path_params.get("name", _DEFAULT_MODEL))
        with self._lock:
            self._seconds.setdefault(name, deque(maxlen=self.size)).append(seconds)

    def forget(self, name: str) -> None:
        """Drop ``name``'s durations: its model was deleted or replaced (a model of the name made later starts
        afresh, and deleted names do not accumulate)."""
        with self._lock:
            self._seconds.pop(name, None)

    def summary(self, name: str) -> dict[str, float | int | None]:
        """``count``, ``p50_ms`` and ``p99_ms`` over the recent predictions (None before any)."""
        with self._lock:
            values = sorted(self._seconds.get(name, ()))
        if not values:
            return {"count": 0, "p50_ms": None, "p99_ms": None}
        return {"count": len(values), "p50_ms": _quantile(values, 0.5) * 1e3, "p99_ms": _quantile(values, 0.99) * 1e3}


def _quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted values.

    >>> _quantile([1.0, 2.0, 3.0, 4.0], 0.5), _quantile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)
    """
    rank = max(1, -(-len(ordered) * q // 1))
    return ordered[int(rank) - 1]
