"""Response bodies of the history endpoints (``/history``, ``/models/{name}/history``, ``/dashboard/config``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = ["DashboardConfig", "HistoryIndex", "HistoryView", "Mark", "ModelStatus", "Point"]

Metrics = dict[str, float | None]


class Point(BaseModel):
    seq: int = Field(description="Increasing over the model's points and marks.")
    t: float = Field(description="Unix time of the acknowledged state, in seconds.")
    samples: int = Field(description="Samples learned.")
    version: int = Field(description="Model version (learn requests applied).")
    scored: int | None = Field(description="Labelled samples scored so far (prequential).")
    window: Metrics = Field(description="accuracy, or mae and rmse, over the last `window` scored samples.")
    cumulative: Metrics = Field(description="The same over every scored sample.")


class Mark(BaseModel):
    seq: int
    t: float
    samples: int = Field(description="Sample count at which it was detected.")
    kind: Literal["drift", "forget"] = Field(description="drift: the server's monitor; forget: the estimator.")


class ModelStatus(BaseModel):
    name: str
    estimator: str
    classifier: bool
    samples_seen: int
    model_version: int
    metrics: dict[str, float | int | None] = Field(description="Cumulative prequential metrics.")
    queue_depth: int = Field(description="Learn requests waiting for the writer.")
    checkpoints_written: int = Field(description="By this process.")
    predict_latency: dict[str, float | int | None] = Field(description="count, p50_ms, p99_ms of recent predictions.")
    classes: list[tuple[Any, int]] = Field(description="[label, samples learned] pairs, most frequent first.")
    drifts: int
    forgets: int
    last_checkpoint: dict[str, float | int] | None = Field(description="t, seq and samples of the last checkpoint.")
    samples_per_s: float = Field(description="Samples learned per second over the last 10 s.")
    window_metrics: Metrics


class HistoryView(BaseModel):
    seq: int = Field(description="The newest seq: pass it as `since` to get only what comes after.")
    window: int = Field(description="Samples in the rolling window.")
    points: list[Point]
    marks: list[Mark]
    status: ModelStatus


class HistoryIndex(BaseModel):
    models: list[ModelStatus]


class DashboardConfig(BaseModel):
    reads_need_key: bool
    window: int
    stream_seconds: float
