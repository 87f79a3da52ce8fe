"""``scenario list`` and ``scenario run NAME [--quick] [--out DIR] [--seed N]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
from stream_am.scenarios import RunConfig, Scenario, _checks, execute
from stream_am.scenarios._checks import MAX_HIDDEN, MAX_LAYERS
from stream_am.scenarios._common import UnknownLearners

from stream_am import arguments, scenarios

__all__ = ["main", "build_parser"]

_PROG = "stream-am scenario run"  # as argparse names it in its own errors
MAX_THREADS = 256  # torch's thread pool fails with a MemoryError long before 100,000
#: the options that set a field of :class:`RunConfig`, by field
_OPTIONS = {"out": "--out", "seed": "--seed", "hidden": "--hidden", "learners": "--learners",
            "memory_decay": "--memory-decay"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-am scenario", description=scenarios.__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="print every scenario: name, family, description")
    run = sub.add_parser("run", help="run one scenario and write results.json, results.md and plots")
    run.add_argument("name", help="scenario name (see `list`), or `all`")
    run.add_argument("--quick", action="store_true", help="tiny data and networks: seconds per scenario")
    run.add_argument("--out", type=arguments.given_path, default=None, help="output directory (default: results/NAME)")
    run.add_argument("--seed", type=arguments.seed, default=0, help="seed of data order, generators and models")
    run.add_argument("--hidden", type=arguments.integer, nargs="+", default=None, metavar="WIDTH",
                     help=f"hidden layer widths of every neural learner, each in [1, {MAX_HIDDEN}], at most "
                     f"{MAX_LAYERS} layers (default: 64 64; 16 with --quick)")
    run.add_argument("--learners", nargs="+", action="extend", default=None, metavar="NAME",
                     help="run only these of the scenario's learners (names as in its table; a repeated --learners "
                     "adds its names); with `all`, each scenario runs those it has, and each must have at least one")
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


def _learners_problem(chosen: Sequence[Scenario], wanted: Sequence[str]) -> str | None:
    """Why ``--learners`` does not fit the scenarios to run: a name that is none of theirs, or a scenario that
    has none of the names (each scenario runs those of the names it has, and must have one)."""
    known = list(dict.fromkeys(n for s in chosen for n in s.learners))
    unknown = [n for n in dict.fromkeys(wanted) if n not in known]
    if unknown:
        whose = f"{chosen[0].name} has" if len(chosen) == 1 else "the scenarios run have"
        return f"unknown learner {', '.join(map(repr, unknown))} ({whose} {', '.join(known)})"
    idle = [s for s in chosen if not set(wanted) & set(s.learners)]
    if idle:
        theirs = dict.fromkeys(n for s in idle for n in s.learners)
        return (f"none of the learners {list(wanted)} runs in {', '.join(s.name for s in idle)} "
                f"({'its' if len(idle) == 1 else 'their'} learners: {', '.join(theirs)})")
    return None


def _out_dir(args: argparse.Namespace, scenario: Scenario, several: bool) -> Path:
    """Where ``scenario`` writes: ``--out`` (``--out/NAME`` when several run), else ``results/NAME``."""
    if args.out is None:
        return Path("results") / scenario.name
    return args.out / scenario.name if several else args.out


def _configs(args: argparse.Namespace, chosen: list[Scenario], progress: bool) -> list[RunConfig]:
    """The configuration of each scenario to run (they differ in ``out`` only)."""
    hidden = None if args.hidden is None else tuple(args.hidden)
    learners = None if args.learners is None else tuple(args.learners)
    return [RunConfig(out=_out_dir(args, s, len(chosen) > 1), quick=args.quick, seed=args.seed, progress=progress,
                      hidden=hidden, html=args.html, learners=learners, memory_decay=args.memory_decay)
            for s in chosen]


def _refusal(chosen: list[Scenario], configs: list[RunConfig]) -> tuple[str, str] | None:
    """The option ``run`` refuses and why, checked before anything runs, with the checks ``execute`` makes
    (:mod:`~stream_am.scenarios._checks`); the output directories last, since that check creates (and removes)
    them."""
    wanted = configs[0].learners  # (names first: an empty one is an unknown learner, named with the known ones)
    learners = None if wanted is None else _learners_problem(chosen, wanted)
    if learners:
        return "--learners", learners
    for cfg in configs:
        problem = _checks.config_problem(cfg)
        if problem:
            return _OPTIONS.get(problem[0], problem[0]), problem[1]
    for cfg in configs:
        out = _checks.out_problem(cfg.out)
        if out:
            return "--out", out
    return None


def _shown(path: Path) -> str:
    """``path`` as text any output stream can write: a byte that is not UTF-8 (an argument the system passed as
    a lone surrogate) is shown as U+FFFD, where a strict stdout raised ``UnicodeEncodeError``."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


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
    configs = _configs(args, chosen, _on_a_terminal() if args.progress is None else args.progress)
    refused = _refusal(chosen, configs)
    if refused:
        print(f"{_PROG}: error: argument {refused[0]}: {refused[1]}", file=sys.stderr)
        return 2
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        for s, cfg in zip(chosen, configs, strict=True):
            try:
                doc = execute(s, cfg)
            except UnknownLearners as err:  # (checked above: only if a scenario's `learners` were wrong)
                why = str(err).removeprefix("RunConfig.learners: ")
                print(f"{_PROG}: error: argument --learners: {s.name}: {why}", file=sys.stderr)
                return 2
            print(f"{s.name}: {_shown(cfg.out / 'results.md')} ({doc['config']['wall_time_s']} s)")
    except KeyboardInterrupt:
        return arguments.interrupted(_PROG, "a scenario that had not finished keeps its earlier results, if any")
    finally:
        torch.set_num_threads(threads)
    return 0
