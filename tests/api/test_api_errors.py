"""Bad input answers a clear error naming the field and leaves the model unchanged."""

from __future__ import annotations

from collections.abc import Callable

import api_fixtures
import pytest
from fastapi.testclient import TestClient

# pytest fixtures shared by the tests/api modules (no conftest.py here: see api_fixtures)
client = api_fixtures.client
make_client = api_fixtures.make_client

GOOD = {"instances": [{"a": 1.0, "b": 2.0}], "targets": [1]}


def _field(response: object) -> str:
    detail = response.json()["detail"]  # type: ignore[attr-defined]
    return str(detail[0]["field"])


def _state(client: TestClient) -> tuple[int, int, dict[str, object]]:
    info = client.get("/models/default").json()
    probe = client.post("/predict", json={"instances": [{"a": 1.0, "b": 2.0}]}).json()
    return info["samples_seen"], info["model_version"], probe


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"targets": [1]}, "instances"),
        ({"instances": [{"a": 1.0}]}, "targets"),
        ({"instances": [{"a": "x"}], "targets": [1]}, "instances[0].a"),
        ({"instances": [{"a": True}], "targets": [1]}, "instances[0].a"),
        ({"instances": [[1.0, None]], "targets": [1]}, "instances[0][1]"),
        ({"instances": [{"a": 1.0}, {"a": 2.0}], "targets": [1]}, "targets"),
        ({"instances": [], "targets": []}, "instances"),
        ({"instances": [{}], "targets": [1]}, "instances[0]"),
        ({"instances": [{"a": 1.0}], "targets": [1.5]}, "targets[0]"),
        ({"instances": [{"a": 1.0}], "targets": [None]}, "targets[0]"),
        ({"instances": [{"a": 1.0}], "ids": ["q"], "targets": [1]}, "instances"),
        ({"instances": [{"a": 1.0}], "targets": [1], "extra": 1}, "extra"),
        ({"ids": ["nope"], "targets": [1]}, "ids[0]"),
        ({"ids": ["x", "x"], "targets": [1, 1]}, "ids"),
        ({"instances": [{"": 1.0}], "targets": [1]}, 'instances[0][""] (the key)'),
    ],
)
def test_bad_learn_requests_name_the_field(client: TestClient, body: dict[str, object], field: str) -> None:
    client.post("/partial_fit", json=GOOD)
    before = _state(client)
    r = client.post("/partial_fit", json=body)
    assert r.status_code == 422, r.text
    assert _field(r) == field
    assert _state(client) == before


