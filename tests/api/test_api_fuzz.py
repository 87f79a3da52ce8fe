"""Property-based: random bodies at every endpoint of a live app (the dashboard's reads included) never give
a 5xx, never change a model they are refused by, and never stop it learning (issue 14).

Two probe models (a classifier ``c`` and a regressor ``r``) are observed after every request: samples
seen, version, features, classes, buffered samples and the predictions on a probe set. A refused request
(4xx) must leave all of that exactly as it was (bitwise: one process); an accepted one may change it, and
becomes the new expectation. After each example both probes must still learn a valid batch. The default
run is short; ``-m slow`` runs a longer profile.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from stream_am.server import Settings, create_app

SMALL = {"hidden_sizes": [8], "batch_size": 4, "seed": 0}
PROBES = ("c", "r")
PROBE_SET = [{"a": 0.5, "b": -1.0}, {"a": 2.0}, {"0": 1.0, "1": 0.0}]
VALID = {"c": {"instances": [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}], "targets": ["x", "y"]},
         "r": {"instances": [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}], "targets": [1.5, -0.5]}}
NAMES = ["default", "c", "r", "m1", "m2", "nope", "bad name", "../x", ""]
PARAMS = ["hidden_sizes", "activation", "variant", "readout", "batch_size", "standardize", "standardize_target",
          "mu", "code_steps", "weight_steps", "memory_decay", "ridge", "solve_every", "device", "seed", "zz"]

# -- strategies ---------------------------------------------------------------------------------------
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e300, -1e300, 1e20, -1e21, 1e15, 5e-324, -0.0, 1e-300, 1.7976931348623157e308]),
    st.integers(-(10**30), 10**30),
    st.integers(-3, 3),
)
keys = st.one_of(st.sampled_from(["a", "b", "0", "1", "x"]), st.text(max_size=6))
instance = st.one_of(st.dictionaries(keys, numbers, max_size=5), st.lists(numbers, max_size=5))
label = st.one_of(st.booleans(), st.integers(-2, 2), st.integers(), st.sampled_from(["x", "y", "1"]), numbers,
                  st.none(), st.text(max_size=4))
anything = st.recursive(
    st.none() | st.booleans() | numbers | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
ids = st.lists(st.text(max_size=4), max_size=6)
learn_body = st.fixed_dictionaries(
    {"targets": st.lists(label, max_size=8)},
    optional={"instances": st.lists(instance, max_size=8), "ids": ids, "extra": anything},
)
predict_body = st.fixed_dictionaries({"instances": st.lists(instance, max_size=8)}, optional={"ids": ids})
param_value = st.one_of(anything, st.lists(st.integers(-5, 10**8), max_size=4), st.integers(-5, 10**13),
                        st.sampled_from(["cpu", "cuda", "meta", "auto", "relu", "sign", "adam", "mem"]))
create_body = st.fixed_dictionaries(
    {"name": st.sampled_from(NAMES[3:]) | st.text(max_size=8)},
    optional={"estimator": st.sampled_from(["AMClassifier", "AMRegressor", "Pickle"]),
              "params": st.dictionaries(st.sampled_from(PARAMS), param_value, max_size=4)},
)


@st.composite
def plausible_learn(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """Mostly well-formed batches (so that many are learned), sometimes with one hostile value or label."""
    n = draw(st.integers(1, 8))
    value = st.floats(-10, 10) | st.sampled_from([1e300, -1e21, 1e-300]) if draw(st.booleans()) else st.floats(-10, 10)
    rows = draw(st.lists(st.dictionaries(st.sampled_from(["a", "b", "c"]), value, min_size=1, max_size=3),
                         min_size=n, max_size=n))
    usual = st.sampled_from(["x", "y", "z"]) if name in ("c", "default") else st.floats(-5, 5)
    odd = st.one_of(label, st.sampled_from([1e200, True, 1, "x", 1e308]))
    targets = draw(st.lists(usual | odd if draw(st.booleans()) else usual, min_size=n, max_size=n))
    return {"instances": rows, "targets": targets}


@st.composite
def import_body(draw: st.DrawFn, export: dict[str, Any]) -> Any:
    doc = json.loads(json.dumps(export))
    how = draw(st.sampled_from(["valid", "files", "state", "params", "config", "anything"]))
    if how == "files":
        name = draw(st.sampled_from([*doc["files"], "x.json", "../a.safetensors", ".hidden.json"]))
        doc["files"][name] = draw(st.sampled_from([base64.b64encode(draw(st.binary(max_size=64))).decode(), "%%%"]))
    elif how == "state":
        doc["state"] = draw(st.dictionaries(st.sampled_from(["samples_seen", "model_version", "metrics", "x"]),
                                            anything, max_size=3))
    elif how == "params":
        doc["params"] = draw(st.dictionaries(st.sampled_from(PARAMS), param_value, max_size=3))
    elif how == "config":
        config = json.loads(base64.b64decode(doc["files"]["config.json"]))
        part = draw(st.sampled_from(["meta", "params"]))
        config[part][draw(st.sampled_from(sorted(config[part]) + ["zz"]))] = draw(anything)
        doc["files"]["config.json"] = base64.b64encode(json.dumps(config).encode()).decode()
    elif how == "anything":
        return draw(anything)
    return doc


@st.composite
def requests(draw: st.DrawFn, export: dict[str, Any]) -> tuple[str, str, Any]:
    """``(method, path, json body or raw bytes)`` for one of the endpoints."""
    name = draw(st.sampled_from(NAMES[:3]) | st.sampled_from(NAMES))
    kind = draw(st.sampled_from(["learn"] * 3 + ["predict"] * 2 + ["create", "get", "delete", "export", "import",
                                                                    "ops", "raw"]))
    prefix = draw(st.sampled_from(["", f"/models/{name}"])) if name in ("default", "c", "r") else f"/models/{name}"
    if kind == "learn":
        body = draw(st.one_of(learn_body, anything, plausible_learn(name), plausible_learn(name)))
        return "POST", f"{prefix}/{draw(st.sampled_from(['learn', 'partial_fit']))}", body
    if kind == "predict":
        plausible = plausible_learn(name).map(lambda b: {"instances": b["instances"]})
        return "POST", f"{prefix}/predict", draw(predict_body | anything | plausible)
    if kind == "create":
        return "POST", "/models", draw(create_body | anything)
    if kind == "get":
        number = st.integers(-(10**20), 10**20) | st.sampled_from(["x", "1e400", ""])
        query = f"?since={draw(number)}&limit={draw(number)}" if draw(st.booleans()) else ""
        paths = [f"/models/{name}", "/models", "/history", "/dashboard/config", f"/models/{name}/history{query}",
                 f"/models/{name}/history/stream{query.split('&')[0]}"]
        return "GET", draw(st.sampled_from(paths)), None
    if kind == "delete":  # deleting the probes would be an accepted write: only the others
        return "DELETE", f"/models/{draw(st.sampled_from(['m1', 'm2', 'nope', '']))}", None
    if kind == "export":
        return "GET", f"/models/{name}/export", None
    if kind == "import":
        target = draw(st.sampled_from(["m1", "m2", "c", "bad name"]))
        replace = draw(st.sampled_from(["true", "false", "maybe"])) if target != "c" else "false"
        return "POST", f"/models/{target}/import?replace={replace}", draw(import_body(export))
    if kind == "ops":
        return "GET", draw(st.sampled_from(["/health", "/metrics"])), None
    raw = draw(st.binary(max_size=64) | st.sampled_from([b"{", b"[1e999]", b'{"instances": [[NaN]]}']))
    return "POST", draw(st.sampled_from(["/learn", "/predict", "/models", "/models/c/import"])), raw


# -- the live app -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any]]]:
    state: Path = tmp_path_factory.mktemp("fuzz") / "state"
    limits = {"max_features": 32, "max_classes": 8, "max_batch": 16, "max_models": 6, "max_model_batch_size": 64,
              "max_hidden_size": 64, "max_hidden_layers": 3, "max_inner_steps": 5, "max_pending_ids": 50,
              "stream_seconds": 0.05, "history_interval": 0.01}
    with TestClient(create_app(Settings(state_dir=state, **limits))) as client:
        client.post("/models", json={"name": "c", "params": SMALL})
        client.post("/models", json={"name": "r", "estimator": "AMRegressor", "params": SMALL})
        for name in PROBES:
            assert client.post(f"/models/{name}/learn", json=VALID[name]).status_code == 200
        yield client, client.get("/models/c/export").json()


def observe(client: TestClient) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in PROBES:
        info = client.get(f"/models/{name}").json()
        estimator = client.app.state.registry.get(name).current().estimator  # type: ignore[attr-defined]
        preds = client.post(f"/models/{name}/predict", json={"instances": PROBE_SET}).json()
        out[name] = (info["samples_seen"], info["model_version"], info["features"], info["classes"],
                     estimator.n_buffered, preds)
    return out


def _send(client: TestClient, method: str, path: str, body: Any) -> Any:
    if isinstance(body, bytes):
        return client.request(method, path, content=body, headers={"content-type": "application/json"})
    if body is None:
        return client.request(method, path)
    return client.request(method, path, content=json.dumps(body), headers={"content-type": "application/json"})


def _check(client: TestClient, calls: list[tuple[str, str, Any]]) -> None:
    expected = observe(client)
    for method, path, body in calls:
        r = _send(client, method, path, body)
        event(f"{method} {path.split('?')[0].rsplit('/', 1)[-1] or '/'}: {r.status_code}")
        assert r.status_code < 500, (method, path, body, r.status_code, r.text)
        if r.status_code == 422:
            assert all(item.get("field") for item in r.json()["detail"]), r.text
        if r.status_code >= 400:
            assert observe(client) == expected, (method, path, body, r.text)
        else:
            expected = observe(client)
    for name in PROBES:  # still learning
        r = client.post(f"/models/{name}/learn", json=VALID[name])
        assert r.status_code == 200, r.text


def _run(app: tuple[TestClient, dict[str, Any]], max_examples: int) -> None:
    client, export = app

    @settings(max_examples=max_examples, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(calls=st.lists(requests(export), min_size=1, max_size=3))
    def prop(calls: list[tuple[str, str, Any]]) -> None:
        _check(client, calls)

    prop()


def test_random_requests_never_break_a_model(app: tuple[TestClient, dict[str, Any]]) -> None:
    _run(app, max_examples=100)


@pytest.mark.slow
def test_random_requests_never_break_a_model_long(app: tuple[TestClient, dict[str, Any]]) -> None:
    _run(app, max_examples=1000)
