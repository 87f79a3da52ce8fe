"""``GET /health`` and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from stream_am.server.routers.deps import RegistryDep
from stream_am.server.schemas import Health
from stream_am.server.telemetry import render

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/health", response_model=Health)
def health(request: Request, registry: RegistryDep) -> Health:
    """``ok``, or ``degraded`` with what is wrong per model (quarantined, checkpoints or the log failing)
    and, on a writer, the snapshot publisher's failures under ``(snapshot publisher)``."""
    problems = registry.problems()
    publisher = getattr(request.app.state, "publisher", None)
    if publisher is not None and publisher.trouble.problems:
        problems["(snapshot publisher)"] = "; ".join(publisher.trouble.problems.values())
    return Health(status="degraded" if problems else "ok", models=len(registry.all()), problems=problems)


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request, registry: RegistryDep) -> PlainTextResponse:
    text = render(request.app.state.telemetry, registry.all())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
