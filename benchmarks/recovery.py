"""Recovery after a drift, against one reference level: the scenarios' ``AM-mem`` as the default was on the day issue
10 was filed (``--ref``, imported as ``benchmarks/cost_since.py`` does), today with the linear companion alone,
with both companions ungated, today's default (the quadratic one gated), and today's default wrapped in
:class:`~stream_am.drift.DriftAware` (``drift-aware``: ADWIN on its errors forgets at a detection), on the drift
scenarios that have drift points, each run on the same stream in this process.

The scenarios' own ``recovery`` counts the samples until a learner's trailing accuracy regains *its own* level
before the drift, so a learner that was better before the drift has further to climb. Issue 10 asks for recovery
"no slower than today": here each learner is held to the *filed default's* level: after each drift point, the
samples until the trailing accuracy over ``window`` samples first reaches ``min(level before, level at the
segment's end) - tol`` of the reference (at least ``window``; the segment's length if never).

    python benchmarks/recovery.py [--seeds 0 1 2] [--scenarios NAME ...] [--ref 85d8533] [--quick]
                                  [--modes filed ... ]   (the reference, filed, always runs)

Needs ``git`` and a clone that holds ``--ref``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stream_am.scenarios import RunConfig, _common, drift

from stream_am.drift import DriftAware
from stream_am.evaluate import rolling_accuracy

sys.path.insert(0, str(Path(__file__).parent))
import cost_since  # noqa: E402  (a sibling script, not a package)

MODES = ("filed", "linear", "ungated", "default", "drift-aware")
STREAMS = {  # (concepts, width of a switch), as the scenarios of the same names
    "agrawal-abrupt": ((1, 3, 5, 1), drift._abrupt),
    "agrawal-gradual": ((1, 3, 5), drift._gradual),
    "recurring": ((2, 6, 2, 6, 2), drift._abrupt),
}
FULL = {"agrawal-abrupt": 40_000, "agrawal-gradual": 30_000, "recurring": 40_000}
TOL = 0.02


def configure(model: Any, mode: str, ref: Any) -> Any:
    """``model`` (the scenarios' ``AM-mem``) with its companions as ``mode`` says (``filed``: ``ref``'s own)."""
    if mode == "filed":
        return ref.AMClassifier(**{k: v for k, v in model.get_params().items()
                                   if k in ("variant", "hidden_sizes", "activation", "batch_size", "seed")})
    if mode == "drift-aware":
        return DriftAware(model)
    if mode == "linear":
        model._keeps_quadratic = lambda engine, n_inputs: False
    elif mode == "ungated":
        make = model._make_companions

        def ungated(engine: Any) -> Any:
            linear, quadratic = make(engine)
            if quadratic is not None:
                quadratic.gate = False
            return linear, quadratic

        model._make_companions = ungated
    return model


def hits(name: str, seed: int, mode: str, quick: bool, ref: Any) -> tuple[np.ndarray, list[int]]:
    """Per-sample hits (test-then-train) on ``name`` and its drift points (a gradual one's start)."""
    order, width = STREAMS[name]
    cfg = RunConfig(out=Path("."), quick=quick, seed=seed, progress=False, learners=("AM-mem",))
    n = 800 if quick else FULL[name]
    stream, points, w = drift._agrawal(order, width)(seed, n)
    model = configure(_common.make_learner("AM-mem", cfg), mode, ref)
    res = _common.prequential(model, stream, n, cfg, name, points)
    return np.asarray(res.correct, dtype=float), [p - w // 2 for p in points]


def recovery(correct: np.ndarray, reference: np.ndarray, points: list[int], window: int) -> list[int]:
    """Samples after each point until ``correct``'s trailing accuracy reaches the reference's level (docstring)."""
    out = []
    for p, end in zip(points, [*points[1:], len(correct)], strict=True):
        level = rolling_accuracy(reference[p:end], window)[window - 1 :]
        target = min(float(reference[p - window : p].mean()), float(level[-1])) - TOL
        reached = np.flatnonzero(rolling_accuracy(correct[p:end], window)[window - 1 :] >= target)
        out.append(int(reached[0]) + window if len(reached) else end - p)
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, int]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scenarios", nargs="+", default=list(STREAMS), choices=list(STREAMS))
    parser.add_argument("--ref", default=cost_since.FILED, help="the commit whose default is the reference")
    parser.add_argument("--quick", action="store_true", help="800 samples, a window of 50 (a smoke run)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        return run(args, cost_since.import_ref(args.ref, Path(tmp)))


def run(args: argparse.Namespace, ref: Any) -> dict[str, dict[str, int]]:
    torch.set_num_threads(1)
    window = 50 if args.quick else 500
    modes = ["filed", *(m for m in MODES if m in args.modes and m != "filed")]
    totals: dict[str, dict[str, int]] = {}
    print("| scenario | seed | " + " | ".join(f"{m}: accuracy, samples to recover per drift" for m in modes) + " |")
    print("|---|---|" + "---|" * len(modes))
    for name in args.scenarios:
        total = totals.setdefault(name, dict.fromkeys(modes, 0))
        for seed in args.seeds:
            runs = {mode: hits(name, seed, mode, args.quick, ref) for mode in modes}
            reference, points = runs["filed"]
            cells = []
            for mode in modes:
                got = recovery(runs[mode][0], reference, points, window)
                total[mode] += sum(got)
                cells.append(f"{runs[mode][0].mean():.3f}, {' / '.join(f'{r:,}' for r in got)}")
            print(f"| {name} | {seed} | " + " | ".join(cells) + " |", flush=True)
        print(f"| {name} | all | " + " | ".join(f"{total[m]:,}" for m in modes) + " |", flush=True)
    return totals

if __name__ == "__main__":
    main()
