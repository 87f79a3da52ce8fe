"""The memory clocks on an imbalanced stream: accuracy and macro-F1, class clock against sample clock.

The class clock ages a class only in the mini-batches that hold it, so a class rare enough to miss many
batches keeps more than its frequency's share of every memory (``docs/method.md``). This measures what that
does where it matters most: four classes at 85 / 10 / 3 / 2 % (scikit-learn's ``make_classification``,
generated here, offline), prequential (predict each chunk of 64, then learn it), ``AMClassifier`` defaults
but the clock and ``batch_size``.

    python benchmarks/imbalanced.py [--n 6000] [--batch-sizes 32 8 1] [--seed 0]
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch
from sklearn.datasets import make_classification
from sklearn.metrics import f1_score

from stream_am import AMClassifier

WEIGHTS = [0.85, 0.10, 0.03, 0.02]
CHUNK = 64


def run(X: np.ndarray, y: np.ndarray, clock: str, batch_size: int, seed: int) -> dict[str, float]:
    model = AMClassifier(memory_clock=clock, batch_size=batch_size, seed=seed)
    predicted = []
    for i in range(0, len(y), CHUNK):
        xb, yb = X[i : i + CHUNK], y[i : i + CHUNK]
        if i:  # test, then train
            predicted.append(model.predict(xb))
        model.partial_fit(xb, yb, classes=list(range(len(WEIGHTS))))
    p, truth = np.concatenate(predicted), y[CHUNK:]
    return {"accuracy": float(np.mean(p == truth)), "macro_f1": float(f1_score(truth, p, average="macro"))}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=6000)
    parser.add_argument("--batch-sizes", type=int, nargs="*", default=[32, 8, 1])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X, y = make_classification(n_samples=args.n, n_features=10, n_informative=6, n_classes=len(WEIGHTS),
                               weights=WEIGHTS, n_clusters_per_class=1, random_state=args.seed)
    rows = []
    print("| batch_size | accuracy, class clock | sample clock | macro-F1, class clock | sample clock |")
    print("|---|---|---|---|---|")
    for b in args.batch_sizes:
        got = {clock: run(X, y, clock, b, args.seed) for clock in ("class", "sample")}
        rows.append({"batch_size": b, **{f"{k} {c}": v for c, r in got.items() for k, v in r.items()}})
        print(f"| {b} | {got['class']['accuracy']:.3f} | {got['sample']['accuracy']:.3f} | "
              f"{got['class']['macro_f1']:.3f} | {got['sample']['macro_f1']:.3f} |")
    return rows


if __name__ == "__main__":
    main()
