"""Turn validated request instances and targets into the rows the estimators learn from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stream_am.server.errors import FieldError

if TYPE_CHECKING:
    from stream_am.server.schemas import PredictRequest
    from stream_am.server.settings import Settings

__all__ = ["check_batch", "check_targets", "predict_rows", "to_rows"]

Row = dict[str, float]


def to_rows(instances: Sequence[dict[str, float] | list[float]], field: str = "instances") -> list[Row]:
    """Rows as ``{feature: value}``; a list of numbers ``[a, b]`` becomes ``{"0": a, "1": b}``."""
    rows: list[Row] = []
    for i, instance in enumerate(instances):
        if isinstance(instance, dict):
            row = {str(k): float(v) for k, v in instance.items()}
        else:
            row = {str(j): float(v) for j, v in enumerate(instance)}
        if not row:
            raise _field_error(f"{field}[{i}]", "an instance needs at least one feature")
        rows.append(row)
    return rows


def check_batch(n: int, max_batch: int, field: str = "instances") -> None:
    """Refuse empty batches and batches above the configured limit."""
    if n == 0:
        raise _field_error(field, "the batch is empty")
    if n > max_batch:
        raise _field_error(field, f"the batch holds {n} items, more than max_batch={max_batch}")


def check_targets(targets: Sequence[Any], n: int, classifier: bool, field: str = "targets") -> list[Any]:
    """Check the length and the type of every target for a classifier or a regressor."""
    if len(targets) != n:
        raise _field_error(field, f"got {len(targets)} targets for {n} instances")
    out: list[Any] = []
    for i, y in enumerate(targets):
        if classifier:
            if isinstance(y, float):
                raise _field_error(f"{field}[{i}]", f"a class label must be an integer or a string, got {y!r}")
            out.append(y)
        else:
            try:
                value = math.inf if isinstance(y, bool | str) else float(y)
            except OverflowError:  # an integer beyond float64
                value = math.inf
            if not math.isfinite(value):
                raise _field_error(f"{field}[{i}]", f"a regression target must be a finite number, got {y!r}")
            out.append(value)
    return out


def _field_error(field: str, msg: str) -> ValueError:
    return FieldError(field, msg)


def predict_rows(body: PredictRequest, settings: Settings) -> list[Row]:
    """The rows of a predict request, every field checked (``ids`` too) before anything is done with them."""
    check_batch(len(body.instances), settings.max_batch)
    rows = to_rows(body.instances)
    names = len(set().union(*rows))  # (a table of rows by every name is built to answer them: bounded here)
    if names > settings.max_features:
        raise _field_error("instances", f"the instances name {names} distinct features, more than max_features="
                           f"{settings.max_features} (no model here knows more)")
    if body.ids is not None and len(body.ids) > settings.max_pending_ids:
        raise _field_error("ids", f"{len(body.ids)} ids are more than max_pending_ids={settings.max_pending_ids}")
    if body.ids is not None and len(body.ids) != len(rows):
        raise _field_error("ids", f"got {len(body.ids)} ids for {len(rows)} instances")
    if body.ids is not None and len(set(body.ids)) != len(body.ids):
        raise _field_error("ids", "ids must be unique within a request")
    return rows
