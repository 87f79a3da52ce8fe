"""What a river user's loop costs: ``predict_one`` then ``learn_one`` on every sample, wall and CPU time.

For each stream of ``river_streams.py``, the default ``AMClassifier`` with and without its linear companion,
after a warm-up model in the same process (so that the process's one-time costs, imports and first
factorisations, are not counted; the warm-up's own time is printed as the first model's). CPU time counts
every thread of the process: a thread that spins while waiting for work (a BLAS library's, torch's second one)
shows there, not in the wall time. Then, on a model trained on the stream, the mean time of one
``predict_one`` and one ``learn_one`` call.

    python benchmarks/river_loop.py [--n 8000] [--seed 0] [--torch-threads 1] [--streams NAME ...]

Figures: ``benchmarks/README.md``, "One BLAS thread for the companion" and "Per-sample overhead and the first
model".
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from river import datasets

from stream_am import AMClassifier

sys.path.insert(0, str(Path(__file__).parent))
import river_streams  # noqa: E402  (a sibling script, not a package)


def loop(data: list[tuple[dict, Any]], companion: bool, seed: int) -> tuple[float, float]:
    """Wall and CPU seconds of predicting then learning every sample of ``data``."""
    model = AMClassifier(seed=seed, companion=companion)
    wall, cpu = time.perf_counter(), time.process_time()
    for x, y in data:
        model.predict_one(x)
        model.learn_one(x, y)
    return time.perf_counter() - wall, time.process_time() - cpu


def per_call(data: list[tuple[dict, Any]], companion: bool, seed: int, repeats: int = 5) -> tuple[float, float]:
    """Median microseconds of one ``predict_one`` on a model trained on ``data``, and mean of one ``learn_one``
    (its share of the steps included) while it learned."""
    model = AMClassifier(seed=seed, companion=companion)
    start = time.perf_counter()
    for x, y in data:
        model.learn_one(x, y)
    learn = (time.perf_counter() - start) / len(data) * 1e6
    sample = data[: min(len(data), 2000)]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for x, _ in sample:
            model.predict_one(x)
        times.append((time.perf_counter() - start) / len(sample) * 1e6)
    return statistics.median(times), learn


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8000, help="samples of each stream (at most)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=1, help="torch's intra-op threads (the process's)")
    names = list(river_streams.streams(0, 0))
    parser.add_argument("--streams", nargs="*", default=["hyperplane", "digits", "agrawal-switch"], choices=names)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be at least 1, got {args.n}")
    if args.torch_threads < 1:
        parser.error(f"--torch-threads must be at least 1, got {args.torch_threads}")
    torch.set_num_threads(args.torch_threads)
    start = time.perf_counter()
    warm = AMClassifier(seed=args.seed)
    for x, y in datasets.Phishing().take(40):  # the first model: one step, the companion built
        warm.learn_one(x, y)
        warm.predict_one(x)
    print(f"first model (40 samples, one step): {time.perf_counter() - start:.3f} s")
    print("| stream | companion | wall s | CPU s | CPU / wall | predict_one us | learn_one us |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    make = river_streams.streams(args.n, args.seed)
    for name in args.streams:
        data = list(make[name]())[: args.n]
        for companion in (True, False):
            wall, cpu = loop(data, companion, args.seed)
            predict, learn = per_call(data, companion, args.seed)
            rows.append({"stream": name, "companion": companion, "wall": wall, "cpu": cpu, "predict_us": predict,
                         "learn_us": learn})
            print(f"| {name} ({len(data)}) | {'on' if companion else 'off'} | {wall:.2f} | {cpu:.2f} "
                  f"| {cpu / wall:.2f} | {predict:.0f} | {learn:.0f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
