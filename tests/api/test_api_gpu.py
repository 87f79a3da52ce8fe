"""A model on CUDA behind the server: learns, checkpoints and restarts bitwise (skipped without CUDA)."""

from __future__ import annotations

from collections.abc import Callable

import api_fixtures
import pytest
import torch
from fastapi.testclient import TestClient

# pytest fixtures shared by the tests/api modules (no conftest.py here: see api_fixtures)
make_client = api_fixtures.make_client

PROBE = {"instances": [{"a": 0.3, "b": -1.0}, {"a": 2.0, "b": 0.5}]}


@pytest.mark.gpu
def test_cuda_model_restarts_bitwise(make_client: Callable[..., TestClient]) -> None:
    if not torch.cuda.is_available():
        pytest.skip("CUDA is not available")
    client = make_client(checkpoint_every_samples=10)
    params = {"device": "cuda", "hidden_sizes": [16], "batch_size": 8, "seed": 1}
    assert client.post("/models", json={"name": "gpu", "params": params}).status_code == 201
    i = 0
    for n in (5, 9, 3, 8, 6):
        xs = [{"a": ((i + k) % 7) / 7.0, "b": ((i + k) % 3) / 3.0} for k in range(n)]
        r = client.post("/models/gpu/partial_fit", json={"instances": xs, "targets": [(i + k) % 2 for k in range(n)]})
        assert r.status_code == 200, r.text
        i += n
    before = client.post("/models/gpu/predict", json=PROBE).json()
    info = client.get("/models/gpu").json()
    client.app.state.registry.close(checkpoint=False)  # type: ignore[attr-defined]
    again = make_client(checkpoint_every_samples=10)
    assert again.post("/models/gpu/predict", json=PROBE).json() == before
    assert again.get("/models/gpu").json() == info
