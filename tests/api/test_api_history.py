"""The learning history behind the dashboard: bounds, order, restarts, the JSON and SSE endpoints, closed reads."""

from __future__ import annotations

import glob
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path

import api_fixtures
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from river import drift
from river.datasets import synth
from stream_am.scenarios.drift import switching
from stream_am.server.history import History
from stream_am.server.jobs import LearnJob
from stream_am.server.registry import Registry
from stream_am.server.settings import Settings

from stream_am import AMClassifier
from stream_am.drift import DriftAware

make_client = api_fixtures.make_client
client = api_fixtures.client
SMALL = api_fixtures.SMALL
FAST = {"history_interval": 1e-6}


def _learn(client: TestClient, batches: int, size: int = 8, name: str = "default") -> None:
    for i in range(batches):
        xs = [{"a": ((i * size + k) % 7) / 7.0, "b": (k % 3) / 3.0} for k in range(size)]
        body = {"instances": xs, "targets": [int(x["a"] > 0.4) for x in xs]}
        assert client.post(f"/models/{name}/partial_fit", json=body).status_code == 200


def test_points_stay_bounded_keep_their_order_and_the_whole_run() -> None:
    history = History(classifier=True, window=5, max_points=10, interval=0.0)
    for v in range(1, 101):
        history.observe(None, [1], [v % 2], samples=v)
        history.publish(samples=v, version=v, metrics={"scored": v, "accuracy": 0.5})
    points = history.read()["points"]
    assert 5 <= len(points) <= 10
    seqs = [p["seq"] for p in points]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert points[0]["samples"] == 1 and points[-1]["samples"] == 100  # thinned, not truncated
    assert points[-1]["window"]["accuracy"] == pytest.approx(0.4)  # last 5 predictions: 0 1 0 1 0 against 1


def test_a_limit_above_the_points_held_reads_them_all() -> None:
    """Found by a review: a limit larger than the points held sliced from a negative index (3 points, limit 5: 2)."""
    history = History(classifier=True, window=5, max_points=10, interval=0.0)
    for v in range(1, 4):
        history.observe(None, [1], [1], samples=v)
        history.publish(samples=v, version=v, metrics={"scored": v, "accuracy": 1.0})
    held = history.read()["points"]
    assert len(held) == 3 and history.read(limit=5)["points"] == held and history.read(limit=2)["points"] == held[1:]
    assert history.read(limit=0)["points"] == []


