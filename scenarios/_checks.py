"""What a scenario run is checked for before it removes an earlier run's files or runs anything: every field of
its :class:`~stream_am.scenarios._common.RunConfig`, and its output directory.

:func:`~stream_am.scenarios._common.execute` raises a ``ValueError`` naming the field; the command line
(:mod:`stream_am.scenarios.cli`) makes the same checks and refuses naming its option, so the two cannot disagree.
"""

from __future__ import annotations

import reprlib
import stat
from pathlib import Path
from typing import Any

from stream_am.scenarios._report import OUTPUTS

from stream_am import arguments
from stream_am.checks import MAX_SEED
from stream_am.distributed.options import MAX_HIDDEN, MAX_LAYERS
from stream_am.memory_budget import memory_problem

__all__ = ["MAX_BATCH_SIZE", "MAX_HIDDEN", "MAX_LAYERS", "check_config", "config_problem", "out_problem"]

#: the largest ``batch_size`` of a run (the learners take any; a bound keeps a mistyped one from allocating
#: batches of millions of rows)
MAX_BATCH_SIZE = 65536
_FLAGS = ("quick", "progress", "html")
_KINDS = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a named pipe", stat.S_ISSOCK: "a socket",
          stat.S_ISCHR: "a device", stat.S_ISBLK: "a device"}


def _shown(value: Any) -> str:
    """``value``'s repr, shortened when long (a message must not carry a million widths)."""
    return reprlib.repr(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _hidden_problem(hidden: Any) -> str | None:
    if hidden is None:
        return None
    if not isinstance(hidden, tuple) or not all(_is_int(w) for w in hidden):
        return f"must be None or a tuple of ints (the hidden layers' widths), got {_shown(hidden)}"
    if len(hidden) > MAX_LAYERS:  # (none: the learners' linear models, as AMClassifier(hidden_sizes=()) takes)
        return f"must have at most {MAX_LAYERS} layers, got {len(hidden)}"
    bad = [w for w in hidden if not 1 <= w <= MAX_HIDDEN]
    if bad:
        return f"widths must be in [1, {MAX_HIDDEN}], got {_shown(bad[0])}"
    too_large = memory_problem(1, hidden, 2)  # (a bound from below: every scenario has more inputs and classes)
    return f"{_shown(hidden)} is too large: even on one input and two classes {too_large}" if too_large else None


def _learners_problem(learners: Any) -> str | None:
    if learners is None:
        return None
    if isinstance(learners, str):  # (``in`` on a str is a substring test: "AM-mem sample" would pick AM-mem too)
        return f"must be a tuple of learner names, not one str, got {_shown(learners)}"
    if not isinstance(learners, (tuple, list)) or not learners or not all(isinstance(n, str) and n for n in learners):
        return f"must be None or a non-empty tuple of learner names (str), got {_shown(learners)}"
    return None


def _decay_problem(decay: Any) -> str | None:
    if decay is None:
        return None
    if isinstance(decay, bool) or not isinstance(decay, (int, float)):
        return f"must be None or a number in [0, 1), got {_shown(decay)}"
    return None if 0.0 <= decay < 1.0 else f"must be in [0, 1), got {_shown(decay)}"  # (nan fails both)


def config_problem(cfg: Any) -> tuple[str, str] | None:
    """The first field of the :class:`~stream_am.scenarios._common.RunConfig` ``cfg`` that a run cannot take and
    why (the reason reads after the field's name), or ``None``; the output directory is :func:`out_problem`'s."""
    if not isinstance(cfg.out, Path):
        return "out", f"must be a pathlib.Path, got {_shown(cfg.out)} (a {type(cfg.out).__name__})"
    for name in _FLAGS:
        if not isinstance(getattr(cfg, name), bool):
            return name, f"must be a bool, got {_shown(getattr(cfg, name))}"
    if not (_is_int(cfg.seed) and 0 <= cfg.seed <= MAX_SEED):
        return "seed", f"must be an int in [0, 2**63 - 1], got {_shown(cfg.seed)}"
    if not (_is_int(cfg.batch_size) and 1 <= cfg.batch_size <= MAX_BATCH_SIZE):
        return "batch_size", f"must be an int in [1, {MAX_BATCH_SIZE}], got {_shown(cfg.batch_size)}"
    for name, problem in (("hidden", _hidden_problem(cfg.hidden)), ("learners", _learners_problem(cfg.learners)),
                          ("memory_decay", _decay_problem(cfg.memory_decay))):
        if problem:
            return name, problem
    return None


def check_config(cfg: Any) -> None:
    """``ValueError`` naming the first field of ``cfg`` a run cannot take (:func:`config_problem`)."""
    problem = config_problem(cfg)
    if problem:
        raise ValueError(f"RunConfig.{problem[0]} {problem[1]}")


def _not_a_file(path: Path) -> str | None:
    """What stands at ``path`` instead of a regular file (``None`` for nothing, a file, or a symbolic link: the
    run removes a link of an output's name before it writes)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return None
    return next((kind for test, kind in _KINDS.items() if test(mode)), "not a regular file")


def out_problem(out: Path, keep: bool = False) -> str | None:
    """Why ``out`` cannot hold a scenario's results, checked before anything runs (not at the first write, after
    the run): a path through a file, an output name (:data:`~stream_am.scenarios._report.OUTPUTS`) taken by
    something else than a regular file (a directory; a named pipe, socket or device, which a run would fail to
    write, or block on for ever), or a directory that cannot be created or written (it is created, and a probe
    file written there and removed). The directories this made are removed again when ``out`` is refused, and
    also when it is not unless ``keep``; ``execute`` keeps them, so that a path such as ``dir/new/..`` names the
    directory the system resolves it to when the earlier run's files are removed."""
    blocker = arguments.not_a_directory(out)
    if blocker is not None:
        return f"{str(out)!r}: {str(blocker)!r} is not a directory"
    made: list[Path] = []
    problem: str | None = "interrupted"
    try:
        arguments.make_writable(out, made)
        taken = [(name, kind) for name in OUTPUTS if (kind := _not_a_file(out / name))]
        problem = None
        if taken:
            problem = (f"{str(out)!r}: {', '.join(f'{name} there is {kind}' for name, kind in taken)}, where a run "
                       "writes a regular file")
    except (OSError, ValueError) as err:  # (ValueError: a NUL character in the path)
        problem = f"{str(out)!r}: cannot create or write this directory ({getattr(err, 'strerror', None) or err})"
    finally:
        if problem or not keep:
            arguments.remove_made(made)
    return problem
