"""Stream sources for the data-parallel job: rows of CSV or Parquet files, or any river-style iterable.

Every source yields ``(features, target)`` rows, ``features`` a float32 vector. A rank keeps its share with
:func:`shard`: row ``i`` of the stream goes to rank ``i % world`` (every rank reads the whole stream and
skips the others' rows), so that global batch ``t`` is rows ``t * B .. (t + 1) * B - 1`` of the stream, the
batch a single process would learn from. :func:`local_batches` cuts a rank's rows into its shares and, once
they run out, yields empty shares: the job stops at the first step where no rank has a sample.
"""

from __future__ import annotations

import csv
import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stream_am.checks import MAX_VALUE

__all__ = ["check_sources", "checked_rows", "file_rows", "dict_rows", "shard", "local_batches"]

Row = tuple[np.ndarray, Any]


def _frames(path: Path, chunk_rows: int) -> Iterator[Any]:
    """pandas DataFrames of ``chunk_rows`` rows from a CSV or Parquet file; ``ValueError`` naming an unreadable one."""
    import pandas as pd

    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ValueError(f"--source: {path} is Parquet, which needs pyarrow: pip install pyarrow") from exc
    try:
        if path.suffix == ".parquet":
            for record_batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
                yield record_batch.to_pandas()
            return
        _check_header(path)
        for frame in pd.read_csv(path, chunksize=chunk_rows):
            if not isinstance(frame.index, pd.RangeIndex):  # (pandas takes a first field the header lacks as an index)
                raise _Refused(f"--source: {path}: its rows hold more fields than its header names "
                                 f"({len(frame.columns)}); every column would be read as its neighbour")
            yield frame
    except _Refused:
        raise
    except pd.errors.EmptyDataError as exc:
        raise ValueError(f"--source: {path} is empty (no header row)") from exc
    except (OSError, ValueError) as exc:  # pandas' ParserError and pyarrow's ArrowInvalid are ValueErrors
        raise ValueError(f"--source: {path} cannot be read ({type(exc).__name__}: {exc})") from exc


class _Refused(ValueError):
    """A readable file this job refuses (its message says why): not wrapped as unreadable."""


def _check_header(path: Path) -> None:
    """``ValueError`` naming a column the CSV header of ``path`` names twice (pandas would read the second as
    ``name.1``: a feature, where ``--target`` may have meant it)."""
    try:  # (pandas' reading: a BOM stripped, blank lines skipped; a header csv cannot parse is left to pandas)
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:
            names = next((row for row in csv.reader(handle) if row), [])
    except csv.Error:
        return
    seen: set[str] = set()
    for name in names:
        if name and name in seen:  # (blank names pandas calls "Unnamed: i", each its own)
            raise _Refused(f"--source: {path} names the column {name!r} twice in its header")
        seen.add(name)


def _numbers(frame: Any, where: str, first_row: int) -> np.ndarray:
    """``frame`` as float64, every cell a finite number within ``MAX_VALUE``; ``ValueError`` naming the cell."""
    import pandas as pd

    values = np.empty(frame.shape, dtype=np.float64)
    for j, name in enumerate(frame.columns):
        column = frame[name]
        if column.dtype.kind == "b":  # a chunk whose column read as True/False: refused as in any other chunk
            raise ValueError(f"{where}, row {first_row}, column {name!r}: {str(column.iloc[0])!r} is not a number")
        numeric = pd.to_numeric(column, errors="coerce")
        bad = (numeric.isna() & column.notna()).to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{where}, row {first_row + i}, column {name!r}: {column.iloc[i]!r} is not a number")
        values[:, j] = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (np.abs(values) > MAX_VALUE)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        what = "empty or NaN" if np.isnan(values[i, j]) else f"{float(values[i, j])!r}, beyond +-{MAX_VALUE:g} " \
            "(stream_am.checks.MAX_VALUE; scale it upstream)"
        raise ValueError(f"{where}, row {first_row + i}, column {frame.columns[j]!r}: the value is {what}")
    return values


def _labels(y: np.ndarray, where: str, first_row: int, target: str, n_classes: int) -> list[int]:
    bad = (y != np.floor(y)) | (y < 0) | (y >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{where}, row {first_row + i}, column {target!r} (--target): label {float(y[i])!r} is not "
                         f"a class in 0..{n_classes - 1} (--n-classes {n_classes})")
    return [int(v) for v in y]


def checked_rows(frame: Any, path: Path, target: str, n_classes: int | None, first_row: int = 1) -> Iterator[Row]:
    """The rows of one chunk ``frame`` of ``path`` (its first data row is number ``first_row``), checked: numeric
    cells, finite and within ``MAX_VALUE``; with ``n_classes``, integer labels in ``0..n_classes - 1``."""
    where = f"--source {path}"
    x = _numbers(frame.drop(columns=[target]), where, first_row).astype(np.float32)
    y = _numbers(frame[[target]], where, first_row)[:, 0]
    if n_classes is not None:
        labels: list[Any] = _labels(y, where, first_row, target, n_classes)
    else:
        labels = frame[target].tolist() if frame[target].dtype.kind in "iub" else y.tolist()
    return zip(x, labels, strict=True)


