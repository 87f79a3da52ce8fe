"""Scenario suite: stationary, drifting, continual and non-differentiable streams, AM beside backprop and river.

Every scenario streams its data once, test-then-train, and compares learners on identical samples. Run one
with ``python -m scenarios run NAME [--quick] [--out DIR] [--seed N]``; list them with ``list``.
"""

from __future__ import annotations

from stream_am.scenarios import continual, drift, nondiff, stationary
from stream_am.scenarios._common import RunConfig, Scenario, execute

__all__ = ["REGISTRY", "RunConfig", "Scenario", "execute", "get", "names"]

REGISTRY: dict[str, Scenario] = {
    s.name: s for family in (stationary, drift, continual, nondiff) for s in family.SCENARIOS
}


def names() -> list[str]:
    """Scenario names, family by family."""
    return list(REGISTRY)


def get(name: str) -> Scenario:
    """The scenario called ``name``; ``ValueError`` listing the known names otherwise."""
    if name not in REGISTRY:
        raise ValueError(f"unknown scenario {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]
