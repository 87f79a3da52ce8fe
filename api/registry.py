"""The model registry: which models exist (durably, in ``registry.sqlite``) and their served instances.

A model that cannot be restored at start (no intact checkpoint plus log reproduces it) is quarantined: its
requests get 503 naming the reason, ``/health`` reports it, the other models serve; deleting it or
importing over it (``replace``) clears it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any

from stream_am.server import checkpoints, estimators
from stream_am.server.errors import FieldError, ModelExists, ModelNotFound, Unavailable
from stream_am.server.eventlog import connect
from stream_am.server.model_limits import check_config, class_memory
from stream_am.server.prequential import Prequential
from stream_am.server.service import BUILT_WITH, IMPORTED, ServedModel
from stream_am.server.settings import Settings

from stream_am.locks import DirectoryInUse, lock_directory

_log = logging.getLogger("stream_am.api")

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
        self._quarantined: dict[str, tuple[str, Path]] = {}  # name -> (reason, directory)
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
            path = self.root / "models" / directory
            model = ServedModel(name, estimator, json.loads(params), path, self.settings)
            try:
                model.open()
            except Exception as exc:  # this model alone: the others serve
                reason = f"{type(exc).__name__}: {exc}"
                _log.error("model %r is quarantined: it cannot be restored: %s", name, reason)
                self._quarantined[name] = (reason, path)
                continue
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
            quarantined = self._quarantined.get(name)
            if quarantined is not None:
                raise Unavailable(f"model {name!r} is quarantined: {quarantined[0]}")
            raise ModelNotFound(f"model {name!r} not found")
        if model.broken is not None:
            raise Unavailable(f"model {name!r} is quarantined: {model.broken}")
        return model

    def all(self) -> list[ServedModel]:
        """The models that serve (not the quarantined ones).

        The dicts are copied in one step before they are walked (here and in :meth:`problems`): a create, delete or
        import in another thread may change them meanwhile.
        """
        return [m for m in list(self._models.values()) if m.broken is None]

    def serves(self, model: ServedModel) -> bool:
        """Whether ``model`` is still the one served under its name (not deleted, replaced or quarantined)."""
        served = self._models.get(model.name)
        return served is not None and served is model and served.broken is None

    def problems(self) -> dict[str, str]:
        """What is wrong, per model: quarantined models and failing background work (for ``/health``)."""
        out = {name: f"quarantined: {reason}" for name, (reason, _) in list(self._quarantined.items())}
        for name, model in list(self._models.items()):
            if model.broken is not None:
                out[name] = f"quarantined: {model.broken}"
            elif model.trouble.problems:
                out[name] = "; ".join(model.trouble.problems.values())
        return out

    def _validated(self, name: str, estimator: str, params: dict[str, Any]) -> None:
        if not _NAME.fullmatch(name):
            raise FieldError("name", f"a model name matches {_NAME.pattern}, got {name!r}")
        check_config(estimators.config(estimators.build(estimator, params)), self.settings)

    def _start(self, name: str, estimator: str, params: dict[str, Any], export: dict[str, Any] | None) -> tuple[
        ServedModel, str
    ]:
        """A new, opened model in a fresh directory (removed again if anything fails)."""
        directory = f"{name}-{uuid.uuid4().hex[:12]}"
        path = self.root / "models" / directory
        path.mkdir(parents=True)
        try:
            _record_configuration(path, estimator, params)
            if export is not None:
                _seed_checkpoint(path, estimator, export, self.settings)
            model = ServedModel(name, estimator, params, path, self.settings)
            model.open()
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return model, directory

    def replace(self, name: str, estimator: str, params: dict[str, Any], export: dict[str, Any]) -> ServedModel:
        """Import over ``name``: the old model is removed only once the new one has fully loaded."""
        self._validated(name, estimator, params)
        model, directory = self._start(name, estimator, params, export)
        with self._lock:
            old = self._models.get(name)
            old_quarantined = self._quarantined.pop(name, None)
            if old is None and old_quarantined is None:
                if self._full():
                    model.close(checkpoint=False)
                    shutil.rmtree(model.directory, ignore_errors=True)
                    raise self._full_error()
                self._db.execute(
                    "INSERT INTO models VALUES (?, ?, ?, ?, ?)",
                    (name, estimator, json.dumps(params), directory, time.time()),
                )
            else:
                self._db.execute(
                    "UPDATE models SET estimator = ?, params = ?, dir = ? WHERE name = ?",
                    (estimator, json.dumps(params), directory, name),
                )
            self._models[name] = model
        if old is not None:
            old.close(checkpoint=False)
        for gone in [old.directory if old is not None else None, old_quarantined[1] if old_quarantined else None]:
            if gone is not None:
                shutil.rmtree(gone, ignore_errors=True)
        return model

    def create(
        self, name: str, estimator: str, params: dict[str, Any], export: dict[str, Any] | None = None
    ) -> ServedModel:
        """Register and start a model; ``export`` (an export document) seeds it with learned state."""
        params = estimators.with_seed(params) if export is None else params  # (its log replays to the same model)
        self._validated(name, estimator, params)  # before anything is written
        with self._lock:
            if name in self._models or name in self._quarantined:
                raise ModelExists(f"model {name!r} already exists")
            if self._full():
                raise self._full_error()
            model, directory = self._start(name, estimator, params, export)
            self._db.execute(
                "INSERT INTO models VALUES (?, ?, ?, ?, ?)",
                (name, estimator, json.dumps(params), directory, time.time()),
            )
            self._models[name] = model
        return model

    def _full(self) -> bool:
        """Whether ``max_models`` is reached: quarantined models count (their files are kept until deleted)."""
        return len(self._models) + len(self._quarantined) >= self.settings.max_models

    def _full_error(self) -> FieldError:
        held = f"{len(self._models)} serving, {len(self._quarantined)} quarantined"
        return FieldError("name", f"the registry already holds max_models={self.settings.max_models} ({held}); "
                                  "delete one to make room")

    def delete(self, name: str) -> None:
        with self._lock:
            quarantined = self._quarantined.pop(name, None)
            model = self._models.pop(name, None)
            if model is None and quarantined is None:
                raise ModelNotFound(f"model {name!r} not found")
            self._db.execute("DELETE FROM models WHERE name = ?", (name,))
        if model is not None:
            model.close(checkpoint=False)
        shutil.rmtree(model.directory if model is not None else quarantined[1], ignore_errors=True)  # type: ignore[index]


def _record_configuration(path: Path, estimator: str, params: dict[str, Any]) -> None:
    """Write, durably, the model's full configuration (its defaults spelled out) before it is registered."""
    with open(path / BUILT_WITH, "w") as fh:
        json.dump(estimators.config(estimators.build(estimator, params)), fh)
        fh.flush()
        os.fsync(fh.fileno())
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_state_dir(root: Path) -> IO[bytes]:
    """An exclusive lock on the state directory: two servers on one log would lose updates."""
    try:
        return lock_directory(root)  # held open (and locked) for the registry's lifetime
    except DirectoryInUse:
        raise RuntimeError(f"the state directory {root} is in use by another stream_am server") from None


