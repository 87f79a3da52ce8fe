"""Time today's default AM step against the default AM step of an earlier commit, side by side in one process.

Issue 10's cost target reads "an AM step with the default mechanism at most 1.3x today's step", *today* being
the day the issue was filed: its default is ``--ref`` (85d8533, the commit before its first change). This
script extracts that commit's ``stream_am`` with ``git archive``, imports it under another name (its own
imports rewritten to that name), and times four learners built with each version's defaults on
``benchmarks/step_time.py``'s shapes and stream of i.i.d. labels, in turn, in blocks of steps
(``step_time.interleaved_blocks``): the earlier default (``ref``), today's default (``now``: the class clock
and ``variant="auto"``'s cadence) and today's learner with the layers and cadence ``auto`` chose but the sample
clock (``now, sample clock``, the mechanism's own cost, which ``step_time.py`` also prints), and today's
default with the work a classifier's companions add to each step (``now + companion``: gathering each
batch and learning a block of them every ``BLOCK`` samples, :mod:`stream_am.estimators.companion`; none
where ``auto`` gives the first layer Adam, as an estimator builds none there; the quadratic one only on the
narrow shapes, ``NARROW``, which have at most 20 inputs). Each ratio is the median, over the rounds, of the ratio
of two blocks timed in the same round.

    python benchmarks/cost_since.py [--ref 85d8533] [--shapes NAME ...] [--steps 15] [--warmup 2]
    python benchmarks/cost_since.py --shapes 9-64-2/b32 18-64-7/b32 20-64-10/b32   # the quadratic companion
                                    [--clock wall|cpu] [--threads 1]

Needs ``git`` and a clone that holds ``--ref`` (not a shallow one).
"""

from __future__ import annotations

import argparse
import importlib
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

import torch

from stream_am import OnlineAM
from stream_am.estimators import build_mlp
from stream_am.estimators.basis import QUADRATIC_MAX_FEATURES
from stream_am.estimators.companion import LinearCompanion, quadratic
from stream_am.network import decompose
from stream_am.variants import resolve_variants

sys.path.insert(0, str(Path(__file__).parent))
import step_time  # noqa: E402  (a sibling script, not a package)

ROOT = Path(__file__).resolve().parent.parent
FILED = "85d8533"  # main just before issue 10's first commit (9a81fd1)
NAME = "stream_am_ref"  # the name the earlier package is imported under


def import_ref(ref: str, into: Path) -> ModuleType:
    """``stream_am`` as of ``ref``, extracted into ``into`` and imported as :data:`NAME`."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "stream_am"], capture_output=True, check=False)
    if archive.returncode:
        raise SystemExit(f"--ref: git archive {ref} failed: {archive.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    package = into / NAME
    (into / "stream_am").rename(package)
    for path in package.rglob("*.py"):
        path.write_text(re.sub(r"\bstream_am\b", NAME, path.read_text()))
    sys.path.insert(0, str(into))
    importlib.invalidate_caches()
    return importlib.import_module(NAME)


# narrow inputs, where a classifier keeps a quadratic companion too (river's Agrawal, ImageSegments, the widest)
NARROW = {"9-64-2/b32": ((9, 64, 2), 32), "18-64-7/b32": ((18, 64, 7), 32), "20-64-10/b32": ((20, 64, 10), 32)}


class WithCompanion:
    """Today's default engine and, as :class:`~stream_am.AMClassifier` builds them at its first step, its
    companions, stepped on every batch the engine learns."""

    def __init__(self, widths: tuple[int, ...]):
        self.widths, self.engine = widths, OnlineAM(build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), seed=0))
        self.companions: list[LinearCompanion] | None = None

    def partial_fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        stats = self.engine.partial_fit(x, y)
        if self.companions is None:
            n, k, decay, ridge = self.widths[0], self.widths[-1], self.engine.memory_decay, self.engine.ridge
            keeps = self.engine.input_memory
            self.companions = [LinearCompanion(n, k, decay, ridge)] if keeps else []
            if keeps and n <= QUADRATIC_MAX_FEATURES:
                self.companions.insert(0, quadratic(n, k, decay, ridge))
        for companion in self.companions:
            companion.learn(x, y, stats)


def time_shape(ref: ModuleType, widths: tuple[int, ...], batch: int, steps: int, warmup: int,
               clock: str) -> dict[str, float]:
    """Median ms per step of each learner and the paired ratios (module docstring)."""
    X, Y = step_time.stream_batches(widths[0], widths[-1], batch)
    hidden = tuple(widths[1:-1])
    ref_estimators = importlib.import_module(f"{NAME}.estimators")
    layers, every = resolve_variants("auto", decompose(build_mlp(widths[0], widths[-1], hidden)), batch, None,
                                     class_clock=True)
    learners = {
        "ref": ref.OnlineAM(ref_estimators.build_mlp(widths[0], widths[-1], hidden, seed=0)),
        "now": OnlineAM(build_mlp(widths[0], widths[-1], hidden, seed=0)),
        "now, sample clock": OnlineAM(build_mlp(widths[0], widths[-1], hidden, seed=0), variant=layers,
                                      solve_every=every, memory_clock="sample"),
        "now + companion": WithCompanion(widths),
    }
    blocks = step_time.interleaved_blocks(learners, X, Y, steps, warmup, clock)

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(blocks[a], blocks[b], strict=True))

    return {**{f"{k} ms": statistics.median(v) * 1e3 for k, v in blocks.items()},
            "now / ref": paired("now", "ref"), "now, sample clock / ref": paired("now, sample clock", "ref"),
            "now / now, sample clock": paired("now", "now, sample clock"),
            "now + companion / ref": paired("now + companion", "ref"),
            "now + companion / now": paired("now + companion", "now")}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default=FILED, help="the earlier commit (default: issue 10's filing)")
    shapes = {**step_time.SHAPES, **NARROW}
    parser.add_argument("--shapes", nargs="*", default=list(step_time.SHAPES), choices=list(shapes))
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--clock", default="cpu", choices=list(step_time.CLOCKS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if NAME in sys.modules:
        parser.error(f"{NAME} is already imported in this process: run one --ref per process")
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ref = import_ref(args.ref, Path(tmp))
        print(f"| shape | {args.ref} ms | now ms | now, sample clock ms | now + companion ms | now / {args.ref} "
              f"| now, sample clock / {args.ref} | now / now, sample clock | now + companion / {args.ref} "
              "| now + companion / now |")
        print("|---" * 10 + "|")
        for name in args.shapes:
            widths, batch = shapes[name]
            r = {"shape": name, **time_shape(ref, widths, batch, args.steps, args.warmup, args.clock)}
            rows.append(r)
            print(f"| {name} | {r['ref ms']:.2f} | {r['now ms']:.2f} | {r['now, sample clock ms']:.2f} "
                  f"| {r['now + companion ms']:.2f} | {r['now / ref']:.2f} | {r['now, sample clock / ref']:.2f} "
                  f"| {r['now / now, sample clock']:.2f} | {r['now + companion / ref']:.2f} "
                  f"| {r['now + companion / now']:.2f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
