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
from typing import IO, Any

import torch

from stream_am import arguments, checks
from stream_am.distributed.checkpoint import load_checkpoint, save_checkpoint
from stream_am.distributed.data_parallel import DataParallelAM
from stream_am.distributed.group import ENV, GroupFailure, init_process_group, ranks
from stream_am.distributed.options import PROG, check_args, check_resume, hidden_sizes, parser, prepare_checkpoint_dir
from stream_am.distributed.sources import Row, check_sources, dict_rows, file_rows, local_batches, shard
from stream_am.learner import OnlineAM
from stream_am.locks import LOCK_NAME, DirectoryInUse, lock_directory
from stream_am.memory_budget import memory_problem

__all__ = ["check_args", "main", "train", "train_stream"]


def _meta(info: dict[str, Any] | None, step: int, batch_size: int, world: int) -> dict[str, Any]:
    return {**(info or {}), "step": step, "batch_size": batch_size, "world_size": world}


class _Window:
    """Sums over the steps since the last report: samples, loss and (classification) correct predictions."""

    def __init__(self) -> None:
        self.n, self.loss, self.correct = 0.0, 0.0, 0.0

    def add(self, stats: dict[str, float]) -> None:
        self.n += stats["n"]
        self.loss += stats["loss"] * stats["n"]
        self.correct += stats.get("accuracy", 0.0) * stats["n"]


def _report(dp: DataParallelAM, samples: int, seconds: float, window: _Window) -> dict[str, Any]:
    """The step, samples and rate of this run, with the mean loss (and accuracy, test-then-train) of the
    samples since the last report (``null`` when none)."""
    mean = (lambda total: round(total / window.n, 4)) if window.n else (lambda total: None)
    out = {"step": dp.n_steps, "samples": dp.samples_seen, "seconds": round(seconds, 3),
           "samples_per_s": round(samples / seconds, 1) if seconds > 0 else 0.0, "loss": mean(window.loss)}
    return {**out, "accuracy": mean(window.correct)} if dp.learner.loss == "cross_entropy" else out


