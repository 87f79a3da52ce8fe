"""``stream-am demo``: stream scikit-learn's digits through AM learners and print prequential accuracy.

Each sample is predicted first, then learned (test-then-train), one pass, as a river stream of dicts.
Runs offline in a few seconds.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from stream_am import arguments

__all__ = ["main"]

_DESCRIPTION = (
    "Stream scikit-learn's digits (1,797 samples, shuffled) once through AM-mem, AM-Adam and river's "
    "SoftmaxRegression; every sample is predicted, then learned, and the running accuracy is printed."
)


def _learners(seed: int) -> dict[str, Any]:
    from river import linear_model, preprocessing

    from stream_am import AMClassifier

    return {
        "AM-mem, hidden (64, 64)": AMClassifier(hidden_sizes=(64, 64), variant="mem", seed=seed),
        "AM-Adam, hidden (64, 64)": AMClassifier(hidden_sizes=(64, 64), variant="adam", seed=seed),
        "river SoftmaxRegression": preprocessing.StandardScaler() | linear_model.SoftmaxRegression(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns 0."""
    import numpy as np
    from river import metrics
    from sklearn.datasets import load_digits

    parser = argparse.ArgumentParser(prog="stream-am demo", description=_DESCRIPTION)
    parser.add_argument("--seed", type=arguments.seed, default=0, help="shuffling and model seed (default 0)")
    parser.add_argument("--every", type=arguments.whole(1), default=300,
                        help="print the accuracy every N samples (default 300)")
    args = parser.parse_args(argv)

    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(args.seed).permutation(len(y))
    stream = [({f"px{j}": float(v) for j, v in enumerate(x[i])}, int(y[i])) for i in order]
    marks = list(range(args.every, len(stream) + 1, args.every))
    print(f"digits: {len(stream)} samples, 64 features, 10 classes, one pass, seed {args.seed}")
    print("prequential accuracy (each sample predicted, then learned) after this many samples:\n")
    print(f"{'learner':<26}" + "".join(f"{m:>7}" for m in marks) + f"{'final':>8}{'samples/s':>11}")
    for name, model in _learners(args.seed).items():
        acc = metrics.Accuracy()
        start = time.perf_counter()
        cells = []
        for i, (xi, yi) in enumerate(stream, 1):
            pred = model.predict_one(xi)
            if pred is not None:
                acc.update(yi, pred)
            model.learn_one(xi, yi)
            if i in marks:
                cells.append(f"{acc.get():>7.3f}")
        rate = len(stream) / (time.perf_counter() - start)
        print(f"{name:<26}{''.join(cells)}{acc.get():>8.3f}{rate:>11,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
