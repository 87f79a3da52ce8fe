"""Restart = checkpoint + replay of the log: the restored model is bitwise the acknowledged one."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import api_fixtures
import pytest
from fastapi.testclient import TestClient
from stream_am.server.jobs import LearnJob
from stream_am.server.settings import Settings

# pytest fixtures shared by the tests/api modules (no conftest.py here: see api_fixtures)
make_client = api_fixtures.make_client

SMALL = {"hidden_sizes": [8], "batch_size": 4, "seed": 0}  # a small, fast model

PROBE = {"instances": [{"a": 0.3, "b": -1.0}, {"a": 2.0, "b": 0.5}, [0.1, 0.2]]}


def _feed(client: TestClient, path: str, sizes: list[int], start: int = 0) -> int:
    i = start
    for n in sizes:
        xs = [{"a": (i + k) % 5 / 5.0, "b": ((i + k) * 7 % 11) / 11.0} for k in range(n)]
        ys = [int((i + k) % 3 == 0) for k in range(n)]
        r = client.post(path, json={"instances": xs, "targets": ys})
        assert r.status_code == 200, r.text
        i += n
    return i


def test_restart_replays_log_after_checkpoint(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    settings = {"checkpoint_every_samples": 20, "checkpoint_every_seconds": 3600}
    first = make_client(**settings)
    first.post("/models", json={"name": "m", "params": SMALL})
    _feed(first, "/models/m/partial_fit", [7, 5, 9, 3, 6, 1])  # 31 samples: a checkpoint, then a log tail
    expected = first.post("/models/m/predict", json=PROBE).json()
    info = first.get("/models/m").json()
    assert info["samples_seen"] == 31
    state = tmp_path / "state"
    assert len(list(state.glob("models/m-*/checkpoints/ckpt-*"))) >= 1
    assert 0 < api_fixtures.logged_events(state) < 6  # compacted: only the tail after the checkpoint is left
    # simulate a crash: stop without the final checkpoint, then start a new app on the same state
    first.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]
    second = make_client(**settings)
    assert second.post("/models/m/predict", json=PROBE).json() == expected
    restored = second.get("/models/m").json()
    assert restored == info


def test_partial_buffer_survives_checkpoint(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    """A checkpoint taken with a partly filled buffer continues exactly like the uninterrupted model."""
    client = make_client(checkpoint_every_samples=1)  # checkpoint after every request
    for name in ("a", "b"):
        client.post("/models", json={"name": name, "params": SMALL})
    _feed(client, "/models/a/partial_fit", [3, 2, 6, 1, 5])
    _feed(client, "/models/b/partial_fit", [17])
    client.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]
    again = make_client(checkpoint_every_samples=1)
    for name in ("a", "b"):
        _feed(again, f"/models/{name}/partial_fit", [6, 5], start=17)
    pa = again.post("/models/a/predict", json=PROBE).json()
    pb = again.post("/models/b/predict", json=PROBE).json()
    assert pa["predictions"] == pb["predictions"] and pa["probabilities"] == pb["probabilities"]


def test_graceful_shutdown_checkpoints_and_empties_log(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = make_client()
    _feed(client, "/partial_fit", [10, 10])
    expected = client.post("/predict", json=PROBE).json()
    client.__exit__(None, None, None)
    assert api_fixtures.logged_events(tmp_path / "state") == 0
    again = make_client()
    assert again.post("/predict", json=PROBE).json() == expected


def test_deleted_model_stays_deleted(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = make_client()
    client.post("/models", json={"name": "gone", "params": SMALL})
    assert client.delete("/models/gone").status_code == 204
    assert client.delete("/models/default").status_code == 204
    client.__exit__(None, None, None)
    again = make_client()
    assert again.get("/models").json()["models"] == []  # `default` is created on the first start only
    assert list((tmp_path / "state" / "models").iterdir()) == []


def test_one_server_per_state_dir(make_client: Callable[..., TestClient]) -> None:
    make_client()
    with pytest.raises(RuntimeError, match="in use"):
        make_client()


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAM_AM_MAX_BATCH", "7")
    monkeypatch.setenv("STREAM_AM_STATE_DIR", str(tmp_path / "env-state"))
    monkeypatch.setenv("STREAM_AM_API_KEY", "sup3r-secret")
    s = Settings()
    assert s.max_batch == 7 and s.state_dir == tmp_path / "env-state"
    assert s.api_key is not None and s.api_key.get_secret_value() == "sup3r-secret"
    assert "sup3r-secret" not in repr(s)


def test_time_based_checkpoint(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    client = make_client(checkpoint_every_seconds=0.2)
    _feed(client, "/partial_fit", [3])
    deadline = time.monotonic() + 10
    while api_fixtures.logged_events(tmp_path / "state") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert api_fixtures.logged_events(tmp_path / "state") == 0  # checkpointed and compacted without new requests
    assert list((tmp_path / "state").glob("models/default-*/checkpoints/ckpt-*"))


def test_full_write_queue_answers_503(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_queue=1)
    model = client.app.state.registry.get("default")  # type: ignore[attr-defined]
    rows, targets = [{"a": 1.0}], [1]
    with model._est_lock:  # hold the writer: it takes the first job, then waits
        first = model.submit(LearnJob(rows, None, targets))
        deadline = time.monotonic() + 10
        while model.queue_depth() and time.monotonic() < deadline:
            time.sleep(0.01)
        second = model.submit(LearnJob(rows, None, targets))  # fills the queue
        r = client.post("/partial_fit", json={"instances": rows, "targets": targets})
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert first.result(timeout=30).samples_seen == 1 and second.result(timeout=30).samples_seen == 2
    assert client.get("/models/default").json()["samples_seen"] == 2


def test_a_model_without_a_seed_restarts_as_acknowledged(make_client: Callable[..., TestClient]) -> None:
    """``seed: null`` drew its seed at the first step, so a replay of the log (a crash before the first checkpoint,
    a rebuild after a failed group) built other weights: the restarted model answered other predictions. The
    server draws the seed at creation and records it in the model's params."""
    settings = {"checkpoint_every_samples": 10**6, "checkpoint_every_seconds": 3600}
    first = make_client(**settings)
    r = first.post("/models", json={"name": "m", "params": {**SMALL, "seed": None}})
    assert r.status_code == 201 and isinstance(r.json()["params"]["seed"], int)
    assert r.json()["config"]["seed"] == r.json()["params"]["seed"]
    _feed(first, "/models/m/partial_fit", [9, 7])
    expected = first.post("/models/m/predict", json=PROBE).json()
    first.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]  # a crash: only the log
    second = make_client(**settings)
    assert second.post("/models/m/predict", json=PROBE).json() == expected


