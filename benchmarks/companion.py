"""The companions on the scenario suite: each scenario's ``AM-mem`` with ``companion=False``, with the linear
companion alone (the quadratic one switched off), and with the default (``companion=True``: both where the inputs
are narrow), run one after the other in this process, the headline metric of each.

A companion (:mod:`stream_am.estimators.companion`) is a ridge model beside the network, on the inputs
(linear) or on their products too (quadratic, :mod:`stream_am.estimators.basis`), that answers a sample where
the recent stream shows it is better. The scenarios' ``AM-mem`` keeps a memory in every layer, so it has them by
default.

    python benchmarks/companion.py [--seed 0] [--hidden 128 128] [--scenarios NAME ...] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch
from stream_am.scenarios import RunConfig, _common, continual, drift, execute, stationary

from stream_am import scenarios

HEADLINE = ("final_avg_acc", "accuracy")
MODULES = (_common, continual, drift, stationary)


def headline(doc: dict[str, Any]) -> float:
    metrics = doc["learners"]["AM-mem"]
    return float(next(metrics[k] for k in HEADLINE if k in metrics))


def run(name: str, cfg: RunConfig, companion: str) -> float:
    """``name``'s headline metric for the scenarios' ``AM-mem`` with ``companion``: "off", "linear" or "default"."""
    original = _common.make_learner

    def make(learner: str, config: RunConfig, activation: str = "relu", **extra: Any) -> Any:
        model = original(learner, config, activation, **extra)
        if learner == "AM-mem":
            model.companion = companion != "off"
            if companion == "linear":
                model._keeps_quadratic = lambda engine, n_inputs: False
        return model

    try:
        for module in MODULES:
            module.make_learner = make  # type: ignore[assignment]
        return headline(execute(scenarios.get(name), cfg))
    finally:
        for module in MODULES:
            module.make_learner = original  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hidden", type=int, nargs="*", default=None)
    parser.add_argument("--quick", action="store_true")
    names = [n for n in scenarios.names() if not n.startswith("sign-")]  # (their AM-mem runs two activations)
    parser.add_argument("--scenarios", nargs="*", default=names, choices=names)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    print("| scenario | AM-mem, companion=False | linear companion only | AM-mem (companions) | change from linear "
          "only (points) | change from none (points) |\n|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.scenarios:
            extra = {} if args.hidden is None else {"hidden": tuple(args.hidden)}
            cfg = RunConfig(out=Path(tmp) / name, quick=args.quick, seed=args.seed, progress=False,
                            learners=("AM-mem",), **extra)
            alone, linear, paired = (run(name, cfg, mode) for mode in ("off", "linear", "default"))
            rows.append({"scenario": name, "alone": alone, "linear": linear, "pair": paired})
            print(f"| {name} | {alone:.3f} | {linear:.3f} | {paired:.3f} | {100 * (paired - linear):+.1f} | "
                  f"{100 * (paired - alone):+.1f} |", flush=True)
    return rows


if __name__ == "__main__":
    main()
