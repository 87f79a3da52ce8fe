"""A real server on loopback: kill -9 and restart, concurrent bounded load, API key."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import api_fixtures
import httpx
import pandas as pd

from stream_am import AMClassifier

# pytest fixtures shared by the tests/api modules (no conftest.py here: see api_fixtures)
start_server = api_fixtures.start_server

PROBE = {"instances": [{"a": 0.3, "b": -1.0}, {"a": 2.0, "b": 0.5}, {"a": -0.7, "b": 0.9}]}
SIZES = [7, 32, 13, 1, 40, 5, 32, 19, 3]  # 152 samples: not a multiple of batch_size


def _batch(i: int, n: int) -> tuple[list[dict[str, float]], list[int]]:
    xs = [{"a": ((i + k) * 13 % 17) / 17.0 - 0.5, "b": ((i + k) * 7 % 11) / 11.0} for k in range(n)]
    return xs, [int(x["a"] + x["b"] > 0.2) for x in xs]


def test_kill_9_restart_predicts_exactly_as_before(start_server: Callable[..., Any], tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {"STREAM_AM_CHECKPOINT_EVERY_SAMPLES": "60"}
    server = start_server(state, env=env)
    acknowledged, i = 0, 0
    with httpx.Client(base_url=server.url, timeout=30) as http:
        for n in SIZES:
            xs, ys = _batch(i, n)
            r = http.post("/partial_fit", json={"instances": xs, "targets": ys})
            assert r.status_code == 200, r.text
            acknowledged += r.json()["learned"]
            i += n
        before = http.post("/predict", json=PROBE).json()
        info = http.get("/models/default").json()
        assert http.post("/predict", json={"instances": PROBE["instances"][:2], "ids": ["p1", "p2"]}).is_success
    assert info["samples_seen"] == acknowledged == sum(SIZES)
    assert list(state.glob("models/*/checkpoints/ckpt-*"))
    assert api_fixtures.logged_events(state) > 0  # checkpoint + log tail
    server.kill()
    restarted = start_server(state, env=env, via_uvicorn=True)
    with httpx.Client(base_url=restarted.url, timeout=30) as http:
        assert http.post("/predict", json=PROBE).json() == before
        assert http.get("/models/default").json() == {**info, "pending_ids": 2}
        # stored predictions survive the kill too: their labels arrive after the restart
        r = http.post("/partial_fit", json={"ids": ["p1", "p2"], "targets": [0, 1]})
        assert r.status_code == 200 and r.json()["samples_seen"] == acknowledged + 2
    # the served model is the library's model fed the same batches
    reference, i = AMClassifier(), 0
    for n in SIZES:
        xs, ys = _batch(i, n)
        reference.learn_many(pd.DataFrame(xs), pd.Series(ys))
        i += n
    table = reference.predict_proba_many(pd.DataFrame(PROBE["instances"]))  # the server's path for 3 rows
    assert [{str(k): float(v) for k, v in row.items()} for _, row in table.iterrows()] == before["probabilities"]
    restarted.stop()
    assert api_fixtures.logged_events(state) == 0  # a graceful stop checkpoints and compacts


def test_concurrent_load_loses_nothing(start_server: Callable[..., Any], tmp_path: Path) -> None:
    key = {"Authorization": "Bearer load-key"}
    server = start_server(tmp_path / "state", env={"STREAM_AM_API_KEY": "load-key"})
    threads, per_thread = 6, 15
    acknowledged = [0] * threads
    errors: list[str] = []

    def worker(t: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60, headers=key) as http:
            for j in range(per_thread):
                xs, ys = _batch(1000 * t + 32 * j, 32)
                r = http.post("/partial_fit", json={"instances": xs, "targets": ys})
                if r.status_code != 200:
                    errors.append(r.text)
                    continue
                acknowledged[t] += r.json()["learned"]
                p = http.post("/predict", json={"instances": xs[:1]})
                if p.status_code != 200 or len(p.json()["predictions"]) != 1:
                    errors.append(p.text)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join(timeout=120)
    assert not errors
    info = httpx.get(f"{server.url}/models/default", timeout=30).json()
    assert info["samples_seen"] == sum(acknowledged) == threads * per_thread * 32
    assert info["model_version"] == threads * per_thread
    # the API key is enforced by the real server too
    xs, ys = _batch(0, 2)
    assert httpx.post(f"{server.url}/partial_fit", json={"instances": xs, "targets": ys}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    r = httpx.post(f"{server.url}/partial_fit", json={"instances": xs, "targets": ys}, headers=wrong)
    assert r.status_code == 401
    assert httpx.post(f"{server.url}/predict", json={"instances": xs}).status_code == 200
    server.stop()


def test_a_damaged_model_does_not_stop_the_server(start_server: Callable[..., Any], tmp_path: Path) -> None:
    """Issue 14.4: one corrupt checkpoint used to stop the whole server at start (exit 3, a traceback)."""
    state = tmp_path / "state"
    env = {"STREAM_AM_CHECKPOINT_EVERY_SAMPLES": "10"}
    server = start_server(state, env=env)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/models", json={"name": "m", "params": {"batch_size": 4, "seed": 0}}).status_code == 201
        for i in range(0, 60, 20):
            xs, ys = _batch(i, 20)
            for name in ("m", "default"):
                assert http.post(f"/models/{name}/learn", json={"instances": xs, "targets": ys}).status_code == 200
        before = http.post("/predict", json=PROBE).json()
    server.kill()
    for ckpt in state.glob("models/m-*/checkpoints/ckpt-*"):  # every checkpoint of m; the log was compacted
        (ckpt / "model" / "state.safetensors").write_bytes(b"\0" * 16)
    restarted = start_server(state, env=env)  # starts: it would raise if the process exited
    with httpx.Client(base_url=restarted.url, timeout=30) as http:
        health = http.get("/health").json()
        assert health["status"] == "degraded" and "state.safetensors" in health["problems"]["m"]
        assert http.get("/models/m").status_code == 503
        assert http.post("/predict", json=PROBE).json() == before
    assert restarted.stop() in (0, -15)
