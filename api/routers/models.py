"""The model registry: create, list, describe, delete, export and import models."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool
from stream_am.server import estimators
from stream_am.server.routers.deps import RegistryDep
from stream_am.server.schemas import ExportDocument, ImportDocument, ModelCreate, ModelInfo, ModelList
from stream_am.server.security import require_api_key
from stream_am.server.service import ServedModel

__all__ = ["router"]

router = APIRouter(prefix="/models", tags=["models"])
_WRITE = [Depends(require_api_key)]


def _info(model: ServedModel) -> ModelInfo:
    snap = model.current()
    classes, features = estimators.describe(snap.estimator)
    return ModelInfo(
        name=model.name,
        estimator=model.estimator_name,
        params=model.params,
        samples_seen=snap.samples_seen,
        model_version=snap.version,
        classes=classes,
        features=features,
        metrics=snap.metrics,
        pending_ids=model.pending_count(),
        config=estimators.config(snap.estimator),
    )


@router.post("", response_model=ModelInfo, status_code=201, dependencies=_WRITE)
async def create_model(body: ModelCreate, registry: RegistryDep) -> ModelInfo:
    """Create a model from an estimator name and its constructor arguments (409 if the name is taken)."""
    model = await run_in_threadpool(registry.create, body.name, body.estimator, body.params)
    return _info(model)


@router.get("", response_model=ModelList)
def list_models(registry: RegistryDep) -> ModelList:
    return ModelList(models=[_info(m) for m in registry.all()])


@router.get("/{name}", response_model=ModelInfo)
def get_model(name: str, registry: RegistryDep) -> ModelInfo:
    """Configuration, samples seen, version, classes, features and running prequential metrics."""
    return _info(registry.get(name))


@router.delete("/{name}", status_code=204, dependencies=_WRITE)
async def delete_model(name: str, registry: RegistryDep, request: Request) -> Response:
    """Delete a model, its event log and its checkpoints."""
    await run_in_threadpool(registry.delete, name)
    await _retire(request, name)
    return Response(status_code=204)


@router.get("/{name}/export", response_model=ExportDocument, dependencies=_WRITE)
def export_model(name: str, registry: RegistryDep) -> ExportDocument:
    """The acknowledged state as the estimator's JSON configuration and safetensors files (base64)."""
    model = registry.get(name)
    snap = model.current()
    files = _files(snap.estimator)
    return ExportDocument(
        estimator=model.estimator_name,  # type: ignore[arg-type]
        params=model.params,
        state={
            "samples_seen": snap.samples_seen,
            "model_version": snap.version,
            "metrics": snap.metrics_state,
        },
        files={k: base64.b64encode(v).decode("ascii") for k, v in files.items()},
    )


def _files(estimator: object) -> dict[str, bytes]:
    """The files the estimator's ``save`` writes (JSON configuration and safetensors tensors)."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "model"
        estimators.save(estimator, target)
        return {p.relative_to(target).as_posix(): p.read_bytes() for p in target.rglob("*") if p.is_file()}


@router.post("/{name}/import", response_model=ModelInfo, status_code=201, dependencies=_WRITE)
async def import_model(name: str, body: ImportDocument, registry: RegistryDep, request: Request,
                       replace: bool = False) -> ModelInfo:
    """Create model ``name`` from an export document; ``?replace=true`` replaces an existing model."""

    def work() -> ServedModel:
        if replace:  # the old model stays until the new one has fully loaded
            return registry.replace(name, body.estimator, body.params, export=body.model_dump())
        return registry.create(name, body.estimator, body.params, export=body.model_dump())

    model = await run_in_threadpool(work)
    if replace:
        await _retire(request, name)
    return _info(model)


async def _retire(request: Request, name: str) -> None:
    """What outlived a model deleted or replaced, dropped before the change is acknowledged: a writer's published
    snapshots of it, so that no predictor answers for the old model afterwards (the new one is published at the
    next round), and its predict latencies (the new one's are not its)."""
    publisher = getattr(request.app.state, "publisher", None)
    if publisher is not None:
        await run_in_threadpool(publisher.withdraw, name)
    request.app.state.telemetry.predict_latency.forget(name)