def test_points_wait_for_the_interval_and_reads_add_the_newest(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(itertools.count(1000.0, 0.1))
    monkeypatch.setattr("stream_am.server.history.time.time", lambda: next(clock))
    history = History(classifier=False, window=3, max_points=100, interval=1.0)
    for v in range(1, 6):  # 0.1 s apart: one point, the others wait
        history.observe(None, [1.0], [0.0], samples=v)
        history.publish(samples=v, version=v, metrics={"scored": v, "mae": 1.0, "rmse": 1.0})
    assert [p["samples"] for p in history.read()["points"]] == [1]
    for _ in range(10):
        next(clock)
    points = history.read()["points"]
    assert [p["samples"] for p in points] == [1, 5]  # the newest state, as it was published
    assert points[-1]["window"] == {"mae": 1.0, "rmse": 1.0}


def test_overflowing_errors_are_reported_as_none() -> None:
    history = History(classifier=False, window=3, max_points=10, interval=0.0)
    history.observe(None, [1e308], [-1e308], samples=1)
    history.publish(samples=1, version=1, metrics={"scored": 1, "mae": float("inf"), "rmse": float("inf")})
    point = history.read()["points"][-1]
    assert point["window"]["mae"] is None and point["cumulative"] == {"mae": None, "rmse": None}
    json.dumps(point, allow_nan=False)


def test_forget_marks_follow_the_detections_of_a_drift_aware_estimator() -> None:
    model = DriftAware(AMClassifier(hidden_sizes=(8,), batch_size=8, seed=0), drift.ADWIN(), forget_factor=0.5)
    history = History(classifier=True, window=100, max_points=100, interval=0.0)
    concepts = [iter(synth.STAGGER(classification_function=f, seed=f)) for f in (0, 2)]
    stream = switching(concepts, [0, 1], [400], width=1, seed=0)
    seen = 0
    for _ in range(20):
        batch = list(itertools.islice(stream, 40))
        X = pd.DataFrame([x for x, _ in batch], dtype=float)
        y = [int(t) for _, t in batch]
        preds = model.predict_many(X).tolist() if seen else [None] * len(y)
        model.learn_many(X, pd.Series(y, dtype=object))
        seen += len(y)
        history.observe(model, y, preds, samples=seen)
    marks = history.read()["marks"]
    assert model.drifts_, "the stream should make ADWIN fire"
    assert [m["samples"] for m in marks if m["kind"] == "forget"] == model.drifts_
    assert any(m["kind"] == "drift" and m["samples"] > 400 for m in marks)  # the server's own monitor
    summary = history.summary()
    assert summary["forgets"] == len(model.drifts_) and summary["drifts"] >= 1


def test_history_endpoint_order_since_limit_and_counters(make_client: Callable[..., TestClient]) -> None:
    client = make_client(**FAST)
    _learn(client, 6)
    assert client.post("/predict", json={"instances": [{"a": 0.1, "b": 0.2}]}).status_code == 200
    body = client.get("/models/default/history").json()
    points = body["points"]
    assert [p["seq"] for p in points] == sorted(p["seq"] for p in points)
    assert [p["samples"] for p in points] == sorted(p["samples"] for p in points)
    assert points[-1]["samples"] == 48 and points[-1]["version"] == 6 and body["window"] == 500
    status = body["status"]
    assert status["samples_seen"] == 48 and status["model_version"] == 6 and status["classifier"] is True
    assert sum(n for _, n in status["classes"]) == 48 and {c for c, _ in status["classes"]} == {0, 1}
    assert status["predict_latency"]["count"] == 1 and status["predict_latency"]["p99_ms"] > 0
    middle = points[len(points) // 2]["seq"]
    later = client.get("/models/default/history", params={"since": middle}).json()["points"]
    assert later == [p for p in points if p["seq"] > middle]
    assert client.get("/models/default/history", params={"limit": 2}).json()["points"] == points[-2:]
    assert [m["name"] for m in client.get("/history").json()["models"]] == ["default"]


def test_a_deleted_or_replaced_models_latencies_do_not_outlive_it(make_client: Callable[..., TestClient]) -> None:
    """helper-61's review: a model re-created under a deleted name showed the old model's latencies."""
    client = make_client(**FAST)

    def count() -> int:
        return int(client.get("/models/m/history").json()["status"]["predict_latency"]["count"])

    def make() -> None:
        body = {"name": "m", "estimator": "AMClassifier", "params": {"batch_size": 8}}
        assert client.post("/models", json=body).status_code == 201
        _learn(client, 2, name="m")
        assert client.post("/models/m/predict", json={"instances": [{"a": 0.1, "b": 0.2}]}).status_code == 200

    make()
    assert count() == 1
    assert client.delete("/models/m").status_code == 204
    make()
    assert count() == 1
    export = client.get("/models/m/export").json()
    assert client.post("/models/m/import", params={"replace": "true"}, json=export).status_code == 201
    assert count() == 0


@pytest.mark.parametrize(
    "query", ["since=-1", "since=abc", "limit=0", "limit=-3", "limit=100001", "since=1.5"]
)
def test_bad_query_parameters_are_422(client: TestClient, query: str) -> None:
    response = client.get(f"/models/default/history?{query}")
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] in ("since", "limit")
    if query.startswith("since"):
        assert client.get(f"/models/default/history/stream?{query}").status_code == 422


def test_unknown_model_is_404(client: TestClient) -> None:
    assert client.get("/models/nope/history").status_code == 404
    assert client.get("/models/nope/history/stream").status_code == 404


def test_history_survives_a_restart_and_the_log_replay(tmp_path: Path, make_client: Callable[..., TestClient]) -> None:
    client = make_client(**FAST, checkpoint_every_samples=16)
    _learn(client, 3)  # 24 samples: a checkpoint after 16
    before = client.get("/models/default/history").json()
    client.__exit__(None, None, None)  # graceful: a final checkpoint holds the whole history
    second = make_client(**FAST)
    again = second.get("/models/default/history").json()
    second.__exit__(None, None, None)
    assert again["points"][: len(before["points"])] == before["points"]
    assert again["status"]["classes"] == before["status"]["classes"]
    assert again["status"]["last_checkpoint"]["samples"] == 24

    # a crash (no final checkpoint): the samples after the last checkpoint come back from the log
    settings = Settings(state_dir=tmp_path / "state", history_interval=1e-6, checkpoint_every_samples=10**6)
    registry = Registry(settings)
    registry.open()
    model = registry.get("default")
    for targets in ([0, 1, 1], [1, 1]):
        job = LearnJob([{"a": float(t), "b": 0.5} for t in targets], None, targets)
        model.submit(job).result(timeout=60)
    counts = dict(map(tuple, model.history.summary()["classes"]))
    registry.close(checkpoint=False)
    registry = Registry(settings)
    registry.open()
    try:
        replayed = registry.get("default").history
        assert dict(map(tuple, replayed.summary()["classes"])) == counts
        assert replayed.read()["points"][-1]["samples"] == 29
        assert len(replayed.read()["points"]) > len(before["points"])
    finally:
        registry.close(checkpoint=False)


def test_the_stream_pushes_updates_and_ends_on_time(make_client: Callable[..., TestClient]) -> None:
    client = make_client(**FAST, stream_seconds=0.6)
    _learn(client, 2)
    events: list[tuple[str, dict]] = []
    with client.stream("GET", "/models/default/history/stream", params={"since": 0}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    for frame in text.split("\n\n"):
        kind = re.search(r"^event: (\w+)$", frame, re.M)
        data = re.search(r"^data: (.*)$", frame, re.M)
        if kind and data:
            events.append((kind.group(1), json.loads(data.group(1))))
    assert events[0][0] == "update" and events[-1][0] == "end"
    first = events[0][1]
    assert first["points"][-1]["samples"] == 16 and first["status"]["samples_seen"] == 16
    assert all(p["seq"] > first["seq"] for _, e in events[1:-1] for p in e["points"])


def test_reads_close_only_when_the_settings_say(make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    open_reads = make_client(api_key="k")
    assert open_reads.get("/models/default/history").status_code == 200
    assert open_reads.get("/dashboard/config").json()["reads_need_key"] is False
    open_reads.__exit__(None, None, None)

    closed = make_client(api_key="k", protect_reads=True)
    for path in ("/history", "/models/default/history", "/models/default/history/stream", "/models", "/metrics"):
        assert closed.get(path).status_code == 401, path
        assert closed.get(path, headers={"Authorization": "Bearer nope"}).status_code == 401, path
    assert closed.get("/history", headers={"Authorization": "Bearer k"}).status_code == 200
    for path in ("/health", "/dashboard", "/dashboard/config", "/docs", "/redoc", "/openapi.json",
                 "/static/dashboard.js"):
        assert closed.get(path).status_code == 200, path
    assert closed.get("/dashboard/config").json()["reads_need_key"] is True


def test_the_page_and_the_docs_load_nothing_from_elsewhere(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for path in ("/dashboard", "/docs", "/redoc"):
        html = client.get(path).text
        urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
        assert urls and all(u.startswith("/") for u in urls), (path, urls)
        for url in urls:
            assert client.get(url).status_code == 200, url


def test_every_static_file_ships_as_package_data() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((api_fixtures.REPO / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["stream_am.server"]
    root = api_fixtures.REPO / "api"
    files = {p.relative_to(root).as_posix() for p in (root / "static").rglob("*") if p.is_file()}
    shipped = {f for pattern in patterns for f in glob.glob(pattern, root_dir=root)}  # setuptools' glob rules
    assert files and files <= shipped, sorted(files - shipped)
