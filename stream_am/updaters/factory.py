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
from stream_am.updaters.readout import make_readout

__all__ = ["make_updaters", "class_clocked"]


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