@pytest.mark.parametrize("raw", ["[1, NaN]", "[Infinity]", "[-Infinity]"])
def test_non_finite_values_are_refused(client: TestClient, raw: str) -> None:
    before = _state(client)
    body = '{"instances": [' + raw + '], "targets": [1]}'
    r = client.post("/partial_fit", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 422 and _field(r).startswith("instances[0]")
    assert _state(client) == before


def test_malformed_json(client: TestClient) -> None:
    r = client.post("/partial_fit", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    r = client.post("/partial_fit", content=b'{"instances": [{"a\xff": 1}], "targets": [1]}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"][0]["msg"]


def test_an_answer_that_cannot_be_written_is_a_500_not_a_refusal(client: TestClient) -> None:
    """A response pydantic cannot serialise (a name no JSON text can carry) is the server's failure: 500, not 422."""
    app = client.app
    route = "/test-unwritable"

    @app.get(route)  # type: ignore[attr-defined]
    def unwritable() -> dict[str, str]:
        return {"name": "\ud800"}

    r = client.get(route)
    assert r.status_code == 500 and "could not be written as JSON" in r.json()["detail"]


def test_regression_targets_must_be_numbers(client: TestClient) -> None:
    client.post("/models", json={"name": "r", "estimator": "AMRegressor"})
    r = client.post("/models/r/partial_fit", json={"instances": [[1.0]], "targets": ["high"]})
    assert r.status_code == 422 and _field(r) == "targets[0]"


def test_batch_limits(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_batch=3)
    r = client.post("/partial_fit", json={"instances": [[1.0]] * 4, "targets": [1] * 4})
    assert r.status_code == 422 and _field(r) == "instances" and "max_batch=3" in r.text
    r = client.post("/predict", json={"instances": [[1.0]] * 4})
    assert r.status_code == 422 and _field(r) == "instances"
    assert client.post("/partial_fit", json={"instances": [[1.0]] * 3, "targets": [1] * 3}).status_code == 200


def test_body_size_limit(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_body_bytes=2048)
    big = {"instances": [[1.0] * 600], "targets": [1]}
    r = client.post("/partial_fit", json=big)
    assert r.status_code == 413
    chunks = iter([b'{"instances": [[' + b"1.0," * 600, b'1.0]], "targets": [1]}'])
    r = client.post("/partial_fit", content=chunks, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert client.get("/models/default").json()["samples_seen"] == 0


def test_unknown_model_is_404(client: TestClient) -> None:
    for method, path, body in [
        ("post", "/models/nope/predict", {"instances": [[1.0]]}),
        ("post", "/models/nope/partial_fit", {"instances": [[1.0]], "targets": [1]}),
        ("post", "/models/nope/learn", {"instances": [[1.0]], "targets": [1]}),
        ("get", "/models/nope", None),
        ("delete", "/models/nope", None),
        ("get", "/models/nope/export", None),
    ]:
        r = client.request(method, path, json=body)
        assert r.status_code == 404, (path, r.text)
        assert "nope" in r.json()["detail"]


def test_bad_model_configuration(client: TestClient) -> None:
    r = client.post("/models", json={"name": "bad", "params": {"hidden_sizes": [-3]}})
    assert r.status_code == 422 and r.json()["detail"][0]["msg"].startswith("params")
    r = client.post("/models", json={"name": "bad", "params": {"no_such_arg": 1}})
    assert r.status_code == 422 and "no_such_arg" in r.text
    r = client.post("/models", json={"name": "../etc", "params": {}})
    assert r.status_code == 422 and _field(r) == "name"
    r = client.post("/models", json={"name": "x", "estimator": "Pickle"})
    assert r.status_code == 422 and _field(r) == "estimator"
    assert [m["name"] for m in client.get("/models").json()["models"]] == ["default"]


def test_api_key_guards_writes(make_client: Callable[..., TestClient]) -> None:
    client = make_client(api_key="s3cret")
    assert client.post("/partial_fit", json=GOOD).status_code == 401
    bad = {"Authorization": "Bearer wrong"}
    assert client.post("/partial_fit", json=GOOD, headers=bad).status_code == 401
    assert client.post("/models", json={"name": "m"}, headers=bad).status_code == 401
    assert client.delete("/models/default").status_code == 401
    assert client.get("/models/default/export").status_code == 401
    assert client.post("/models/x/import", json={}).status_code == 401
    ok = {"Authorization": "Bearer s3cret"}
    assert client.post("/partial_fit", json=GOOD, headers=ok).status_code == 200
    assert client.post("/predict", json={"instances": [[1.0]]}).status_code == 200
    assert client.get("/models/default").json()["samples_seen"] == 1


def test_a_body_sent_as_a_form_names_the_content_type(client: TestClient) -> None:
    # what `curl -d '{...}'` sends without -H 'content-type: application/json'
    body = '{"instances": [{"x": 1.0}], "targets": ["a"]}'
    r = client.post("/partial_fit", content=body, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422
    assert "content-type: application/json" in r.json()["detail"][0]["msg"]
    r = client.post("/predict", content='{"instances": [{"x": 1.0}]}')  # no content-type at all: read as JSON
    assert r.status_code == 200, (r.json(), r.request.headers)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"name": "m", "params": {"\\ud800": 1}}', "params"),  # the library's message quotes the name as is
        ('{"name": "m", "params": {}, "\\udc00": 1}', "body"),
    ],
)
def test_a_lone_surrogate_in_a_name_is_refused_naming_the_field(client: TestClient, raw: str, field: str) -> None:
    """A JSON escape of half a UTF-16 pair (legal JSON, no Unicode text) in a parameter's name made the 422 itself
    unwritable; the answer was rewritten as a 422 naming `body` with the encoder's message ("'utf-8' codec can't
    encode ..."). An unknown field so named was answered "the body must be a JSON object"."""
    r = client.post("/models", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["field"] == field
    assert "codec" not in detail["msg"] and "must be a JSON object" not in detail["msg"]
    assert "\\ud800" in detail["msg"] or "Unicode" in detail["msg"]
    assert client.get("/models/m").status_code == 404
