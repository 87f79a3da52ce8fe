"""``create_app(settings)``: the FastAPI application, its lifespan and middleware."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from stream_am.server.errors import install_handlers
from stream_am.server.json_default import JSONByDefault
from stream_am.server.launcher import watch_launcher
from stream_am.server.limits import BodySizeLimit
from stream_am.server.publisher import Publisher
from stream_am.server.registry import Registry
from stream_am.server.routers import dashboard_router, docs_router, learning_router, models_router, ops_router
from stream_am.server.security import ApiKeyGuard
from stream_am.server.settings import Settings
from stream_am.server.telemetry import Telemetry, TelemetryMiddleware

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; models are restored when the lifespan starts, checkpointed when it ends.

    Without ``settings`` they are read from the environment (``STREAM_AM_*``), which lets
    ``uvicorn --factory stream_am.server.app:create_app`` work. ``role="writer"`` adds the snapshot
    publisher; ``role="predictor"`` builds the predictor application instead (:mod:`replica_app`).
    """
    settings = settings if settings is not None else Settings()
    if settings.role == "predictor":
        from stream_am.server.replica_app import create_predictor_app

        return create_predictor_app(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = Registry(settings)
        await run_in_threadpool(registry.open)
        app.state.registry = registry
        publisher = Publisher(registry, settings) if settings.role == "writer" else None
        app.state.publisher = publisher
        watch = watch_launcher()
        try:
            if publisher is not None:
                await run_in_threadpool(publisher.start)
            yield
        finally:
            watch.stop()
            if publisher is not None:
                await run_in_threadpool(publisher.stop)
            await run_in_threadpool(registry.close)

    app = FastAPI(
        title="stream_am",
        summary="Online Alternating Minimization over HTTP; acknowledged updates are durable.",
        lifespan=lifespan,
        docs_url=None,  # served by docs_router from local assets
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.telemetry = Telemetry()
    install_handlers(app)
    app.include_router(ops_router)
    app.include_router(learning_router)
    app.include_router(models_router)
    app.include_router(dashboard_router)
    app.include_router(docs_router)
    app.mount("/static", StaticFiles(packages=[("stream_am.server", "static")]), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, max_import_bytes=settings.max_import_bytes)
    # before any body is read; with protect_reads, reads too
    app.add_middleware(ApiKeyGuard, api=app, key=settings.api_key, protect_reads=settings.protect_reads)
    app.add_middleware(TelemetryMiddleware, telemetry=app.state.telemetry)
    app.add_middleware(JSONByDefault)
    return app
