"""DataParallelAM on 2 gloo ranks over loopback against one process on the whole batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from distributed_worker import batch, eval_inputs, free_port, group_of_one, make_learner
from helpers_engine import settled_state
from safetensors.torch import load_file
from torch import nn

from stream_am import OnlineAM
from stream_am.distributed import DataParallelAM, init_process_group, refusal, step_payload
from stream_am.estimators import build_mlp

WORKER = Path(__file__).with_name("distributed_worker.py")
STEPS, EMPTY = 50, 7  # step 7: rank 1 brings no samples, rank 0 the whole batch
CONFIGS = [
    {"name": "mem", "variant": "mem"},
    {"name": "adam", "variant": "adam", "weight_steps": 2},
    {"name": "adam_readout", "variant": "mem", "readout": "adam"},
    {"name": "classifier", "variant": "auto", "through": "AMClassifier"},
    {"name": "class_clock", "variant": "mem", "memory_clock": "class"},
]


def launch(configs: list[dict], out: Path, world: int = 2, timeout: float = 120.0,
           env_extra: dict[str, str] | None = None) -> list[subprocess.Popen]:
    """Start ``world`` worker processes; the caller waits with :func:`wait_all`."""
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(world),
               GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1", **(env_extra or {}))
    return [
        subprocess.Popen([sys.executable, str(WORKER), json.dumps(configs), str(out)], env=dict(env, RANK=str(r)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(world)
    ]


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[tuple[int | None, str]]:
    """Each process's exit code and stderr; every process still alive at ``timeout`` is killed (code None)."""
    deadline = time.monotonic() + timeout
    results = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(deadline - time.monotonic(), 0.1))
            results.append((p.returncode, err))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            results.append((None, err))
    return results


@pytest.fixture(scope="module")
def parallel_runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("dp")
    configs = [dict(c, steps=STEPS, empty_step=EMPTY) for c in CONFIGS]
    configs.append({"name": "diverge", "variant": "adam", "readout": "adam", "steps": 30, "perturb_at": 5,
                    "check_every": 10})
    configs += [{"name": f"differ_{key}", "variant": "mem", "steps": 3, "rank1": {key: value}}
                for key, value in (("mu", 0.2), ("hidden", [12, 11]))]
    results = wait_all(launch(configs, out), timeout=150)
    for code, err in results:
        assert code == 0, err[-3000:]
    return out


def _single(config: dict) -> tuple[OnlineAM, list[dict[str, float]]]:
    torch.set_num_threads(1)
    am = make_learner(config)
    return am, [am.partial_fit(*batch(t)) for t in range(STEPS)]


@pytest.mark.parametrize("config", CONFIGS, ids=[c["name"] for c in CONFIGS])
def test_two_ranks_equal_one_process_on_the_whole_batches(parallel_runs, config):
    am, steps = _single(config)
    want = settled_state(am.state_dict())
    for rank in (0, 1):
        got = settled_state(load_file(str(parallel_runs / f"{config['name']}.rank{rank}.safetensors")))
        assert set(got) == set(want)
        for key, value in want.items():
            if key == "generator":
                continue
            torch.testing.assert_close(got[key].to(value.dtype), value, rtol=2e-3, atol=2e-4, msg=key)
        result = json.loads((parallel_runs / f"{config['name']}.rank{rank}.json").read_text())
        torch.testing.assert_close(torch.tensor(result["predict"]), am.predict(eval_inputs()), rtol=2e-3, atol=2e-3)
        assert [s["n"] for s in result["steps"]] == [32.0] * STEPS  # the global count, the empty step included
        for a, b in zip(result["steps"], steps, strict=True):
            assert a["loss"] == pytest.approx(b["loss"], rel=1e-3, abs=1e-4)
    assert int(got["samples_seen"]) == 32 * STEPS and int(got["n_steps"]) == STEPS


@pytest.mark.parametrize(("key", "named"), [("mu", "mu = 0.2, rank 0's 0.1"), ("hidden", "module")])
def test_a_rank_that_built_another_learner_is_refused_on_every_rank_at_the_first_step(parallel_runs, key, named):
    """Another width used to abort a rank inside the first collective; another mu trained on, silently."""
    for rank in (0, 1):
        error = (parallel_runs / f"differ_{key}.rank{rank}.error").read_text()
        assert "rank 1 built another learner than rank 0" in error and named in error


def test_weights_that_drift_apart_fail_loudly_at_the_next_check(parallel_runs):
    for rank in (0, 1):
        error = (parallel_runs / f"diverge.rank{rank}.error").read_text()
        assert "weights differ across ranks after step 10" in error


