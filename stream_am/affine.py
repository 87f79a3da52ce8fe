"""Affine views of layers for the memory solves: rows of (input, code) pairs and ``[bias | W]`` matrices."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from stream_am.grad_mode import no_grad

__all__ = ["rows", "get_affine", "set_affine"]


def rows(layer: nn.Linear | nn.Conv2d, a: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, code) pairs, one row each: samples for ``Linear``, image patches for ``Conv2d``.

    A ``Conv2d`` must have ``groups=1``, zero padding mode and numeric padding (``OnlineAM`` checks this when
    it is built, before any state exists).
    """
    if isinstance(layer, nn.Linear):
        return a.flatten(1), c
    padding = layer.padding
    assert not isinstance(padding, str)  # refused by the OnlineAM constructor
    patches = F.unfold(a, layer.kernel_size, dilation=layer.dilation, padding=padding, stride=layer.stride)
    return patches.transpose(1, 2).reshape(-1, patches.shape[1]), c.permute(0, 2, 3, 1).reshape(
        -1, c.shape[1]
    )


@no_grad
def get_affine(layer: nn.Linear | nn.Conv2d) -> torch.Tensor:
    """``[bias | W]`` with ``W`` flattened to (out, in); just ``W`` for a layer without bias."""
    w = layer.weight if layer.weight.ndim == 2 else layer.weight.reshape(layer.weight.shape[0], -1)
    if layer.bias is None:
        return w.clone()
    return torch.cat([layer.bias.unsqueeze(1), w], dim=1)


@no_grad
def set_affine(layer: nn.Linear | nn.Conv2d, wb: torch.Tensor) -> None:
    """Write ``[bias | W]`` (or ``W`` for a layer without bias) back into ``layer``."""
    flat = layer.weight.ndim == 2
    if layer.bias is None:
        layer.weight.copy_(wb if flat else wb.reshape(layer.weight.shape))
        return
    layer.weight.copy_(wb[:, 1:] if flat else wb[:, 1:].reshape(layer.weight.shape))
    layer.bias.copy_(wb[:, 0])
