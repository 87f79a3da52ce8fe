"""Typed server settings, read from the environment with the prefix ``STREAM_AM_``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Configuration of the stream_am HTTP service.

    Every field can be set from the environment, e.g. ``STREAM_AM_STATE_DIR=/data``,
    ``STREAM_AM_API_KEY=secret`` or ``STREAM_AM_MAX_BATCH=256``.
    """

    model_config = SettingsConfigDict(env_prefix="STREAM_AM_", extra="ignore", hide_input_in_errors=True)  # (a key)

    state_dir: Path = Field(default=Path("state"), description="Directory holding the SQLite logs and checkpoints.")
    host: str = Field(default="127.0.0.1", description="Interface `stream-am serve` binds to.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `stream-am serve` listens on.")
    api_key: SecretStr | None = Field(
        default=None, description="When set, writes and exports need `Authorization: Bearer <key>`."
    )
    max_batch: int = Field(default=1024, ge=1, description="Most instances accepted in one request.")
    max_body_bytes: int = Field(default=8 * 2**20, ge=1024, description="Largest request body, in bytes.")
    max_import_bytes: int = Field(default=256 * 2**20, ge=1024, description="Largest body for model imports.")
    checkpoint_every_samples: int = Field(default=10_000, ge=1, description="Checkpoint after this many samples.")
    checkpoint_every_seconds: float = Field(
        default=60.0, gt=0, description="Checkpoint a model with new samples after this many seconds."
    )
    keep_checkpoints: int = Field(default=2, ge=1, description="Checkpoints kept per model.")
    max_models: int = Field(default=64, ge=1, description="Most models the registry holds.")
    max_pending_ids: int = Field(
        default=100_000, ge=1, description="Most stored predictions awaiting a label (the oldest are dropped)."
    )
    max_features: int = Field(
        default=2048, ge=1, description="Most features one model learns (a memory layer costs features^2)."
    )
    max_classes: int = Field(default=1000, ge=2, description="Most class labels one classifier learns.")
    max_class_memory: int = Field(
        default=250_000_000, ge=1,
        description="Most numbers a classifier's class-clocked memories may hold (one sum per class and layer: "
        "classes x the sum over layers of (inputs + 1) x (inputs + 1 + outputs)); learning that would pass it is "
        "refused.",
    )
    max_model_batch_size: int = Field(default=4096, ge=1, description="Largest `batch_size` a model may have.")
    max_hidden_size: int = Field(default=4096, ge=1, description="Widest hidden layer a model may have.")
    max_hidden_layers: int = Field(default=8, ge=1, description="Most hidden layers a model may have.")
    max_inner_steps: int = Field(
        default=100, ge=1, description="Largest `code_steps` / `weight_steps` (inner iterations of every step)."
    )
    retry_max_seconds: float = Field(
        default=300.0, gt=0, description="Longest wait between retries of a failing checkpoint (doubling from 1 s)."
    )
    max_queue: int = Field(default=1024, ge=1, description="Most learn requests waiting for a model's writer.")
    write_group: int = Field(default=64, ge=1, description="Most queued learn requests committed in one fsync.")
    prequential: bool = Field(default=True, description="Score each labelled sample before learning it.")
    create_default_model: bool = Field(default=True, description="Create the model `default` on first start.")
    torch_threads: int | None = Field(
        default=1, ge=1, description="torch intra-op threads of each serving thread (None, or an empty "
        "`STREAM_AM_TORCH_THREADS=`: torch's default)."
    )
    protect_reads: bool = Field(
        default=False, description="With `api_key` set, reads (models, metrics, history) need the key too."
    )
    history_window: int = Field(default=500, ge=1, le=100_000, description="Samples in the dashboard's rolling window.")
    history_points: int = Field(default=2000, ge=10, le=100_000, description="Most history points kept per model.")
    history_interval: float = Field(default=1.0, gt=0, description="Fewest seconds between two history points.")
    stream_seconds: float = Field(
        default=25.0, gt=0, description="Length of one history stream response; the dashboard reconnects."
    )
    role: Literal["all", "writer", "predictor"] = Field(
        default="all",
        description="`all`: one process learns and predicts. `writer`: the single learner, which also publishes "
        "snapshots. `predictor`: answers `predict` from published snapshots and forwards every other request "
        "to the writer at `writer_url`.",
    )
    snapshot_dir: Path | None = Field(
        default=None, description="Where the writer publishes snapshots (default `<state_dir>/snapshots`)."
    )
    writer_url: str | None = Field(
        default=None, description="The writer a predictor forwards to: `http://host:port` or `unix:/path/to.sock`."
    )
    publish_interval: float = Field(
        default=0.2, gt=0, le=60, description="Seconds between two publications (or heartbeats) of the writer."
    )
    snapshot_poll_interval: float = Field(
        default=0.05, gt=0, le=60, description="Seconds between two looks of a predictor at the snapshot directory."
    )
    max_staleness_seconds: float = Field(
        default=2.0, gt=0, description="A predictor forwards a predict to the writer rather than answer from a "
        "snapshot that may miss updates acknowledged longer ago than this.",
    )
    keep_snapshots: int = Field(default=3, ge=2, description="Published snapshots kept per model.")

    @field_validator("api_key")
    @classmethod
    def _presentable(cls, key: SecretStr | None) -> SecretStr | None:
        """A key a client can present in ``Authorization: Bearer <key>``: printable ASCII without spaces (a key
        read from a file with its newline, or with letters a header carries in another encoding, would refuse
        every request; the error does not show the key)."""
        if key is not None and not re.fullmatch(r"[\x21-\x7e]+", key.get_secret_value()):
            raise ValueError("api_key must be one or more printable ASCII characters without spaces (a newline "
                             "read from a secret file, a space or a non-ASCII letter would refuse every request)")
        return key

    @field_validator("torch_threads", mode="before")
    @classmethod
    def _torch_default(cls, value: Any) -> Any:
        """An empty value (``STREAM_AM_TORCH_THREADS=``) is None, torch's own thread count: the environment has no
        other way to say it, and the default is 1."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.role == "predictor" and not self.writer_url:
            raise ValueError("writer_url: a predictor needs the writer's address (http://host:port or unix:/path)")
        if self.writer_url and not self.writer_url.startswith(("http://", "https://", "unix:/")):
            raise ValueError(f"writer_url: expected http://host:port or unix:/path, got {self.writer_url!r}")
        if self.snapshot_dir is not None:
            snap, state = Path(self.snapshot_dir).resolve(), Path(self.state_dir).resolve()
            if snap == state or snap in state.parents:
                raise ValueError(f"snapshot_dir: {str(self.snapshot_dir)!r} is the state directory or holds it; give "
                                 "snapshots a directory of their own (the default is <state_dir>/snapshots)")
            if snap.exists() and not snap.is_dir():
                raise ValueError(f"snapshot_dir: {str(self.snapshot_dir)!r} exists and is not a directory")
        return self

    @property
    def snapshots(self) -> Path:
        """The snapshot directory in effect."""
        return Path(self.snapshot_dir) if self.snapshot_dir is not None else Path(self.state_dir) / "snapshots"

    def environment(self) -> dict[str, str]:
        """These settings as ``STREAM_AM_*`` variables, for the processes a launcher starts."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                if name == "torch_threads":  # not its default (1): the processes started must get None too
                    out["STREAM_AM_TORCH_THREADS"] = ""
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            out[f"STREAM_AM_{name.upper()}"] = _text(value)
        return out


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
