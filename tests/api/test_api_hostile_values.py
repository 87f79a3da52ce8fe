"""Hostile but well-formed requests found by an adversarial review: each is refused with a 422 naming its field
and changes nothing (before the fixes: a 500, a 400 naming no field, or a model that could never learn again)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import api_fixtures
import pytest
from fastapi.testclient import TestClient
from stream_am.server.model_limits import class_memory_size

from stream_am.estimators import companion
from stream_am.estimators.basis import QUADRATIC

client = api_fixtures.client
make_client = api_fixtures.make_client

JSON = {"content-type": "application/json"}
ROWS = [{"a": float(i % 7) - 3.0, "b": float(i % 5) - 2.0} for i in range(8)]


def _detail(r: Any) -> dict[str, Any]:
    assert r.status_code == 422, r.text
    item: dict[str, Any] = r.json()["detail"][0]
    return item


def _export(client: TestClient, name: str) -> bytes:
    r = client.get(f"/models/{name}/export")
    assert r.status_code == 200, r.text
    return r.content


def test_an_integer_target_beyond_float64_is_a_422_naming_it(client: TestClient) -> None:
    assert (
        client.post("/models", json={"name": "r", "estimator": "AMRegressor", "params": api_fixtures.SMALL}).status_code
        == 201
    )
    before = _export(client, "r")
    body = '{"instances": [[1.0], [2.0]], "targets": [2.0, 1%s]}' % ("0" * 400)
    item = _detail(client.post("/models/r/partial_fit", content=body, headers=JSON))
    assert item["field"] == "targets[1]" and "finite number" in item["msg"]
    assert _export(client, "r") == before


@pytest.mark.parametrize(
    "body", ['{"instances":' + "[" * 5000 + "]" * 5000 + "}", '{"instances": [[%s]]}' % ("9" * 5000)]
)
def test_a_body_the_json_reader_gives_up_on_is_a_422_naming_the_body(client: TestClient, body: str) -> None:
    item = _detail(client.post("/predict", content=body, headers=JSON))
    assert item["field"] == "body" and item["type"] == "json_invalid"


@pytest.mark.parametrize(
    "param, value", [("weight_lr", 1e308), ("output_lr", 1e20), ("ridge", 1e308), ("code_lr", 1e100)]
)
def test_settings_that_would_break_the_first_step_are_refused_at_creation(
    client: TestClient, param: str, value: float
) -> None:
    params = {**api_fixtures.SMALL, "variant": "adam", param: value}
    item = _detail(client.post("/models", json={"name": "m", "params": params}))
    assert item["field"] == f"params.{param}"
    assert client.get("/models/m").status_code == 404


def test_an_import_at_the_counters_bound_is_refused_so_that_export_keeps_working(client: TestClient) -> None:
    assert (
        client.post("/partial_fit", json={"instances": ROWS, "targets": [int(r["a"] > 0) for r in ROWS]}).status_code
        == 200
    )
    doc = client.get("/models/default/export").json()
    for field, value in (("samples_seen", 2**63 - 1), ("model_version", 2**60)):
        bad = {**doc, "state": {**doc["state"], field: value}}
        assert _detail(client.post("/models/big/import", json=bad))["field"] == f"state.{field}"
    bad = {**doc, "state": {**doc["state"], "metrics": {**doc["state"]["metrics"], "n": 1e300}}}
    assert _detail(client.post("/models/big/import", json=bad))["field"].startswith("state.metrics")
    assert client.get("/models/big").status_code == 404
    ok = {**doc, "state": {**doc["state"], "samples_seen": 2**53}}
    assert client.post("/models/big/import", json=ok).status_code == 201
    assert client.post("/models/big/partial_fit", json={"instances": ROWS[:1], "targets": [1]}).status_code == 200
    assert client.get("/models/big/export").status_code == 200


def test_learning_that_would_pass_the_class_memory_limit_is_refused_before_anything_changes(
    make_client: Callable[..., TestClient],
) -> None:
    # two features, hidden 8 and the companions' sums (linear and quadratic): three classes fit; a fourth does not
    limit = class_memory_size(2, [8], 3) + companion.size(2, 3) + companion.size(2, 3, QUADRATIC)
    client = make_client(max_class_memory=limit)
    params = {**api_fixtures.SMALL, "batch_size": 2}
    assert client.post("/models", json={"name": "c", "params": params}).status_code == 201
    assert client.post("/models/c/partial_fit", json={"instances": ROWS[:3], "targets": [0, 1, 2]}).status_code == 200
    before = _export(client, "c")
    item = _detail(client.post("/models/c/partial_fit", json={"instances": ROWS[:1], "targets": [3]}))
    assert item["field"] == "targets" and "max_class_memory" in item["msg"]
    item = _detail(client.post("/models/c/partial_fit", json={"instances": [{"a": 1.0, "z": 2.0}], "targets": [0]}))
    assert item["field"] == "instances" and "max_class_memory" in item["msg"]
    assert _export(client, "c") == before
    assert class_memory_size(2, [8], 3) == 3 * (3 * (3 + 8) + 9 * (9 + 3))
    assert companion.size(2, 3) == (3 + 1) * 3 * 3 + 3 * 3 + companion.BLOCK * 3  # sums, weights, rows gathered
    assert companion.size(2, 3, QUADRATIC) == (3 + 1) * 6 * 6 + 6 * 3 + companion.BLOCK * 3  # [1, a, b, aa, ab, bb]


def test_the_companions_sums_count_against_the_limit_whatever_the_memory_clock(
    make_client: Callable[..., TestClient],
) -> None:
    """Found by a review: with memory_clock="sample" the limit counted nothing, but the companion keeps its sums
    per class whatever the memories' clock."""
    limit = companion.size(2, 3) + companion.size(2, 3, QUADRATIC)  # three classes' companions fit; a fourth does not
    client = make_client(max_class_memory=limit)
    params = {**api_fixtures.SMALL, "batch_size": 2, "variant": "mem", "memory_clock": "sample"}
    assert client.post("/models", json={"name": "s", "params": params}).status_code == 201
    assert client.post("/models/s/partial_fit", json={"instances": ROWS[:3], "targets": [0, 1, 2]}).status_code == 200
    before = _export(client, "s")
    item = _detail(client.post("/models/s/partial_fit", json={"instances": ROWS[:1], "targets": [3]}))
    assert item["field"] == "targets" and "max_class_memory" in item["msg"]
    assert _export(client, "s") == before


