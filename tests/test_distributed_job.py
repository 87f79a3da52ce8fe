"""The data-parallel training job: torchrun on 2 gloo ranks, checkpoints, resume, argument errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from distributed_worker import group_of_one, write_csvs
from helpers_engine import settled_state
from safetensors.torch import load_file

from stream_am import OnlineAM
from stream_am.distributed.checkpoint import load_checkpoint
from stream_am.distributed.job import main, train_stream
from stream_am.distributed.sources import file_rows, local_batches, shard
from stream_am.estimators import build_mlp

ARGS = ["--target", "label", "--n-classes", "3", "--hidden", "16", "--checkpoint-every", "5", "--report-every", "0"]


def _reference(paths: list[Path], steps: int | None = None) -> OnlineAM:
    """One process on consecutive batches of 32 rows: what the job must end equal to."""
    torch.set_num_threads(1)
    am = OnlineAM(build_mlp(6, 3, (16,), "relu", seed=0), variant="auto", loss="cross_entropy", seed=0)
    rows = list(file_rows(paths, "label"))
    for start in range(0, len(rows), 32):
        if steps is not None and am.n_steps >= steps:
            break
        chunk = rows[start : start + 32]
        am.partial_fit(torch.stack([torch.from_numpy(r[0]) for r in chunk]), torch.tensor([r[1] for r in chunk]))
    return am


def _assert_same(state: dict[str, torch.Tensor], am: OnlineAM | dict[str, torch.Tensor], rtol: float = 2e-3,
                 atol: float = 2e-4) -> None:
    want = settled_state(am.state_dict() if isinstance(am, OnlineAM) else am)
    state = settled_state(state)
    assert set(state) == set(want)
    for key, value in want.items():
        if key != "generator":
            torch.testing.assert_close(state[key].to(value.dtype), value, rtol=rtol, atol=atol,
                                       msg=lambda m, key=key: f"{key}: {m}")


def _torchrun(paths: list[Path], ckpt: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *extra,
           "-m", "stream_am.distributed", "--source", *map(str, paths), "--checkpoint-dir", str(ckpt), *ARGS]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _workers(proc: subprocess.Popen) -> list[int]:
    """The worker processes torchrun started (its children: each in its own session)."""
    found = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    return sorted(int(p) for p in found)


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in _workers(proc):
            os.kill(pid, signal.SIGKILL)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise


def test_job_on_two_ranks_ends_equal_to_one_process(tmp_path):
    paths = write_csvs(tmp_path)
    out, err = _finish(_torchrun(paths, tmp_path / "ck"), timeout=150)
    done = json.loads(out.strip().splitlines()[-1])
    assert done["event"] == "done" and done["step"] == 40 and done["samples"] == 1280, err[-2000:]
    assert done["samples_per_s"] > 0 and done["world_size"] == 2
    state, info = load_checkpoint(tmp_path / "ck")  # type: ignore[misc]
    assert info["step"] == 40 and info["config"]["batch_size"] == 32
    assert json.loads((tmp_path / "ck" / "checkpoint.json").read_text())["step"] == 40
    _assert_same(state, _reference(paths))


@pytest.mark.slow
def test_a_killed_rank_restarts_from_the_checkpoint_and_ends_equal_to_an_uninterrupted_run(tmp_path):
    paths = write_csvs(tmp_path, rows=3200)  # 200 steps
    ckpt = tmp_path / "ck"
    proc = _torchrun(paths, ckpt, "--max-restarts=1")
    deadline = time.monotonic() + 120
    while not (ckpt / "checkpoint.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    victims = _workers(proc)
    assert len(victims) == 2, "no workers found"
    os.kill(victims[-1], signal.SIGKILL)
    out, err = _finish(proc, timeout=240)
    assert proc.returncode == 0 and out.strip(), err[-4000:]
    done = json.loads(out.strip().splitlines()[-1])
    assert proc.returncode == 0 and done["resumed_from"] > 0, err[-3000:]
    assert done["step"] == 200 and done["samples"] == 6400
    resumed = load_file(str(ckpt / "checkpoint.safetensors"))
    _finish(_torchrun(paths, tmp_path / "uninterrupted"), timeout=150)
    _assert_same(resumed, load_file(str(tmp_path / "uninterrupted" / "checkpoint.safetensors")), 1e-5, 1e-6)


def test_job_arguments_are_checked_before_anything_starts(tmp_path, capsys):
    paths = write_csvs(tmp_path, files=1, rows=64)
    base = ["--source", str(paths[0]), "--checkpoint-dir", str(tmp_path / "ck")]
    cases = [
        (["--target", "label", "--n-classes", "3", "--batch-size", "0"], "--batch-size"),
        (["--target", "label"], "--n-classes"),
        (["--target", "nope", "--n-classes", "3"], "target"),
        (["--target", "label", "--n-classes", "3", "--hidden", "16,x"], "--hidden"),
        (["--target", "label", "--n-classes", "3", "--timeout", "0"], "--timeout"),
    ]
    for extra, flag in cases:
        assert main(base + extra) == 2
        assert flag in capsys.readouterr().err
    assert main(["--source", str(tmp_path / "x.txt"), "--target", "y", "--n-classes", "2", "--checkpoint-dir",
                 str(tmp_path)]) == 2
    assert "--source" in capsys.readouterr().err
    assert not (tmp_path / "ck").exists()


@pytest.fixture(name="group")
def _group():
    with group_of_one():
        yield


def test_train_stream_from_a_river_iterable_resumes_from_its_checkpoint(tmp_path, group):
    paths = write_csvs(tmp_path, files=1, rows=640)
    names = [f"f{j}" for j in range(6)]
    stream = [(dict(zip(names, map(float, x), strict=True)), int(y)) for x, y in file_rows(paths, "label")]

    def learner() -> OnlineAM:
        return OnlineAM(build_mlp(6, 3, (16,), "relu", seed=0), variant="auto", loss="cross_entropy", seed=0)

    first = train_stream(learner(), stream, batch_size=32, checkpoint_dir=tmp_path / "ck", max_steps=7)
    assert first["step"] == 7
    resumed = learner()
    done = train_stream(resumed, stream, batch_size=32, checkpoint_dir=tmp_path / "ck", checkpoint_every=0)
    assert done["resumed_from"] == 7 and done["step"] == 20
    _assert_same(resumed.state_dict(), _reference(paths))


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"batch_size": 0}, "batch_size"), ({"batch_size": -2}, "batch_size"), ({"batch_size": 2.0}, "batch_size"),
    ({"checkpoint_every": -1}, "checkpoint_every"), ({"report_every": -1}, "report_every"),
    ({"max_steps": 0}, "max_steps"),
])
def test_train_stream_refuses_counts_naming_them_before_anything_is_learned(tmp_path, group, kwargs, field):
    learner = OnlineAM(build_mlp(2, 2, (4,), "relu", seed=0), variant="mem", seed=0)
    stream = [({"a": float(i), "b": 1.0}, i % 2) for i in range(64)]
    with pytest.raises(ValueError, match=field):
        train_stream(learner, stream, **{"batch_size": 8, **kwargs}, checkpoint_dir=tmp_path / "ck")
    assert learner.n_steps == 0 and not (tmp_path / "ck").exists()


@pytest.mark.parametrize("label", [1.5, "1", True, float("nan")])
def test_a_class_label_that_is_not_a_whole_number_is_refused_not_truncated(group, label):
    learner = OnlineAM(build_mlp(2, 2, (4,), "relu", seed=0), variant="mem", seed=0)
    stream = [({"a": float(i), "b": 1.0}, i % 2) for i in range(7)] + [({"a": 0.0, "b": 0.0}, label)]
    with pytest.raises(ValueError, match="y: a label must be a whole number"):
        train_stream(learner, stream, batch_size=8)
    assert learner.n_steps == 0


def test_shards_interleave_rows_and_run_out_into_empty_shares():
    rows = [(np.full(2, i, dtype=np.float32), i % 3) for i in range(10)]
    assert [int(r[1]) for r in shard(rows, 1, 2)] == [1, 0, 2, 1, 0]  # rows 1, 3, 5, 7, 9
    assert [int(r[0][0]) for r in shard(rows, 0, 2, skip=6)] == [6, 8]  # (after the first 6 rows of the stream)
    assert [int(r[0][0]) for r in shard(rows, 0, 2, skip=5)] == [6, 8]
    assert [int(r[0][0]) for r in shard(rows, 1, 2, skip=5)] == [5, 7, 9]
    batches = local_batches(shard(rows, 1, 2), 2, 2, classification=True)
    sizes = [next(batches)[0].shape for _ in range(4)]
    assert sizes == [(2, 2), (2, 2), (1, 2), (0, 2)]


def test_parquet_sources_need_pyarrow_or_read_as_csv(tmp_path):
    csv = write_csvs(tmp_path, files=1, rows=64)[0]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        (tmp_path / "x.parquet").write_bytes(b"")
        with pytest.raises(ValueError, match="pyarrow"):
            list(file_rows([tmp_path / "x.parquet"], "label"))
        return
    import pandas as pd

    pd.read_csv(csv).to_parquet(tmp_path / "x.parquet")
    got, want = list(file_rows([tmp_path / "x.parquet"], "label")), list(file_rows([csv], "label"))
    assert len(got) == len(want) == 64
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(got, want, strict=True))
