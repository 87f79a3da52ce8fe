"""Per-layer variants: what a memory costs against Adam and backprop per layer, and what each mix scores.

Two tables, on one CPU thread: (1) for single ``Linear`` layers, the median time of a memory fit (fold and
solve), an AM-Adam fit and a backprop step (forward, backward, ``torch.optim.Adam``) of the same layer on the
same batch, with the cost model's estimate of the memory's extra cost (``stream_am.variants``); (2) the
prequential accuracy on digits (as ``prequential.py`` measures it) of every per-layer mix of ``"mem"`` and
``"adam"``, and of ``"auto"`` with the layers (and, if not every step, the solve cadence) it chose, per seed
and averaged over ``--seeds``.

    python benchmarks/variants.py [--layers 65x64/b32 ...] [--widths 64,64,64,10 ...] [--repeats 30]
                                  [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import statistics
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from stream_am import OnlineAM
from stream_am.estimators import build_mlp
from stream_am.network import CodeBlock
from stream_am.updaters import AdamUpdater, MemoryUpdater
from stream_am.variants import backprop_cost, memory_extra_cost

LAYERS = ["11x64/b32", "65x64/b32", "65x256/b32", "257x256/b32", "257x256/b128", "785x64/b32", "785x256/b128"]


def _sibling(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def layer_costs(spec: str, repeats: int) -> dict[str, float]:
    """Milliseconds of a memory fit, an Adam fit and a backprop step of one layer ``d x k`` (bias included)."""
    shape, batch = spec.split("/b")
    d, k = (int(v) for v in shape.split("x"))
    b = int(batch)
    g = torch.Generator().manual_seed(0)
    a, c = torch.relu(torch.randn(b, d - 1, generator=g)), torch.randn(b, k, generator=g)
    mem, adam = MemoryUpdater(nn.Linear(d - 1, k), 1e-3, 1e-2), AdamUpdater(CodeBlock(nn.Linear(d - 1, k)), 5e-3)
    layer = nn.Linear(d - 1, k)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    median_ms = _sibling("memory_solvers")._time  # the median of ``repeats`` calls after one warm-up, in ms

    def backprop() -> None:
        opt.zero_grad(set_to_none=True)
        nn.functional.mse_loss(layer(a.clone().requires_grad_(True)), c).backward()
        opt.step()

    return {
        "mem": median_ms(lambda: mem.fit(a, c, b), repeats),
        "adam": median_ms(lambda: adam.fit(a, c, b), repeats),
        "bp": median_ms(backprop, repeats),
        "model_extra": memory_extra_cost(layer, b) / 1e3,
        "model_bp": backprop_cost(layer, b) / 1e3,
    }


def mixes(widths: list[int], seed: int = 0) -> dict[str, float]:
    """Prequential digits accuracy of every per-layer mix, and of ``auto`` (keyed ``auto=<its choice>``, with
    ``, solve_every=<k>`` when it does not solve every step)."""
    pq = _sibling("prequential")
    x, y = pq.digits(seed)
    out = {}
    for mix in [*itertools.product(("mem", "adam"), repeat=len(widths) - 2), "auto"]:
        am = OnlineAM(build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), "relu", seed=seed),
                      variant=mix if mix == "auto" else list(mix), seed=seed)
        acc, _ = pq.prequential(am, x, y, 32)
        every = "" if am.solve_every_ == 1 else f", solve_every={am.solve_every_}"
        out[f"auto={'/'.join(am.variants_)}{every}" if mix == "auto" else "/".join(mix)] = acc
    return out


def main(argv: list[str] | None = None) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", nargs="*", default=LAYERS)
    parser.add_argument("--widths", nargs="*", default=["64,64,64,10", "64,256,256,10"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    costs, accuracy = {}, {}
    print("| layer | memory ms | Adam ms | backprop ms | memory / bp | Adam / bp | model: memory extra ms "
          "| model: bp ms |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.layers:
        t = costs[spec] = layer_costs(spec, args.repeats)
        print(f"| {spec} | {t['mem']:.3f} | {t['adam']:.3f} | {t['bp']:.3f} | {t['mem'] / t['bp']:.2f} "
              f"| {t['adam'] / t['bp']:.2f} | {t['model_extra']:.3f} | {t['model_bp']:.3f} |", flush=True)
    for spec in args.widths:
        per_seed = [mixes([int(w) for w in spec.split(",")], seed) for seed in args.seeds]
        for seed, result in zip(args.seeds, per_seed, strict=True):
            print(f"\n{spec}, seed {seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in result.items()), flush=True)
        accuracy[spec] = {k: statistics.mean(r[k] for r in per_seed) for k in per_seed[0]}
        if len(args.seeds) > 1:
            print(f"\n{spec}, mean: " + ", ".join(f"{k} {v:.4f}" for k, v in accuracy[spec].items()), flush=True)
    return costs, accuracy


if __name__ == "__main__":
    main()
