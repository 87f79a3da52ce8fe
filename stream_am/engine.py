"""The contract between an estimator and its engine (:class:`~stream_am.learner.OnlineAM`,
:class:`~stream_am.backprop.BackpropLearner`, or any learner with the same tensor API)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

__all__ = ["Engine"]


@runtime_checkable
class Engine(Protocol):
    """A tensor-level online learner: one step per mini-batch, growth that keeps what was learned, state.

    ``partial_fit`` validates its batch (a bad one raises ``ValueError`` and changes nothing) and returns
    statistics measured before the step; ``predict`` never changes state; ``state_dict`` is empty before the
    first step and ``load_state_dict`` restores it exactly.
    """

    @property
    def n_inputs(self) -> int: ...

    @property
    def n_outputs(self) -> int: ...

    @property
    def n_steps(self) -> int: ...

    samples_seen: int

    def partial_fit(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]: ...

    def predict(self, x: torch.Tensor) -> torch.Tensor: ...

    def grow_inputs(self, n_new: int) -> None: ...

    def grow_outputs(self, n_new: int) -> None: ...

    def state_dict(self) -> dict[str, torch.Tensor]: ...

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None: ...
