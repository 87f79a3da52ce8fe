"""The data-parallel training job: ``torchrun --nproc_per_node=N -m stream_am.distributed --source ...``.

Every process builds the same learner, reads the stream and keeps its rows (:func:`~.sources.shard`), and
calls :meth:`DataParallelAM.partial_fit` with its share of each global batch of ``--batch-size`` rows. Rank 0
writes a checkpoint (:mod:`~.checkpoint`) every ``--checkpoint-every`` steps and at the end, and prints one JSON
line per report (``samples_per_s`` since the first step). A job started (or restarted by ``torchrun
--max-restarts``) with a checkpoint in ``--checkpoint-dir`` resumes from it: the learner's state is loaded and
each rank skips the rows already learned from. The job ends at the first step where no rank has a row left.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from stream_am.distributed.checkpoint import load_checkpoint, save_checkpoint
from stream_am.distributed.data_parallel import DataParallelAM
from stream_am.distributed.sources import Row, dict_rows, file_rows, local_batches, shard
from stream_am.learner import OnlineAM

__all__ = ["main", "train", "train_stream"]

_PROG = "python -m stream_am.distributed"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=_PROG, description="Data-parallel AM training from CSV or Parquet files "
                                "(launch with torchrun --nproc_per_node=N).")
    p.add_argument("--source", nargs="+", type=Path, required=True, help="CSV or Parquet files, read in order.")
    p.add_argument("--target", required=True, help="The target column; every other column is a feature.")
    p.add_argument("--task", choices=["classification", "regression"], default="classification")
    p.add_argument("--n-classes", type=int, default=None, help="Classes 0..K-1 (classification).")
    p.add_argument("--hidden", default="64", help="Hidden widths, comma-separated (default 64).")
    p.add_argument("--activation", default="relu")
    p.add_argument("--variant", default="auto", help="mem, adam or auto (default auto).")
    p.add_argument("--batch-size", type=int, default=32, help="Global mini-batch, split evenly over the ranks.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint-dir", type=Path, required=True)
    p.add_argument("--checkpoint-every", type=int, default=100, help="Steps between checkpoints (0: at the end).")
    p.add_argument("--max-steps", type=int, default=None, help="Stop after this many global steps.")
    p.add_argument("--timeout", type=float, default=60.0, help="Seconds a collective waits for a peer.")
    p.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto")
    p.add_argument("--report-every", type=int, default=100, help="Steps between samples/s reports (0: at the end).")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1).")
    return p


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise ValueError(f"--hidden must be positive integers separated by commas, got {text!r}")
    return sizes


def check_args(args: argparse.Namespace, world: int) -> None:
    """``ValueError`` naming the flag of the first invalid argument (before anything starts)."""
    for path in args.source:
        if path.suffix not in (".csv", ".parquet"):
            raise ValueError(f"--source: {path} is neither .csv nor .parquet")
        if not path.is_file():
            raise ValueError(f"--source: {path} is not a file")
    if args.task == "classification" and (args.n_classes is None or args.n_classes < 2):
        raise ValueError(f"--n-classes must be an integer >= 2 for classification, got {args.n_classes}")
    _hidden(args.hidden)
    if args.batch_size < 1 or args.batch_size % world:
        raise ValueError(f"--batch-size must be a positive multiple of the {world} processes, got {args.batch_size}")
    for flag in ("checkpoint_every", "report_every"):
        if getattr(args, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, got {args.max_steps}")
    if not args.timeout > 0:
        raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.checkpoint_dir.exists() and not args.checkpoint_dir.is_dir():
        raise ValueError(f"--checkpoint-dir: {args.checkpoint_dir} exists and is not a directory")


def train(
    dp: DataParallelAM, rows: Iterable[Row], *, batch_size: int, n_inputs: int, checkpoint_dir: Path | None = None,
    checkpoint_every: int = 100, max_steps: int | None = None, report_every: int = 0,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Learn from ``rows`` (the whole stream: each rank keeps its own) until no rank has a row or ``max_steps``.

    Resumes from the checkpoint in ``checkpoint_dir`` if there is one; returns the final report.
    """
    world, rank = dp.world_size, dp.rank
    found = load_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    if found is not None:
        dp.load_state_dict(found[0])
    local = batch_size // world
    share = shard(rows, rank, world, skip=dp.n_steps * local)
    batches = local_batches(share, local, n_inputs, dp.learner.loss == "cross_entropy")
    started, first_step, samples = time.perf_counter(), dp.n_steps, 0
    report: dict[str, Any] = {}
    for x, y in batches:
        if max_steps is not None and dp.n_steps >= max_steps:
            break
        stats = dp.partial_fit(x, y)
        if stats["n"] == 0:
            break
        samples += int(stats["n"])
        seconds = time.perf_counter() - started
        report = {"step": dp.n_steps, "samples": dp.samples_seen, "seconds": round(seconds, 3),
                  "samples_per_s": round(samples / max(seconds, 1e-9), 1), "loss": round(stats["loss"], 4)}
        if checkpoint_dir is not None and checkpoint_every and dp.n_steps % checkpoint_every == 0 and rank == 0:
            save_checkpoint(checkpoint_dir, dp.state_dict(), {**(info or {}), "step": dp.n_steps, "world_size": world})
        if report_every and dp.n_steps % report_every == 0 and rank == 0:
            print(json.dumps({"event": "progress", **report}), flush=True)
    if checkpoint_dir is not None and rank == 0 and dp.n_steps > first_step:
        save_checkpoint(checkpoint_dir, dp.state_dict(), {**(info or {}), "step": dp.n_steps, "world_size": world})
    return {"event": "done", "world_size": world, "resumed_from": first_step, **report}