def _check_params_match(estimator: str, params: dict[str, Any], loaded: Any) -> None:
    """FieldError naming ``params.<key>`` when the document's params say other than its files' model (the files
    are what serves: the model's params would describe another model)."""
    said, held = estimators.config(estimators.build(estimator, params)), estimators.config(loaded)
    for key in params:
        if said.get(key) != held.get(key):
            raise FieldError(f"params.{key}", f"{said.get(key)!r}, but the files' model has {held.get(key)!r}")


def _seed_checkpoint(path: Path, estimator: str, export: dict[str, Any], settings: Settings) -> None:
    """Write an imported model as checkpoint 0 after checking that it loads and fits the host's limits."""
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
            loaded = estimators.load(estimator, staged)
        except Exception as exc:  # whatever the damage (bad JSON shapes, bad safetensors), it is the input's
            raise FieldError("files", f"the files do not hold a loadable {estimator}: {type(exc).__name__}: {exc}"
                             ) from exc
        check_config(estimators.config(loaded), settings, "files")
        _check_params_match(estimator, export["params"], loaded)
        classes, features = estimators.describe(loaded)
        try:  # (a name the library keeps but JSON over HTTP cannot carry: a lone surrogate)
            json.dumps([classes, features], ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise FieldError("files", f"a class or feature name is not valid Unicode text: {exc}") from exc
        unnamed = estimators.unnamed_features(loaded)
        if unnamed:
            raise FieldError("files", f"feature names must be strings, as requests name features (a list instance's "
                                      f"are '0', '1', ...): {unnamed[0]!r} is a {type(unnamed[0]).__name__}")
        for field, count, limit in (("classes", len(classes), settings.max_classes),
                                    ("features", len(features), settings.max_features)):
            if count > limit:
                raise FieldError("files", f"the model has {count} {field}, more than max_{field}={limit}")
        size = class_memory(loaded, len(features), len(classes))
        if size > settings.max_class_memory:
            raise FieldError("files", f"the model's per-class memories hold {size:,} numbers, more than "
                                      f"max_class_memory={settings.max_class_memory:,}")
        metrics = Prequential(estimators.is_classifier(estimator), state.get("metrics")).state()
        meta = {
            "samples_seen": int(state.get("samples_seen", 0)),
            "model_version": int(state.get("model_version", 0)),
            "metrics": metrics,
            "estimator": estimator,
        }
        reseeded = estimators.fix_seed(loaded)  # (a seed drawn at its first step would differ on every replay)
        (path / IMPORTED).touch()  # its learned state is in checkpoint 0 only: never rebuilt from the log alone
        checkpoints.write(path / "checkpoints", 0, meta,
                          lambda d: estimators.save(loaded, d) if reseeded else shutil.copytree(staged, d))
