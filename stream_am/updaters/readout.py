"""The output layer's updaters: the memory readout (a ridge fit of the targets) or Adam steps on the loss."""

from __future__ import annotations

import torch
from torch import nn

from stream_am.network import CodeBlock
from stream_am.objectives import output_loss
from stream_am.updaters.adam import AdamUpdater
from stream_am.updaters.base import Updater
from stream_am.updaters.class_clock import ClassClock
from stream_am.updaters.class_memory import ClassMemoryUpdater
from stream_am.updaters.memory import MemoryUpdater

__all__ = ["AdamReadout", "make_readout"]


class AdamReadout(AdamUpdater):
    """``steps`` Adam steps on the mean output loss (``cross_entropy`` or ``mse``) of the output layer.

    Its statistics are the gradients of the loss summed over samples; :meth:`apply` divides by their number
    (:meth:`fit` scales the loss by it instead).
    """

    def __init__(self, out: nn.Linear, lr: float, steps: int, loss: str):
        super().__init__(CodeBlock(out), lr, steps)
        self.loss = loss

    def _gradients(self, a: torch.Tensor, target: torch.Tensor, known: torch.Tensor | None, scale: float
                   ) -> list[torch.Tensor]:
        """Gradients of ``scale`` times the loss summed over samples."""
        params = self.block.parameters()
        with torch.enable_grad():
            return list(torch.autograd.grad(output_loss(self.block.layer(a), target, self.loss) * scale, params))


def make_readout(
    kind: str, out: nn.Linear, *, loss: str, lr: float, steps: int, decay: float, ridge: float, solve_every: int,
    clock: ClassClock | None = None,
) -> Updater:
    """``"memory"``: a :class:`MemoryUpdater` on the output layer (its targets are one-hot rows for
    classification; a :class:`ClassMemoryUpdater` on ``clock`` if one is given); ``"adam"``: an
    :class:`AdamReadout` on ``loss``."""
    if kind == "memory":
        if clock is not None:
            return ClassMemoryUpdater(out, decay, ridge, solve_every, clock)
        return MemoryUpdater(out, decay, ridge, solve_every)
    return AdamReadout(out, lr, steps, loss)
