"""Stream sources for the data-parallel job: rows of CSV or Parquet files, or any river-style iterable.

Every source yields ``(features, target)`` rows, ``features`` a float32 vector. A rank keeps its share with
:func:`shard`: row ``i`` of the stream goes to rank ``i % world`` (every rank reads the whole stream and
skips the others' rows), so that global batch ``t`` is rows ``t * B .. (t + 1) * B - 1`` of the stream, the
batch a single process would learn from. :func:`local_batches` cuts a rank's rows into its shares and, once
they run out, yields empty shares: the job stops at the first step where no rank has a sample.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["file_rows", "dict_rows", "shard", "local_batches"]

Row = tuple[np.ndarray, Any]


def _frames(path: Path, chunk_rows: int) -> Iterator[Any]:
    """pandas DataFrames of ``chunk_rows`` rows from a CSV or Parquet file."""
    import pandas as pd

    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise ValueError(f"source {path} is Parquet, which needs pyarrow: pip install pyarrow") from exc
        for record_batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows):
            yield record_batch.to_pandas()
        return
    yield from pd.read_csv(path, chunksize=chunk_rows)


def file_rows(paths: Sequence[Path], target: str, chunk_rows: int = 4096) -> Iterator[Row]:
    """The rows of ``paths`` in order; ``target`` names the target column, every other column is a feature.

    Every file must have the same columns (checked at each file's first chunk).
    """
    columns: list[str] | None = None
    for path in paths:
        for frame in _frames(Path(path), chunk_rows):
            if columns is None:
                if target not in frame.columns:
                    raise ValueError(f"target: column {target!r} is not in {path} (columns {list(frame.columns)})")
                columns = list(frame.columns)
            elif list(frame.columns) != columns:
                raise ValueError(f"source: {path} has columns {list(frame.columns)}, the first file {columns}")
            x = frame.drop(columns=[target]).to_numpy(dtype=np.float32)
            yield from zip(x, frame[target].tolist(), strict=True)


def dict_rows(stream: Iterable[tuple[dict[str, Any], Any]], features: Sequence[str] | None = None) -> Iterator[Row]:
    """Rows of a river-style stream of ``(x: dict, y)``; ``features`` (default: the first ``x``'s keys) fixes
    the order, and a missing feature is 0."""
    names = list(features) if features is not None else None
    for x, y in stream:
        if names is None:
            names = list(x)
        yield np.array([float(x.get(k, 0.0)) for k in names], dtype=np.float32), y


def shard(rows: Iterable[Row], rank: int, world: int, skip: int = 0) -> Iterator[Row]:
    """Rank ``rank``'s rows (row ``i`` when ``i % world == rank``), after its first ``skip`` ones."""
    return islice(rows, rank + skip * world, None, world)


def local_batches(
    rows: Iterable[Row], size: int, width: int, classification: bool
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shares of ``size`` rows of ``width`` features as ``(x, y)`` tensors, then empty shares forever."""
    it = iter(rows)
    while True:
        chunk = list(islice(it, size))
        x = torch.from_numpy(np.stack([r[0] for r in chunk])) if chunk else torch.zeros(0, width)
        ys = [r[1] for r in chunk]
        y = torch.tensor(ys, dtype=torch.long) if classification else torch.tensor(ys, dtype=torch.float32)
        yield x, y