def train_stream(
    learner: OnlineAM, stream: Iterable[tuple[dict[str, Any], Any]], *, batch_size: int,
    features: Sequence[str] | None = None, **kwargs: Any,
) -> dict[str, Any]:
    """:func:`train` from a river-style stream of ``(x: dict, y)`` (every rank passes the same stream), in a
    process group already initialised; ``kwargs`` as :func:`train`."""
    dp = DataParallelAM(learner)
    return train(dp, dict_rows(stream, features), batch_size=batch_size, n_inputs=learner.n_inputs, **kwargs)


def _rows_and_width(args: argparse.Namespace) -> tuple[Iterator[Row], int]:
    rows = file_rows(args.source, args.target)
    first = next(file_rows(args.source[:1], args.target), None)
    if first is None:
        raise ValueError(f"--source: {args.source[0]} has no rows")
    return rows, len(first[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (every rank runs it); returns the exit status (2 for an invalid argument)."""
    from stream_am.distributed.group import init_process_group
    from stream_am.estimators import build_mlp

    args = _parser().parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    try:
        check_args(args, world)
        rows, width = _rows_and_width(args)
    except ValueError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    if "RANK" not in os.environ:  # a plain ``python -m``: a group of one, on a free loopback port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    init_process_group(args.backend, timeout_s=args.timeout)
    n_out = args.n_classes if args.task == "classification" else 1
    module = build_mlp(width, n_out, _hidden(args.hidden), args.activation, seed=args.seed)
    learner = OnlineAM(module, variant=args.variant, loss="cross_entropy" if args.task == "classification" else "mse",
                       seed=args.seed)
    info = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "source"},
            "source": [str(p) for p in args.source]}
    report = train(DataParallelAM(learner), rows, batch_size=args.batch_size, n_inputs=width,
                   checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every,
                   max_steps=args.max_steps, report_every=args.report_every, info=info)
    if int(os.environ["RANK"]) == 0:
        print(json.dumps(report), flush=True)
    import torch.distributed as dist

    dist.barrier()  # leave together: gloo threads still alive when the interpreter exits abort the process
    dist.destroy_process_group()
    return 0
