"""Every layer's fit with its statistics summed across workers: one flat buffer, one ``reduce`` per weight step.

:func:`fit_reduced` is what :class:`~stream_am.learner.OnlineAM` runs in place of each updater's ``fit`` when a
data-parallel wrapper hands it a ``reduce`` (a sum over workers, such as ``torch.distributed.all_reduce``): the
updaters' :meth:`~stream_am.updaters.Updater.statistics` of the local share are flattened into one float64
buffer together with a few per-step counts (the sample count first), summed by ``reduce``, and every updater
applies the global sums with the global sample count. Adam updaters with ``steps > 1`` need fresh gradients
at the weights of their previous step: one further ``reduce`` per further step, over those updaters only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from stream_am.updaters.base import Updater
from stream_am.updaters.class_clock import Labels

__all__ = ["Reduce", "flatten", "unflatten", "fit_reduced"]

Reduce = Callable[[torch.Tensor], torch.Tensor]  # the elementwise sum of a flat float64 tensor over workers


def flatten(stats: Sequence[Sequence[torch.Tensor]], extra: torch.Tensor | None = None) -> torch.Tensor:
    """One float64 vector holding every tensor of ``stats`` (and ``extra`` last)."""
    parts = [t.reshape(-1).to(torch.float64) for group in stats for t in group]
    if extra is not None:
        parts.append(extra.reshape(-1).to(torch.float64))
    return torch.cat(parts)


def unflatten(flat: torch.Tensor, like: Sequence[Sequence[torch.Tensor]]) -> list[list[torch.Tensor]]:
    """The inverse of :func:`flatten`: tensors shaped and typed as ``like`` (trailing entries ignored)."""
    out: list[list[torch.Tensor]] = []
    start = 0
    for group in like:
        tensors = []
        for t in group:
            tensors.append(flat[start : start + t.numel()].reshape(t.shape).to(t.dtype))
            start += t.numel()
        out.append(tensors)
    return out


def fit_reduced(
    updaters: Sequence[Updater], inputs: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
    known: Sequence[torch.Tensor | None], counts: torch.Tensor, reduce: Reduce, labels: Labels | None = None,
) -> torch.Tensor:
    """Fit every layer to the statistics of all workers' shares; returns ``counts`` summed over workers.

    ``counts[0]`` is the local number of samples (possibly 0); the rest are further per-step sums to add up
    (such as the loss). Nothing is applied when no worker brought a sample. ``labels``: the share's one-hot
    labels, for class-clocked memories (their per-class statistics are sums too).
    """
    n_local = inputs[0].shape[0]
    totals = counts
    n = 0
    for k in range(max(u.steps for u in updaters)):
        active = [i for i, u in enumerate(updaters) if u.steps > k]
        stats = [updaters[i].statistics(inputs[i], targets[i], n_local, known[i] if k == 0 else None, labels=labels)
                 for i in active]
        flat = reduce(flatten(stats, counts if k == 0 else None))
        if k == 0:
            totals = flat[flat.numel() - counts.numel() :]
            n = int(round(float(totals[0])))
            if n == 0:
                return totals
        for i, s in zip(active, unflatten(flat, stats), strict=True):
            updaters[i].apply(s, n)
    return totals
