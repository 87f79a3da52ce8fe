"""Data-parallel AM: samples/s of the training job at 1 and 2 processes, and what one step communicates.

Writes a synthetic CSV stream (``--rows`` rows of ``--features`` standard normal features, 10 classes) to
``--out``, runs ``torchrun --standalone --nproc_per_node=P -m stream_am.distributed`` on it for each ``P`` in
``--procs`` (gloo, one torch thread per process) and prints the job's own ``samples_per_s`` (from its first
step to its last, start-up excluded); then, for each ``--shapes`` entry, the float64 numbers and bytes one step
sends (:func:`stream_am.distributed.step_payload`).

    python benchmarks/distributed.py --out /tmp/dp-bench [--rows 32000] [--procs 1 2] [--hidden 256]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from stream_am import OnlineAM
from stream_am.distributed import step_payload
from stream_am.estimators import build_mlp

SHAPES = ["64-256-10/mem", "64-256-10/adam", "784-256-10/mem", "784-256-10/adam", "784-256-256-10/auto"]


def write_stream(out: Path, rows: int, features: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features)).astype(np.float32)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame["label"] = (np.abs(x[:, :10]).argmax(1) + (x[:, 10] > 0)) % 10
    path = out / "stream.csv"
    frame.to_csv(path, index=False)
    return path


def run_job(path: Path, procs: int, hidden: str, batch: int, variant: str, out: Path) -> dict:
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m",
           "stream_am.distributed", "--source", str(path), "--target", "label", "--n-classes", "10", "--hidden",
           hidden, "--variant", variant, "--batch-size", str(batch), "--checkpoint-dir", str(out / f"ck{procs}"),
           "--checkpoint-every", "0", "--report-every", "0", "--backend", "gloo"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def payload(shape: str) -> dict:
    widths, variant = shape.split("/")
    sizes = [int(w) for w in widths.split("-")]
    am = OnlineAM(build_mlp(sizes[0], sizes[-1], tuple(sizes[1:-1]), seed=0), variant=variant)
    am.partial_fit(torch.randn(32, sizes[0]), torch.zeros(32, dtype=torch.long))
    return {"shape": shape, "variants": "/".join(am.variants_), **step_payload(am)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rows", type=int, default=32000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", default="256")
    parser.add_argument("--variant", default="mem")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shapes", nargs="*", default=SHAPES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_stream(args.out, args.rows, args.features, args.seed)
    jobs = {p: run_job(path, p, args.hidden, args.batch_size, args.variant, args.out) for p in args.procs}
    print(f"\n{args.features}-{args.hidden}-10 {args.variant}, global batch {args.batch_size}, {args.rows} rows")
    print("| processes | steps | samples/s | speed-up |\n|---|---|---|---|")
    base = jobs[args.procs[0]]["samples_per_s"]
    for p, r in jobs.items():
        print(f"| {p} | {r['step']} | {r['samples_per_s']:.0f} | {r['samples_per_s'] / base:.2f} |")
    rows = [payload(s) for s in args.shapes]
    print("\n| shape | layers | float64 statistics | collectives | scalar collectives | bytes per step |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['variants']} | {r['statistics']} | {r['collectives']} | "
              f"{r['scalar_collectives']} | {r['bytes']} |")
    return {"jobs": jobs, "payload": rows}


if __name__ == "__main__":
    main()
