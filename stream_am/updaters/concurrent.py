"""Every layer's fit on one process: the weight subproblems are independent, so on CUDA each has its stream.

:func:`fit_layers` is what :class:`~stream_am.learner.OnlineAM` runs after the code updates (its data-parallel
counterpart is :func:`~stream_am.updaters.collective.fit_reduced`). Given one CUDA stream per updater, each
fit is queued on its own stream after the codes are ready, and the step ends when every layer has its
weights; without streams (the CPU, one layer, or ``parallel_layers=False``) the fits run in order.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stream_am.updaters.base import Updater
from stream_am.updaters.class_clock import Labels

__all__ = ["fit_layers", "layer_streams"]


def layer_streams(device: torch.device, n: int) -> list[torch.cuda.Stream]:
    """One CUDA stream for each of ``n`` updaters; none on the CPU or for a single updater."""
    if device.type != "cuda" or n < 2:
        return []
    return [torch.cuda.Stream(device) for _ in range(n)]


def fit_layers(
    updaters: Sequence[Updater],
    inputs: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    known: Sequence[torch.Tensor | None],
    n: int,
    labels: Labels | None = None,
    streams: Sequence[torch.cuda.Stream] = (),
) -> None:
    """Fit each updater's layer to its ``(input, target)`` (``known``: its output when already computed;
    ``labels``: the batch's one-hot labels, for class-clocked memories), on ``streams`` when given."""
    jobs = zip(updaters, inputs, targets, known, strict=True)
    if not streams:
        for u, a, t, k in jobs:
            u.fit(a, t, n, k, labels=labels)
        return
    main = torch.cuda.current_stream(streams[0].device)
    for (u, a, t, k), stream in zip(jobs, streams, strict=True):
        stream.wait_stream(main)  # inputs and codes are ready
        with torch.cuda.stream(stream):
            u.fit(a, t, n, k, labels=labels)
    for stream in streams:
        main.wait_stream(stream)  # the step ends when every layer has its weights
