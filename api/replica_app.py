"""``create_predictor_app(settings)``: a predictor process, answering ``predict`` from published snapshots.

A predict without ``ids`` is answered here from the newest published snapshot of the model when that snapshot
is known to have held every acknowledged update less than ``max_staleness_seconds`` ago (and holds at least
``min_model_version`` learn requests, when the request asks); the answer carries its ``model_version`` and
that bound (``staleness_seconds``). Otherwise (no snapshot yet, one older than the bound, or one behind the
version asked for) the predict goes to the writer, which answers with every acknowledged update. Every other request
(learning, a predict with ``ids``, which stores data, the registry, metrics, the dashboard) goes to the
writer unchanged, so durability and validation stay the writer's; when the writer is unreachable those get
503 while fresh-enough predictions still come from here. ``GET /replica`` describes this process.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from stream_am.server import estimators
from stream_am.server.errors import input_field, install_handlers
from stream_am.server.instances import predict_rows
from stream_am.server.json_default import JSONByDefault
from stream_am.server.launcher import watch_launcher
from stream_am.server.limits import BodySizeLimit
from stream_am.server.proxy import WriterProxy
from stream_am.server.registry import DEFAULT_MODEL
from stream_am.server.replica_view import SnapshotView
from stream_am.server.schemas import PredictRequest, PredictResponse
from stream_am.server.security import ApiKeyGuard
from stream_am.server.settings import Settings

from stream_am.checks import InputError

__all__ = ["create_predictor_app"]

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class Replica:
    """One predictor process's parts: the snapshots it reads, its client of the writer, what it answered."""

    def __init__(self, settings: Settings) -> None:
        assert settings.writer_url is not None  # Settings refuses a predictor without one
        self.settings = settings
        self.view = SnapshotView(settings)
        self.proxy = WriterProxy(settings.writer_url)
        self.answered = 0
        self.forwarded_stale = 0
        self.forwarded_other = 0
        self.staleness_sum = 0.0
        self.staleness_max = 0.0

    async def forward(self, request: Request) -> Response:
        self.forwarded_other += 1
        return await self.proxy.forward(request)

    async def predict(self, request: Request, name: str, body: PredictRequest) -> Any:
        """From the newest snapshot when it is fresh enough (see the module docstring), else the writer's answer."""
        if body.ids is not None:  # stores instances for a later label: a write, the writer's
            return await self.forward(request)
        rows = predict_rows(body, self.settings)
        loaded = self.view.get(name)
        staleness = loaded.staleness() if loaded is not None else None
        if loaded is None or staleness is None or staleness > self.settings.max_staleness_seconds or (
            body.min_model_version is not None and loaded.version < body.min_model_version
        ):
            self.forwarded_stale += 1
            return await self.proxy.forward(request)  # the writer answers with every acknowledged update
        try:
            preds, probas = await run_in_threadpool(_predict, loaded.estimator, rows, loaded.classifier, self.settings)
        except InputError as exc:
            raise input_field(exc, row=0 if len(rows) == 1 else None) from None
        self.answered += 1
        self.staleness_sum += staleness
        self.staleness_max = max(self.staleness_max, staleness)
        return PredictResponse(
            predictions=preds, probabilities=probas, model_version=loaded.version, staleness_seconds=round(staleness, 3)
        )

    def describe(self) -> dict[str, Any]:
        """This predictor: its process, the snapshots it holds, what it answered and forwarded."""
        now = time.time()
        lag = sorted(self.view.load_lag)
        return {
            "role": "predictor",
            "pid": os.getpid(),
            "writer_url": self.settings.writer_url,
            "models": {
                name: {"model_version": m.version, "samples_seen": m.samples_seen,
                       "staleness_seconds": round(m.staleness(now), 3)}
                for name, m in sorted(self.view.models().items())
            },
            "answered": self.answered,
            "forwarded_stale": self.forwarded_stale,
            "forwarded_other": self.forwarded_other,
            "writer_failures": self.proxy.failed,
            "staleness_max_seconds": round(self.staleness_max, 3),
            "staleness_mean_seconds": round(self.staleness_sum / self.answered, 3) if self.answered else None,
            "snapshots_loaded": self.view.loads,
            "snapshot_load_failures": self.view.load_failures,
            "load_lag_median_seconds": round(lag[len(lag) // 2], 3) if lag else None,
        }


router = APIRouter()


def _replica(request: Request) -> Replica:
    replica: Replica = request.app.state.replica
    return replica


@router.post("/predict", response_model=PredictResponse)
async def predict_default(request: Request, body: PredictRequest) -> Any:
    """Predict with the model ``default`` from the newest snapshot (see the module docstring)."""
    return await _replica(request).predict(request, DEFAULT_MODEL, body)


@router.post("/models/{name}/predict", response_model=PredictResponse)
async def predict_named(request: Request, name: str, body: PredictRequest) -> Any:
    """Predict with a named model from its newest snapshot (see the module docstring)."""
    return await _replica(request).predict(request, name, body)


@router.get("/replica")
def replica_status(request: Request) -> dict[str, Any]:
    """This predictor: its process, the snapshots it holds, what it answered and forwarded."""
    return _replica(request).describe()


@router.api_route("/{path:path}", methods=_METHODS, include_in_schema=False)
async def to_writer(request: Request, path: str) -> Response:
    """Everything else is the writer's."""
    return await _replica(request).forward(request)


def create_predictor_app(settings: Settings) -> FastAPI:
    """The predictor application; ``settings.writer_url`` names the writer, ``settings.snapshots`` the store."""
    replica = Replica(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(replica.view.start)
        watch = watch_launcher()
        try:
            yield
        finally:
            watch.stop()
            await run_in_threadpool(replica.view.stop)
            await replica.proxy.close()

    app = FastAPI(title="stream_am predictor", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.replica = replica
    install_handlers(app)
    app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, max_import_bytes=settings.max_import_bytes)
    # the same routes as the writer are protected, before any body is read
    app.add_middleware(ApiKeyGuard, api=_route_table(settings), key=settings.api_key,
                       protect_reads=settings.protect_reads)
    app.add_middleware(JSONByDefault)
    return app


def _predict(estimator: Any, rows: list[Any], classifier: bool, settings: Settings) -> Any:
    estimators.use_torch_threads(settings.torch_threads)
    return estimators.predict(estimator, rows, classifier)


def _route_table(settings: Settings) -> FastAPI:
    """The writer's application, built but never started: its routes say which requests need the key."""
    from stream_am.server.app import create_app

    return create_app(settings.model_copy(update={"role": "all"}))
