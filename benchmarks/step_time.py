"""Time one AM step against one backprop Adam step on the same network and mini-batch.

For each shape, AM-mem and AM-Adam (defaults; memories solved every 4th step; three code steps) and a plain
``torch.optim.Adam`` backprop step (its default implementation, and ``fused=True``, the kernel the AM
learners' Adam steps use) are timed *interleaved* in one process (so machine noise hits all of them
alike); each figure is the median, over ``--steps`` samples after ``--warmup`` warm-up samples, of the mean
time of one step in a block of consecutive steps: four, or enough to span 1,024 rows (32 steps at batch 32),
so that ``solve_every=4`` is charged for its solves and a class-clocked memory for its pass over the waiting
rows (blocks of four at every batch size, until the fourth session, did not charge that pass at batch 32 and
charged it by chance at 128). Each "/ bp" ratio is the median, over the rounds, of the ratio of the two
blocks of that round (paired: a slow spell of a shared machine hits both); the "ms" columns are medians.
Every AM learner here has the default class clock; the two "class clock / sample clock" columns are its
cost against ``memory_clock="sample"`` for AM-mem and AM-auto (the same layers and cadence as AM-auto chose),
each the median of the ratios of two blocks timed one right after the other. Every learner steps through the
same stream of ``STREAM_BATCHES`` mini-batches of i.i.d. labels, in turn (until the fifth session one batch,
repeated, was timed: it held every class, so no step ever left a class out, which under-charged the class
clock: a step that leaves a remembered class out gives that class back its share). ``64-64-10/b32`` and
``784-64-10/b32`` are ``AMClassifier``'s default network (one hidden layer of 64) on digits and on 784
features (MNIST-sized rows); ``64-256-256-10/b32`` is the wider digits network of ``variants.py``, where
``"auto"`` is measured against the best single variant. Ratios (AM /
backprop) are the result; absolute times vary with the machine. ``--clock cpu`` times the process's CPU time
instead of the wall clock: on a machine shared with other jobs, time spent descheduled then counts for nobody
(only meaningful on the CPU).

    python benchmarks/step_time.py [--threads 1 2] [--steps 30] [--device cpu|cuda] [--shapes NAME ...]
                                   [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import time
from typing import Any

import torch
from torch import nn

from stream_am import OnlineAM
from stream_am.estimators import build_mlp
from stream_am.network import decompose
from stream_am.updaters.class_memory import FLUSH_ROWS
from stream_am.variants import resolve_variants

BLOCK = 4  # steps per timed sample at least (a multiple of every solve_every timed here)
STREAM_BATCHES = 64  # distinct mini-batches each learner steps through, in turn


def block_steps(batch: int) -> int:
    """Steps per timed sample for mini-batches of ``batch``: a multiple of ``BLOCK`` that spans a class-clocked
    memory's window of waiting rows (``FLUSH_ROWS``), so that every sample is charged for one pass over the
    classes' sums (a median of shorter blocks would see a pass in fewer than half of them, and drop it)."""
    period = math.ceil(FLUSH_ROWS / batch)
    return BLOCK * math.ceil(period / BLOCK)

SHAPES = {
    "64-64-10/b32": ((64, 64, 10), 32),
    "64-64-64-10/b32": ((64, 64, 64, 10), 32),
    "64-256-256-10/b32": ((64, 256, 256, 10), 32),
    "784-64-10/b32": ((784, 64, 10), 32),
    "784-256-256-10/b128": ((784, 256, 256, 10), 128),
    "784-1024-1024-10/b256": ((784, 1024, 1024, 10), 256),
    "deep-10x256/b128": ((784, *([256] * 10), 10), 128),
}


