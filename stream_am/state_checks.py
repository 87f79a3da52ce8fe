"""What :meth:`OnlineAM.load_state_dict <stream_am.learner.OnlineAM.load_state_dict>` refuses in a state before
and after its updaters read it: unknown keys, values no learner holds, and keys this learner would not write."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from stream_am import checks

__all__ = ["check_values", "check_known_keys"]

_KEYS = ("variants", "solve_every", "mu", "samples_seen", "n_steps", "generator")
_PREFIXES = ("module.", "memory.", "adam.")


def check_values(state: dict[str, torch.Tensor]) -> None:
    """``ValueError`` naming the key of the first tensor of ``state`` that cannot be a learner's: an unknown key,
    a non-tensor, a non-finite floating value, a negative counter, a ``mu`` that is not positive or a generator
    state that is not bytes (the updaters check their own tensors' shapes, dtypes and ranges as they load)."""
    for key, value in state.items():
        if key not in _KEYS and not key.startswith(_PREFIXES):
            raise ValueError(f"state has an unknown key {key!r}")
        if not checks.holds_values(value):
            raise ValueError(f"state[{key!r}] must be a tensor with values, got {type(value).__name__} {value!r:.40}")
        if value.is_floating_point() and not checks.within(value, checks.FLOAT32_MAX):  # (the learner holds float32)
            raise ValueError(f"state[{key!r}] holds values that are not finite (in float32)")
    if "generator" in state and (dtype := state["generator"].dtype) != torch.uint8:
        raise ValueError(f"state['generator'] must be a random generator's state (uint8), got {dtype}")
    for key in ("samples_seen", "n_steps", "solve_every", "mu"):
        if key not in state:
            continue
        value = state[key]
        if value.numel() != 1 or value.is_complex() or value.dtype == torch.bool:
            raise ValueError(f"state[{key!r}] must hold one real number, got {value.dtype} {tuple(value.shape)}")
        number = float(value)
        if key == "mu" and not 0.0 < number:  # (it grows to mu * mu_max_factor: no bound of its own)
            raise ValueError(f"state['mu'] must be > 0, got {number!r}")
        high, bounds = (checks.MAX_COUNT, "in [0, 2**62]") if key != "solve_every" else (math.inf, ">= 0")  # (counters)
        if key != "mu" and (value.is_floating_point() or not 0 <= int(value) <= high):
            raise ValueError(f"state[{key!r}] must be an integer {bounds}, got {value.tolist()!r}")


def check_known_keys(state: Iterable[str], known: Iterable[str]) -> None:
    """``ValueError`` naming the first key of ``state`` not in ``known`` (the keys the learner writes, or reads in
    an older state): another learner's state (another rule, clock or network) would load with it ignored."""
    unknown = sorted(set(state) - set(known))
    if unknown:
        raise ValueError(f"state has the key {unknown[0]!r}, which this learner does not hold (a state of another "
                         "network, layer rule or memory clock)")

