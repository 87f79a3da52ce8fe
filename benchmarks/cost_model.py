"""Fit the constants of ``variant="auto"``'s cost model (``stream_am/variants.py``) to measured step costs.

For each network, every mix with the memories on top (``adam/.../adam`` up to ``mem/.../mem``; on deep
networks 0, 1, 2, 4 and all memories), solved every step and every second step, with the memory readout, and
the all-Adam and all-memory mixes with the Adam readout, each with class-clocked memories (the default for
classification) and with ``memory_clock="sample"``, are timed against a backprop Adam step as
``step_time.py`` times them (interleaved, in blocks of steps that span a class-clocked memory's pass over its
waiting rows, median; the process's CPU time by default; the library's constants were fitted on blocks of
four steps, which under-charge that pass: ``benchmarks/README.md``, "`auto` prices the class clock").
The ratios (AM step / backprop step) are then fitted by weighted least squares (steps within 1.6 to 2.3
backprop steps, where ``auto`` decides, weigh three times; a weak prior keeps the modelled backprop step
near the measured one), and the table prints each measured ratio beside the fitted model's and the current
constants' prediction. ``--load`` refits saved timings (``--save`` writes them, JSON); ``--fit`` fits only
the constants it names and keeps the others at the library's values.

    python benchmarks/cost_model.py [--networks 64-256-256-10/b32 ...] [--steps 15] [--clock cpu|wall]
                                    [--save FILE] [--load FILE ...] [--fit NAME ...]
"""

from __future__ import annotations

import argparse
import json
import math
import runpy
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.optimize import least_squares

from stream_am import OnlineAM, variants
from stream_am.estimators import build_mlp
from stream_am.network import decompose

NETWORKS = ["64-64-64-10/b32", "18-64-64-10/b32", "64-128-128-10/b32", "64-256-256-10/b32", "64-64-10/b32",
            "10-64-2/b32", "784-64-10/b32", "784-256-256-10/b128", "deep-10x256/b128", "784-1024-1024-10/b256"]
#: the constants of stream_am.variants, in the order of the features below (rates enter as 1 / rate)
BP_NAMES = ["BP_LAYER_US", "BP_RATE", "BP_PARAM_RATE"]
AM_NAMES = ["AM_STEP_US", "AM_CODE_US", "CODE_RATE", "ADAM_US", "ADAM_RATE", "READOUT_ADAM_US", "READOUT_ADAM_RATE",
            "MEMORY_US", "FOLD_RATE", "SOLVE_US", "SOLVE_COPY_RATE", "FACTOR_RATE", "TRSM_RATE", "CLASS_STEP_US",
            "CLASS_RATE"]
MEMORY_CLOCKS = ("class", "sample")


def parse(spec: str) -> tuple[list[int], int]:
    """``"64-256-256-10/b32"`` (or ``"deep-10x256/b128"``: 784 inputs, ten layers of 256) -> widths, batch."""
    shape, batch = spec.split("/b")
    if shape.startswith("deep-"):
        n, w = shape[len("deep-"):].split("x")
        return [784, *[int(w)] * int(n), 10], int(batch)
    return [int(w) for w in shape.split("-")], int(batch)


def configs(widths: list[int]) -> list[tuple[tuple[str, ...], int, str]]:
    n = len(widths) - 2
    tops = [t for t in range(n + 1) if n <= 2 or t in (0, 1, 2, 4, n)]
    out = [(("adam",) * (n - t) + ("mem",) * t, s, "memory") for t in tops for s in (1, 2)]
    return out + [(("adam",) * n, 1, "adam"), (("mem",) * n, 1, "adam")] if n else out


def measure(spec: str, steps: int, clock: str) -> list[dict[str, Any]]:
    """Median cost of one step of each config of ``spec`` and of a backprop Adam step, interleaved (us)."""
    st = runpy.run_path(str(Path(__file__).with_name("step_time.py")))
    widths, batch = parse(spec)
    X, Y = st["stream_batches"](widths[0], widths[-1], batch)

    def net() -> torch.nn.Sequential:
        return build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), seed=0)

    learners: dict[Any, Any] = {"bp": st["BackpropStep"](net())}
    learners.update({(*c, m): OnlineAM(net(), variant=list(c[0]), solve_every=c[1], readout=c[2], memory_clock=m)
                     for c in configs(widths) for m in MEMORY_CLOCKS
                     if m == "class" or "mem" in c[0] or c[2] == "memory"})  # no memory: the clock does nothing
    times = st["interleaved_medians"](learners, X, Y, steps, 3, clock)  # three warm-up samples
    bp = times.pop("bp") * 1e6
    return [{"network": spec, "variants": list(c[0]), "solve_every": c[1], "readout": c[2], "memory_clock": c[3],
             "us": v * 1e6, "bp_us": bp} for c, v in times.items()]


def _layers(widths: list[int]) -> list[tuple[int, int]]:
    return [(a + 1, b) for a, b in zip(widths[:-1], widths[1:], strict=True)]  # (inputs with bias, outputs)


def bp_features(widths: list[int], b: int) -> list[float]:
    layers = _layers(widths)
    return [len(layers), sum(6.0 * b * d * k for d, k in layers), sum(float(d * k) for d, k in layers)]