def _same_columns(path: Path, columns: list[str], first: list[str]) -> None:
    if columns != first:
        raise ValueError(f"--source: {path} has columns {columns}, the first file {first}")


def _chunks(paths: Sequence[Path], target: str, n_classes: int | None, chunk_rows: int) -> Iterator[tuple[int, Any]]:
    """``(features, checked rows)`` of each chunk of ``paths`` in order (each chunk checked as it is read, by
    :func:`checked_rows`); ``ValueError`` naming the file (and the row and column) unless every file has rows
    and the first file's columns (the target and at least one feature)."""
    first: list[str] | None = None
    for path in paths:
        row = 1
        for frame in _frames(Path(path), chunk_rows):
            if not len(frame):
                continue
            if first is None:
                if target not in frame.columns:
                    raise ValueError(f"--target: column {target!r} is not in {path} (columns {list(frame.columns)})")
                if len(frame.columns) < 2:
                    raise ValueError(f"--source: {path} has only the target column {target!r}; it needs features")
                first = list(frame.columns)
            _same_columns(Path(path), list(frame.columns), first)
            yield len(first) - 1, checked_rows(frame, Path(path), target, n_classes, row)
            row += len(frame)
        if row == 1:
            raise ValueError(f"--source: {path} has no rows")


def check_sources(paths: Sequence[Path], target: str, n_classes: int | None, chunk_rows: int = 4096) -> int:
    """The number of features, once every chunk of ``paths`` has passed the checks of :func:`file_rows`. The whole
    stream is read once, before the job starts, so that a bad row deep in it cannot stop the job midway
    (reading costs a small fraction of learning from the same rows)."""
    widths = {width for width, _ in _chunks(paths, target, n_classes, chunk_rows)}  # (checked as each is read)
    return max(widths, default=0)  # one width (every chunk has the first file's columns), none without paths


def file_rows(
    paths: Sequence[Path], target: str, chunk_rows: int = 4096, n_classes: int | None = None
) -> Iterator[Row]:
    """The rows of ``paths`` in order; ``target`` names the target column, every other column is a feature.

    Every file must have rows and the first file's columns (the target and at least one feature), and every
    chunk passes :func:`checked_rows` as it is read (``n_classes``: labels must be classes
    ``0..n_classes - 1``); a ``ValueError`` names the file, row and column of the first that does not.
    """
    for _, rows in _chunks(paths, target, n_classes, chunk_rows):
        yield from rows


def dict_rows(stream: Iterable[tuple[dict[str, Any], Any]], features: Sequence[str] | None = None) -> Iterator[Row]:
    """Rows of a river-style stream of ``(x: dict, y)``; ``features`` (default: the first ``x``'s keys) fixes
    the order, and a missing feature is 0."""
    names = list(features) if features is not None else None
    for x, y in stream:
        if names is None:
            names = list(x)
        yield np.array([float(x.get(k, 0.0)) for k in names], dtype=np.float32), y


def shard(rows: Iterable[Row], rank: int, world: int, skip: int = 0) -> Iterator[Row]:
    """Rank ``rank``'s rows (row ``i`` when ``i % world == rank``) among the stream's rows after its first ``skip``
    (the samples learned: any ``world`` consecutive rows hold one of each rank's, so the batches after them are
    the batches one process would cut from there)."""
    return islice(rows, skip + (rank - skip) % world, None, world)


def local_batches(
    rows: Iterable[Row], size: int, width: int, classification: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shares of ``size`` rows of ``width`` features as ``(x, y)`` tensors, then empty shares forever."""
    it = iter(rows)
    while True:
        chunk = list(islice(it, size))
        x = torch.from_numpy(np.stack([r[0] for r in chunk])) if chunk else torch.zeros(0, width)
        ys = [_label(r[1], classification) for r in chunk]
        y = torch.tensor(ys, dtype=torch.long) if classification else torch.tensor(ys, dtype=torch.float32)
        yield x, y


def _label(y: Any, classification: bool) -> Any:
    """``y`` checked: a class index is a whole number (``1.5`` is refused, not truncated), a target a real."""
    real = isinstance(y, (numbers.Real, np.number)) and not isinstance(y, (bool, np.bool_))
    if not real or (classification and not (math.isfinite(float(y)) and float(y).is_integer())):
        kind = "a whole number (a class index)" if classification else "a real number"
        raise ValueError(f"y: a label must be {kind}, got {y!r}")
    return int(y) if classification else float(y)
