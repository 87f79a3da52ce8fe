"""How often the code steps move the codes: the share of code updates the safeguard leaves at the forward code.

``AMClassifier`` (default, or ``--settings`` as JSON keyword arguments) learns each of ``river_streams.py``'s
streams with ``learn_many`` in chunks of 1,024 (mini-batches of 32 inside), and every code update of its network
is watched (``stream_am.codes.nesterov_descent`` wrapped in this process): ``moved`` is the share of updates that
changed the code at all (over the stream, and over its last fifth), ``evaluations`` the mean number of objective
evaluations per update (one more than its steps). A code that never moves leaves the hidden layers at their
initialisation: the single default step is undone by its safeguard whenever it would raise the batch's objective
(``docs/method.md``, "Defaults, and why").

    python benchmarks/code_steps.py [--n 20000] [--seed 0] [--streams NAME ...] [--settings JSON]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch

import stream_am.codes as codes
from stream_am import AMClassifier

CHUNK = 1024


def _river_streams() -> Any:
    spec = importlib.util.spec_from_file_location("river_streams", Path(__file__).with_name("river_streams.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["river_streams"] = module
    spec.loader.exec_module(module)
    return module


class Watch:
    """Wraps ``codes.nesterov_descent``: per code update, whether the code moved and how many evaluations."""

    def __init__(self) -> None:
        self.updates: list[tuple[bool, int]] = []
        self._inner = codes.nesterov_descent

    def __enter__(self) -> Watch:
        def watched(c0: torch.Tensor, value_and_grad: Any, *args: Any) -> Any:
            calls = 0

            def counted(c: torch.Tensor, need_grad: bool) -> Any:
                nonlocal calls
                calls += 1
                return value_and_grad(c, need_grad)

            c, aux = self._inner(c0, counted, *args)
            self.updates.append((not torch.equal(c, c0), calls))
            return c, aux

        codes.nesterov_descent = watched  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        codes.nesterov_descent = self._inner  # type: ignore[assignment]


def run(samples: list[tuple[dict, Any]], settings: dict[str, Any], seed: int) -> dict[str, Any]:
    """The watched code updates of one stream: how many, the share that moved (all, last fifth), evaluations."""
    model = AMClassifier(seed=seed, **settings)
    with Watch() as watch:
        for start in range(0, len(samples), CHUNK):
            chunk = samples[start : start + CHUNK]
            model.learn_many(pd.DataFrame([x for x, _ in chunk]), pd.Series([y for _, y in chunk]))
    updates = watch.updates
    if not updates:
        raise ValueError(f"no code update in {len(samples)} samples (a network without hidden layers?)")
    last = updates[len(updates) * 4 // 5 :]
    return {"samples": len(samples), "updates": len(updates), "moved": sum(m for m, _ in updates) / len(updates),
            "moved_last": sum(m for m, _ in last) / len(last), "evaluations": sum(c for _, c in updates) / len(updates)}


def main(argv: list[str] | None = None) -> dict[str, dict[str, Any]]:
    river_streams = _river_streams()
    names = list(river_streams.streams(0, 0))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="samples of each synthetic stream")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--streams", nargs="*", default=names, choices=names)
    parser.add_argument("--settings", default="{}", metavar="JSON", help="AMClassifier keyword arguments")
    args = parser.parse_args(argv)
    try:
        settings = json.loads(args.settings)
    except json.JSONDecodeError as exc:
        parser.error(f"--settings: not JSON ({exc})")
    if not isinstance(settings, dict):
        parser.error("--settings: must be a JSON object of keyword arguments")
    if args.n < 1:
        parser.error("--n must be at least 1")
    torch.set_num_threads(1)
    make = river_streams.streams(args.n, args.seed)
    print(f"settings {json.dumps(settings)}; code updates of the network, chunks of {CHUNK}\n")
    print("| stream | samples | code updates | moved | moved, last fifth | evaluations per update |")
    print("|---|---|---|---|---|---|")
    results = {}
    for name in args.streams:
        row = results[name] = run(list(make[name]()), settings, args.seed)  # --n cuts the synthetic ones
        print(f"| {name} | {row['samples']:,} | {row['updates']:,} | {row['moved']:.3f} | {row['moved_last']:.3f} | "
              f"{row['evaluations']:.2f} |", flush=True)
    return results


if __name__ == "__main__":
    main()
