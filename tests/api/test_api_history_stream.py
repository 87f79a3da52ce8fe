"""A model's history stream ends once the model is deleted or replaced.

Found by an adversarial review: a stream opened on a model went on, for up to ``stream_seconds``, after the
model was deleted (a dashboard kept showing a model that no longer existed) or replaced by an import (it kept
showing the replaced model's counters instead of the new one's).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import api_fixtures
from fastapi.testclient import TestClient

make_client = api_fixtures.make_client
ROWS = [{"a": 1.0, "b": 0.0}, {"a": -1.0, "b": 0.5}]


def _stream_after(client: TestClient, change: Callable[[], object]) -> tuple[str, float]:
    """The whole text of a stream of model m during which ``change`` runs, and how long it lasted after it."""
    done: list[float] = []

    def later() -> None:
        time.sleep(0.3)
        change()
        done.append(time.monotonic())

    with client.stream("GET", "/models/m/history/stream") as response:
        assert response.status_code == 200
        worker = threading.Thread(target=later)
        worker.start()
        text = "".join(response.iter_text())
        ended = time.monotonic()
    worker.join()
    return text, ended - done[0]


def test_the_stream_ends_when_its_model_is_deleted_or_replaced(make_client: Callable[..., TestClient]) -> None:
    client = make_client(stream_seconds=30, history_interval=1e-6)
    assert client.post("/models", json={"name": "m", "estimator": "AMClassifier", "params": {}}).status_code == 201
    client.post("/models/m/learn", json={"instances": ROWS, "targets": ["x", "y"]})
    text, after = _stream_after(client, lambda: client.delete("/models/m"))
    assert after < 5 and text.rstrip().endswith("event: end\ndata: {}"), text
    assert client.get("/models/m/history").status_code == 404  # what the reconnecting client is told

    client.post("/models", json={"name": "m", "estimator": "AMClassifier", "params": {}})
    client.post("/models", json={"name": "other", "estimator": "AMClassifier", "params": {}})
    export = client.get("/models/other/export").json()
    text, after = _stream_after(client, lambda: client.post("/models/m/import?replace=true", json=export))
    assert after < 5 and text.rstrip().endswith("event: end\ndata: {}"), text
