"""``predict``, ``partial_fit`` and ``learn`` for the model ``default`` and under ``/models/{name}``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from stream_am.server.errors import FieldError
from stream_am.server.instances import check_batch, check_targets, predict_rows, to_rows
from stream_am.server.jobs import LearnJob
from stream_am.server.registry import DEFAULT_MODEL, Registry
from stream_am.server.routers.deps import RegistryDep, SettingsDep
from stream_am.server.schemas import LearnRequest, LearnResponse, PredictRequest, PredictResponse
from stream_am.server.security import check_api_key, require_api_key
from stream_am.server.settings import Settings

__all__ = ["router"]

router = APIRouter(tags=["learning"])
_WRITE = [Depends(require_api_key)]


_INLINE_ROWS = 8  # predictions this small run on the event loop when they cannot block


async def _predict(
    request: Request, name: str, body: PredictRequest, registry: Registry, settings: Settings
) -> PredictResponse:
    if body.ids is not None:  # stores instances for a later label: a write
        check_api_key(request)
    model = registry.get(name)
    rows = predict_rows(body, settings)
    least = body.min_model_version
    # a small prediction on a fresh snapshot takes < 1 ms and never blocks: run it on the event loop;
    # others may wait for a snapshot copy or write stored predictions: run them in the thread pool
    small = body.ids is None and len(rows) <= _INLINE_ROWS
    answer = model.predict(rows, None, wait=False, min_version=least) if small else None
    if answer is None:
        answer = await run_in_threadpool(model.predict, rows, body.ids, min_version=least)
    assert answer is not None
    preds, probas, version = answer
    return PredictResponse(predictions=preds, probabilities=probas, model_version=version)


async def _learn(name: str, body: LearnRequest, registry: Registry, settings: Settings) -> LearnResponse:
    model = registry.get(name)
    if (body.instances is None) == (body.ids is None):
        raise FieldError("instances", "give either `instances` or `ids` (of earlier predictions), not both")
    if body.instances is not None:
        check_batch(len(body.instances), settings.max_batch)
        rows, ids = to_rows(body.instances), None
    else:
        assert body.ids is not None
        check_batch(len(body.ids), settings.max_batch, field="ids")
        if len(set(body.ids)) != len(body.ids):
            raise FieldError("ids", "ids must be unique within a request")
        rows, ids = None, list(body.ids)
    n = len(rows) if rows is not None else len(ids or [])
    targets = check_targets(body.targets, n, model.classifier)
    result = await asyncio.wrap_future(model.submit(LearnJob(rows, ids, targets)))
    return LearnResponse(learned=result.learned, samples_seen=result.samples_seen, model_version=result.model_version)


@router.post("/predict", response_model=PredictResponse)
async def predict_default(
    request: Request, body: PredictRequest, registry: RegistryDep, settings: SettingsDep
) -> PredictResponse:
    """Predict with the model ``default`` (with ``ids``: needs the API key when one is configured)."""
    return await _predict(request, DEFAULT_MODEL, body, registry, settings)


@router.post("/models/{name}/predict", response_model=PredictResponse)
async def predict_named(
    request: Request,
    name: str,
    body: PredictRequest,
    registry: RegistryDep,
    settings: SettingsDep,
) -> PredictResponse:
    """Predict with a named model; ``ids`` keep the instances for a later label (and need the API key)."""
    return await _predict(request, name, body, registry, settings)


@router.post("/partial_fit", response_model=LearnResponse, dependencies=_WRITE)
@router.post("/learn", response_model=LearnResponse, dependencies=_WRITE)
async def learn_default(body: LearnRequest, registry: RegistryDep, settings: SettingsDep) -> LearnResponse:
    """Learn with the model ``default``; answered once the samples are in the durable log."""
    return await _learn(DEFAULT_MODEL, body, registry, settings)


@router.post("/models/{name}/partial_fit", response_model=LearnResponse, dependencies=_WRITE)
@router.post("/models/{name}/learn", response_model=LearnResponse, dependencies=_WRITE)
async def learn_named(
    name: str,
    body: LearnRequest,
    registry: RegistryDep,
    settings: SettingsDep,
) -> LearnResponse:
    """Learn with a named model; with ``ids``, from the instances stored by an earlier predict."""
    return await _learn(name, body, registry, settings)
