"""The live dashboard: ``GET /dashboard``, the models' history as JSON, and its Server-Sent Events stream.

``GET /dashboard/config`` tells the page whether reads need the key; ``GET /history`` lists every model's
counters; ``GET /models/{name}/history`` answers its points and marks (``since``: only those with a larger
``seq``; ``limit``: the newest points only) with the counters; ``GET /models/{name}/history/stream`` pushes
the same, as ``update`` events, whenever something changes.
A stream ends after ``stream_seconds`` with an ``end`` event, or sooner once its model is deleted or replaced (the
reconnecting client gets 404, or the new model); clients reconnect with ``since`` set to the last ``seq`` they
saw, so a stream never holds a server that is shutting down for long.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from stream_am.server.history_schemas import DashboardConfig, HistoryIndex, HistoryView
from stream_am.server.registry import Registry
from stream_am.server.routers.deps import RegistryDep, SettingsDep
from stream_am.server.service import ServedModel
from stream_am.server.telemetry import Telemetry

__all__ = ["CSP", "router", "status"]

router = APIRouter(tags=["dashboard"])

#: the page may load and contact nothing but this server
CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
_POLL_SECONDS = 0.5

Since = Annotated[int, Query(ge=0, description="Only points and marks with a larger `seq`.")]
Limit = Annotated[int | None, Query(ge=1, le=100_000, description="Only the newest `limit` points.")]


def status(model: ServedModel, telemetry: Telemetry) -> dict[str, Any]:
    """The counters of one model: acknowledged state, writer, recent predictions and its history."""
    head = model.head
    return {
        "name": model.name,
        "estimator": model.estimator_name,
        "classifier": model.classifier,
        "samples_seen": head.samples_seen,
        "model_version": head.version,
        "metrics": head.metrics,
        "queue_depth": model.queue_depth(),
        "checkpoints_written": model.checkpoints_written,
        "predict_latency": telemetry.predict_latency.summary(model.name),
        **model.history.summary(),
    }


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard() -> HTMLResponse:
    """The dashboard page; its scripts and styles come from ``/static`` (nothing from elsewhere)."""
    page = resources.files("stream_am.server").joinpath("static/dashboard.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"})


@router.get("/dashboard/config", response_model=DashboardConfig)
def dashboard_config(settings: SettingsDep) -> dict[str, Any]:
    """What the page needs before its first data request: whether reads need the API key."""
    return {
        "reads_need_key": settings.api_key is not None and settings.protect_reads,
        "window": settings.history_window,
        "stream_seconds": settings.stream_seconds,
    }


@router.get("/history", response_model=HistoryIndex)
def history_index(request: Request, registry: RegistryDep) -> dict[str, Any]:
    """The counters of every model (no points), in creation order."""
    telemetry: Telemetry = request.app.state.telemetry
    return {"models": [status(m, telemetry) for m in registry.all()]}


@router.get("/models/{name}/history", response_model=HistoryView)
def model_history(
    name: str, request: Request, registry: RegistryDep, since: Since = 0, limit: Limit = None
) -> dict[str, Any]:
    """History points (oldest first), drift and forget marks, and the model's counters."""
    model = registry.get(name)
    return {**model.history.read(since, limit), "status": status(model, request.app.state.telemetry)}


@router.get("/models/{name}/history/stream", response_class=StreamingResponse)
async def model_history_stream(
    name: str, request: Request, registry: RegistryDep, settings: SettingsDep, since: Since = 0
) -> StreamingResponse:
    """Server-Sent Events: an ``update`` (the JSON of ``/history`` since the last one) on every change."""
    model = registry.get(name)
    events = _events(model, registry, request, since, settings.stream_seconds)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


async def _events(
    model: ServedModel, registry: Registry, request: Request, since: int, seconds: float
) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    telemetry: Telemetry = request.app.state.telemetry
    last: dict[str, Any] | None = None
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        view = model.history.read(since)
        now = status(model, telemetry)
        if view["points"] or view["marks"] or now != last:
            since, last = view["seq"], now
            yield f"id: {since}\nevent: update\ndata: {json.dumps({**view, 'status': now})}\n\n"
        if loop.time() >= deadline or not registry.serves(model):  # (deleted or replaced: its history is over)
            yield "event: end\ndata: {}\n\n"
            return
        await asyncio.sleep(_POLL_SECONDS)