def test_an_imported_model_without_a_seed_restarts_as_acknowledged(make_client: Callable[..., TestClient]) -> None:
    """The same for an imported model saved before its first step with ``seed=None``: its first step (after the
    import's checkpoint) drew a seed that a replay did not draw again."""
    import base64
    import tempfile

    from stream_am import AMClassifier

    with tempfile.TemporaryDirectory() as tmp:
        AMClassifier(hidden_sizes=(8,), batch_size=4, seed=None).save(Path(tmp) / "m")
        files = {p.name: base64.b64encode(p.read_bytes()).decode() for p in (Path(tmp) / "m").iterdir()}
    settings = {"checkpoint_every_samples": 10**6, "checkpoint_every_seconds": 3600}
    first = make_client(**settings)
    doc = {"estimator": "AMClassifier", "params": {}, "files": files}
    r = first.post("/models/m/import", json=doc)
    assert r.status_code == 201, r.text
    assert isinstance(r.json()["config"]["seed"], int)
    _feed(first, "/models/m/partial_fit", [9, 7])
    expected = first.post("/models/m/predict", json=PROBE).json()
    first.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]
    second = make_client(**settings)
    assert second.post("/models/m/predict", json=PROBE).json() == expected


def test_a_model_rebuilt_from_its_log_keeps_the_defaults_it_was_created_with(
    make_client: Callable[..., TestClient], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by a review: a model rebuilt from its log alone (no checkpoint yet) was built from its request's
    params, so a server upgraded to other defaults between the crash and the restart replayed the acknowledged
    updates into another model. Its full configuration is now recorded when it is created."""
    from stream_am.server import estimators

    settings = {"checkpoint_every_samples": 10**6, "checkpoint_every_seconds": 3600}
    first = make_client(**settings)
    params = {"hidden_sizes": [8], "seed": 0}  # batch_size left to the default
    first.post("/models", json={"name": "m", "params": params})
    _feed(first, "/models/m/partial_fit", [7, 9, 5, 11, 6])
    expected = first.post("/models/m/predict", json=PROBE).json()
    info = first.get("/models/m").json()
    first.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]
    state = tmp_path / "state"
    assert not list(state.glob("models/m-*/checkpoints/ckpt-*"))  # only the log holds the model
    build = estimators.build
    # "the next version" learns in batches of 4 unless told otherwise
    monkeypatch.setattr(estimators, "build", lambda name, p: build(name, {"batch_size": 4, **p}))
    second = make_client(**settings)
    assert second.post("/models/m/predict", json=PROBE).json() == expected
    assert second.get("/models/m").json()["config"] == info["config"]
    assert second.get("/models/m").json()["params"] == params
