"""One long stream: does the default keep learning, and what does it leave on the table?

``AMClassifier`` on a stream of ``--n`` samples from one of river's generators with a fixed concept (no drift):
``rbf`` (``synth.RandomRBF``, 10 features, 5 classes) or ``agrawal`` (``synth.Agrawal``, function 0). Prequential in
chunks of 1,024 (each chunk predicted, then learned with ``learn_many``, mini-batches of 32 inside; the first,
predicted before any learning, counts as wrong), and the accuracy printed per tenth of the stream, for the default
and for each setting given as JSON keyword arguments (``--settings '{"code_steps": 3}' ...``). At the end every
model is saved and loaded back, and its probabilities on the last chunk compared (``reload equal``: bit for bit, in
this process). With ``--drift-at N`` the concept changes abruptly at sample ``N`` (rbf: new centroids, from
``seed_model=seed + 100``; agrawal: function 2), and the accuracy over the 5,000 and the 20,000 samples after the
change is printed too. Offline: the generators are river's.

    python benchmarks/long_stream.py [--stream rbf|agrawal] [--n 300000] [--seed 0] [--drift-at N]
                                     [--settings JSON ...]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from river.datasets import synth

from stream_am import AMClassifier

CHUNK = 1024
STREAMS = {
    "rbf": lambda seed: synth.RandomRBF(seed_model=seed, seed_sample=seed + 1, n_classes=5, n_features=10),
    "agrawal": lambda seed: synth.Agrawal(0, seed=seed),
}
AFTER = {  # the concept after --drift-at
    "rbf": lambda seed: synth.RandomRBF(seed_model=seed + 100, seed_sample=seed + 2, n_classes=5, n_features=10),
    "agrawal": lambda seed: synth.Agrawal(2, seed=seed + 1),
}


def samples(stream: str, n: int, seed: int, drift_at: int | None) -> Any:
    if drift_at is None:
        return STREAMS[stream](seed).take(n)
    return itertools.chain(STREAMS[stream](seed).take(drift_at), AFTER[stream](seed).take(n - drift_at))


def run(stream: str, n: int, seed: int, settings: dict[str, Any], drift_at: int | None = None) -> dict[str, Any]:
    """Windowed prequential accuracy (tenths of the stream), seconds, and whether a reload answers the same."""
    model, hits, xs, ys = AMClassifier(seed=seed, **settings), [], [], []
    start = time.perf_counter()
    for x, y in samples(stream, n, seed, drift_at):
        xs.append(x)
        ys.append(y)
        if len(xs) == CHUNK:
            X, Y = pd.DataFrame(xs), pd.Series(ys)
            predicted = model.predict_many(X)
            hits.extend((predicted.to_numpy() == Y.to_numpy()).tolist())
            model.learn_many(X, Y)
            last, xs, ys = X, [], []
    seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        again = AMClassifier.load(tmp)
        equal = bool((again.predict_proba_many(last).to_numpy() == model.predict_proba_many(last).to_numpy()).all())
    h, tenth = np.array(hits, dtype=float), max(1, len(hits) // 10)
    windows = [float(h[i : i + tenth].mean()) for i in range(0, tenth * 10, tenth)]
    after = {} if drift_at is None else {k: float(h[drift_at : drift_at + k].mean()) for k in (5_000, 20_000)}
    return {"windows": windows, "overall": float(h.mean()), "seconds": seconds, "reload_equal": equal,
            "after": after}


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stream", choices=sorted(STREAMS), default="rbf")
    parser.add_argument("--n", type=int, default=300_000, help="samples (at least 10 chunks of 1,024)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift-at", type=int, default=None, help="sample at which the concept changes")
    parser.add_argument("--settings", nargs="*", default=[], metavar="JSON",
                        help='AMClassifier keyword arguments besides the default, e.g. \'{"code_steps": 3}\'')
    args = parser.parse_args(argv)
    if args.n < 10 * CHUNK:
        parser.error(f"--n must be at least {10 * CHUNK} (ten chunks of {CHUNK})")
    if args.drift_at is not None and not 0 < args.drift_at <= args.n - 20_000:
        parser.error(f"--drift-at must be in [1, {args.n - 20_000}] (20,000 samples after it, of --n)")
    try:
        variants = [{}] + [json.loads(s) for s in args.settings]
    except json.JSONDecodeError as exc:
        parser.error(f"--settings: not JSON ({exc})")
    if not all(isinstance(v, dict) for v in variants):
        parser.error("--settings: each must be a JSON object of keyword arguments")
    torch.set_num_threads(1)
    drift = "" if args.drift_at is None else f", drift at {args.drift_at:,}"
    print(f"{args.stream}, {args.n:,} samples, seed {args.seed}{drift}: prequential accuracy per tenth of the stream\n")
    extra = "" if args.drift_at is None else " after 5k | after 20k |"
    print("| settings | " + " | ".join(f"{i + 1}" for i in range(10)) + " | all | s | reload equal |" + extra)
    print("|---" * (14 + 2 * (args.drift_at is not None)) + "|")
    rows = []
    for settings in variants:
        row = {"settings": settings, **run(args.stream, args.n, args.seed, settings, args.drift_at)}
        rows.append(row)
        cells = " | ".join(f"{w:.3f}" for w in row["windows"])
        after = "".join(f" {v:.3f} |" for v in row["after"].values())
        print(f"| {json.dumps(settings) if settings else 'default'} | {cells} | {row['overall']:.3f} | "
              f"{row['seconds']:.0f} | {row['reload_equal']} |{after}", flush=True)
    return rows


if __name__ == "__main__":
    main()
