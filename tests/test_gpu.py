"""CUDA path: state on the device, same learning as on the CPU (run with `pytest -m gpu` on a GPU machine)."""

import pytest
import torch
from helpers_engine import blobs, mlp

from stream_am import OnlineAM

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize(("variant", "clock"), [("mem", "sample"), ("adam", "sample"), ("mem", "class")])
def test_cuda_state_lives_on_the_device_and_matches_cpu(variant, clock):
    x, y = blobs(n=256)
    runs = {}
    for device in ("cpu", "cuda"):
        am = OnlineAM(mlp([4, 32, 32, 3]), variant=variant, memory_clock=clock, device=device, seed=0)
        for i in range(0, 256, 32):
            am.partial_fit(x[i : i + 32], y[i : i + 32])  # CPU tensors in: moved by the learner
        for key, value in am.state_dict().items():
            if key != "generator":
                assert value.device.type == device, key
        runs[device] = am.predict(x).cpu()
    torch.testing.assert_close(runs["cuda"], runs["cpu"], rtol=1e-3, atol=1e-3)


def test_auto_device_picks_cuda():
    am = OnlineAM(mlp([4, 8, 3]), device="auto", seed=0)
    x, y = blobs(n=32)
    am.partial_fit(x, y)
    assert next(am.module.parameters()).device.type == "cuda"


def test_a_failed_memory_solve_keeps_the_weights_on_every_device():
    from stream_am.updaters import ridge_solve

    A = -torch.eye(3)  # not positive definite even with the ridge
    B, W = torch.ones(2, 3), torch.full((2, 3), 0.5)
    for device in ("cpu", "cuda"):
        got = ridge_solve(A.to(device), B.to(device), W.to(device), 1e-2)
        assert torch.equal(got.cpu(), W), device
