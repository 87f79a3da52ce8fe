"""Prequential (test-then-train) accuracy and speed on scikit-learn's digits: AM versus backprop.

One pass over the shuffled, standardised digits in mini-batches; each batch is predicted before the learner
sees its labels. Learners share the network builder and its seed, so every comparison is like for like.

    python benchmarks/prequential.py [--seeds 0 1 2 3 4] [--batch-size 32] [--threads 1] [--widths 64,64,64,10 ...]

With several seeds (each one orders the digits and initialises the networks) every learner runs once per
seed and the table gives each seed's accuracy, their mean and standard deviation; the margins compare means.
On 1,797 samples one seed is not enough to rank two learners: on 64-64-64-10 the same AM-mem ends between
0.82 and 0.90 depending on the seed, and two variants trade places from one seed to the next.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from stream_am import OnlineAM
from stream_am.backprop import BackpropLearner
from stream_am.estimators import build_mlp


def digits(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(y))
    x = StandardScaler().fit_transform(x[order]).astype(np.float32)
    return torch.from_numpy(x), torch.from_numpy(y[order]).long()


def prequential(learner, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Accuracy of predictions made before learning each batch (the first batch is not scored), samples/s."""
    correct = seen = 0
    start = time.perf_counter()
    for i in range(0, len(y), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        if i > 0:
            correct += int((learner.predict(xb).argmax(1) == yb).sum())
            seen += len(yb)
        learner.partial_fit(xb, yb)
    return correct / seen, len(y) / (time.perf_counter() - start)


def learners(widths: list[int], seed: int) -> dict[str, Callable[[], object]]:
    def net():
        return build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), "relu", seed=seed)

    out: dict[str, Callable[[], object]] = {
        "AM-mem": lambda: OnlineAM(net(), variant="mem", seed=seed),
        "AM-Adam": lambda: OnlineAM(net(), variant="adam", seed=seed),
        "AM-auto": lambda: OnlineAM(net(), variant="auto", seed=seed),
        "AM-mem, Adam readout": lambda: OnlineAM(net(), variant="mem", readout="adam", seed=seed),
        "AM-Adam, Adam readout": lambda: OnlineAM(net(), variant="adam", readout="adam", seed=seed),
        "AM-mem, solve_every=4": lambda: OnlineAM(net(), variant="mem", solve_every=4, seed=seed),
        "AM-mem, 3 code steps": lambda: OnlineAM(net(), variant="mem", code_steps=3, seed=seed),
        "AM-Adam, 3 code steps": lambda: OnlineAM(net(), variant="adam", code_steps=3, seed=seed),
    }
    for opt, lrs in (("adam", (1e-3, 3e-3, 1e-2)), ("sgd", (1e-2, 3e-2, 1e-1))):
        for lr in lrs:
            out[f"backprop-{opt} lr={lr:g}"] = lambda opt=opt, lr=lr: BackpropLearner(
                net(), optimizer=opt, lr=lr, momentum=0.9 if opt == "sgd" else 0.0, seed=seed
            )
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed (default: 0)")
    parser.add_argument("--seed", type=int, default=None, help="a single seed (the same as --seeds SEED)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--widths", nargs="*", default=["64,64,64,10", "64,256,256,10"])
    args = parser.parse_args(argv)
    seeds = [args.seed] if args.seed is not None else args.seeds
    if len(set(seeds)) != len(seeds):
        parser.error(f"--seeds must be distinct, got {seeds}")
    torch.set_num_threads(args.threads)
    data = {seed: digits(seed) for seed in seeds}
    results: dict[str, dict[str, float]] = {}
    for spec in args.widths:
        widths = [int(w) for w in spec.split(",")]
        print(f"\n## digits, network {spec}, batch {args.batch_size}, seeds {seeds}, {args.threads} thread(s)\n")
        per_seed = " | ".join(f"seed {seed}" for seed in seeds)
        print(f"| learner | {per_seed} | mean | sd | samples/s |\n|---|{'---|' * len(seeds)}---|---|---|")
        for name in learners(widths, seeds[0]):
            runs = [prequential(learners(widths, seed)[name](), *data[seed], args.batch_size) for seed in seeds]
            accs = np.array([acc for acc, _ in runs])
            sd = float(accs.std(ddof=1)) if len(seeds) > 1 else 0.0
            speed = float(np.mean([s for _, s in runs]))
            results[f"{spec} {name}"] = {"accuracy": float(accs.mean()), "sd": sd, "samples_per_s": speed}
            cells = " | ".join(f"{a:.4f}" for a in accs)
            print(f"| {name} | {cells} | {accs.mean():.4f} | {sd:.4f} | {speed:,.0f} |")
        _margins(results, spec, len(seeds))
    return results


def _margins(results: dict[str, dict[str, float]], spec: str, n_seeds: int) -> None:
    """Print the issues' accuracy margins on network ``spec`` (on the means over ``n_seeds`` seeds)."""
    over = f" (mean of {n_seeds} seeds)" if n_seeds > 1 else ""
    best_bp = max(v["accuracy"] for k, v in results.items() if k.startswith(f"{spec} ") and "backprop-adam" in k)
    for am in ("AM-mem", "AM-Adam", "AM-auto"):
        margin = results[f"{spec} {am}"]["accuracy"] - best_bp
        print(f"\n{am} minus best backprop Adam{over}: {100 * margin:+.2f} points (target: >= -1)")
    best = max(results[f"{spec} {am}"]["accuracy"] for am in ("AM-mem", "AM-Adam"))
    margin = results[f"{spec} AM-auto"]["accuracy"] - best
    print(f"\nAM-auto minus the best single variant{over}: {100 * margin:+.2f} points (target: >= -1)")


if __name__ == "__main__":
    main()
