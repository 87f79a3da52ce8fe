"""Hostile or careless requests are refused without changing any model (issue 14, items 1, 2, 5-10)."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import anyio
import api_fixtures
import pandas as pd
import pytest
import torch
from fastapi.testclient import TestClient
from stream_am.server import estimators
from stream_am.server.errors import Overloaded
from stream_am.server.jobs import LearnJob

from stream_am import AMClassifier

# pytest fixtures shared by the tests/api modules (no conftest.py here: see api_fixtures)
client = api_fixtures.client
make_client = api_fixtures.make_client

SMALL = api_fixtures.SMALL
PROBE = {"instances": [{"y": 0.5}, {"y": -1.0, "x": 2.0}, [0.1]]}
KEY = {"Authorization": "Bearer s3cret"}


def _detail(r: Any) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    item: dict[str, Any] = r.json()["detail"][0]
    return item


def _state(client: TestClient, name: str = "default") -> tuple[Any, ...]:
    info = client.get(f"/models/{name}").json()
    probe = client.post(f"/models/{name}/predict", json=PROBE).json()
    return info["samples_seen"], info["model_version"], info["features"], info["classes"], probe


def test_rejected_request_leaves_the_model_unchanged_also_after_restart(make_client: Callable[..., TestClient]) -> None:
    """Item 1: 32 rows whose first is {"x": 1e300} used to stay buffered and poison the saved model."""
    client = make_client()
    assert client.post("/partial_fit", json={"instances": [{"y": 1}], "targets": ["a"]}).status_code == 200
    before = _state(client)
    rows = [{"x": 1e300}] + [{"x": float(i)} for i in range(31)]
    item = _detail(client.post("/partial_fit", json={"instances": rows, "targets": ["b"] * 32}))
    assert item["field"] == "instances[0].x" and "1e+20" in item["msg"]
    mixed = [{"y": 1.0}, {"z": -1e300}, {"y": 2.0}]  # rows with different features: one validation too
    assert _detail(client.post("/partial_fit", json={"instances": mixed, "targets": ["c"] * 3}))["field"] == (
        "instances[1].z"
    )
    assert _state(client) == before
    good = {"instances": [{"y": float(i % 3)} for i in range(40)], "targets": ["a"] * 40}
    r = client.post("/partial_fit", json=good)
    assert r.status_code == 200 and r.json()["samples_seen"] == 41
    after = _state(client)
    assert after[2:4] == (["y"], ["a"])  # neither the feature nor the class of the refused requests
    client.app.state.registry.close()  # type: ignore[attr-defined]  # a graceful stop: final checkpoint
    assert _state(make_client()) == after


@pytest.mark.parametrize("raw", ["1e200", "1e308", "-1e308", "1e400"])
def test_huge_regression_target_is_refused(client: TestClient, raw: str) -> None:
    """Item 2: a target of 1e200 used to be accepted and break every later learn; 1e400 gave a 500."""
    client.post("/models", json={"name": "r", "estimator": "AMRegressor", "params": SMALL})
    assert client.post("/models/r/learn", json={"instances": [[1.0], [2.0]], "targets": [0.5, 1.5]}).status_code == 200
    before = _state(client, "r")
    body = '{"instances": [[1.0]], "targets": [' + raw + "]}"
    r = client.post("/models/r/learn", content=body, headers={"content-type": "application/json"})
    assert _detail(r)["field"] == "targets[0]"
    assert _state(client, "r") == before
    r = client.post("/models/r/learn", json={"instances": [[float(i)] for i in range(8)], "targets": [0.1] * 8})
    assert r.status_code == 200
    preds = client.post("/models/r/predict", json={"instances": [[1.0], [3.0]]}).json()["predictions"]
    assert all(isinstance(p, float) and abs(p) < 1e3 for p in preds)


def test_predict_with_ids_needs_the_key(make_client: Callable[..., TestClient]) -> None:
    """Item 5: predict with ids stores instances for a label, so it is a write."""
    client = make_client(api_key="s3cret")
    body = {"instances": [[1.0]], "ids": ["q1"]}
    assert client.post("/predict", json=body).status_code == 401
    assert client.post("/models/default/predict", json=body).status_code == 401
    assert client.get("/models/default").json()["pending_ids"] == 0
    assert client.post("/predict", json={"instances": [[1.0]]}).status_code == 200  # plain predict is open
    assert client.post("/predict", json=body, headers=KEY).status_code == 200
    assert client.get("/models/default").json()["pending_ids"] == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/models/x/import"), ("POST", "/partial_fit"), ("POST", "/models"), ("POST", "/models/default/learn")],
)
def test_protected_bodies_are_not_read_before_the_key(
    make_client: Callable[..., TestClient], method: str, path: str
) -> None:
    """Item 6: an import body of up to 256 MB used to be read and parsed before the 401."""
    app = make_client(api_key="s3cret").app
    pulled: list[int] = []
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        pulled.append(1)
        return {"type": "http.request", "body": b"{" * 1024, "more_body": True}  # an endless body

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"content-type", b"application/json")], "http_version": "1.1", "scheme": "http",
             "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1), "root_path": ""}
    anyio.run(app, scope, receive, send)
    assert sent[0]["status"] == 401 and not pulled


def test_one_failing_request_fails_alone(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 7: one failing request used to fail (503) every request of its write group."""
    client.post("/models", json={"name": "m", "params": SMALL})
    model = client.app.state.registry.get("m")  # type: ignore[attr-defined]
    gate, blocked = threading.Event(), threading.Event()
    learn = estimators.learn

    def flaky(est: Any, rows: list[dict[str, float]], targets: list[Any], frame: Any = None) -> None:
        if "gate" in rows[0]:
            blocked.set()
            gate.wait(30)
        if "boom" in rows[0]:
            raise RuntimeError("boom")
        learn(est, rows, targets, frame)

    monkeypatch.setattr(estimators, "learn", flaky)
    batches = [([{"gate": 1.0, "a": float(i)} for i in range(3)], [0, 1, 0])]
    first = model.submit(LearnJob(*batches[0][:1], None, batches[0][1]))
    assert blocked.wait(30)  # the writer holds the first job: the next ones queue up as one group
    good = [([{"a": float(i), "b": 1.0} for i in range(k, k + 5)], [i % 2 for i in range(5)]) for k in range(4)]
    jobs = [LearnJob(good[0][0], None, good[0][1]), LearnJob([{"boom": 1.0}], None, [1]),
            LearnJob([{"a": 1e300}], None, [0]), LearnJob(good[1][0], None, good[1][1]),
            LearnJob([{"a": 1.0}], None, ["str"]), LearnJob(good[2][0], None, good[2][1])]
    futures = [model.submit(job) for job in jobs]
    gate.set()
    first.result(30)
    outcomes = [f.exception(30) for f in futures]
    assert [type(e).__name__ if e else None for e in outcomes] == [
        None, "Overloaded", "FieldError", None, "FieldError", None]
    assert isinstance(outcomes[1], Overloaded) and "boom" in str(outcomes[1])
    assert [f.result().samples_seen for f in futures if not f.exception()] == [8, 13, 18]
    reference = AMClassifier(hidden_sizes=(8,), batch_size=4, seed=0)
    for rows, ys in [batches[0], good[0], good[1], good[2]]:
        reference.learn_many(pd.DataFrame(rows), pd.Series(ys, dtype=object))
    probe = [{"a": 0.5, "b": 1.0, "gate": 1.0}, {"a": 3.0}]
    served = client.post("/models/m/predict", json={"instances": probe}).json()["probabilities"]
    expected = estimators.predict(reference, probe, classifier=True)[1]
    assert served == expected  # bitwise: the same library calls in the same process