def train(
    dp: DataParallelAM, rows: Iterable[Row], *, batch_size: int, n_inputs: int, checkpoint_dir: Path | None = None,
    checkpoint_every: int = 100, max_steps: int | None = None, report_every: int = 0,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Learn from ``rows`` (the whole stream: each rank keeps its own) until no rank has a row or ``max_steps``.

    Resumes from the checkpoint in ``checkpoint_dir`` if there is one; returns the final report.
    """
    world, rank = dp.world_size, dp.rank
    _check_counts(batch_size, world, checkpoint_every, report_every, max_steps)
    found = load_checkpoint(checkpoint_dir) if checkpoint_dir is not None else None
    if found is not None:
        recorded = found[1].get("batch_size")
        if recorded is not None and recorded != batch_size:
            raise ValueError(f"batch_size {batch_size} differs from the checkpoint's {recorded} ({checkpoint_dir}): "
                             "resuming with another would skip or repeat rows")
        dp.load_state_dict(found[0])
    local = batch_size // world
    share = shard(rows, rank, world, skip=dp.samples_seen)  # (not steps x batch: the last one may be partial)
    batches = local_batches(share, local, n_inputs, dp.learner.loss == "cross_entropy")
    started, first_step, samples, seconds = time.perf_counter(), dp.n_steps, 0, 0.0
    window = _Window()  # loss (and accuracy) of the steps since the last report, on every rank alike
    for x, y in batches:
        if max_steps is not None and dp.n_steps >= max_steps:
            break
        stats = dp.partial_fit(x, y)
        if stats["n"] == 0:
            break
        samples += int(stats["n"])
        seconds = time.perf_counter() - started
        window.add(stats)
        if checkpoint_dir is not None and checkpoint_every and dp.n_steps % checkpoint_every == 0 and rank == 0:
            save_checkpoint(checkpoint_dir, dp.state_dict(), _meta(info, dp.n_steps, batch_size, world))
        if report_every and dp.n_steps % report_every == 0:
            if rank == 0:
                print(json.dumps({"event": "progress", **_report(dp, samples, seconds, window)}), flush=True)
            window = _Window()
    if checkpoint_dir is not None and rank == 0 and dp.n_steps > first_step:
        save_checkpoint(checkpoint_dir, dp.state_dict(), _meta(info, dp.n_steps, batch_size, world))
    return {"event": "done", "world_size": world, "resumed_from": first_step,
            **_report(dp, samples, seconds, window)}


def _check_counts(batch_size: int, world: int, checkpoint_every: int, report_every: int,
                  max_steps: int | None) -> None:
    """``ValueError`` naming the argument, before anything is read or learned."""
    checks.check_int("batch_size", batch_size, low=world)
    if batch_size % world:
        raise ValueError(f"batch_size must be a multiple of the world size {world} (each rank takes an equal "
                         f"share of a global batch), got {batch_size}")
    checks.check_int("checkpoint_every", checkpoint_every, low=0)
    checks.check_int("report_every", report_every, low=0)
    if max_steps is not None:
        checks.check_int("max_steps", max_steps, low=1)


def train_stream(
    learner: OnlineAM, stream: Iterable[tuple[dict[str, Any], Any]], *, batch_size: int,
    features: Sequence[str] | None = None, **kwargs: Any,
) -> dict[str, Any]:
    """:func:`train` from a river-style stream of ``(x: dict, y)`` (every rank passes the same stream), in a
    process group already initialised; ``kwargs`` as :func:`train`."""
    dp = DataParallelAM(learner)
    return train(dp, dict_rows(stream, features), batch_size=batch_size, n_inputs=learner.n_inputs, **kwargs)


def _error(exc: Exception, status: int = 2) -> int:
    print(f"{PROG}: error: {exc}", file=sys.stderr)
    return status


def _learner(args: argparse.Namespace, width: int) -> OnlineAM:
    from stream_am.estimators import build_mlp

    n_out = args.n_classes if args.task == "classification" else 1
    module = build_mlp(width, n_out, hidden_sizes(args.hidden), args.activation, seed=args.seed)
    return OnlineAM(module, variant=args.variant, loss="cross_entropy" if args.task == "classification" else "mse",
                    seed=args.seed)


def _check_resume(args: argparse.Namespace, learner: OnlineAM) -> None:
    """Refuse (``ValueError`` naming ``--checkpoint-dir`` or the flag) a checkpoint this job cannot resume from:
    unreadable, foreign, of another configuration, or whose state does not load into ``learner``."""
    try:
        found = load_checkpoint(args.checkpoint_dir)
    except ValueError as exc:
        raise ValueError(f"--checkpoint-dir: {exc}") from exc
    if found is None:
        return
    where = args.checkpoint_dir / "checkpoint.safetensors"
    check_resume(args, found[1], where)
    try:
        learner.load_state_dict(found[0])
    except ValueError as exc:
        raise ValueError(f"--checkpoint-dir: {where} does not fit this job's learner ({exc})") from exc


def _prepare(args: argparse.Namespace, rank: int, world: int) -> tuple[Iterator[Row], int, OnlineAM, IO[bytes] | None]:
    """Every check of the job before it starts (``ValueError`` naming the flag); then, on rank 0, the checkpoint
    directory, made and locked (the open file that holds the lock is returned: two jobs writing one checkpoint
    would overwrite each other's)."""
    check_args(args, world)
    n_classes = args.n_classes if args.task == "classification" else None
    width = check_sources(args.source, args.target, n_classes)
    _check_memory(args, width)
    learner = _learner(args, width)
    _check_resume(args, learner)
    held = None
    if rank == 0:
        prepare_checkpoint_dir(args.checkpoint_dir)
        try:
            held = lock_directory(args.checkpoint_dir)
        except DirectoryInUse as exc:
            raise ValueError(f"--checkpoint-dir: {args.checkpoint_dir} is in use by another job (it holds "
                             f"{args.checkpoint_dir / LOCK_NAME}); wait for it to end, or choose another") from exc
    return file_rows(args.source, args.target, n_classes=n_classes), width, learner, held


def _check_memory(args: argparse.Namespace, width: int) -> None:
    """``ValueError`` naming ``--n-classes`` (``--hidden`` in a regression) when the memories of ``width`` inputs,
    ``--hidden`` and the classes could not fit this machine (:func:`~stream_am.memory_budget.memory_problem`)."""
    classification = args.task == "classification"
    problem = memory_problem(width, hidden_sizes(args.hidden), args.n_classes if classification else 1)
    if problem:
        what = f"--n-classes {args.n_classes} with " if classification else ""
        raise ValueError(f"{what}--hidden {args.hidden} on {width} inputs: {problem}; use "
                         f"{'fewer classes or ' if classification else ''}narrower layers")


def _start_group(args: argparse.Namespace, alone: bool) -> None:
    if alone:  # a plain ``python -m``: a group of one, on a free loopback port
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
    init_process_group(args.backend, timeout_s=args.timeout)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point (every rank runs it); returns the exit status: 2 for an invalid argument or source, 1 when the
    process group fails (it cannot start, or a peer stops or does not answer within ``--timeout``), 130 when
    interrupted (Ctrl-C; the last checkpoint written stays)."""
    args = parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return arguments.interrupted(PROG, "the last checkpoint written stays")


def _run(args: argparse.Namespace) -> int:
    try:
        given = ranks()
        rank, world = given or (0, 1)
        rows, width, learner, held = _prepare(args, rank, world)
    except ValueError as exc:
        return _error(exc)
    saved = {key: os.environ.get(key) for key in ENV}  # (a group of one sets them: put back after)
    try:
        return _train(args, rows, width, learner, rank, alone=given is None)
    finally:
        if held is not None:
            held.close()
        if given is None:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def _train(args: argparse.Namespace, rows: Iterator[Row], width: int, learner: OnlineAM, rank: int,
           alone: bool) -> int:
    import torch.distributed as dist

    torch.set_num_threads(args.threads)
    try:
        _start_group(args, alone=alone)
    except GroupFailure as exc:
        return _error(exc, 1)
    info = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "source"},
            "source": [str(p.resolve()) for p in args.source]}  # (resolved: a resume from another directory)
    try:
        report = train(DataParallelAM(learner), rows, batch_size=args.batch_size, n_inputs=width,
                       checkpoint_dir=args.checkpoint_dir, checkpoint_every=args.checkpoint_every,
                       max_steps=args.max_steps, report_every=args.report_every, info=info)
    except (ValueError, GroupFailure) as exc:  # a source's row or a batch refused here (status 2), or a peer lost
        dist.destroy_process_group()
        return _error(exc, 1 if isinstance(exc, GroupFailure) else 2)
    if rank == 0:
        print(json.dumps(report), flush=True)
    dist.barrier()  # leave together: gloo threads still alive when the interpreter exits abort the process
    dist.destroy_process_group()
    return 0
