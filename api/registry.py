"""The model registry: which models exist (durably, in ``registry.sqlite``) and their served instances."""

from __future__ import annotations

import base64
import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from stream_am.server import checkpoints, estimators
from stream_am.server.errors import FieldError, ModelExists, ModelNotFound
from stream_am.server.eventlog import connect
from stream_am.server.prequential import Prequential
from stream_am.server.service import ServedModel
from stream_am.server.settings import Settings

__all__ = ["DEFAULT_MODEL", "Registry"]

DEFAULT_MODEL = "default"
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY, estimator TEXT NOT NULL, params TEXT NOT NULL, dir TEXT NOT NULL, created REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Registry:
    """Creates, restores, lists and deletes served models; every change is committed before it returns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = Path(settings.state_dir)
        self._models: dict[str, ServedModel] = {}
        self._lock = threading.Lock()
        self._lock_file: IO[bytes] | None = None

    def open(self) -> None:
        (self.root / "models").mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_state_dir(self.root)
        self._db = connect(self.root / "registry.sqlite", "FULL")
        self._db.executescript(_SCHEMA)
        rows = self._db.execute("SELECT name, estimator, params, dir FROM models ORDER BY created").fetchall()
        known = {d for *_, d in rows}
        for stray in (self.root / "models").iterdir():  # left by a crash during create or delete
            if stray.name not in known:
                shutil.rmtree(stray, ignore_errors=True)
        for name, estimator, params, directory in rows:
            model = ServedModel(name, estimator, json.loads(params), self.root / "models" / directory, self.settings)
            model.open()
            self._models[name] = model
        first = self._db.execute("SELECT value FROM meta WHERE key = 'initialised'").fetchone() is None
        if first:
            if self.settings.create_default_model and DEFAULT_MODEL not in self._models:
                self.create(DEFAULT_MODEL, "AMClassifier", {})
            self._db.execute("INSERT INTO meta VALUES ('initialised', ?)", (str(time.time()),))

    def close(self, checkpoint: bool = True) -> None:
        """Stop every model (with a final checkpoint unless ``checkpoint=False``); idempotent."""
        with self._lock:
            models, self._models = list(self._models.values()), {}
            lock_file, self._lock_file = self._lock_file, None
        for model in models:
            model.close(checkpoint=checkpoint)
        if lock_file is not None:
            self._db.close()
            lock_file.close()  # releases the flock

    def get(self, name: str) -> ServedModel:
        model = self._models.get(name)
        if model is None:
            raise ModelNotFound(f"model {name!r} not found")
        return model

    def all(self) -> list[ServedModel]:
        return list(self._models.values())

    def create(
        self, name: str, estimator: str, params: dict[str, Any], export: dict[str, Any] | None = None
    ) -> ServedModel:
        """Register and start a model; ``export`` (an export document) seeds it with learned state."""
        if not _NAME.fullmatch(name):
            raise FieldError("name", f"a model name matches {_NAME.pattern}, got {name!r}")
        estimators.build(estimator, params)  # validates the configuration before anything is written
        with self._lock:
            if name in self._models:
                raise ModelExists(f"model {name!r} already exists")
            if len(self._models) >= self.settings.max_models:
                raise FieldError("name", f"the registry already holds max_models={self.settings.max_models}")
            directory = f"{name}-{uuid.uuid4().hex[:12]}"
            path = self.root / "models" / directory
            path.mkdir(parents=True)
            try:
                if export is not None:
                    _seed_checkpoint(path, estimator, export)
                model = ServedModel(name, estimator, params, path, self.settings)
                model.open()
            except BaseException:
                shutil.rmtree(path, ignore_errors=True)
                raise
            self._db.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?)",
                (name, estimator, json.dumps(params), directory, time.time()),
            )
            self._models[name] = model
        return model

    def delete(self, name: str) -> None:
        with self._lock:
            model = self.get(name)
            self._db.execute("DELETE FROM models WHERE name = ?", (name,))
            del self._models[name]
        model.close(checkpoint=False)
        shutil.rmtree(model.directory, ignore_errors=True)


def _lock_state_dir(root: Path) -> IO[bytes]:
    """An exclusive lock on the state directory: two servers on one log would lose updates."""
    handle = open(root / ".lock", "ab")  # held open (and locked) for the registry's lifetime
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise RuntimeError(f"the state directory {root} is in use by another stream_am server") from None
    return handle


def _seed_checkpoint(path: Path, estimator: str, export: dict[str, Any]) -> None:
    """Write an imported model as checkpoint 0 after checking that it loads."""
    files: dict[str, str] = export["files"]
    state = export.get("state") or {}
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "model"
        staged.mkdir()
        for fname, content in files.items():
            if not fname.endswith((".json", ".safetensors")) or "/" in fname or fname.startswith("."):
                raise FieldError(f"files.{fname}", "only .json and .safetensors files are accepted")
            try:
                (staged / fname).write_bytes(base64.b64decode(content, validate=True))
            except ValueError as exc:
                raise FieldError(f"files.{fname}", f"not valid base64: {exc}") from exc
        try:
            estimators.load(estimator, staged)
        except (ValueError, KeyError, OSError) as exc:
            raise FieldError("files", f"the files do not hold a loadable {estimator}: {exc}") from exc
        metrics = Prequential(estimators.is_classifier(estimator), state.get("metrics")).state()
        meta = {
            "samples_seen": int(state.get("samples_seen", 0)),
            "model_version": int(state.get("model_version", 0)),
            "metrics": metrics,
            "estimator": estimator,
        }
        checkpoints.write(path / "checkpoints", 0, meta, lambda d: shutil.copytree(staged, d))
