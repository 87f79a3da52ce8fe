"""The output layer's Adam updater (Adam steps on the loss); the memory readout is a plain
:class:`~stream_am.updaters.memory.MemoryUpdater` fitting the targets (see :func:`~stream_am.updaters.make_readout`)."""

from __future__ import annotations

import torch
from torch import nn

from stream_am.network import CodeBlock
from stream_am.objectives import output_loss
from stream_am.updaters.adam import AdamUpdater

__all__ = ["AdamReadout"]


class AdamReadout(AdamUpdater):
    """``steps`` Adam steps on the mean output loss (``cross_entropy`` or ``mse``) of the output layer.

    Its statistics are the gradients of the loss summed over samples; :meth:`apply` divides by their number.
    """

    def __init__(self, out: nn.Linear, lr: float, steps: int, loss: str):
        super().__init__(CodeBlock(out), lr, steps)
        self.loss = loss

    def statistics(
        self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> list[torch.Tensor]:
        params = self.block.parameters()
        with torch.enable_grad():
            return list(torch.autograd.grad(output_loss(self.block.layer(a), target, self.loss), params))
