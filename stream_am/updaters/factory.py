"""A network's updaters, chosen once, one per layer: a memory or Adam for each code layer, then the readout.

:class:`~stream_am.learner.OnlineAM` builds them at its first step; a step loops over the list and never asks
which rule a layer uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from stream_am.network import Network
from stream_am.updaters.adam import AdamUpdater
from stream_am.updaters.base import Updater
from stream_am.updaters.class_clock import ClassClock
from stream_am.updaters.class_memory import ClassMemoryUpdater
from stream_am.updaters.memory import MemoryUpdater
from stream_am.updaters.readout import AdamReadout, make_readout

__all__ = ["make_updaters", "class_clocked", "retune"]


def class_clocked(memory_clock: str, loss: str) -> bool:
    """Whether a learner's memories keep classes apart: ``memory_clock="class"`` on a classification loss."""
    return memory_clock == "class" and loss == "cross_entropy"


def make_updaters(
    net: Network,
    variants: Sequence[str],
    *,
    readout: str,
    loss: str,
    lr: float,
    output_lr: float,
    steps: int,
    lambda_w: float,
    decay: float,
    ridge: float,
    solve_every: int,
    clock: ClassClock | None = None,
) -> list[Updater]:
    """One updater per code layer (``variants``: ``"mem"`` or ``"adam"`` each), then the ``readout``'s.

    Memories (class-clocked ones on the shared ``clock`` when one is given) forget at ``decay`` and solve
    with ``ridge`` every ``solve_every`` steps; Adam layers take ``steps`` steps of size ``lr`` (L1
    ``lambda_w``) and an Adam readout ``steps`` steps of size ``output_lr`` on ``loss``.
    """

    def memory(layer: nn.Linear | nn.Conv2d) -> MemoryUpdater:
        if clock is None:
            return MemoryUpdater(layer, decay, ridge, solve_every)
        return ClassMemoryUpdater(layer, decay, ridge, solve_every, clock)

    layers: list[Updater] = [
        memory(b.layer) if v == "mem" else AdamUpdater(b, lr, steps, lambda_w)
        for v, b in zip(variants, net.blocks, strict=True)
    ]
    out = make_readout(
        readout,
        net.out,
        loss=loss,
        lr=output_lr,
        steps=steps,
        decay=decay,
        ridge=ridge,
        solve_every=solve_every,
        clock=clock,
    )
    return [*layers, out]


#: the learner's settings that its updaters hold: ``name -> (which updaters, their attribute)``
_SETTINGS = {
    "memory_decay": (lambda u: isinstance(u, MemoryUpdater), "decay"),  # a class-clocked memory too
    "ridge": (lambda u: isinstance(u, MemoryUpdater), "ridge"),
    "solve_every": (lambda u: isinstance(u, MemoryUpdater), "solve_every"),
    "weight_steps": (lambda u: isinstance(u, AdamUpdater), "steps"),  # the Adam readout's too
    "lambda_w": (lambda u: isinstance(u, AdamUpdater) and not isinstance(u, AdamReadout), "lambda_w"),
}


def retune(updaters: Sequence[Updater], name: str, value: object) -> None:
    """Give ``updaters`` a learner's new (checked) setting ``name``, as :func:`make_updaters` gave them the first:
    ``weight_lr`` and ``output_lr`` are the Adam code layers' and the Adam readout's step sizes; a ``None``
    ``solve_every`` keeps the cadence in use. Other names are not the updaters' (nothing to do)."""
    for u in updaters:
        if name in ("weight_lr", "output_lr") and isinstance(u, AdamUpdater):
            if isinstance(u, AdamReadout) == (name == "output_lr"):
                u.adam.lr = value  # type: ignore[assignment]
        elif name in _SETTINGS and value is not None and _SETTINGS[name][0](u):
            setattr(u, _SETTINGS[name][1], value)
