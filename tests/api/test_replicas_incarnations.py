"""A predictor never answers for a model once the writer has acknowledged its deletion or replacement.

Found by an adversarial review: after ``DELETE`` (204) a predictor kept answering from the deleted model until the
publisher's next round and its own next look (up to ``publish_interval + snapshot_poll_interval``), and a model
deleted, created again and learned once was answered, even with ``min_model_version`` of its new version, from
the old incarnation (another estimator, another version).
"""

from __future__ import annotations

import base64

import replica_fixtures
from api_fixtures import SMALL

ROWS = [{"a": 1.0, "b": 0.0}, {"a": -1.0, "b": 0.5}]
replicas = replica_fixtures.replicas


def _served(predictor, name: str, version: int) -> None:
    replica_fixtures.until(
        lambda: predictor.get("/replica").json()["models"].get(name, {}).get("model_version") == version)


def test_a_deleted_or_recreated_model_is_never_answered_from_its_old_incarnation(replicas) -> None:
    # the publisher's rounds are slow: only the acknowledged delete itself may withdraw the old snapshot
    _, predictor = replicas(publish_interval=1.0, snapshot_poll_interval=1.0)
    for _ in range(3):
        assert predictor.post("/models", json={"name": "m", "estimator": "AMClassifier", "params": SMALL}
                              ).status_code == 201
        for _ in range(3):
            predictor.post("/models/m/learn", json={"instances": ROWS, "targets": ["x", "y"]})
        _served(predictor, "m", 3)
        assert predictor.delete("/models/m").status_code == 204
        gone = predictor.post("/models/m/predict", json={"instances": ROWS})
        assert gone.status_code == 404, gone.text
        assert predictor.post("/models", json={"name": "m", "estimator": "AMRegressor", "params": SMALL}
                              ).status_code == 201
        learned = predictor.post("/models/m/learn", json={"instances": ROWS, "targets": [1.0, 2.0]}).json()
        assert learned["model_version"] == 1
        for body in ({"instances": ROWS}, {"instances": ROWS, "min_model_version": 1}):
            answer = predictor.post("/models/m/predict", json=body).json()
            assert answer["model_version"] == 1 and all(isinstance(p, float) for p in answer["predictions"]), answer
        assert predictor.delete("/models/m").status_code == 204


def test_a_model_replaced_by_an_import_is_never_answered_from_the_replaced_one(replicas) -> None:
    _, predictor = replicas(publish_interval=1.0, snapshot_poll_interval=1.0)
    predictor.post("/models", json={"name": "m", "estimator": "AMClassifier", "params": SMALL})
    predictor.post("/models/m/learn", json={"instances": ROWS, "targets": ["x", "y"]})
    predictor.post("/models", json={"name": "other", "estimator": "AMClassifier", "params": SMALL})
    for _ in range(5):
        predictor.post("/models/other/learn", json={"instances": ROWS, "targets": ["y", "x"]})
    export = predictor.get("/models/other/export").json()
    assert base64.b64decode(next(iter(export["files"].values())))  # a real export document
    _served(predictor, "m", 1)
    replaced = predictor.post("/models/m/import?replace=true", json=export)
    assert replaced.status_code == 201 and replaced.json()["model_version"] == 5
    answer = predictor.post("/models/m/predict", json={"instances": ROWS}).json()
    assert answer["model_version"] == 5, answer  # the imported model's, never the replaced one's version 1


def test_a_second_writer_on_one_snapshot_directory_is_refused(tmp_path) -> None:
    """Found by an adversarial review: "only one writer may publish into a snapshot directory" was not enforced; two
    writers (two state directories) sharing one took turns withdrawing each other's models and predictors answered
    from either."""
    import pytest
    from fastapi.testclient import TestClient
    from stream_am.server import Settings, create_app

    shared = tmp_path / "snapshots"
    first = Settings(state_dir=tmp_path / "a", role="writer", snapshot_dir=shared)
    with TestClient(create_app(first)):
        second = Settings(state_dir=tmp_path / "b", role="writer", snapshot_dir=shared)
        with pytest.raises(RuntimeError, match="snapshot_dir: .* in use by another writer"):
            with TestClient(create_app(second)):
                pass
    with TestClient(create_app(second)) as again:  # free once the first writer has stopped
        assert again.get("/health").json()["problems"] == {}
