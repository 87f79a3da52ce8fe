"""An estimator's learned state as ``(meta, arrays)``: JSON-ready values and numpy arrays.

:mod:`~stream_am.estimators.persistence` writes them as ``config.json`` + safetensors, pickling carries them
in ``__getstate__``; both rebuild the estimator from its parameters and then :func:`restore` it. ``est`` is a
:class:`~stream_am.estimators.base.StreamEstimator` (typed ``Any``: this module must not import it back).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stream_am import checks
from stream_am.estimators.buffer import SampleBuffer
from stream_am.estimators.features import FeatureIndex
from stream_am.estimators.moments import RunningMoments
from stream_am.estimators.networks import build_mlp

__all__ = ["payload", "restore"]


def payload(est: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, arrays)`` of ``est``: Python-level state and numpy arrays; together they restore it."""
    meta: dict[str, Any] = {
        "features": list(est._index.names),
        "n_learned": est._n_learned,
        "started": est._buffer is not None,
        "engine": None if est._engine is None else [est._engine.n_inputs, est._engine.n_outputs],
        "last_stats": dict(est._last_stats),
    }
    arrays: dict[str, np.ndarray] = {}
    if est._buffer is not None and est._moments is not None:
        arrays.update(est._moments.state("moments."))
        arrays.update(est._buffer.state("buffer.", est._target_dtype))
    if est._engine is not None:
        for k, v in est._engine.state_dict().items():
            arrays[f"engine.{k}"] = v.detach().cpu().clone().numpy()
    return meta, arrays


def restore(est: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Rebuild ``est``'s learned state from :func:`payload`'s ``(meta, arrays)`` (its engine on its device)."""
    est._reset()
    est._index = FeatureIndex(meta["features"])
    est._n_learned = int(meta["n_learned"])
    est._last_stats = {k: float(v) for k, v in meta["last_stats"].items()}
    if meta["started"]:
        est._moments = RunningMoments.from_state(arrays, "moments.")
        est._buffer = SampleBuffer.from_state(arrays, "buffer.")
    if meta["engine"] is not None:
        n_in, n_out = meta["engine"]
        engine = est._make_engine(build_mlp(n_in, n_out, est.hidden_sizes, est.activation, 0))
        device = checks.resolve_device(est.device)  # restored state goes straight to the engine's device
        sd = {k[len("engine."):]: torch.from_numpy(np.array(v)).to(device) for k, v in arrays.items()
              if k.startswith("engine.")}
        engine.load_state_dict(sd)
        est._engine = engine
