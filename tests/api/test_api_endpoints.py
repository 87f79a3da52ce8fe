"""In-process tests (``with TestClient(app)``) of every endpoint."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import api_fixtures
import pytest
from fastapi.testclient import TestClient

# pytest fixtures shared by the tests/api modules (no conftest.py here: see api_fixtures)
client = api_fixtures.client
make_client = api_fixtures.make_client

SMALL = {"hidden_sizes": [8], "batch_size": 4, "seed": 0}  # a small, fast model


def _blobs(n: int, offset: int = 0) -> tuple[list[dict[str, float]], list[int]]:
    xs, ys = [], []
    for i in range(offset, offset + n):
        y = i % 2
        xs.append({"a": float(y) + 0.01 * (i % 7), "b": float(1 - y) - 0.02 * (i % 5)})
        ys.append(y)
    return xs, ys


def test_health_and_default_model(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok", "models": 1, "problems": {}}
    info = client.get("/models/default").json()
    assert info["estimator"] == "AMClassifier"
    assert info["samples_seen"] == 0 and info["model_version"] == 0


def test_learn_then_predict_default(client: TestClient) -> None:
    xs, ys = _blobs(40)
    r = client.post("/partial_fit", json={"instances": xs, "targets": ys})
    assert r.status_code == 200, r.text
    assert r.json() == {"learned": 40, "samples_seen": 40, "model_version": 1}
    r = client.post("/learn", json={"instances": xs[:3], "targets": ys[:3]})
    assert r.json()["samples_seen"] == 43 and r.json()["model_version"] == 2
    r = client.post("/predict", json={"instances": xs[:2]})
    body = r.json()
    assert r.status_code == 200 and body["model_version"] == 2
    assert len(body["predictions"]) == 2 and all(p in (0, 1) for p in body["predictions"])
    assert set(body["probabilities"][0]) == {"0", "1"}
    assert abs(sum(body["probabilities"][0].values()) - 1.0) < 1e-6
    info = client.get("/models/default").json()
    assert info["classes"] == [0, 1] and info["features"] == ["a", "b"]
    assert info["metrics"]["scored"] == 43 and 0.0 <= info["metrics"]["accuracy"] <= 1.0


def test_list_instances_name_features_by_position(client: TestClient) -> None:
    r = client.post("/partial_fit", json={"instances": [[1.0, 2.0], [3, 4]], "targets": ["x", "y"]})
    assert r.status_code == 200, r.text
    assert client.get("/models/default").json()["features"] == ["0", "1"]
    same_as_dict = client.post("/predict", json={"instances": [{"0": 1.0, "1": 2.0}]}).json()
    as_list = client.post("/predict", json={"instances": [[1.0, 2.0]]}).json()
    assert same_as_dict == as_list


def test_model_registry_crud(client: TestClient) -> None:
    r = client.post("/models", json={"name": "reg", "estimator": "AMRegressor", "params": SMALL})
    assert r.status_code == 201, r.text
    assert r.json()["params"] == SMALL
    assert client.post("/models", json={"name": "reg", "estimator": "AMRegressor"}).status_code == 409
    names = [m["name"] for m in client.get("/models").json()["models"]]
    assert names == ["default", "reg"]
    r = client.post(
        "/models/reg/partial_fit", json={"instances": [[1.0], [2.0], [3.0], [4.0]], "targets": [1, 2, 3, 4]}
    )
    assert r.status_code == 200, r.text
    r = client.post("/models/reg/predict", json={"instances": [[2.5]]}).json()
    assert isinstance(r["predictions"][0], float) and r["probabilities"] is None
    metrics = client.get("/models/reg").json()["metrics"]
    assert metrics["scored"] == 4 and metrics["mae"] is not None and metrics["rmse"] is not None
    assert client.delete("/models/reg").status_code == 204
    assert client.get("/models/reg").status_code == 404
    assert client.delete("/models/reg").status_code == 404


def test_delayed_labels_by_id(client: TestClient) -> None:
    xs, ys = _blobs(8)
    client.post("/partial_fit", json={"instances": xs, "targets": ys})
    predicted = client.post("/predict", json={"instances": xs[:4], "ids": ["e1", "e2", "e3", "e4"]}).json()
    assert client.get("/models/default").json()["pending_ids"] == 4
    r = client.post("/partial_fit", json={"ids": ["e2", "e1"], "targets": [ys[1], ys[0]]})
    assert r.status_code == 200, r.text
    assert r.json()["learned"] == 2 and r.json()["samples_seen"] == 10
    info = client.get("/models/default").json()
    assert info["pending_ids"] == 2 and info["metrics"]["scored"] == 10
    # an id is consumed once
    again = client.post("/partial_fit", json={"ids": ["e1"], "targets": [ys[0]]})
    assert again.status_code == 422 and again.json()["detail"][0]["field"] == "ids[0]"
    assert client.get("/models/default").json()["samples_seen"] == 10
    assert predicted["model_version"] == 1


def test_an_id_already_waiting_is_kept_for_its_own_features_only(client: TestClient) -> None:
    xs, ys = _blobs(8)
    client.post("/partial_fit", json={"instances": xs, "targets": ys})
    first = client.post("/predict", json={"instances": xs[:2], "ids": ["a", "b"]})
    assert first.status_code == 200
    retried = client.post("/predict", json={"instances": xs[:2], "ids": ["a", "b"]})  # a retry: same features
    assert retried.status_code == 200 and retried.json()["predictions"] == first.json()["predictions"]
    assert client.get("/models/default").json()["pending_ids"] == 2
    taken = client.post("/predict", json={"instances": [xs[2], xs[3]], "ids": ["c", "b"]})  # b holds xs[1]
    assert taken.status_code == 409
    assert taken.json()["detail"] == [{"field": "ids[1]", "msg": taken.json()["detail"][0]["msg"], "type": "conflict"}]
    assert "'b'" in taken.json()["detail"][0]["msg"]
    assert client.get("/models/default").json()["pending_ids"] == 2  # nor was c stored
    assert client.post("/partial_fit", json={"ids": ["c"], "targets": [ys[2]]}).status_code == 422
    learned = client.post("/partial_fit", json={"ids": ["b"], "targets": [ys[1]]})  # b still holds xs[1]
    assert learned.status_code == 200 and learned.json()["samples_seen"] == 9


def test_the_oldest_waiting_ids_go_beyond_max_pending_ids_counting_waiting_rows(make_client) -> None:
    client = make_client(max_pending_ids=3)
    xs, ys = _blobs(8)
    client.post("/partial_fit", json={"instances": xs, "targets": ys})
    for k, i in enumerate("abc"):
        assert client.post("/predict", json={"instances": [xs[k]], "ids": [i]}).status_code == 200
    for _ in range(3):  # retries neither add a row nor push another id out
        assert client.post("/predict", json={"instances": [xs[0]], "ids": ["a"]}).status_code == 200
    assert client.get("/models/default").json()["pending_ids"] == 3
    assert client.post("/partial_fit", json={"ids": ["b", "c"], "targets": ys[1:3]}).status_code == 200
    client.post("/predict", json={"instances": [xs[3]], "ids": ["d"]})
    assert client.get("/models/default").json()["pending_ids"] == 2  # a and d: nothing was over the limit
    assert client.post("/predict", json={"instances": [xs[5]], "ids": ["a"]}).status_code == 409  # a still waits
    client.post("/predict", json={"instances": xs[4:6], "ids": ["e", "f"]})  # four waiting: a, the oldest, goes
    assert client.get("/models/default").json()["pending_ids"] == 3
    assert client.post("/partial_fit", json={"ids": ["a"], "targets": [ys[0]]}).status_code == 422
    assert client.post("/partial_fit", json={"ids": ["d", "e", "f"], "targets": ys[3:6]}).status_code == 200


def test_min_model_version_ahead_of_the_acknowledged_state_is_a_conflict(client: TestClient) -> None:
    xs, ys = _blobs(8)
    client.post("/partial_fit", json={"instances": xs, "targets": ys})
    ok = client.post("/predict", json={"instances": xs[:1], "min_model_version": 1})
    assert ok.status_code == 200 and ok.json()["model_version"] == 1
    for body in ({"instances": xs[:1], "min_model_version": 2},
                 {"instances": xs, "ids": [f"z{i}" for i in range(8)], "min_model_version": 5}):
        ahead = client.post("/predict", json=body)
        assert ahead.status_code == 409, ahead.text
        detail = ahead.json()["detail"][0]
        assert detail["field"] == "min_model_version" and "holds 1 learn requests" in detail["msg"]
    assert client.get("/models/default").json()["pending_ids"] == 0  # refused before anything was stored
    too_large = client.post("/predict", json={"instances": [{"a": 1e300, "b": 0.0}], "min_model_version": 5})
    assert too_large.status_code == 422 and too_large.json()["detail"][0]["field"] == "instances[0].a"  # 422 first
    client.post("/partial_fit", json={"instances": xs[:2], "targets": ys[:2]})
    assert client.post("/predict", json={"instances": xs[:1], "min_model_version": 2}).json()["model_version"] == 2


def test_metrics_prometheus_text(client: TestClient) -> None:
    xs, ys = _blobs(8)
    client.post("/partial_fit", json={"instances": xs, "targets": ys})
    client.post("/predict", json={"instances": xs[:1]})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'stream_am_http_requests_total{method="POST",route="/partial_fit",status="200"} 1' in text
    assert 'stream_am_http_request_duration_seconds_bucket{route="/predict",le="+Inf"} 1' in text
    assert 'stream_am_samples_learned_total{model="default"} 8' in text
    assert 'stream_am_model_samples_seen{model="default"} 8' in text
    assert 'stream_am_model_prequential{model="default",metric="accuracy"}' in text
    for line in text.splitlines():
        assert line.startswith("#") or len(line.rsplit(" ", 1)) == 2


def test_export_import_round_trip(client: TestClient) -> None:
    client.post("/models", json={"name": "src", "params": SMALL})
    xs, ys = _blobs(10)
    client.post("/models/src/partial_fit", json={"instances": xs, "targets": ys})
    doc = client.get("/models/src/export").json()
    assert doc["format"] == "stream_am.model/1" and doc["state"]["samples_seen"] == 10
    assert any(f.endswith(".safetensors") for f in doc["files"]) and any(f.endswith(".json") for f in doc["files"])
    r = client.post("/models/copy/import", json=doc)
    assert r.status_code == 201, r.text
    assert r.json()["samples_seen"] == 10 and r.json()["params"] == SMALL
    probe = {"instances": xs[:5]}
    assert (
        client.post("/models/copy/predict", json=probe).json() == client.post("/models/src/predict", json=probe).json()
    )
    # both continue identically
    more, more_y = _blobs(6, offset=10)
    for name in ("src", "copy"):
        client.post(f"/models/{name}/partial_fit", json={"instances": more, "targets": more_y})
    assert (
        client.post("/models/copy/predict", json=probe).json() == client.post("/models/src/predict", json=probe).json()
    )
    assert client.post("/models/copy/import", json=doc).status_code == 409
    assert client.post("/models/copy/import?replace=true", json=doc).status_code == 201
    assert client.get("/models/copy").json()["samples_seen"] == 10


def test_import_refuses_other_files(client: TestClient) -> None:
    doc = {
        "estimator": "AMClassifier",
        "params": {},
        "files": {"model.pkl": base64.b64encode(b"\x80\x04K\x01.").decode()},
    }
    r = client.post("/models/evil/import", json=doc)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "files.model.pkl"
    assert client.get("/models/evil").status_code == 404


def test_a_log_written_before_the_tally_counts_its_waiting_predictions_when_opened(tmp_path: Path) -> None:
    from stream_am.server.eventlog import EventLog

    path = tmp_path / "events.sqlite"
    old = sqlite3.connect(path)  # the schema before the tally, with three waiting predictions
    old.executescript(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL);"
        "CREATE TABLE pending (n INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,"
        " created REAL NOT NULL);"
        "INSERT INTO pending (id, payload, created) VALUES ('a', '{\"x\": [1], \"p\": 0}', 0), "
        "('b', '{\"x\": [2], \"p\": 0}', 0), ('c', '{\"x\": [3], \"p\": 0}', 0);"
    )
    old.close()
    log = EventLog(path, max_pending=3)
    assert log.pending_count() == 3
    log.put_pending([("d", {"x": [4], "p": 1})])  # over the limit: the oldest, a, goes
    assert log.pending_count() == 3 and set(log.get_pending(["a", "b", "c", "d"])) == {"b", "c", "d"}
    log.append([{"k": 1}], ["b", "zzz"])  # one of the two ids waits
    assert log.pending_count() == 2
    with pytest.raises(ValueError, match="unique"):
        log.put_pending([("e", {"x": [5], "p": 0}), ("e", {"x": [5], "p": 1})])
    assert log.pending_count() == 2 and not log.get_pending(["e"])
    log.close()
    assert EventLog(path, max_pending=3).pending_count() == 2  # kept by the transactions, not recounted
    lowered = EventLog(path, max_pending=1)  # a limit lowered between runs holds from the start
    assert lowered.pending_count() == 1 and set(lowered.get_pending(["c", "d"])) == {"d"}


def test_listing_models_while_others_are_created_and_deleted(tmp_path: Path) -> None:
    """``GET /models``, ``/metrics``, ``/history`` and ``/health`` (and the snapshot publisher) walked the registry's
    dicts while a create, delete or import in another thread changed them: "dictionary keys changed during
    iteration", a 500. A thread switch after every few instructions makes the race show at once."""
    import sys
    import threading
    from types import SimpleNamespace

    from stream_am.server.registry import Registry
    from stream_am.server.settings import Settings

    registry = Registry(Settings(state_dir=tmp_path / "state"))
    model = SimpleNamespace(broken=None, trouble=SimpleNamespace(problems={}))
    registry._models = {f"m{i}": model for i in range(64)}  # type: ignore[dict-item]
    registry._quarantined = {f"q{i}": ("damaged", tmp_path) for i in range(64)}
    stop = threading.Event()

    def create_and_delete() -> None:
        i = 0
        while not stop.is_set():
            registry._models[f"x{i % 50}"] = model  # type: ignore[assignment]
            registry._models.pop(f"x{(i + 25) % 50}", None)
            registry._quarantined[f"y{i % 50}"] = ("damaged", tmp_path)
            registry._quarantined.pop(f"y{(i + 25) % 50}", None)
            i += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    writer = threading.Thread(target=create_and_delete)
    writer.start()
    try:
        for _ in range(5000):
            assert len(registry.all()) >= 64 and len(registry.problems()) >= 64
    finally:
        stop.set()
        writer.join()
        sys.setswitchinterval(interval)