def test_rank_checkpoint_loads_into_a_plain_online_am(parallel_runs):
    state = load_file(str(parallel_runs / "mem.rank0.safetensors"))
    am = make_learner(CONFIGS[0])
    am.load_state_dict(state)
    result = json.loads((parallel_runs / "mem.rank0.json").read_text())
    torch.testing.assert_close(am.predict(eval_inputs()), torch.tensor(result["predict"]))
    am.partial_fit(*batch(STEPS))  # and it keeps learning
    assert am.n_steps == STEPS + 1


def test_rank_checkpoint_loads_into_a_data_parallel_am_of_another_world_size(parallel_runs):
    state = load_file(str(parallel_runs / "adam.rank0.safetensors"))
    plain = make_learner(CONFIGS[1])
    plain.load_state_dict(state)
    with group_of_one():
        dp = DataParallelAM(make_learner(CONFIGS[1]))
        dp.load_state_dict(state)
        assert (dp.n_steps, dp.samples_seen, dp.world_size) == (STEPS, 32 * STEPS, 1)
        for t in range(STEPS, STEPS + 5):
            assert dp.partial_fit(*batch(t)) == pytest.approx(plain.partial_fit(*batch(t)), rel=1e-5, abs=1e-6)
        sizes: list[int] = []
        summed = dp._sum
        dp._sum = lambda flat: sizes.append(flat.numel()) or summed(flat)  # type: ignore[method-assign]
        dp.partial_fit(*batch(STEPS + 5))
        plain.partial_fit(*batch(STEPS + 5))
    payload = step_payload(dp.learner)  # what one step sends, as the benchmarks report it
    assert sum(n for n in sizes if n > 1) == payload["statistics"] and payload["collectives"] == 2
    assert sizes.count(1) == payload["scalar_collectives"] == 4
    torch.testing.assert_close(dp.predict(eval_inputs()), plain.predict(eval_inputs()), rtol=1e-5, atol=1e-6)


def test_refuses_batchnorm_and_dropout_and_needs_a_group():
    bn = OnlineAM(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)), variant="adam")
    assert "BatchNorm1d" in str(refusal(bn.module))
    drop = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.2), nn.Linear(4, 2))
    assert "masks" in str(refusal(drop))
    assert refusal(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Dropout(0.0), nn.Linear(4, 2))) is None
    with pytest.raises(ValueError, match="BatchNorm1d"):
        DataParallelAM(bn)
    with pytest.raises(ValueError, match="group"):
        DataParallelAM(OnlineAM(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))))
    for timeout in (0, 0.001, float("inf"), 1e300):  # (under a second the ranks cannot connect; inf overflowed)
        with pytest.raises(ValueError, match="timeout_s"):
            init_process_group("gloo", timeout_s=timeout)
    with pytest.raises(ValueError, match="backend"):
        init_process_group("mpi")


@pytest.mark.parametrize("how", ["die_at", pytest.param("hang_at", marks=pytest.mark.slow)])
def test_a_dead_or_hung_peer_stops_the_others_with_a_clear_error_within_the_timeout(tmp_path, how):
    procs = launch([{"name": "fail", "variant": "mem", "steps": 40, how: 12}], tmp_path,
                   env_extra={"DP_TEST_TIMEOUT": "4"})
    survivor, peer = procs
    started = time.monotonic()
    try:
        _, err = survivor.communicate(timeout=90)
    finally:
        peer.kill()
        peer.communicate()
        survivor.kill()
    assert survivor.returncode not in (0, None)
    assert "DataParallelAM rank 0" in err and "at step 12 failed" in err, err[-2000:]
    assert time.monotonic() - started < 60  # imports included; the collective itself waits at most 4 s


@pytest.mark.parametrize(("clock", "classes"), [("class", 3), ("class", 50), ("sample", 3)])
def test_step_payload_counts_what_a_class_clocked_step_sends(clock, classes):
    """helper-59's review: a class-clocked memory sends its sums per class; they were counted as one memory's
    (176 numbers where 528 were sent for 3 classes)."""
    learner = OnlineAM(build_mlp(4, classes, (8,), seed=0), variant="mem", memory_clock=clock, seed=0)
    x, y = torch.randn(16, 4, generator=torch.Generator().manual_seed(0)), torch.arange(16) % classes
    with group_of_one():
        dp = DataParallelAM(learner)
        dp.partial_fit(x, y)
        sizes: list[int] = []
        summed = dp._sum
        dp._sum = lambda flat: sizes.append(flat.numel()) or summed(flat)  # type: ignore[method-assign]
        dp.partial_fit(x, y)
    assert sum(n for n in sizes if n > 1) == step_payload(learner)["statistics"]
