"""The training job's command line: the parser, the bounds of its options, and the checks made before a run.

Every check raises a ``ValueError`` naming the flag (``main`` prints it argparse-style and exits with status 2)
and changes nothing on disk, except :func:`prepare_checkpoint_dir`, run last, which creates the directory.
A resumed job must keep the settings that decide which rows were learned and what the weights mean
(:data:`RESUME_FLAGS`); the others (``--max-steps``, ``--checkpoint-every``, ``--report-every``,
``--timeout``, ``--threads``, ``--backend``) may change between runs.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import Any

from stream_am import arguments
from stream_am.arguments import not_a_directory
from stream_am.checks import MAX_COUNT
from stream_am.distributed.group import MAX_TIMEOUT, MIN_TIMEOUT
from stream_am.estimators.networks import ACTIVATIONS

__all__ = ["MAX_CLASSES", "MAX_HIDDEN", "MAX_LAYERS", "MAX_TIMEOUT", "RESUME_FLAGS", "check_args", "check_resume",
           "hidden_sizes", "parser", "prepare_checkpoint_dir"]

PROG = "python -m stream_am.distributed"
MAX_HIDDEN = 4096  #: widest hidden layer (the server's ``max_hidden_size``)
MAX_LAYERS = 32  #: most hidden layers
MAX_CLASSES = 100_000  #: most classes
RESUME_FLAGS = ("source", "target", "task", "n_classes", "hidden", "activation", "variant", "batch_size", "seed")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Data-parallel AM training from CSV or Parquet files "
                                "(launch with torchrun --nproc_per_node=N).")
    p.add_argument("--source", nargs="+", action="extend", type=arguments.given_path, required=True,
                   help="CSV or Parquet files, read in order (a repeated --source adds its files).")
    p.add_argument("--target", required=True, help="The target column; every other column is a feature.")
    p.add_argument("--task", choices=["classification", "regression"], default="classification")
    p.add_argument("--n-classes", type=arguments.integer, default=None,
                   help=f"Classes 0..K-1 (classification only; K <= {MAX_CLASSES}).")
    p.add_argument("--hidden", default="64", help=f"Hidden widths, comma-separated (default 64; each <= {MAX_HIDDEN}, "
                   f"at most {MAX_LAYERS} layers).")
    p.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu")
    p.add_argument("--variant", choices=["auto", "mem", "adam"], default="auto", help="(default auto).")
    p.add_argument("--batch-size", type=arguments.integer, default=32,
                   help="Global mini-batch, split evenly over the ranks.")
    p.add_argument("--seed", type=arguments.seed, default=0, help="In 0..2**63-1 (default 0).")
    p.add_argument("--checkpoint-dir", type=arguments.given_path, required=True)
    p.add_argument("--checkpoint-every", type=arguments.integer, default=100,
                   help="Steps between checkpoints (0: at the end).")
    p.add_argument("--max-steps", type=arguments.integer, default=None, help="Stop after this many global steps.")
    p.add_argument("--timeout", type=float, default=60.0,
                   help=f"Seconds a collective waits for a peer ({MIN_TIMEOUT:g} to {MAX_TIMEOUT:g}).")
    p.add_argument("--backend", choices=["auto", "gloo", "nccl"], default="auto")
    p.add_argument("--report-every", type=arguments.integer, default=100,
                   help="Steps between samples/s reports (0: at the end).")
    p.add_argument("--threads", type=arguments.integer, default=1,
                   help="torch threads per process (default 1; at most the CPUs).")
    return p


def hidden_sizes(text: str) -> tuple[int, ...]:
    """The widths of ``--hidden``; ``ValueError`` naming the flag unless they are 1..MAX_HIDDEN, MAX_LAYERS at most."""
    parsed = [arguments.digits(s) for s in text.split(",")]
    sizes = tuple(n for n in parsed if n is not None)
    if not sizes or len(sizes) < len(parsed) or min(sizes) < 1:
        raise ValueError(f"--hidden must be positive integers separated by commas, got {text!r}")
    if max(sizes) > MAX_HIDDEN or len(sizes) > MAX_LAYERS:
        raise ValueError(f"--hidden allows widths up to {MAX_HIDDEN} and at most {MAX_LAYERS} layers, got {text!r}")
    return sizes


def _check_sources(sources: list[Path]) -> None:
    for path in sources:
        if path.suffix not in (".csv", ".parquet"):
            raise ValueError(f"--source: {path} is neither .csv nor .parquet")
        if not path.is_file():
            raise ValueError(f"--source: {path} is not a file")


def _check_numbers(args: argparse.Namespace, world: int) -> None:
    if args.task != "classification" and args.n_classes is not None:
        raise ValueError(f"--n-classes applies to classification only, got {args.n_classes} with --task {args.task}")
    if args.task == "classification" and (args.n_classes is None or not 2 <= args.n_classes <= MAX_CLASSES):
        raise ValueError(f"--n-classes must be an integer in 2..{MAX_CLASSES} for classification, got {args.n_classes}")
    if not 1 <= args.batch_size <= MAX_COUNT or args.batch_size % world:
        raise ValueError(f"--batch-size must be a positive multiple of the {world} processes, at most {MAX_COUNT}, "
                         f"got {args.batch_size}")
    for flag in ("checkpoint_every", "report_every"):
        if not 0 <= getattr(args, flag) <= MAX_COUNT:
            raise ValueError(f"--{flag.replace('_', '-')} must be in 0..{MAX_COUNT}, got {getattr(args, flag)}")
    if args.max_steps is not None and not 1 <= args.max_steps <= MAX_COUNT:
        raise ValueError(f"--max-steps must be in 1..{MAX_COUNT}, got {args.max_steps}")
    if not (math.isfinite(args.timeout) and MIN_TIMEOUT <= args.timeout <= MAX_TIMEOUT):
        raise ValueError(f"--timeout must be in [{MIN_TIMEOUT:g}, {MAX_TIMEOUT:g}] seconds, got {args.timeout}")
    cpus = os.cpu_count() or 1
    if not 1 <= args.threads <= cpus:
        raise ValueError(f"--threads must be in 1..{cpus} (this machine's CPUs), got {args.threads}")


def _check_backend(backend: str) -> None:
    import torch
    import torch.distributed as dist

    if backend == "nccl" and not (torch.cuda.is_available() and dist.is_nccl_available()):
        raise ValueError("--backend nccl needs CUDA and a torch built with NCCL, which this machine lacks; "
                         "use gloo or auto")


def _check_checkpoint_dir(directory: Path) -> None:
    """The directory, or its nearest existing parent, is a writable directory (nothing is created here)."""
    why = arguments.unseen(directory)  # (then its parents can be looked at too)
    if why:
        raise ValueError(f"--checkpoint-dir: {directory} cannot be looked at: {why}")
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"--checkpoint-dir: {directory} exists and is not a directory")
    blocker = not_a_directory(directory)
    if blocker is not None:
        raise ValueError(f"--checkpoint-dir: {directory} cannot be created: {blocker} is not a directory")
    parent = next(p for p in (directory, *directory.parents) if p.exists())  # a directory: checked above
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--checkpoint-dir: {directory} cannot be written: {parent} is not writable")


def check_args(args: argparse.Namespace, world: int) -> None:
    """``ValueError`` naming the flag of the first invalid argument (before anything starts)."""
    _check_sources(args.source)
    _check_numbers(args, world)
    hidden_sizes(args.hidden)
    _check_backend(args.backend)
    _check_checkpoint_dir(args.checkpoint_dir)


def prepare_checkpoint_dir(directory: Path) -> None:
    """Create ``directory`` now and write a probe file in it (:func:`~stream_am.arguments.make_writable`), so that a
    directory that cannot be made or written fails before training, not at the first checkpoint; a directory this
    check made is removed again when it fails."""
    made: list[Path] = []
    try:
        arguments.make_writable(directory, made)
    except OSError as exc:
        arguments.remove_made(made)
        raise ValueError(f"--checkpoint-dir: {directory} cannot be created and written: {exc.strerror or exc}") from exc


def _same_sources(recorded: Any, sources: list[Path]) -> bool:
    if not isinstance(recorded, list) or len(recorded) != len(sources):
        return False
    return all(str(a) == str(b) or Path(str(a)).resolve() == b.resolve() for a, b in zip(recorded, sources,
                                                                                          strict=True))


def _recorded(flag: str, info: dict[str, Any]) -> Any:
    config = info["config"]
    if flag == "source":
        return info.get("source")
    if flag == "hidden":
        try:
            return hidden_sizes(str(config.get("hidden")))
        except ValueError:
            return config.get("hidden")
    return config.get(flag)


def check_resume(args: argparse.Namespace, info: dict[str, Any], where: Path) -> None:
    """``ValueError`` naming the first of :data:`RESUME_FLAGS` whose value differs from the checkpoint's job
    description ``info`` (read from ``where``); a checkpoint without one (``train_stream``'s) is not compared."""
    config = info.get("config")
    if config is None:
        return
    if not isinstance(config, dict):
        raise ValueError(f"--checkpoint-dir: {where} records no job configuration (config is {config!r})")
    for flag in RESUME_FLAGS:
        if flag == "n_classes" and args.task != "classification":
            continue
        want = _recorded(flag, info)
        got: Any = args.source if flag == "source" else getattr(args, flag)
        if flag == "source":
            same = _same_sources(want, got)
        else:
            same = (hidden_sizes(got) if flag == "hidden" else got) == want
        if not same:
            shown = [str(p) for p in got] if flag == "source" else got
            raise ValueError(
                f"--{flag.replace('_', '-')} {shown} differs from the checkpoint's {want} ({where}, step "
                f"{info.get('step')}): resuming with another value would skip or repeat rows or continue other "
                "weights; pass the checkpoint's value, or another --checkpoint-dir to start afresh")
