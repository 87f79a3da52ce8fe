"""The standardisation an estimator applies to its network's inputs, and how it follows the running moments.

An estimator standardises each feature by running moments over everything it has learned
(:class:`~stream_am.estimators.moments.RunningMoments`), and those moments keep moving: on a class-incremental
stream every task brings inputs of another distribution. A memory's sums are taken in the coordinates of
their time, so moments applied as they move leave the sums of the first tasks in coordinates the network no
longer reads them in, and those tasks fade (``benchmarks/README.md``, "Standardisation that re-expresses the
memory").

:class:`ReexpressedFrame` applies the moments as of its last refresh and, at each refresh, tells the engine how
the coordinates changed: the engine re-expresses its first layer's weights and sums exactly
(:meth:`stream_am.learner.OnlineAM.reexpress_inputs`), so the network computes the same function of the same
samples across a refresh, and its memory stays in the coordinates it is read in. It refreshes at every one of
the first ``EARLY`` steps (the moments move most then), then every ``EVERY`` steps, and before a step whose
rows it would not read faithfully: one holding features added since the last refresh, or a value more than
``STRAY`` of its scales from its mean (so that a step never sees inputs larger than the moments' own would
give). A feature added since the last refresh is not re-expressed at the next: the rows before it held no
value for it, 0, i.e. its mean, as any missing value is, and stay so (whatever its weights). And a refresh never
makes a weight larger (``MAX_GAIN``): where a feature's spread grew, its weights stay and its part in the
output shrinks, as restandardising did, while the memory's sums are re-expressed exactly (multiplying the
weights by the growth let one outlier blow them up, to 1e19 and then to non-finite sums). Exact re-expression
keeps the first layer the same affine function of the *raw* inputs, so a feature whose scale grows without end
(one sweeping 19 decades) takes the first layer's outputs, and the weights of the next solves (fitted to codes
of that size), with it until the layers above overflow: so the re-expressions scale a feature's rows by at most
``REACH`` (1e3) in all (``gain``, kept per feature), and past that the feature's earlier rows stay as they are,
as restandardising would leave them. A refresh's shift is at most ``MAX_VALUE`` (1e9, the largest input the engine
learns) in magnitude: a mean moves by at most about ``sqrt(count)`` of its new scales, so only a loaded frame far
from its moments reaches the bound, whose shift would otherwise overflow the first layer's float32 sums.
It serves an engine whose first layer is fitted by a memory
(a least-squares fit of its sums, which re-expressing leaves what it was). :class:`InputFrame` applies the
moments of every step and re-expresses nothing: for an Adam first layer (whose steps are sized per weight, so
weights re-expressed for an input's new spread learn at another pace: measured on permuted digits) and for
other engines (the backprop baselines).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stream_am.checks import MAX_VALUE
from stream_am.estimators.moments import RunningMoments

__all__ = ["InputFrame", "ReexpressedFrame", "frame_for", "EARLY", "EVERY", "MAX_GAIN", "REACH", "STRAY"]

EARLY = 32  # steps that each refresh the frame
EVERY = 32  # steps between refreshes after those
STRAY = 1e3  # a value this many scales from the frame's mean refreshes the frame first
MAX_GAIN = 1.0  # a refresh never makes a weight larger (an outlier can inflate a scale by any factor)
REACH = 1e3  # the most a feature's re-expressions may scale its rows, in all, up or down (docstring)


class InputFrame:
    """The ``mean`` and ``scale`` applied to the inputs, refreshed from the moments at every step; ``new``: how
    many features (the last ones) were added since the last refresh; ``gain``: how much the re-expressions have
    scaled each feature's rows, in all (1 unless given)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, new: int = 0, gain: np.ndarray | None = None):
        self.mean, self.scale, self.new = mean, scale, new
        self.gain = np.ones_like(scale) if gain is None else gain

    @classmethod
    def of(cls, moments: RunningMoments) -> InputFrame:
        """The moments' current frame."""
        mean, scale = moments.mean_scale()
        return cls(mean.copy(), scale.copy())

    def due(self, n_steps: int, x: np.ndarray) -> bool:
        """Whether the step after ``n_steps`` completed steps, whose rows in this frame are ``x``, refreshes first."""
        return True

    def refresh(self, moments: RunningMoments, *engines: Any) -> None:
        """Take the moments' current frame."""
        self.mean, self.scale = (a.copy() for a in moments.mean_scale())
        self.new = 0

    def grow(self, n_new: int) -> None:
        """``n_new`` features were added: mean 0 and scale 1 until the next refresh, which comes at the next step."""
        self.mean = np.concatenate([self.mean, np.zeros(n_new)])
        self.scale = np.concatenate([self.scale, np.ones(n_new)])
        self.gain = np.concatenate([self.gain, np.ones(n_new)])
        self.new += n_new

    def apply(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (over every feature) standardised."""
        return (rows - self.mean) / self.scale


class ReexpressedFrame(InputFrame):
    """An :class:`InputFrame` refreshed on a schedule (module docstring), re-expressing the engine each time."""

    def due(self, n_steps: int, x: np.ndarray) -> bool:
        return self.new > 0 or n_steps < EARLY or n_steps % EVERY == 0 or bool((np.abs(x) > STRAY).any())

    def refresh(self, moments: RunningMoments, *engines: Any) -> None:
        """Take the moments' current frame, and re-express each of ``engines``' first layer from the old one: ``x_new =
        x_old * old_scale / scale + (old_mean - mean) / scale``, but ``x_new = x_old`` for the features added
        since the last refresh (0), and the factor clipped so that no feature's rows are scaled by more than
        ``REACH`` in all (module docstring)."""
        mean, scale = moments.mean_scale()
        ratio = np.clip(self.scale / scale, 1.0 / (REACH * self.gain), REACH / self.gain)
        shift = np.clip((self.mean - mean) / scale, -MAX_VALUE, MAX_VALUE)  # (docstring)
        if self.new:
            ratio[-self.new :], shift[-self.new :] = 1.0, 0.0
        for engine in engines:  # the network's, and its linear companion's (companion.py)
            engine.reexpress_inputs(torch.from_numpy(ratio), torch.from_numpy(shift), max_gain=MAX_GAIN)
        self.gain = self.gain * ratio
        self.mean, self.scale, self.new = mean.copy(), scale.copy(), 0


def frame_for(engine: Any, start: InputFrame) -> InputFrame:
    """The frame an estimator with ``engine`` (built: it knows its layers) applies from ``start`` on: re-expressed
    if the engine's first layer is fitted by a memory (``engine.input_memory``), else refreshed every step."""
    kind = ReexpressedFrame if getattr(engine, "input_memory", False) else InputFrame
    return kind(start.mean, start.scale, start.new, start.gain)
