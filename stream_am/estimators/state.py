"""An estimator's learned state as ``(meta, arrays)``: JSON-ready values and numpy arrays.

:mod:`~stream_am.estimators.persistence` writes them as ``config.json`` + safetensors, pickling carries them
in ``__getstate__``; both rebuild the estimator from its parameters and then :func:`restore` it. ``est`` is a
:class:`~stream_am.estimators.base.StreamEstimator` (typed ``Any``: this module must not import it back).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stream_am import checks
from stream_am.estimators import persistence
from stream_am.estimators.basis import QUADRATIC, QUADRATIC_MAX_FEATURES
from stream_am.estimators.buffer import SampleBuffer
from stream_am.estimators.checkpoint_checks import check_state
from stream_am.estimators.companion import LinearCompanion, quadratic
from stream_am.estimators.companion_checks import check_state as check_companion
from stream_am.estimators.features import FeatureIndex
from stream_am.estimators.frame import InputFrame, frame_for
from stream_am.estimators.moments import RunningMoments
from stream_am.estimators.networks import build_mlp
from stream_am.hyperparameters import HYPERPARAMETERS, check_hyperparameter, check_sparsity

__all__ = ["Persistent", "payload", "restore"]


def payload(est: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of ``est``: Python-level state and numpy arrays; together they restore it."""
    meta: dict[str, Any] = {
        "features": list(est._index.names),
        "n_learned": est._n_learned,
        "started": est._buffer is not None,
        "engine": None if est._engine is None else [est._engine.n_inputs, est._engine.n_outputs],
        "last_stats": dict(est._last_stats),
        "frame_new": 0 if est._frame is None else est._frame.new,
        "stepped": est._n_stepped,
        "companion": None if est._companion is None else est._companion.meta(),
        "quadratic": None if est._quadratic is None else est._quadratic.meta(),
        "engine_settings": _engine_settings(est._engine, est),
    }
    arrays: dict[str, np.ndarray] = {}
    if est._buffer is not None and est._moments is not None:
        arrays.update(est._moments.state("moments."))
        arrays.update(est._buffer.state("buffer.", est._target_dtype))
    if est._frame is not None:
        arrays.update({f"frame.{k}": getattr(est._frame, k).copy() for k in ("mean", "scale", "gain")})
    if est._engine is not None:
        for k, v in est._engine.state_dict().items():
            arrays[f"engine.{k}"] = v.detach().cpu().clone().numpy()
    if est._companion is not None:
        arrays.update(est._companion.arrays())
    if est._quadratic is not None:
        arrays.update(est._quadratic.arrays("quadratic"))
    return meta, arrays


