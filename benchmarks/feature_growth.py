"""Features that keep arriving: each sample brings a feature never seen before (as hashed tokens or sparse ids do).

Every sample holds one shared feature and one new one; ``learn_one`` over ``--n`` samples, wall and CPU time, for
the default ``AMClassifier`` (``hidden_sizes=(8,)``) with and without its linear companion. Each new feature grows
the network's first memory and the companion's sums (``n_features^2`` numbers each), and every refresh of the
input frame re-expresses them: what this measures is the cost of that growth, per thousand features.

    python benchmarks/feature_growth.py [--n 1000 2000] [--seed 0]

Figures: ``benchmarks/README.md``, "Features that keep arriving".
"""

from __future__ import annotations

import argparse
import time

import torch

from stream_am import AMClassifier


def run(n: int, companion: bool, seed: int) -> tuple[float, float]:
    """Wall and CPU seconds of learning ``n`` samples, each with a new feature."""
    model = AMClassifier(hidden_sizes=(8,), seed=seed, companion=companion)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        model.learn_one({"shared": float(i % 3), f"f{i}": 1.0}, i % 2)
    assert model.n_features_in_ == n + 1
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.n):
        parser.error("--n: each must be at least 1")
    torch.set_num_threads(1)
    rows = []
    print("| new features | companion | wall s | CPU s |\n|---|---|---|---|")
    for n in args.n:
        for companion in (True, False):
            wall, cpu = run(n, companion, args.seed)
            rows.append({"n": n, "companion": companion, "wall": wall, "cpu": cpu})
            print(f"| {n:,} | {'yes' if companion else 'no'} | {wall:.2f} | {cpu:.2f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