def test_features_and_classes_per_model_are_limited(make_client: Callable[..., TestClient]) -> None:
    """Item 8: no limit on features per model (memory grows with the square of the feature count)."""
    client = make_client(max_features=10, max_classes=3)
    client.post("/partial_fit", json={"instances": [{f"f{i}": 1.0 for i in range(8)}], "targets": [0]})
    before = _state(client)
    item = _detail(client.post("/partial_fit", json={"instances": [{f"g{i}": 1.0 for i in range(3)}], "targets": [0]}))
    assert item["field"] == "instances" and "max_features=10" in item["msg"]
    item = _detail(client.post("/partial_fit", json={"instances": [[1.0]] * 3, "targets": [1, 2, 3]}))
    assert item["field"] == "targets" and "max_classes=3" in item["msg"]
    assert _state(client) == before
    r = client.post("/partial_fit", json={"instances": [{"g": 1.0}, {"h": 1.0}], "targets": [1, 2]})
    assert r.status_code == 200


def test_a_predict_naming_more_features_than_a_model_may_know_is_refused(
    make_client: Callable[..., TestClient]
) -> None:
    """Rows of distinct names each used to build a table of rows by every name (1,024 rows of 300: 11 GB)."""
    client = make_client(max_features=10)
    client.post("/partial_fit", json={"instances": [{"a": 1.0, "b": 2.0}] * 2, "targets": [0, 1]})
    before = _state(client)
    rows = [{f"r{i}c{j}": 0.0 for j in range(3)} for i in range(4)]  # 12 names, one row of 3 alone would do
    item = _detail(client.post("/predict", json={"instances": rows}))
    assert item["field"] == "instances" and "12 distinct features, more than max_features=10" in item["msg"]
    item = _detail(client.post("/predict", json={"instances": rows, "ids": [str(i) for i in range(4)]}))
    assert item["field"] == "instances" and _state(client) == before
    r = client.post("/predict", json={"instances": rows[:3] + [{"a": 1.0}]})  # 10 names: answered
    assert r.status_code == 200 and len(r.json()["predictions"]) == 4


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"device": "meta"}, "params.device"),
        ({"device": "cuda:99"}, "params.device"),
        ({"seed": 10**30}, "params.seed"),
        ({"batch_size": 10**12}, "params.batch_size"),
        ({"hidden_sizes": [10**7]}, "params.hidden_sizes[0]"),
        ({"hidden_sizes": [4] * 9}, "params.hidden_sizes"),
        ({"no_such": 1}, "params.no_such"),
        ({"solve_every": 2**63}, "params.solve_every"),  # (taken, then every step's state overflowed an int64)
    ],
)
def test_model_settings_the_host_cannot_serve_are_refused(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    """Item 9: device cuda/meta, seed 10^30, batch_size 10^12 and hidden_sizes [10^7] used to be accepted."""
    assert _detail(client.post("/models", json={"name": "m", "params": params}))["field"] == field
    assert [m["name"] for m in client.get("/models").json()["models"]] == ["default"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="the host has CUDA: device='cuda' is valid here")
def test_cuda_on_a_cpu_host_is_refused(client: TestClient) -> None:
    assert _detail(client.post("/models", json={"name": "m", "params": {"device": "cuda"}}))["field"] == "params.device"


def test_labels_of_another_type_are_refused_not_merged(client: TestClient) -> None:
    """Item 10: [1, 0] after [True, False] used to merge into the boolean classes."""
    assert client.post("/partial_fit", json={"instances": [[1.0], [0.0]], "targets": [True, False]}).status_code == 200
    before = _state(client)
    item = _detail(client.post("/partial_fit", json={"instances": [[1.0], [0.0]], "targets": [True, 0]}))
    assert item["field"] == "targets[1]" and "one label type" in item["msg"]
    assert _state(client) == before
    client.post("/models", json={"name": "s", "params": SMALL})
    assert client.post("/models/s/learn", json={"instances": [[1.0]], "targets": [1]}).status_code == 200
    assert _detail(client.post("/models/s/learn", json={"instances": [[1.0]], "targets": ["1"]}))["field"] == (
        "targets[0]")
    assert client.get("/models/s").json()["classes"] == [1]


def test_a_diverged_regressor_keeps_every_answer_valid_json() -> None:
    """Item 11: huge errors of a diverged regressor must not turn the metrics (and /models, export) into a 500."""
    from stream_am.server.prequential import Prequential

    metrics = Prequential(classifier=False)
    metrics.update([1e300, float("inf"), None], [0.0, 1.0, 2.0])
    summary, state = metrics.summary(), metrics.state()
    assert all(v is None or math.isfinite(v) for v in summary.values())
    assert all(math.isfinite(v) for v in state.values())


@pytest.mark.parametrize("key", ["s3cret\n", " s3cret", "s3 cret", "sécret", ""])
def test_an_api_key_no_client_could_present_is_refused_at_start_without_showing_it(key: str) -> None:
    """A key read from a secret file with its newline, or with a non-ASCII letter, used to refuse every request."""
    from pydantic import ValidationError
    from stream_am.server.settings import Settings

    with pytest.raises(ValidationError, match="api_key") as refused:
        Settings(api_key=key)
    assert key.strip() not in str(refused.value) or not key.strip()


def test_request_methods_no_route_has_do_not_add_series_to_metrics(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_key="s3cret", protect_reads=True)
    for i in range(50):
        assert client.request(f"M{i}", "/health").status_code == 405
    metrics = client.get("/metrics", headers=KEY).text
    assert 'method="M1"' not in metrics and 'method="other"' in metrics
    assert len({line.split('method="')[1].split('"')[0] for line in metrics.splitlines() if 'method="' in line}) <= 8


def test_a_model_that_cannot_be_copied_answers_503_not_a_422_naming_the_request(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stream_am.server import service

    client.post("/partial_fit", json={"instances": [{"a": 1.0}, {"a": 2.0}], "targets": [0, 1]})

    def broken(obj: Any, memo: Any = None) -> Any:
        raise ValueError("Overflow when unpacking long long")

    monkeypatch.setattr(service.copy, "deepcopy", broken)
    r = client.post("/predict", json={"instances": [{"a": 1.0}]})
    assert r.status_code == 503 and "cannot be copied to answer from: ValueError" in r.text
    monkeypatch.undo()
    assert client.post("/predict", json={"instances": [{"a": 1.0}]}).status_code == 200