def restore(est: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Rebuild ``est``'s learned state from :func:`payload`'s ``(meta, arrays)`` (its engine on its device).

    ``(meta, arrays)`` are checked first (:func:`~stream_am.estimators.checkpoint_checks.check_state`, and the
    engine's tensors by its ``load_state_dict``): a malformed state raises ``ValueError`` naming the field.
    """
    check_state(est, meta, arrays)
    if meta["engine"] is None and meta.get("engine_settings") not in (None, {}):
        raise ValueError(f"meta.engine_settings is {meta['engine_settings']!r:.60}, but meta.engine is None")
    engine = None if meta["engine"] is None else _engine(est, meta["engine"], arrays, meta.get("engine_settings"))
    companion = _companion(est, meta, arrays, engine)
    quadratic = _quadratic(est, meta, arrays, engine)
    est._reset()
    est._index = FeatureIndex(meta["features"])
    est._n_learned = int(meta["n_learned"])
    stepped = len(meta["features"]) - int(meta.get("frame_new", 0)) if meta["engine"] is not None else 0
    est._n_stepped = int(meta.get("stepped", stepped))  # (saved before it: what the frame then left out)
    est._last_stats = {k: float(v) for k, v in meta["last_stats"].items()}
    if meta["started"]:
        est._moments = RunningMoments.from_state(arrays, "moments.")
        est._buffer = SampleBuffer.from_state(arrays, "buffer.")
    est._engine, est._companion, est._quadratic = engine, companion, quadratic
    if engine is not None and est.standardize and est._moments is not None:  # saved without one: the moments
        start = InputFrame.of(est._moments)  # (what a step applied before frames were saved)
        if "frame.mean" in arrays:
            mean, scale = (np.array(arrays[f"frame.{k}"], dtype=np.float64) for k in ("mean", "scale"))
            gain = np.array(arrays["frame.gain"], dtype=np.float64) if "frame.gain" in arrays else None
            start = InputFrame(mean, scale, int(meta.get("frame_new", 0)), gain)  # (no gain: saved before it)
        est._frame = frame_for(engine, start)


def _engine_settings(engine: Any, est: Any) -> dict[str, Any]:
    """The hyperparameters set on ``engine`` apart from how ``est`` builds it (``model.engine.memory_decay = 0.2``,
    as :class:`~stream_am.drift.DriftAware` does): a load builds the engine from ``est`` and sets these again."""
    built = {} if engine is None else _built_with(engine, est)
    return {k: getattr(engine, k) for k in built if getattr(engine, k) != built[k]}


def _built_with(engine: Any, est: Any) -> dict[str, Any]:
    """What ``est`` builds ``engine``'s settable numbers with: the estimator's own parameter of that name, else the
    engine's default (an OnlineAM's :data:`HYPERPARAMETERS`, a BackpropLearner's ``SETTABLE``)."""
    defaults = inspect.signature(type(engine)).parameters
    return {k: checks.native(getattr(est, k, defaults[k].default)) for k in getattr(engine, "SETTABLE", HYPERPARAMETERS)
            if hasattr(est, k) or k in defaults}


def _engine(est: Any, shape: list[int], arrays: dict[str, np.ndarray], settings: Any = None) -> Any:
    """The engine of ``est`` (``shape``: its inputs and outputs), given ``settings`` (:func:`_engine_settings`, before
    its state: the engine builds from them) and loaded from the ``engine.*`` arrays."""
    n_in, n_out = shape
    engine = est._make_engine(build_mlp(n_in, n_out, est.hidden_sizes, est.activation, 0))
    if not isinstance(settings, dict | None):
        raise ValueError(f"meta.engine_settings must be a dict of the engine's hyperparameters, got {settings!r:.80}")
    settable = _built_with(engine, est)
    if unknown := sorted(map(repr, set(settings or {}) - set(settable))):
        raise ValueError(f"meta.engine_settings: {unknown[0]} is none of the engine's hyperparameters")
    final = {k: getattr(engine, k) for k in settable} | (settings or {})
    try:  # each in its range, and lambda_c with mu as they will be together (one at a time could refuse them)
        for k, v in (settings or {}).items():
            if k in HYPERPARAMETERS:  # (an OnlineAM's; a BackpropLearner checks its own numbers as they are set)
                check_hyperparameter(k, v)
        if {"lambda_c", "mu"} <= set(final):
            check_sparsity(final["lambda_c"], final["mu"])
        for k, v in (settings or {}).items():  # the engine is not built yet: its first use reads them
            if k in HYPERPARAMETERS:
                object.__setattr__(engine, k, v)  # (checked together above)
            else:
                setattr(engine, k, v)
    except ValueError as err:
        raise ValueError(f"meta.engine_settings: {err}") from err
    device = checks.resolve_device(est.device)  # restored state goes straight to the engine's device
    try:
        sd = {k[len("engine."):]: torch.from_numpy(np.array(v)).to(device) for k, v in arrays.items()
              if k.startswith("engine.")}
        engine.load_state_dict(sd)
    except (KeyError, IndexError, RuntimeError, TypeError) as err:  # the engine's own refusals are ValueErrors
        raise ValueError(f"the engine.* arrays do not fit the engine's network: {err}") from err
    return engine


def _companion(est: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray], engine: Any) -> LinearCompanion | None:
    """The linear companion saved in ``meta.companion`` and the ``companion.*`` arrays: there exactly when the
    estimator, with ``engine``, keeps one (:meth:`_keeps_companion`)."""
    expected = engine is not None and est._keeps_companion(engine)
    if (meta.get("companion") is not None) != expected:
        raise ValueError(f"meta.companion is {meta.get('companion')!r}, but this estimator "
                         f"{'keeps' if expected else 'has no'} linear companion (its companion parameter, "
                         "hidden_sizes and first layer)")
    if not expected:
        return None
    n_features, n_classes = meta["engine"]
    saved = check_companion(meta["companion"], arrays, n_features, n_classes, int(meta["n_learned"]))
    return LinearCompanion(n_features, n_classes, *est._companion_numbers(), **saved)


def _quadratic(est: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray], engine: Any) -> LinearCompanion | None:
    """The quadratic companion saved in ``meta.quadratic`` and the ``quadratic.*`` arrays, if any: one the estimator
    could keep (:meth:`_keeps_quadratic`; a model saved before it existed, or grown past its width, has none)."""
    if meta.get("quadratic") is None:
        return None
    n_features, n_classes = meta["engine"] or (0, 0)
    if engine is None or not est._keeps_quadratic(engine, n_features):
        raise ValueError(f"meta.quadratic is set, but this estimator keeps no quadratic companion of {n_features} "
                         f"inputs (its companion parameter, hidden_sizes, first layer and at most "
                         f"{QUADRATIC_MAX_FEATURES} inputs)")
    saved = check_companion(meta["quadratic"], arrays, n_features, n_classes, int(meta["n_learned"]), "quadratic",
                            QUADRATIC)
    return quadratic(n_features, n_classes, *est._companion_numbers(), **saved)


class Persistent:
    """Save, load and pickle for an estimator whose learned state is :func:`payload`'s ``(meta, arrays)``."""

    def save(self, path: str | Path) -> Path:
        """Write the estimator to the directory ``path``: ``config.json`` + ``state.safetensors`` (no pickle)."""
        return persistence.save(self, path)

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> Any:
        """Read an estimator written by :meth:`save`; it predicts and learns exactly as the saved one.

        ``device`` overrides the saved ``device`` parameter (a model saved on ``"cuda"`` loads on ``"cpu"``).
        """
        return persistence.load(path, expected=cls, device=device)

    def _payload(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """``(meta, arrays)``: Python-level state and numpy arrays; together they restore the estimator."""
        return payload(self)

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        restore(self, meta, arrays)

    def __getstate__(self) -> dict[str, Any]:
        meta, arrays = self._payload()
        return {"params": self._get_params(), "meta": meta, "arrays": arrays}  # type: ignore[attr-defined]

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**persistence.with_absent(type(self), state["params"]))  # type: ignore[misc]
        self._restore(state["meta"], state["arrays"])

