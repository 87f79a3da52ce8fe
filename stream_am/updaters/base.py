"""The protocol every layer updater follows: fit one layer to its (input, target) pairs, grow, save, load.

A step of the learner hands each updater the input of its layer and the target its layer should produce
(the updated code, or the readout's targets). :meth:`Updater.fit` is :meth:`Updater.statistics` followed by
:meth:`Updater.apply` (``weight_steps`` times for Adam): ``statistics`` only computes *additive* tensors
(memory increments, gradients; sums over the batch's samples) and changes nothing, and ``apply`` folds them
into the updater's state and the layer's weights. A data-parallel learner can therefore sum every updater's
statistics across workers with one collective and then call ``apply`` everywhere (one collective per
weight step: Adam's second step needs the gradients at the weights its first step produced).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from stream_am.updaters.class_clock import Labels

__all__ = ["Updater"]


@runtime_checkable
class Updater(Protocol):
    """One layer's weight update rule, built once by :class:`~stream_am.learner.OnlineAM` for its layer."""

    name: str  # "mem" or "adam": what the learner reports as the layer's variant
    steps: int  # how many times ``fit`` computes fresh statistics and applies them (Adam: ``weight_steps``)

    def statistics(
        self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
        labels: Labels | None = None,
    ) -> list[torch.Tensor]:
        """Additive statistics of the batch (``known``: the layer's output for ``a``, when already computed;
        ``labels``: the batch's labels one-hot, n x K, which only a class-clocked memory reads)."""
        ...

    def apply(self, stats: list[torch.Tensor], n: int) -> None:
        """Fold ``stats`` (of ``n`` samples, possibly summed over shards) into the state and the weights."""
        ...

    def fit(self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
            labels: Labels | None = None) -> None:
        """Fit the layer to the batch: ``apply(statistics(...))``."""
        ...

    def forget(self, factor: float) -> None:
        """Scale the weight of what is remembered by ``factor`` (no-op for a rule without memory)."""
        ...

    def grow_inputs(self, n_new: int) -> None:
        """The layer gained ``n_new`` inputs (already appended to its weights): pad the state to match."""
        ...

    def grow_outputs(self, n_new: int) -> None:
        """The layer gained ``n_new`` outputs (already appended to its weights): pad the state to match."""
        ...

    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """The layer's inputs changed coordinates, ``x -> scale * x + shift`` per feature (its weights already
        re-expressed): re-express the state to match (:mod:`stream_am.updaters.coordinates`)."""
        ...

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        """The learned state as ``{prefix + name: tensor}`` (empty before the first fit)."""
        ...

    def load_state_dict(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        """Restore :meth:`state_dict` (shapes checked against the layer before anything changes)."""
        ...
