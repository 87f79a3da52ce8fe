"""One rank of the data-parallel tests (run as a script by tests/test_distributed.py), and the shared setup.

``python tests/distributed_worker.py CONFIG OUT`` with ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` set: trains a :class:`DataParallelAM` on its share of every batch and writes
``OUT/rank{R}.safetensors`` (the learner's state) and ``OUT/rank{R}.json`` (the step statistics and predictions).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from stream_am import AMClassifier, OnlineAM
from stream_am.estimators import build_mlp

N_IN, N_OUT, BATCH = 6, 3, 32


def free_port() -> int:
    """A loopback port free right now (for a rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def group_of_one() -> Iterator[None]:
    """A gloo process group of one rank in this process, destroyed on exit."""
    import torch.distributed as dist

    port = free_port()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def make_learner(config: dict[str, Any]) -> OnlineAM:
    """The learner of ``config`` (the same on every rank and in the single-process reference)."""
    module = build_mlp(N_IN, N_OUT, tuple(config.get("hidden", (12, 10))), seed=0)
    if config.get("through") == "AMClassifier":
        clf = AMClassifier(hidden_sizes=(12, 10), variant=config["variant"], seed=0)
        return clf._make_engine(module)
    return OnlineAM(module, variant=config["variant"], readout=config.get("readout", "memory"),
                    weight_steps=config.get("weight_steps", 1), memory_clock=config.get("memory_clock", "sample"),
                    mu=config.get("mu", 0.1), seed=0)


def batch(t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``t``-th global batch of a fixed nonlinear stream."""
    g = torch.Generator().manual_seed(1000 + t)
    x = torch.randn(BATCH, N_IN, generator=g)
    y = ((x[:, 0] * x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()).clamp(max=N_OUT - 1)
    return x, y


def share(t: int, rank: int, world: int, empty_step: int) -> slice:
    """Rank ``rank``'s rows of batch ``t``: equal parts, except at ``empty_step`` where rank 0 takes them all."""
    if t == empty_step:
        return slice(0, BATCH) if rank == 0 else slice(BATCH, BATCH)
    size = BATCH // world
    return slice(rank * size, (rank + 1) * size)


def eval_inputs() -> torch.Tensor:
    return torch.randn(64, N_IN, generator=torch.Generator().manual_seed(7))


def run(config: dict[str, Any], out: Path, rank: int, world: int) -> None:
    """Train on this rank's shares of the batches of ``config``; write the state and statistics."""
    from safetensors.torch import load_file, save_file

    from stream_am.distributed import DataParallelAM

    dp = DataParallelAM(make_learner({**config, **config.get(f"rank{rank}", {})}),  # (a rank may differ: refused)
                        check_every=config.get("check_every", 10))
    if config.get("load"):
        dp.load_state_dict(load_file(config["load"]))
    steps: list[dict[str, float]] = []
    for t in range(dp.n_steps, config["steps"]):
        if config.get("die_at") == t and rank == 1:
            os._exit(3)  # a rank that dies without a word
        if config.get("hang_at") == t and rank == 1:
            time.sleep(600)  # a rank that hangs
        x, y = batch(t)
        part = share(t, rank, world, config.get("empty_step", -1))
        if config.get("perturb_at") == t and rank == 1:
            with torch.no_grad():
                dp.learner.module[0].weight[0, 0] += 0.5  # a rank whose weights drift away from the others'
        try:
            steps.append(dp.partial_fit(x[part], y[part]))
        except (RuntimeError, ValueError) as exc:
            if "perturb_at" not in config and "rank1" not in config:
                raise
            (out / f"{config['name']}.rank{rank}.error").write_text(str(exc))
            return
        if config.get("checkpoint") and rank == 0:
            save_file({k: v.contiguous().clone() for k, v in dp.state_dict().items()}, config["checkpoint"])
    name = f"{config.get('name', 'run')}.rank{rank}"
    save_file({k: v.contiguous().clone() for k, v in dp.state_dict().items()}, str(out / f"{name}.safetensors"))
    (out / f"{name}.json").write_text(json.dumps({"steps": steps, "predict": dp.predict(eval_inputs()).tolist()}))


def main(argv: list[str]) -> int:
    from stream_am.distributed import init_process_group

    configs, out = json.loads(argv[0]), Path(argv[1])
    torch.set_num_threads(1)
    init_process_group("gloo", timeout_s=float(os.environ.get("DP_TEST_TIMEOUT", "30")))
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    for config in configs:
        run(config, out, rank, world)
    import torch.distributed as dist

    # leave together and take the group down before the interpreter exits: gloo's threads alive at exit abort
    # the process ("terminate called without an active exception", SIGABRT), seen about once in ten runs
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def write_csvs(directory: Path, files: int = 2, rows: int = 640) -> list[Path]:
    """``files`` CSV files of ``rows`` rows: features ``f0..f5`` and the class in ``label``."""
    import pandas as pd

    paths = []
    for i in range(files):
        x, y = zip(*(batch(1000 * i + t) for t in range(rows // BATCH)), strict=True)
        frame = pd.DataFrame(torch.cat(x).numpy(), columns=[f"f{j}" for j in range(N_IN)])
        frame["label"] = torch.cat(y).numpy()
        paths.append(directory / f"part{i}.csv")
        frame.to_csv(paths[-1], index=False)
    return paths
