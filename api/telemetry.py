"""Request counters and latency histograms, rendered with the models' gauges in Prometheus text format."""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from stream_am.server.latency import PredictLatency

__all__ = ["Telemetry", "TelemetryMiddleware", "render"]

#: the methods counted by name; any other (a client may send any token) counts as "other", so that no client
#: can add series to /metrics
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Telemetry:
    """Thread-safe request counters and per-route latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: dict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: dict[str, float] = defaultdict(float)
        self.predict_latency = PredictLatency()

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.buckets[route][bisect.bisect_left(BUCKETS, seconds)] += 1
            self.sums[route] += seconds

    def lines(self) -> Iterable[str]:
        with self._lock:
            requests = dict(self.requests)
            buckets = {k: list(v) for k, v in self.buckets.items()}
            sums = dict(self.sums)
        yield "# HELP stream_am_http_requests_total HTTP requests answered."
        yield "# TYPE stream_am_http_requests_total counter"
        for (method, route, status), n in sorted(requests.items()):
            labels = f'method="{method}",route="{_esc(route)}",status="{status}"'
            yield f"stream_am_http_requests_total{{{labels}}} {n}"
        yield "# HELP stream_am_http_request_duration_seconds Time to answer an HTTP request."
        yield "# TYPE stream_am_http_request_duration_seconds histogram"
        for route, counts in sorted(buckets.items()):
            label = f'route="{_esc(route)}"'
            total = 0
            for le, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                total += count
                yield f'stream_am_http_request_duration_seconds_bucket{{{label},le="{le}"}} {total}'
            yield f"stream_am_http_request_duration_seconds_sum{{{label}}} {sums[route]:.6f}"
            yield f"stream_am_http_request_duration_seconds_count{{{label}}} {total}"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(telemetry: Telemetry, models: Iterable[Any]) -> str:
    """The full exposition: HTTP metrics, then one gauge family per model statistic."""
    lines = list(telemetry.lines())
    families: dict[str, tuple[str, str, list[str]]] = {
        "samples_learned_total": ("counter", "Samples learned by this process.", []),
        "model_samples_seen": ("gauge", "Samples the model has learned in total.", []),
        "model_version": ("gauge", "Acknowledged learn requests applied to the model.", []),
        "model_write_queue_depth": ("gauge", "Learn requests waiting for the writer.", []),
        "model_checkpoints_total": ("counter", "Checkpoints written by this process.", []),
        "model_prequential": ("gauge", "Running prequential metrics (test-then-train).", []),
    }
    for model in models:
        snap = model.head
        label = f'model="{_esc(model.name)}"'
        families["samples_learned_total"][2].append(f"{{{label}}} {model.samples_learned}")
        families["model_samples_seen"][2].append(f"{{{label}}} {snap.samples_seen}")
        families["model_version"][2].append(f"{{{label}}} {snap.version}")
        families["model_write_queue_depth"][2].append(f"{{{label}}} {model.queue_depth()}")
        families["model_checkpoints_total"][2].append(f"{{{label}}} {model.checkpoints_written}")
        for metric, value in snap.metrics.items():
            if value is not None:
                families["model_prequential"][2].append(f'{{{label},metric="{metric}"}} {float(value)}')
    for name, (kind, help_text, samples) in families.items():
        lines += [f"# HELP stream_am_{name} {help_text}", f"# TYPE stream_am_{name} {kind}"]
        lines += [f"stream_am_{name}{s}" for s in samples]
    return "\n".join(lines) + "\n"


class TelemetryMiddleware:
    """Times every HTTP request and counts it under its route template (``/models/{name}/predict``)."""

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            seconds = time.perf_counter() - start
            method = scope["method"] if scope["method"] in METHODS else "other"
            self.telemetry.observe(method, path, status, seconds)
            self.telemetry.predict_latency.observe(path, scope.get("path_params", {}), status, seconds)
