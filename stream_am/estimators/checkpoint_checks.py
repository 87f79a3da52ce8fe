"""Checks of a saved estimator state ``(meta, arrays)`` before :func:`~stream_am.estimators.state.restore` applies it.

A checkpoint edited by hand, truncated or written by something else must not load into a model that fails later
or predicts NaN. :func:`check_state` refuses, with a ``ValueError`` naming the meta field or array, anything
that :func:`~stream_am.estimators.state.payload` cannot have written:

- meta types: feature names and labels distinct and equal to themselves, one label type, counters ``int >= 0``;
- which arrays exist: ``moments.*`` and ``buffer.*`` once started, ``engine.*`` once the engine exists,
  ``companion.A``, ``.R``, ``.W`` (and ``.pending_rows``, ``.pending_labels``) with ``meta.companion`` (a
  classifier's linear companion: checked by :func:`stream_am.estimators.companion_checks.check_state`; whether
  the estimator keeps one by :func:`~stream_am.estimators.state.restore`, which knows its engine),
  ``frame.*`` (optional: older states have none) with a standardising engine, ``target_moments.*`` for a
  regressor, nothing else;
- shapes and dtypes against the meta: one statistic per feature, a buffer of ``batch_size`` rows over the
  features holding fewer than ``batch_size`` samples, an engine as wide as the features and labels;
- values: finite and within the input magnitude limits of :mod:`stream_am.estimators.inputs` (so a later step
  cannot overflow), non-negative counts no larger than ``n_learned``, labels in range, zeros where nothing
  was observed.

The engine's own tensors are checked by the engine's ``load_state_dict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from river import base

from stream_am import checks
from stream_am.estimators import inputs
from stream_am.estimators.frame import REACH
from stream_am.estimators.moments import RunningMoments

__all__ = ["check_state"]

_MOMENTS = ("count", "shift", "sum", "sum_sq")
_SLACK = 1.001  # rounding room on the bounds of the running sums
_KIND_NAMES = {"f": "floats", "iu": "integers", "b": "bools"}  # numpy dtype kinds


def check_state(est: Any, meta: Any, arrays: Any) -> None:
    """Raise ``ValueError`` naming the first field of ``(meta, arrays)`` that ``est`` cannot restore from."""
    classifier = isinstance(est, base.Classifier)
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a dict, got {type(meta).__name__}")
    needed = ["features", "n_learned", "started", "engine", "last_stats"]
    for key in needed + (["classes", "classes_declared"] if classifier else []):
        if key not in meta:
            raise ValueError(f"meta has no {key!r}")
    n_features = _check_names(meta["features"], "meta.features", labels=False)
    n_learned = _count(meta["n_learned"], "meta.n_learned")
    started = _flag(meta["started"], "meta.started")
    n_outputs = _check_names(meta["classes"], "meta.classes", labels=True) if classifier else 1
    if classifier:
        _flag(meta["classes_declared"], "meta.classes_declared")
    _check_engine_meta(meta["engine"], n_features, n_outputs, started, classifier)
    if _count(meta.get("stepped", 0), "meta.stepped") > (n_features if meta["engine"] is not None else 0):
        raise ValueError(f"meta.stepped = {meta['stepped']} counts more features than the engine has stepped on")
    _check_last_stats(meta["last_stats"])
    _check_sklearn_names(meta.get("sklearn_feature_names"))
    if not isinstance(arrays, dict):
        raise ValueError(f"the state arrays must be a dict, got {type(arrays).__name__}")
    companions = [k for k in ("companion", "quadratic") if meta.get(k) is not None]
    if companions and meta["engine"] is None:
        raise ValueError(f"meta.{companions[0]} is set, but meta.engine is None (a companion is built at the first "
                         "step)")
    _check_keys(arrays, started, meta["engine"] is not None, classifier, companions)
    _check_frame(est, meta, arrays, n_features)
    n_buffered = 0
    if started:
        count = _check_moments(arrays, "moments.", n_features, n_learned, est._feature_limit)
        n_buffered = _check_buffer(est, arrays, n_features, count, n_outputs if classifier else None)
    elif n_features or n_learned:
        raise ValueError(f"meta.started is false, but meta.features has {n_features} names and meta.n_learned is "
                         f"{n_learned}")
    if not classifier:
        _check_moments(arrays, "target_moments.", 1, n_learned, est._target_limit)
    low = n_buffered + (meta["engine"] is not None)  # a step learned at least one sample
    if n_learned < low or (meta["engine"] is None and n_learned != n_buffered):
        raise ValueError(f"meta.n_learned = {n_learned} does not fit {n_buffered} buffered samples "
                         f"({'after' if meta['engine'] is not None else 'before'} the first step)")


def _count(value: Any, field: str) -> int:
    checks.check_int(field, value, low=0, high=checks.MAX_COUNT)  # (room to count on: checks.MAX_COUNT)
    return int(value)


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{field} must be a bool, got {value!r}")
    return value


def _check_names(values: Any, field: str, labels: bool) -> int:
    """Feature names or labels: a list of distinct keys equal to themselves (labels: of one type, not None)."""
    if not isinstance(values, list):
        raise ValueError(f"{field} must be a list, got {type(values).__name__}")
    if labels:
        for i, c in enumerate(values):
            inputs.check_label(c, f"{field}[{i}]")
        inputs.check_label_types(values, [], field)
    else:
        inputs.check_feature_names(values, field)
    seen: dict[Any, int] = {}
    for i, c in enumerate(values):
        if c in seen:
            raise ValueError(f"{field}[{i}] = {c!r} repeats {field}[{seen[c]}] = {values[seen[c]]!r}")
        seen[c] = i
    return len(values)


def _check_engine_meta(engine: Any, n_features: int, n_outputs: int, started: bool, classifier: bool) -> None:
    if engine is None:
        return
    if not (isinstance(engine, list | tuple) and len(engine) == 2):
        raise ValueError(f"meta.engine must be None or [n_inputs, n_outputs], got {engine!r}")
    n_in, n_out = (_count(v, "meta.engine") for v in engine)
    what = f"{n_outputs} meta.classes" if classifier else "1 output"
    if (n_in, n_out) != (n_features, n_outputs) or (classifier and n_out == 0):
        raise ValueError(f"meta.engine = [{n_in}, {n_out}] does not match {n_features} meta.features and {what}")
    if not started:
        raise ValueError("meta.started is false, but meta.engine is set (an engine exists only after a step)")


def _check_last_stats(stats: Any) -> None:
    if not isinstance(stats, dict):
        raise ValueError(f"meta.last_stats must be a dict of name -> number, got {type(stats).__name__}")
    for k, v in stats.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, int | float):
            raise ValueError(f"meta.last_stats must map names to numbers, got {k!r}: {v!r}")


def _check_sklearn_names(names: Any) -> None:
    if names is None:
        return
    if not isinstance(names, list) or not all(isinstance(c, str) for c in names) or len(set(names)) != len(names):
        raise ValueError(f"meta.sklearn_feature_names must be None or a list of distinct str, got {names!r}")


def _check_keys(arrays: dict[str, Any], started: bool, engine: bool, classifier: bool, companions: list[str]) -> None:
    expected = {f"target_moments.{k}" for k in _MOMENTS} if not classifier else set()
    if started:
        expected |= {f"moments.{k}" for k in _MOMENTS} | {"buffer.x", "buffer.mask", "buffer.y"}
    missing = sorted(expected - set(arrays))
    if missing:
        raise ValueError(f"the state has no array {missing[0]}")
    has_engine = any(isinstance(k, str) and k.startswith("engine.") for k in arrays)
    if engine != has_engine:
        raise ValueError("meta.engine is set, but the state has no engine.* arrays" if engine
                         else "meta.engine is None, but the state has engine.* arrays")
    known = expected | ({"frame.mean", "frame.scale", "frame.gain"} if engine and started else set())
    known |= {f"{c}.{k}" for c in companions for k in ("A", "R", "W", "pending_rows", "pending_labels")}
    # (checked in companion_checks.py)
    unexpected = sorted(str(k) for k in arrays if k not in known and not str(k).startswith("engine."))
    if unexpected:
        raise ValueError(f"the state has an unexpected array {unexpected[0]!r}")


def _check_frame(est: Any, meta: dict[str, Any], arrays: dict[str, Any], n_features: int) -> None:
    """The standardisation applied (``frame.mean``, ``frame.scale``, optional ``frame.gain``,
    ``meta.frame_new``): the first two or none, only with ``standardize``; means within the input limits, scales
    in the range the moments can give, gains in [1e-30, 1e30], at most every feature new."""
    if _count(meta.get("frame_new", 0), "meta.frame_new") > n_features:
        raise ValueError(f"meta.frame_new = {meta['frame_new']} counts more features than meta.features holds")
    present = [k for k in ("frame.mean", "frame.scale") if k in arrays]
    if present and not est.standardize:
        raise ValueError(f"the state has {present[0]} without standardize=True")
    if len(present) == 1:
        missing = "frame.scale" if present[0] == "frame.mean" else "frame.mean"
        raise ValueError(f"the state has {present[0]} without {missing}")
    if "frame.gain" in arrays and not present:
        raise ValueError("the state has frame.gain without frame.mean and frame.scale")
    if present and "stepped" in meta and meta["stepped"] != n_features - meta.get("frame_new", 0):
        raise ValueError(f"meta.stepped = {meta['stepped']} and meta.frame_new = {meta.get('frame_new', 0)} must "
                         f"add up to the {n_features} meta.features (the features a refresh saw)")
    if present:
        limit = est._feature_limit
        mean = _array(arrays, "frame.mean", "f", (n_features,))
        if not np.isfinite(mean).all() or (np.abs(mean) > limit).any():
            raise ValueError(f"array frame.mean must hold finite values at most {limit:g} in magnitude")
        scale = _array(arrays, "frame.scale", "f", (n_features,))
        if not np.isfinite(scale).all() or (scale < RunningMoments.min_scale).any() or (scale > 2 * limit).any():
            raise ValueError(f"array frame.scale must hold scales in [{RunningMoments.min_scale:g}, {2 * limit:g}]")
        gain = _array(arrays, "frame.gain", "f", (n_features,)) if "frame.gain" in arrays else np.ones(1)
        low, high = (1 - 1e-9) / REACH, (1 + 1e-9) * REACH  # (where refreshes keep it, but for rounding)
        if not np.isfinite(gain).all() or (gain < low).any() or (gain > high).any():
            raise ValueError(f"array frame.gain must hold factors in [{1 / REACH:g}, {REACH:g}]")


def _array(arrays: dict[str, Any], key: str, kinds: str, shape: Sequence[int | None]) -> np.ndarray:
    """``arrays[key]`` as an ndarray of a dtype kind in ``kinds`` and of ``shape`` (``None``: any length)."""
    a = arrays[key]
    if not isinstance(a, np.ndarray) or a.dtype.kind not in kinds:
        dtype = getattr(a, "dtype", type(a).__name__)
        raise ValueError(f"array {key} must hold {_KIND_NAMES[kinds]}, got {dtype}")
    if a.ndim != len(shape) or any(s is not None and n != s for n, s in zip(a.shape, shape, strict=True)):
        want = ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "")
        raise ValueError(f"array {key} has shape {a.shape}, expected ({want})")
    return a


def _check_moments(arrays: dict[str, Any], prefix: str, n: int, n_learned: int, limit: float) -> np.ndarray:
    """Running statistics of ``n`` columns whose values were at most ``limit`` in magnitude; returns the counts."""
    count = _array(arrays, f"{prefix}count", "iu", (n,))
    if (count < 0).any() or (count > n_learned).any():
        raise ValueError(f"array {prefix}count must hold counts in [0, meta.n_learned = {n_learned}], got "
                         f"{count.tolist()[:8]}")
    shift, total, total_sq = (_array(arrays, f"{prefix}{k}", "f", (n,)) for k in _MOMENTS[1:])
    bounds = {"shift": limit, "sum": 2 * limit * count * _SLACK, "sum_sq": 4 * limit**2 * count * _SLACK}
    for key, a in (("shift", shift), ("sum", total), ("sum_sq", total_sq)):
        if not np.isfinite(a).all():
            raise ValueError(f"array {prefix}{key} holds non-finite values")
        if (np.abs(a) > bounds[key]).any() or (a[count == 0] != 0).any():
            raise ValueError(f"array {prefix}{key} holds values out of range for the counts in {prefix}count "
                             f"(and values at most {limit:g} in magnitude)")
    if (total_sq < 0).any():
        raise ValueError(f"array {prefix}sum_sq holds negative sums of squares")
    n = np.maximum(count, 1)  # (a variance below 0, but for rounding: relative, or below 1e-200 for subnormal squares)
    if ((total / n) ** 2 > total_sq / n * (1 + 1e-6) + 1e-200).any():
        raise ValueError(f"arrays {prefix}sum and {prefix}sum_sq must be a sum and a sum of squares of the same "
                         f"values: sum**2 at most count * sum_sq")
    return count


def _check_buffer(est: Any, arrays: dict[str, Any], n_features: int, count: np.ndarray, n_classes: int | None) -> int:
    """The partial buffer: ``batch_size`` rows over the features, fewer samples; returns how many it holds."""
    size = est.batch_size
    x = _array(arrays, "buffer.x", "f", (size, n_features))
    mask = _array(arrays, "buffer.mask", "b", (size, n_features))
    y = _array(arrays, "buffer.y", "iu" if n_classes is not None else "f", (None,))
    n = len(y)
    if n >= size:
        raise ValueError(f"array buffer.y holds {n} samples, but a buffer of batch_size={size} holds at most "
                         f"{size - 1} (it steps when full)")
    limit = est._feature_limit
    if not np.isfinite(x).all() or (np.abs(x) > limit).any():
        raise ValueError(f"array buffer.x must hold finite values at most {limit:g} in magnitude")
    if (x[~mask] != 0).any() or x[n:].any() or mask[n:].any():
        raise ValueError(f"array buffer.x / buffer.mask hold values in cells not observed (or past the {n} "
                         "buffered rows)")
    if est.standardize and (mask[:n].sum(axis=0) > count).any():
        raise ValueError("array moments.count counts fewer observations than buffer.mask holds")
    if n_classes is not None:
        if n and (y.min() < 0 or y.max() >= n_classes):
            raise ValueError(f"array buffer.y holds labels outside [0, {n_classes}) (the meta.classes)")
    elif not np.isfinite(y).all() or (np.abs(y) > est._target_limit).any():
        raise ValueError(f"array buffer.y must hold finite targets at most {est._target_limit:g} in magnitude")
    return n
