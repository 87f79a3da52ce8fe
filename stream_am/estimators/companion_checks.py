"""The saved state of a classifier's companions (:mod:`stream_am.estimators.companion`), checked before anything
is built from it: ``meta.companion`` and the ``companion.*`` arrays (``meta.quadratic`` and ``quadratic.*`` for the
quadratic one), as :meth:`LinearCompanion.meta`
and :meth:`LinearCompanion.arrays` write them."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stream_am.checks import is_finite_number
from stream_am.estimators.basis import LINEAR, Basis
from stream_am.estimators.companion import BLOCK
from stream_am.estimators.sums import LARGEST as _LARGEST

__all__ = ["check_state"]

_ROUNDING = 1e-9  # relative to the largest diagonal entry: what rounding leaves of a sum's symmetry and eigenvalues


def check_state(meta: Any, arrays: dict[str, Any], n_features: int, n_classes: int, n_learned: int,
                prefix: str = "companion", basis: Basis = LINEAR) -> dict[str, Any]:
    """The saved state of a companion on ``basis`` as keyword arguments of :class:`~stream_am.estimators.companion.
    LinearCompanion`; ``ValueError`` naming the field unless its ``meta`` (``meta.<prefix>``) and arrays
    (``<prefix>.*``) could have written them (a state saved before the companion gathered batches has no
    ``pending``: none are; one saved before the sixteenth session has no ``recent``: a tie)."""
    keys = {"scores", "recent", "accuracy", "pending"}
    if not (isinstance(meta, dict) and {"scores", "accuracy"} <= set(meta) <= keys):
        raise ValueError(f"meta.{prefix} must be a dict of scores, recent, accuracy and pending, got {meta!r}")
    saved: dict[str, Any] = {}
    for key, low, high in (("scores", -math.inf, 0.0), ("recent", -math.inf, 0.0), ("accuracy", 0.0, 1.0)):
        if key not in meta:
            continue
        v = meta[key]
        if not (isinstance(v, list) and len(v) == 2 and all(is_finite_number(a) and low <= a <= high for a in v)):
            raise ValueError(f"meta.{prefix}.{key} must be two finite numbers in [{low}, {high}], got {v!r}")
        saved[key] = (float(v[0]), float(v[1]))
    d = basis.width(n_features)
    for key, shape in (("A", (n_classes, d, d)), ("R", (d, d)), ("W", (d, n_classes))):
        a = arrays.get(f"{prefix}.{key}")
        if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != shape:
            got = getattr(a, "shape", None), getattr(a, "dtype", type(a).__name__)
            raise ValueError(f"array {prefix}.{key} must hold float64 of shape {shape}, got {got}")
        if not np.isfinite(a).all() or (np.abs(a) > _LARGEST).any():
            raise ValueError(f"array {prefix}.{key} must hold finite values at most {_LARGEST:g} in magnitude")
        saved[key] = np.array(a, order="C")
    for key in ("A", "R"):
        _check_sums(f"{prefix}.{key}", saved[key], n_learned)
    if "pending" in meta:
        saved.update(_pending(meta["pending"], arrays, n_features, n_classes, n_learned, prefix, basis))
        gathered = len(saved["pending_labels"])  # (rows learned once each: in the sums, or gathered)
        for key in ("A", "R"):
            if float(saved[key][..., 0, 0].sum()) + gathered > n_learned * (1 + 1e-9):
                raise ValueError(f"array {prefix}.{key}'s row counts and the {gathered} rows of meta.{prefix}.pending "
                                 f"must add up to at most meta.n_learned = {n_learned}")
    elif {f"{prefix}.pending_rows", f"{prefix}.pending_labels"} & set(arrays):
        raise ValueError(f"the state has {prefix}.pending_* arrays, but meta.{prefix} has no pending")
    return saved


def _check_sums(key: str, a: np.ndarray, n_learned: int) -> None:
    diagonal = np.diagonal(a, axis1=-2, axis2=-1)
    if not (0 <= float(a[..., 0, 0].sum()) <= n_learned) or bool((diagonal < 0).any()):
        raise ValueError(f"array {key} must have a non-negative diagonal and row counts (its first "
                         f"entries) in [0, meta.n_learned = {n_learned}]")
    # sums of outer products: symmetric and positive semi-definite, but for rounding (else the proximal solves, a
    # contraction for such sums, can multiply the weights at every step)
    top = np.maximum(diagonal.max(axis=-1, keepdims=True), 1e-300)
    transposed = np.swapaxes(a, -2, -1)
    asymmetric = bool((np.abs(a - transposed).max(axis=(-2, -1)) > _ROUNDING * top[..., 0]).any())
    if asymmetric or bool((np.linalg.eigvalsh((a + transposed) / 2) < -_ROUNDING * top).any()):
        raise ValueError(f"array {key} must hold sums of outer products of rows (symmetric and "
                         "positive semi-definite)")


def _pending(pending: Any, arrays: dict[str, Any], n_features: int, n_classes: int,
             n_learned: int, prefix: str, basis: Basis) -> dict[str, Any]:
    """The gathered batches: ``[size, network loss, network accuracy]`` each, fewer than ``BLOCK`` rows in all,
    and their rows and labels."""
    if not (isinstance(pending, list) and all(
            isinstance(b, list) and len(b) == 3 and isinstance(b[0], int) and not isinstance(b[0], bool)
            and b[0] >= 1 and is_finite_number(b[1]) and b[1] >= 0 and is_finite_number(b[2]) and 0 <= b[2] <= 1
            for b in pending)):
        raise ValueError(f"meta.{prefix}.pending must be a list of [size >= 1, network loss >= 0, network accuracy "
                         f"in [0, 1]], got {pending!r}")
    total = sum(b[0] for b in pending)
    if total >= BLOCK or total > n_learned:
        raise ValueError(f"meta.{prefix}.pending must hold fewer than {BLOCK} rows and at most meta.n_learned = "
                         f"{n_learned}, got {total}")
    rows, labels = arrays.get(f"{prefix}.pending_rows"), arrays.get(f"{prefix}.pending_labels")
    if not (isinstance(rows, np.ndarray) and rows.dtype == np.float64 and rows.shape == (total, n_features)):
        got = getattr(rows, "shape", None), getattr(rows, "dtype", type(rows).__name__)
        raise ValueError(f"array {prefix}.pending_rows must hold float64 of shape {(total, n_features)} (the "
                         f"sizes in meta.{prefix}.pending), got {got}")
    # (rows the network learned: their features on the basis within float32, so a block's squares stay far under
    # _LARGEST; a refresh clips re-expressed rows to the same bound, so a state it leaves loads again)
    if not np.isfinite(rows).all() or (np.abs(rows) > basis.largest_input).any():
        raise ValueError(f"array {prefix}.pending_rows must hold finite values at most {basis.largest_input:g} in "
                         f"magnitude (the {basis.name} features of a row within float32's largest)")
    if not (isinstance(labels, np.ndarray) and labels.dtype == np.int64 and labels.shape == (total,)
            and bool(((labels >= 0) & (labels < n_classes)).all())):
        raise ValueError(f"array {prefix}.pending_labels must hold {total} int64 class indices in "
                         f"[0, {n_classes})")
    return {"pending": [tuple(b) for b in pending], "pending_rows": rows.copy(), "pending_labels": labels.copy()}
