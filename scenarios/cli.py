"""``scenario list`` and ``scenario run NAME [--quick] [--out DIR] [--seed N]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from stream_am.scenarios import RunConfig, execute
from stream_am.scenarios._common import UnknownLearners

from stream_am import arguments, scenarios

__all__ = ["main", "build_parser"]

_PROG = "stream-am scenario run"  # as argparse names it in its own errors
MAX_THREADS = 256  # torch's thread pool fails with a MemoryError long before 100,000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-am scenario", description=scenarios.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print every scenario: name, family, description")
    run = sub.add_parser("run", help="run one scenario and write results.json, results.md and plots")
    run.add_argument("name", help="scenario name (see `list`), or `all`")
    run.add_argument("--quick", action="store_true", help="tiny data and networks: seconds per scenario")
    run.add_argument("--out", type=Path, default=None, help="output directory (default: results/NAME)")
    run.add_argument("--seed", type=arguments.seed, default=0, help="seed of data order, generators and models")
    run.add_argument("--hidden", type=int, nargs="+", default=None, metavar="WIDTH",
                     help="hidden layer widths of every neural learner (default: 64 64; 16 with --quick)")
    run.add_argument("--learners", nargs="+", default=None, metavar="NAME",
                     help="run only these of the scenario's learners (names as in its table)")
    bars = run.add_mutually_exclusive_group()
    bars.add_argument("--progress", dest="progress", action="store_true", default=None,
                      help="show progress bars (the default on a terminal only)")
    bars.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bars")
    run.add_argument("--html", action="store_true",
                     help="also write report.html: one self-contained file (no external request) with the "
                     "table, curves and accuracy matrices")
    run.add_argument("--memory-decay", type=float, default=None, metavar="RATE",
                     help="memory_decay of the AM learners (but `AM-mem eta=0`), in [0, 1) (default: theirs)")
    run.add_argument("--threads", type=arguments.whole(1, MAX_THREADS), default=1,
                     help="torch intra-op threads while running (default 1: the networks are small, and more "
                     "threads than free cores slow them down many times)")
    return parser


def _out_problem(out: Path | None) -> str | None:
    """Why ``--out`` cannot hold results (checked before a scenario runs, not after): a path through a file."""
    blocker = None if out is None else arguments.not_a_directory(out)
    return None if blocker is None else f"{str(out)!r}: {str(blocker)!r} is not a directory"


def _on_a_terminal() -> bool:
    """Progress bars by default only when both output streams are terminals, so that redirected output
    (a log file, CI, a pipe) is not flooded with bar redraws."""
    return sys.stdout.isatty() and sys.stderr.isatty()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        width = max(map(len, scenarios.names()))
        for s in scenarios.REGISTRY.values():
            print(f"{s.name:<{width}}  {s.family:<18}  {s.description}")
        return 0
    names = scenarios.names() if args.name == "all" else [args.name]
    try:
        chosen = [scenarios.get(n) for n in names]
    except ValueError as err:
        print(f"{_PROG}: error: argument name: {err}", file=sys.stderr)
        return 2
    if args.hidden is not None and min(args.hidden) < 1:
        print(f"{_PROG}: error: argument --hidden: widths must be >= 1, got {args.hidden}", file=sys.stderr)
        return 2
    problem = _out_problem(args.out)
    if problem:
        print(f"{_PROG}: error: argument --out: {problem}", file=sys.stderr)
        return 2
    if args.memory_decay is not None and not 0.0 <= args.memory_decay < 1.0:  # (nan fails both)
        print(f"{_PROG}: error: argument --memory-decay: must be in [0, 1), got {args.memory_decay}", file=sys.stderr)
        return 2
    show_bars = _on_a_terminal() if args.progress is None else args.progress
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        for s in chosen:
            out = args.out if args.out is not None else Path("results") / s.name
            if len(chosen) > 1 and args.out is not None:
                out = out / s.name
            hidden = None if args.hidden is None else tuple(args.hidden)
            cfg = RunConfig(out=out, quick=args.quick, seed=args.seed, progress=show_bars, hidden=hidden,
                            html=args.html, learners=None if args.learners is None else tuple(args.learners),
                            memory_decay=args.memory_decay)
            try:
                doc = execute(s, cfg)
            except UnknownLearners as err:
                print(f"{_PROG}: error: argument --learners: {s.name}: {err}", file=sys.stderr)
                return 2
            print(f"{s.name}: {out / 'results.md'} ({doc['config']['wall_time_s']} s)")
    finally:
        torch.set_num_threads(threads)
    return 0
