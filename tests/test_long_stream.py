"""Long streams keep finite, stable memories and weights (normalised statistics, not growing sums)."""

import pytest
import torch
from torch import nn

from stream_am import OnlineAM


def _stream(n_samples: int, batch: int, decay: float):
    g = torch.Generator().manual_seed(0)
    w_true = torch.tensor([[1.0, -2.0, 0.5, 3.0]])
    seq = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    am = OnlineAM(seq, variant="mem", loss="mse", memory_decay=decay, seed=0)
    snapshots = []
    for i in range(n_samples // batch):
        x = torch.randn(batch, 4, generator=g) * 10 + 5  # large, offset inputs stress float32 sums
        am.partial_fit(x, x @ w_true.T)
        if (i + 1) * batch in (n_samples // 2, n_samples):
            snapshots.append({k: v.clone() for k, v in am.state_dict().items()})
    return am, snapshots


def _check(am, snapshots):
    first, last = snapshots
    for key, value in last.items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), key
    assert last["memory.0.A"].abs().max() < 1e3  # means, not sums: bounded however long the stream
    drift = (last["module.0.weight"] - first["module.0.weight"]).abs().max()
    assert drift < 0.5, drift  # the fit has settled


def test_one_million_samples_keep_finite_stable_weights():
    am, snaps = _stream(1_000_000, 2_000, decay=0.0)
    assert am.samples_seen == 1_000_000
    _check(am, snaps)


@pytest.mark.slow
def test_one_million_samples_in_small_batches_with_decay():
    am, snaps = _stream(1_000_000, 50, decay=1e-4)
    _check(am, snaps)


def test_one_million_samples_with_the_class_clock_keep_finite_stable_weights():
    """The class-clocked memory stores (scaled) sums; with ``memory_decay=0`` they grow with the stream, while
    A and B, formed from them, stay means."""
    g = torch.Generator().manual_seed(0)
    w_true = torch.tensor([[1.0, -2.0, 0.5, 3.0], [-1.0, 1.0, 2.0, 0.0], [0.0, 0.5, -1.0, 1.0]])
    am = OnlineAM(nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)), variant="mem", memory_decay=0.0, seed=0)
    snapshots = []
    for i in range(500):
        x = torch.randn(2_000, 4, generator=g) * 10 + 5
        am.partial_fit(x, (x @ w_true.T).argmax(1))
        if i + 1 in (250, 500):
            snapshots.append({k: v.clone() for k, v in am.state_dict().items()})
    assert am.memory_clock == "class" and am.samples_seen == 1_000_000
    assert snapshots[1]["memory.0.VAc"].abs().max() > 1e6  # sums: they grew with the stream
    _check(am, snapshots)
