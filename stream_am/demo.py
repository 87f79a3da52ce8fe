"""``stream-am demo``: stream scikit-learn's digits through AM learners and print prequential accuracy.

Each sample is predicted first, then learned (test-then-train), one pass, as a river stream of dicts.
Runs offline in a few seconds.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0."""
    from river import linear_model, metrics, preprocessing
    from sklearn.datasets import load_digits

    from stream_am import AMClassifier

    parser = argparse.ArgumentParser(prog="stream-am demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--every", type=int, default=300, help="print accuracy every N samples")
    args = parser.parse_args(argv)

    x, y = load_digits(return_X_y=True)
    import numpy as np

    order = np.random.default_rng(args.seed).permutation(len(y))
    stream = [({f"px{j}": float(v) for j, v in enumerate(x[i])}, int(y[i])) for i in order]
    learners: dict[str, Any] = {
        "AM-mem": AMClassifier(hidden_sizes=(64, 64), variant="mem", seed=args.seed),
        "AM-Adam": AMClassifier(hidden_sizes=(64, 64), variant="adam", seed=args.seed),
        "river LogisticRegression": preprocessing.StandardScaler() | linear_model.SoftmaxRegression(),
    }
    print(f"digits: {len(stream)} samples, 64 features, 10 classes; prequential accuracy (test-then-train)\n")
    for name, model in learners.items():
        acc = metrics.Accuracy()
        start = time.perf_counter()
        line = []
        for i, (xi, yi) in enumerate(stream, 1):
            pred = model.predict_one(xi)
            if pred is not None:
                acc.update(yi, pred)
            model.learn_one(xi, yi)
            if i % args.every == 0:
                line.append(f"{acc.get():.3f}")
        rate = len(stream) / (time.perf_counter() - start)
        print(f"{name:>26}: {' '.join(line)}  final {acc.get():.4f}  ({rate:,.0f} samples/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
