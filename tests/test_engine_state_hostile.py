"""``OnlineAM.load_state_dict`` refuses a state it could load but not learn or predict from (non-finite values,
negative counters or moments, unknown keys, bad rule codes, integer statistics), naming the key, and changes
nothing (found by an adversarial review: each of these used to load and break a later step)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from stream_am import OnlineAM

State = dict[str, torch.Tensor]


def _learner(variant: str, clock: str = "class", seed: int = 0) -> OnlineAM:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 3))
    return OnlineAM(net, variant=variant, memory_clock=clock, seed=seed)


def _trained(variant: str, clock: str = "class") -> OnlineAM:
    am = _learner(variant, clock)
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        am.partial_fit(torch.randn(8, 3, generator=g), torch.randint(0, 3, (8,), generator=g))
    return am


def _copy(state: State) -> State:
    return {k: v.clone() for k, v in state.items()}


def _set(key: str, value: float | torch.Tensor) -> Callable[[State], None]:
    def tamper(state: State) -> None:
        state[key] = value if isinstance(value, torch.Tensor) else torch.full_like(state[key], value)

    return tamper


def _first(state: State, suffix: str) -> str:
    return next(k for k in state if k.endswith(suffix))


CASES = {  # name -> (variant, clock, tamper, the key the error names)
    "module NaN": ("mem", "class", _set("module.0.weight", float("nan")), "module.0.weight"),
    "mu NaN": ("mem", "class", _set("mu", float("nan")), "mu"),
    "mu negative": ("mem", "class", _set("mu", -1.0), "mu"),
    "samples_seen negative": ("mem", "class", _set("samples_seen", -5), "samples_seen"),
    "memory S NaN": ("mem", "sample", _set("memory.0.S", float("nan")), "memory.0.S"),
    "memory S negative": ("mem", "sample", _set("memory.0.S", -1.0), "memory.0.S"),
    "memory updates negative": ("mem", "sample", _set("memory.0.updates", -1), "memory.0.updates"),
    "memory A integer": ("mem", "sample", lambda s: s.update({"memory.out.A": s["memory.out.A"].long()}),
                         "memory.out.A"),
    "class memory A integer": ("mem", "class", lambda s: s.update({"memory.out.A": s["memory.out.A"].long()}),
                               "memory.out.A"),
    "adam step NaN": ("adam", "class", lambda s: _set(_first(s, "0.step"), float("nan"))(s), "step"),
    "adam step negative": ("adam", "class", lambda s: _set(_first(s, "0.step"), -3.0)(s), "step"),
    "adam exp_avg_sq negative": ("adam", "class", lambda s: _set(_first(s, "exp_avg_sq"), -1.0)(s), "exp_avg_sq"),
    "unknown key": ("mem", "class", _set("bogus", torch.zeros(1)), "bogus"),
    "rule code -1": ("mem", "class", _set("variants", torch.tensor([-1], dtype=torch.int8)), "variants"),
    "rule code 5": ("mem", "class", _set("variants", torch.tensor([5], dtype=torch.int8)), "variants"),
    "garbage generator": ("mem", "class", _set("generator", torch.zeros(3, dtype=torch.uint8)), "generator"),
    # found by a later review: these raised TypeError or RuntimeError, named no key, or loaded, the key ignored
    "float generator": ("mem", "class", lambda s: s.update({"generator": s["generator"].double()}), "generator"),
    "memory S of two values": ("mem", "sample", _set("memory.0.S", torch.zeros(2, dtype=torch.float64)), "memory.0.S"),
    "unknown module key": ("mem", "class", _set("module.extra", torch.zeros(1)), "module.extra"),
    "unknown memory key": ("mem", "class", _set("memory.0.bogus", torch.zeros(1)), "memory.0.bogus"),
    "a layer the network lacks": ("mem", "sample", _set("memory.7.A", torch.zeros(1)), "memory.7.A"),
    "another rule's state": ("mem", "class", _set("adam.0.0.step", torch.zeros(())), "adam.0.0.step"),
    "a memory's state in an Adam layer": ("adam", "class", _set("memory.0.A", torch.zeros(4, 4)), "memory.0.A"),
    "class sums in a sample-clocked memory": (
        "mem", "sample", _set("memory.0.VAc", torch.zeros(3, 4, 4)), "memory.0.VAc"),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("built", [True, False])
def test_a_hostile_state_is_refused_naming_its_key_and_changes_nothing(name: str, built: bool) -> None:
    variant, clock, tamper, key = CASES[name]
    state = _copy(_trained(variant, clock).state_dict())
    tamper(state)
    am = _trained(variant, clock) if built else _learner(variant, clock, seed=3)
    before = _copy(am.state_dict()) if built else {k: v.clone() for k, v in am.module.state_dict().items()}
    with pytest.raises(ValueError, match=key):
        am.load_state_dict(state)
    after = am.state_dict() if built else am.module.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert am._built is built


def test_an_intact_state_still_loads_and_continues_identically() -> None:
    for variant, clock in (("mem", "class"), ("mem", "sample"), ("adam", "class")):
        source = _trained(variant, clock)
        copy = _learner(variant, clock, seed=3)
        copy.load_state_dict(_copy(source.state_dict()))
        x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(5)), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
        source.partial_fit(x, y)
        copy.partial_fit(x, y)
        assert torch.equal(source.predict(x), copy.predict(x))


@pytest.mark.parametrize("variant, key", [("mem", "memory.0.A"), ("adam", "adam.0.0.step"), ("mem", "memory.out.A")])
def test_a_state_that_drops_a_layers_memory_or_moments_after_steps_is_refused(variant: str, key: str) -> None:
    state = _copy(_trained(variant).state_dict())
    prefix = key.rsplit(".", 2 if key.endswith("step") else 1)[0] + "."
    for k in [k for k in state if k.startswith(prefix)]:
        del state[k]  # the whole layer's state, as if it had never learned
    am = _learner(variant, seed=3)
    with pytest.raises(ValueError, match=f"state is missing {key}"):
        am.load_state_dict(state)
    assert not am._built


def test_the_backprop_learner_refuses_non_finite_weights_negative_counters_and_a_garbage_generator() -> None:
    from stream_am.backprop import BackpropLearner

    learner = BackpropLearner(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), seed=0)
    learner.partial_fit(torch.ones(4, 3), torch.tensor([0, 1, 0, 1]))
    state = _copy(learner.state_dict())
    second = next(k for k in state if k.startswith("optim.exp_avg_sq."))
    for key, value in [("module.0.weight", float("nan")), ("optim.step", -1.0), ("samples_seen", -2), (second, -1.0)]:
        bad = {**state, key: torch.full_like(state[key], value)}
        with pytest.raises(ValueError, match="module.0.weight|optim.step|samples_seen|exp_avg_sq"):
            learner.load_state_dict(bad)
    with pytest.raises(ValueError, match="rng_state"):
        learner.load_state_dict({**state, "rng_state": torch.zeros(3, dtype=torch.uint8)})
    after = learner.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in state.items())


def test_a_mu_grown_past_its_parameters_bound_still_loads() -> None:
    """Found by a review: ``mu`` grows to ``mu * mu_max_factor`` (up to 1e12), past the 1e6 bound of ``mu``."""
    net = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 3))
    am = OnlineAM(net, mu=100.0, mu_growth=1e5, mu_max_factor=1e5, seed=0)
    for _ in range(12):
        am.partial_fit(torch.ones(4, 3), torch.tensor([0, 1, 2, 0]))
    assert am.state_dict()["mu"] > 1e6
    copy = OnlineAM(nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 3)), mu=100.0, mu_growth=1e5,
                    mu_max_factor=1e5, seed=3)
    copy.load_state_dict(_copy(am.state_dict()))
    assert float(copy.state_dict()["mu"]) == float(am.state_dict()["mu"])


@pytest.mark.parametrize("variant", ["mem", "adam"])
def test_a_state_of_non_contiguous_tensors_loads_and_continues_as_the_original(variant: str) -> None:
    """Found by a review: a generator state that was a strided view was refused, and Adam's moments kept the
    strides they were given, so the loaded learner's steps left the original's in the last bits."""

    def strided(v: torch.Tensor) -> torch.Tensor:  # the same values, not contiguous
        if v.ndim >= 2:
            return v.transpose(0, 1).contiguous().transpose(0, 1)
        return torch.stack([v, v], dim=-1)[..., 0] if v.ndim == 1 else v.clone()

    source = _trained(variant)
    state = {k: strided(v) for k, v in source.state_dict().items()}
    assert not state["generator"].is_contiguous()
    copy = _learner(variant, seed=3)
    copy.load_state_dict(state)
    g = torch.Generator().manual_seed(5)
    for _ in range(3):
        x, y = torch.randn(8, 3, generator=g), torch.randint(0, 3, (8,), generator=g)
        assert source.partial_fit(x, y) == copy.partial_fit(x, y)
    after = copy.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in source.state_dict().items())
