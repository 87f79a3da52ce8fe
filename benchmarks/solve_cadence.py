"""What spacing the memory solves buys: prequential digits accuracy and step cost per variant and ``solve_every``.

For each per-layer variant (``mem/mem``, ``adam/mem``, ...) and each ``solve_every`` (every memory of the
network, the readout's included, is solved on every ``solve_every``-th step and folds every batch), the
prequential accuracy on digits for each seed (as ``prequential.py`` measures it; ``--seeds`` with no value
times only, for any input width), and the cost of one step against one backprop Adam step of the same
network, timed as ``step_time.py`` times it (interleaved, on its stream of mini-batches, in blocks that span a
class-clocked memory's pass, median; ``--clock cpu`` by default: the process's CPU time, robust to a shared
machine).

    python benchmarks/solve_cadence.py [--widths 64,256,256,10] [--batch-size 32] [--variants mem/mem adam/mem]
                                       [--solve-every 1 2 3 4] [--seeds 0 1 2] [--steps 30] [--clock cpu|wall]
"""

from __future__ import annotations

import argparse
import runpy
import statistics
from pathlib import Path
from typing import Any

import torch

from stream_am import OnlineAM
from stream_am.estimators import build_mlp


def _sibling(name: str) -> dict[str, Any]:
    """The globals of the script ``benchmarks/<name>.py`` (run as a module, not as ``__main__``)."""
    return runpy.run_path(str(Path(__file__).with_name(f"{name}.py")))


def _learner(widths: list[int], variant: str, solve_every: int, seed: int) -> OnlineAM:
    net = build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), "relu", seed=seed)
    return OnlineAM(net, variant=variant.split("/"), solve_every=solve_every, seed=seed)


def step_ratios(widths: list[int], batch: int, configs: list[tuple[str, int]], steps: int, clock: str) -> dict:
    """Median step time of each ``(variant, solve_every)`` over a backprop Adam step, interleaved."""
    st = _sibling("step_time")
    X, Y = st["stream_batches"](widths[0], widths[-1], batch)
    learners = {"bp": st["BackpropStep"](build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), seed=0))}
    learners.update({c: _learner(widths, *c, seed=0) for c in configs})
    times = st["interleaved_medians"](learners, X, Y, steps, 3, clock)  # three warm-up samples
    bp = times.pop("bp")
    return {c: v / bp for c, v in times.items()}


def main(argv: list[str] | None = None) -> dict[tuple[str, int], dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", default="64,256,256,10")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variants", nargs="*", default=["mem/mem", "adam/mem"])
    parser.add_argument("--solve-every", type=int, nargs="*", default=[1, 2, 3, 4])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    widths = [int(w) for w in args.widths.split(",")]
    if args.seeds and widths[0] != 64:
        parser.error(f"--widths starts at {widths[0]}: digits accuracy needs 64 inputs "
                     "(pass --seeds alone to time only)")
    pq = _sibling("prequential")
    configs = [(v, k) for v in args.variants for k in args.solve_every]
    ratios = step_ratios(widths, args.batch_size, configs, args.steps, args.clock)
    seeds = "".join(f"seed {s} | " for s in args.seeds)
    print(f"| variant | solve_every | {seeds}mean | step / backprop step |")
    print("|---" * (len(args.seeds) + 4) + "|")
    out = {}
    for variant, k in configs:
        accs = []
        for seed in args.seeds:
            x, y = pq["digits"](seed)
            accs.append(pq["prequential"](_learner(widths, variant, k, seed), x, y, args.batch_size)[0])
        mean = statistics.mean(accs) if accs else float("nan")
        out[variant, k] = {"accuracy": mean, "ratio": ratios[variant, k]}
        cells = "".join(f"{a:.4f} | " for a in accs)
        print(f"| {variant} | {k} | {cells}{mean:.4f} | {ratios[variant, k]:.2f} |", flush=True)
    return out


if __name__ == "__main__":
    main()
