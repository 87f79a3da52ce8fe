"""Turn validated request instances and targets into the rows the estimators learn from."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stream_am.server.errors import FieldError

__all__ = ["check_batch", "check_targets", "to_rows"]

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
            if isinstance(y, bool | str) or not math.isfinite(float(y)):
                raise _field_error(f"{field}[{i}]", f"a regression target must be a finite number, got {y!r}")
            out.append(float(y))
    return out


def _field_error(field: str, msg: str) -> ValueError:
    return FieldError(field, msg)
