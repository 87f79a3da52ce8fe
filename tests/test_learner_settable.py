"""Setting an OnlineAM's parameters after construction: hyperparameters any time, structure only before it builds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stream_am import OnlineAM
from stream_am.settable import STRUCTURAL


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)


NEW = {"variant": "adam", "loss": "mse", "readout": "adam", "device": "meta", "seed": 5, "memory_clock": "sample"}


def test_every_structural_parameter_but_the_module_is_listed():
    assert set(STRUCTURAL) == set(NEW) | {"module"}


@pytest.mark.parametrize("name", sorted(NEW))
def test_a_built_learner_refuses_a_new_structure_naming_it_and_keeps_learning(name):
    am = OnlineAM(_net(), variant="mem", seed=0)
    am.partial_fit(*_batch())
    state = {k: v.clone() for k, v in am.state_dict().items()}
    old = getattr(am, name)
    with pytest.raises(ValueError, match=f"^{name} is fixed by the first step"):
        setattr(am, name, NEW[name])
    assert getattr(am, name) == old
    assert all(torch.equal(state[k], v) for k, v in am.state_dict().items())
    setattr(am, name, old)  # the same value again is no change
    am.partial_fit(*_batch())


def test_parallel_layers_may_change_between_steps_but_only_to_a_bool():
    am = OnlineAM(_net(), variant="mem", seed=0)
    am.partial_fit(*_batch())
    am.parallel_layers = False  # every step reads it
    with pytest.raises(ValueError, match="parallel_layers must be a bool"):
        am.parallel_layers = "yes"
    assert am.parallel_layers is False
    am.partial_fit(*_batch())


def test_the_same_variant_as_another_sequence_type_is_no_change():
    am = OnlineAM(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)),
                  variant=("mem", "adam"), seed=0)
    am.partial_fit(*_batch())
    am.variant = ["mem", "adam"]
    with pytest.raises(ValueError, match="variant is fixed"):
        am.variant = ["adam", "adam"]


def test_the_module_is_never_replaced():
    am = OnlineAM(_net(), variant="mem")
    with pytest.raises(ValueError, match="^module is fixed at construction"):
        am.module = _net()


def test_before_the_first_step_a_structure_is_checked_and_then_built_from():
    am = OnlineAM(_net(), variant="mem", seed=0)
    am.readout = "adam"
    am.variant = "adam"
    am.partial_fit(*_batch())
    assert am.variants_ == ["adam"] and [u.name for u in am._updaters] == ["adam", "adam"]


@pytest.mark.parametrize(("name", "bad", "named"), [
    ("variant", "sgd", "variant"), ("variant", ["mem", "mem"], "variant"), ("loss", "hinge", "loss"),
    ("readout", "ridge", "readout"), ("device", "tpu", "device"), ("seed", -1, "seed"),
    ("memory_clock", "wall", "memory_clock"), ("parallel_layers", "yes", "parallel_layers"),
    ("parallel_layers", 1, "parallel_layers"),
])
def test_before_the_first_step_a_bad_structure_is_refused_naming_it_and_changes_nothing(name, bad, named):
    am = OnlineAM(_net(), variant="mem", seed=0)
    old = getattr(am, name)
    with pytest.raises(ValueError, match=named):
        setattr(am, name, bad)
    assert getattr(am, name) == old and not am._built
    am.partial_fit(*_batch())
    assert am.variants_ == ["mem"]