class BackpropStep:
    """One end-to-end backprop step with torch.optim.Adam (the reference)."""

    def __init__(self, module: nn.Module, lr: float = 1e-3, fused: bool | None = None):
        self.module = module
        self.opt = torch.optim.Adam(module.parameters(), lr=lr, fused=fused)

    def partial_fit(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(self.module(x), y).backward()
        self.opt.step()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def stream_batches(
    n_inputs: int, n_classes: int, batch: int, seed: int = 0, device: torch.device | None = None,
    count: int = STREAM_BATCHES,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` mini-batches of ``batch`` Gaussian rows with i.i.d. uniform labels, stacked: ``X``
    (count x batch x n_inputs) and ``Y`` (count x batch). A stationary stream: most steps hold most classes,
    some leave one out (at batch 32 of ten classes, about a third of the steps)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(count, batch, n_inputs, generator=g)
    Y = torch.randint(0, n_classes, (count, batch), generator=g)
    device = device or torch.device("cpu")
    return X.to(device), Y.to(device)


def interleaved_medians(learners: dict[Any, Any], X: torch.Tensor, Y: torch.Tensor, steps: int, warmup: int,
                        clock: str = "wall", device: torch.device | None = None) -> dict[Any, float]:
    """Seconds of one step of each learner: the median, over ``steps`` samples after ``warmup``, of the mean step
    time in a block of :func:`block_steps` consecutive steps, the learners taking turns (so machine noise hits
    all alike); each learner steps through the mini-batches ``X``, ``Y`` (stacked, :func:`stream_batches`) in
    order, cycling."""
    blocks = interleaved_blocks(learners, X, Y, steps, warmup, clock, device)
    return {k: statistics.median(v) for k, v in blocks.items()}


def interleaved_blocks(learners: dict[Any, Any], X: torch.Tensor, Y: torch.Tensor, steps: int, warmup: int,
                       clock: str = "wall", device: torch.device | None = None) -> dict[Any, list[float]]:
    """The samples :func:`interleaved_medians` takes the medians of, in the order they were timed."""
    device = device or torch.device("cpu")
    times: dict[Any, list[float]] = {k: [] for k in learners}
    # a sample is a block of consecutive steps, so a learner whose cost is periodic (solve_every=4, a pass of
    # the waiting rows) is charged for its expensive steps: a median of single steps would only see cheap ones
    block, count = block_steps(X.shape[1]), X.shape[0]
    for i in range(warmup + steps):
        for name, learner in learners.items():
            _sync(device)
            t = CLOCKS[clock]()
            for j in range(i * block, (i + 1) * block):
                learner.partial_fit(X[j % count], Y[j % count])
            _sync(device)
            if i >= warmup:
                times[name].append((CLOCKS[clock]() - t) / block)
    return times


def time_shape(widths, batch, device, steps, warmup, seed=0, clock="wall"):
    X, Y = stream_batches(widths[0], widths[-1], batch, seed, device)

    def net():
        return build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), seed=seed).to(device)

    # the sample clock's learner takes the layers and cadence auto chooses with the class clock (the default)
    layers, every = resolve_variants("auto", decompose(net()), batch, None, class_clock=True)
    learners = {
        "AM-mem": OnlineAM(net(), variant="mem", device=str(device), seed=seed),
        "AM-mem sample": OnlineAM(net(), variant="mem", memory_clock="sample", device=str(device), seed=seed),
        "AM-auto": OnlineAM(net(), variant="auto", device=str(device), seed=seed),
        "AM-auto sample": OnlineAM(net(), variant=layers, solve_every=every, memory_clock="sample",
                                   device=str(device), seed=seed),
        "AM-Adam": OnlineAM(net(), variant="adam", device=str(device), seed=seed),
        "AM-mem/4": OnlineAM(net(), variant="mem", solve_every=4, device=str(device), seed=seed),
        "AM-mem 3": OnlineAM(net(), variant="mem", code_steps=3, device=str(device), seed=seed),
        "AM-Adam 3": OnlineAM(net(), variant="adam", code_steps=3, device=str(device), seed=seed),
        "backprop-Adam": BackpropStep(net()),
        "backprop-Adam fused": BackpropStep(net(), fused=True),
    }
    if device.type == "cuda":
        for v in ("mem", "adam"):
            learners[f"AM-{v} serial"] = OnlineAM(net(), variant=v, parallel_layers=False, device=str(device))
    blocks = interleaved_blocks(learners, X, Y, steps, warmup, clock, device)
    auto = learners["AM-auto"]
    assert isinstance(auto, OnlineAM)
    # every ratio is a median of ratios of blocks timed in the same round (paired, so that the load of a shared
    # machine, which changes between rounds, cancels): the clocks' cost, and each learner over backprop
    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(blocks[a], blocks[b], strict=True))

    costs = {v: paired(f"AM-{v}", f"AM-{v} sample") for v in ("mem", "auto")}
    ratios = {(k, ref): paired(k, ref) for k in blocks for ref in ("backprop-Adam", "backprop-Adam fused")}
    every = "" if auto.solve_every_ == 1 else f", solve every {auto.solve_every_}"
    return {k: statistics.median(v) for k, v in blocks.items()}, "/".join(auto.variants_) + every, costs, ratios


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--clock", default="wall", choices=list(CLOCKS))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.clock == "cpu" and device.type != "cpu":
        parser.error("--clock cpu times work on the CPU only; time a GPU with --clock wall")
    rows = []
    cuda_cols = " AM-mem serial / bp | AM-Adam serial / bp |" if device.type == "cuda" else ""
    print(
        "| shape | threads | backprop Adam ms | AM-mem ms | AM-Adam ms | AM-mem / bp | AM-Adam / bp "
        "| AM-mem solve_every=4 / bp | AM-mem 3 code steps / bp | AM-Adam 3 code steps / bp "
        "| fused-Adam bp ms | AM-mem / fused bp | AM-Adam / fused bp | AM-auto / bp | auto's layers "
        "| AM-mem class clock / sample clock | AM-auto class clock / sample clock |" + cuda_cols
    )
    print("|---" * (17 + 2 * (device.type == "cuda")) + "|")
    for threads in args.threads if device.type == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        for name in args.shapes:
            widths, batch = SHAPES[name]
            t, auto, clock, paired = time_shape(widths, batch, device, args.steps, args.warmup, clock=args.clock)
            bp, fbp = t["backprop-Adam"], t["backprop-Adam fused"]
            row = {"shape": name, "threads": threads, **{k: v * 1e3 for k, v in t.items()},
                   **{f"AM-{v} class / sample": r for v, r in clock.items()},
                   **{f"{k} / bp": paired[k, "backprop-Adam"] for k in t}}
            rows.append(row)

            def r(k: str, ref: str = "backprop-Adam", paired: dict = paired) -> str:
                return f"{paired[k, ref]:.2f}"

            extra = "".join(f" {r(k)} |" for k in ("AM-mem serial", "AM-Adam serial") if k in t)
            fused = "backprop-Adam fused"
            print(
                f"| {name} | {threads} | {bp * 1e3:.2f} | {t['AM-mem'] * 1e3:.2f} | {t['AM-Adam'] * 1e3:.2f} "
                f"| {r('AM-mem')} | {r('AM-Adam')} | {r('AM-mem/4')} "
                f"| {r('AM-mem 3')} | {r('AM-Adam 3')} | {fbp * 1e3:.2f} | {r('AM-mem', fused)} "
                f"| {r('AM-Adam', fused)} | {r('AM-auto')} | {auto} "
                f"| {clock['mem']:.2f} | {clock['auto']:.2f} |{extra}",
                flush=True,
            )
    if device.type == "cuda":
        print(f"\npeak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    print(f"peak process RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    return rows


if __name__ == "__main__":
    main()