def test_an_import_past_the_class_memory_limit_is_refused(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    source = make_client()
    params = {**api_fixtures.SMALL, "batch_size": 2}
    assert source.post("/models", json={"name": "c", "params": params}).status_code == 201
    assert source.post("/models/c/partial_fit", json={"instances": ROWS[:3], "targets": [0, 1, 2]}).status_code == 200
    doc = source.get("/models/c/export").json()
    strict = make_client(state_dir=tmp_path / "strict", max_class_memory=class_memory_size(2, [8], 2))
    item = _detail(strict.post("/models/c/import", json=doc))
    assert item["field"] == "files" and "max_class_memory" in item["msg"]
    assert strict.get("/models/c").status_code == 404


def test_a_regressors_export_with_large_error_sums_imports(client: TestClient) -> None:
    """Found by a review: the sums of errors in a regressor's metrics pass 2**53 long before its counters do."""
    params = {**api_fixtures.SMALL, "batch_size": 2}
    assert client.post("/models", json={"name": "r", "estimator": "AMRegressor", "params": params}).status_code == 201
    rows = {"instances": [[float(i)] for i in range(8)], "targets": [1e8 + i for i in range(8)]}
    assert client.post("/models/r/partial_fit", json=rows).status_code == 200
    doc = client.get("/models/r/export").json()
    assert doc["state"]["metrics"]["sq_err"] > 2**53
    assert client.post("/models/r2/import", json=doc).status_code == 201


def test_the_class_memory_limit_counts_only_the_layers_that_keep_a_memory(
    make_client: Callable[..., TestClient],
) -> None:
    """Found by a review: the limit charged a memory to every layer; ``auto`` gives wide inputs Adam, and a model
    with Adam layers and an Adam readout keeps no per-class memory at all."""
    client = make_client(max_class_memory=class_memory_size(2, [8], 2))
    params = {**api_fixtures.SMALL, "batch_size": 2, "variant": "adam", "readout": "adam"}
    assert client.post("/models", json={"name": "a", "params": params}).status_code == 201
    assert client.post("/models/a/partial_fit", json={"instances": ROWS[:3], "targets": [0, 1, 2]}).status_code == 200
    wide = make_client(state_dir=client.app.state.settings.state_dir.parent / "wide")  # the default settings
    rows = [{f"f{j}": float((i + j) % 3) for j in range(i * 34, (i + 1) * 34)} for i in range(60)]  # 2040 features
    r = wide.post("/partial_fit", json={"instances": rows, "targets": list(range(60))})
    assert r.status_code == 200, r.text


def test_a_codes_l1_weight_beyond_float32_is_refused_when_the_model_is_created(
    make_client: Callable[..., TestClient],
) -> None:
    """Found by tests/api/test_api_fuzz.py (once in about a hundred runs): ``mu=1e-300`` with ``lambda_c=1``, each in
    its range, was accepted (201) and the model's first step failed in the writer (503)."""
    client = make_client()
    params = {**api_fixtures.SMALL, "batch_size": 2, "mu": 1e-300, "lambda_c": 1.0}
    r = client.post("/models", json={"name": "tiny", "params": params})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "params.lambda_c", r.text
    assert client.get("/models/tiny").status_code == 404
