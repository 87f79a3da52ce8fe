"""Locality: no backward pass in a learning step reaches the parameters of more than one block."""

import pytest
import torch
from helpers_engine import blobs
from torch import nn

from stream_am import OnlineAM, objectives
from stream_am.nn import Step


def _leaves(tensors):
    """Every leaf tensor (AccumulateGrad node) reachable from ``tensors``' autograd graphs."""
    seen, stack, leaves = set(), [t.grad_fn for t in tensors if t.grad_fn is not None], []
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if hasattr(fn, "variable"):
            leaves.append(fn.variable)
        stack.extend(f for f, _ in fn.next_functions)
    return leaves


@pytest.mark.parametrize("variant", ["mem", "adam"])
@pytest.mark.parametrize("readout", ["memory", "adam"])
@pytest.mark.parametrize("closed_form", [True, False])
def test_no_backward_pass_spans_more_than_one_block(monkeypatch, variant, readout, closed_form):
    if not closed_form:  # exercise the autograd objectives of the code steps too
        monkeypatch.setattr(objectives, "is_elementwise", lambda mods: False)
    layers = [nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), Step(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)]
    if variant == "adam":
        layers.insert(1, nn.BatchNorm1d(8))
    seq = nn.Sequential(*layers)
    am = OnlineAM(seq, variant=variant, readout=readout, seed=0)
    blocks = [set(map(id, b.parameters())) for b in am._net.blocks] + [set(map(id, am._net.out.parameters()))]
    owner = {pid: i for i, ids in enumerate(blocks) for pid in ids}
    calls = []
    real_grad = torch.autograd.grad

    def spy(outputs, inputs, *args, **kwargs):
        outs = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
        touched = {owner[id(t)] for t in _leaves(outs) if id(t) in owner}
        calls.append(touched)
        return real_grad(outputs, inputs, *args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", spy)
    monkeypatch.setattr(torch.Tensor, "backward", lambda *a, **k: pytest.fail("a full backward() was called"))
    x, y = blobs(n=32)
    am.partial_fit(x, y)
    want = objectives.LinearObjective if closed_form else objectives.AutogradObjective
    assert {type(o) for o in am._objectives} == {want}
    assert all(len(t) <= 1 for t in calls), calls
    if not closed_form or variant == "adam" or readout == "adam":
        assert any(len(t) == 1 for t in calls)  # the spy does see block parameters in the graphs
    else:
        assert not calls  # AM-mem with closed-form codes and a memory readout uses no autograd at all
    for p in seq.parameters():
        assert p.grad is None  # nothing accumulated into .grad either