def am_features(widths: list[int], b: int, rules: list[str], s: int, readout: str, by_class: bool) -> list[float]:
    layers = _layers(widths)
    f = [1.0, float(len(layers) - 1), sum(float(b * k) for _, k in layers)] + [0.0] * 12
    for i, (rule, (d, k)) in enumerate(zip([*rules, "mem" if readout == "memory" else "adam"], layers, strict=True)):
        if rule == "mem":
            f[7:13] = [f[7] + 1, f[8] + 2.0 * b * d * (d + k),
                       f[9] + 1 / s, f[10] + d * (d + k) / s, f[11] + d**3 / 3 / s, f[12] + 2 * k * d * d / s]
            if by_class:
                f[13:] = [1.0, f[14] + 2.0 * b * d * (d + k)]
        elif i == len(layers) - 1:
            f[5:7] = [f[5] + 1, f[6] + 2.0 * b * d * k]
        else:
            f[3:5] = [f[3] + 1, f[4] + 2.0 * b * d * k]
    return f


def _as_coefficients(names: list[str], values: dict[str, float]) -> np.ndarray:
    return np.array([values[n] if n.endswith("_US") else 1.0 / values[n] for n in names])


def fit(rows: list[dict[str, Any]], names: list[str] | None = None) -> dict[str, float]:
    """The constants (``*_US`` in us, ``*_RATE`` per us) that best predict the measured ratios; only ``names``
    are fitted when given (the others keep the library's values)."""
    nets = sorted({r["network"] for r in rows})
    xb = {n: np.array(bp_features(*parse(n))) for n in nets}
    bp_measured = {n: statistics.median(r["bp_us"] for r in rows if r["network"] == n) for n in nets}
    xa = np.array([am_features(*parse(r["network"]), r["variants"], r["solve_every"], r["readout"], _by_class(r))
                   for r in rows])
    ratio = np.array([r["us"] / r["bp_us"] for r in rows])
    weight = np.where((ratio > 1.6) & (ratio < 2.3), 3.0, 1.0)
    start = np.concatenate([_as_coefficients(BP_NAMES, vars(variants)), _as_coefficients(AM_NAMES, vars(variants))])
    free = np.array([names is None or n in names for n in BP_NAMES + AM_NAMES])

    def residuals(q: np.ndarray) -> np.ndarray:
        p = np.zeros(len(start))
        p[free] = q
        c = np.exp(p) * start
        bp = np.array([xb[r["network"]] @ c[:3] for r in rows])
        prior = [0.3 * math.log(xb[n] @ c[:3] / bp_measured[n]) for n in nets]
        return np.concatenate([(xa @ c[3:] / bp - ratio) * weight, prior])

    p = np.zeros(len(start))
    p[free] = least_squares(residuals, np.zeros(int(free.sum())), bounds=(-10, 10)).x
    c = np.exp(p) * start
    return {n: float(v if n.endswith("_US") else 1.0 / v) for n, v in zip(BP_NAMES + AM_NAMES, c, strict=True)}


def predict(constants: dict[str, float], row: dict[str, Any]) -> float:
    """The ratio of ``row``'s step to a backprop step under ``constants`` (this script's own features)."""
    widths, b = parse(row["network"])
    bp = np.array(bp_features(widths, b)) @ _as_coefficients(BP_NAMES, constants)
    am = np.array(am_features(widths, b, row["variants"], row["solve_every"], row["readout"], _by_class(row)))
    return float(am @ _as_coefficients(AM_NAMES, constants) / bp)


def library_ratio(row: dict[str, Any]) -> float:
    """The same ratio as ``stream_am.variants`` predicts it today (its constants, its code)."""
    widths, b = parse(row["network"])
    net = decompose(build_mlp(widths[0], widths[-1], tuple(widths[1:-1]), seed=0))
    layers = [block.layer for block in net.blocks] + [net.out]
    bp = sum(variants.backprop_cost(layer, b) for layer in layers)
    return variants.step_cost(net, row["variants"], b, row["solve_every"], row["readout"], _by_class(row)) / bp


def _by_class(row: dict[str, Any]) -> bool:
    """Whether ``row`` was timed with class-clocked memories (timings saved before they existed: no)."""
    return row.get("memory_clock", "sample") == "class"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", nargs="*", default=NETWORKS)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"])
    parser.add_argument("--save", type=Path)
    parser.add_argument("--load", type=Path, nargs="*", default=[])
    parser.add_argument("--fit", nargs="+", choices=BP_NAMES + AM_NAMES, metavar="NAME",
                        help="fit only these constants (the others keep the library's values); default: all")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = [r for path in args.load for r in json.loads(path.read_text())]
    if not args.load:
        rows = [r for spec in args.networks for r in measure(spec, args.steps, args.clock)]
    if args.save:
        args.save.write_text(json.dumps(rows))
    fitted = fit(rows, args.fit)
    print("| network | code layers | solve_every | readout | memory clock | measured / bp | fitted model "
          "| current model |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        rules = "/".join(r["variants"]) if len(r["variants"]) <= 2 else f"{r['variants'].count('mem')} mem on top"
        print(f"| {r['network']} | {rules} | {r['solve_every']} | {r['readout']} | {r.get('memory_clock', 'sample')} "
              f"| {r['us'] / r['bp_us']:.2f} "
              f"| {predict(fitted, r):.2f} | {library_ratio(r):.2f} |")
    print("\n" + ", ".join(f"{n} = {v:.4g}" for n, v in fitted.items()))
    return {"rows": rows, "fitted": fitted}


if __name__ == "__main__":
    main()
