"""A feature that arrives late: is it learned? Accuracy once it has been there a while, against a control.

Five standard normal features (the first weakly informative), then, from sample ``t0`` on, a sixth that
carries the label (``offset + 2.5 * (y - 0.5)`` plus unit noise; about 0.89 is reachable from it alone).
Prequential (predict each chunk of 50, then learn it), ``AMClassifier`` defaults but ``batch_size``; scored
from 200 samples after ``t0`` to the end. The control has the sixth feature from the first sample.

    python benchmarks/late_feature.py [--n 1500] [--t0 320] [--offset 50] [--batch-sizes 1 32] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd
import torch

from stream_am import AMClassifier

CHUNK = 50


def run(n: int, t0: int, offset: float, batch_size: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    y = rng.integers(2, size=n)
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"n{i}" for i in range(5)])
    X["n0"] += 0.3 * (y - 0.5)
    X["late"] = np.where(np.arange(n) >= t0, offset + 2.5 * (y - 0.5) + rng.normal(size=n), np.nan)
    model, hits = AMClassifier(seed=seed, batch_size=batch_size), []
    for lo in range(0, n, CHUNK):
        chunk = X.iloc[lo : lo + CHUNK].dropna(axis=1, how="all")  # the column is absent until it arrives
        target = pd.Series(y[lo : lo + CHUNK], index=chunk.index)
        if lo >= t0 + 200:
            hits.extend(np.asarray(model.predict_many(chunk)) == target.to_numpy())
        model.learn_many(chunk, target)
    return float(np.mean(hits))


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--t0", type=int, default=320)
    parser.add_argument("--offset", type=float, default=50.0)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[1, 32])
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    print("| batch_size | seed | late feature | control (from the start) |")
    print("|---|---|---|---|")
    for b in args.batch_sizes:
        for seed in args.seeds:
            late = run(args.n, args.t0, args.offset, b, seed)
            control = run(args.n, 0, args.offset, b, seed)
            rows.append({"batch_size": b, "seed": seed, "late": late, "control": control})
            print(f"| {b} | {seed} | {late:.3f} | {control:.3f} |")
    return rows


if __name__ == "__main__":
    main()
