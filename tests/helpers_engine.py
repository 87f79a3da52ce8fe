"""Shared builders for the engine tests."""

import torch
from torch import nn


def mlp(widths, act=nn.ReLU, seed=0):
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-2], widths[1:-1], strict=True):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(widths[-2], widths[-1]))
    seq = nn.Sequential(*layers)
    with torch.no_grad():
        for p in seq.parameters():
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) / p.shape[-1] ** 0.5)
    return seq


def blobs(n=256, d=4, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    centers = torch.randn(k, d, generator=g) * 2
    return centers[y] + torch.randn(n, d, generator=g), y


def xor(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return x, ((x[:, 0] * x[:, 1]) > 0).long()


def snapshot(am):
    return {k: v.detach().clone() for k, v in am.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def assert_continue_identically(a, b, x, y, start, batch):
    """Both learners learn ``x[start:], y[start:]`` in batches and end bit for bit equal."""
    for i in range(start, len(x), batch):
        a.partial_fit(x[i : i + batch], y[i : i + batch])
        b.partial_fit(x[i : i + batch], y[i : i + batch])
    assert_same_state(snapshot(a), snapshot(b))
    assert torch.equal(a.predict(x), b.predict(x))


def settled_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the rows a class-clocked memory keeps for its next pass added into its classes' sums
    (one process keeps them; the ranks apply summed statistics, which have no rows)."""
    state = dict(state)
    for key in [k for k in state if k.endswith("pending_inputs")]:
        prefix = key[: -len("pending_inputs")]
        a, c, classes, weights = (state.pop(f"{prefix}pending_{k}") for k in ("inputs", "codes", "classes", "weights"))
        rows = torch.cat([a, c], dim=1)
        VA, VB = state[f"{prefix}VAc"].clone(), state[f"{prefix}VBc"].clone()
        d = VA.shape[1]
        for c in range(VA.shape[0]):
            r, w = rows[classes == c], weights[classes == c]
            VA[c] += (r[:, :d] * w[:, None]).T @ r[:, :d]
            VB[c] += r[:, d:].T @ (r[:, :d] * w[:, None])
        state[f"{prefix}VAc"], state[f"{prefix}VBc"] = VA, VB
    return state
