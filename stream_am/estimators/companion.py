"""A linear companion: a second, linear model that learns every batch the network learns and answers some samples.

Where the world changes, the network's hidden layers hold features of the old concept, and the readout built on
them lags; a linear model on the inputs alone follows a moving linear boundary (river's hyperplane, where river's
logistic regression reads 0.934 and AM-mem 0.898) and a new task of separable classes sooner. Where the concept
is not linear, it is worse. The companion is that linear model: an :class:`~stream_am.learner.OnlineAM` on a
network with no hidden layer and the estimator's own settings (its readout, memory and clock), fed the same
standardised rows and targets at every step, re-expressed and grown with the network's first layer.

Which one answers is decided from evidence, per sample: the companion answers a sample where its most probable
class is more probable than the network's, but only while its recent score, the mean log-likelihood of the
labels of the batches it then learned (tested before learning them, decaying with a half-life of ``HALF_LIFE``
samples), is at least the network's. Else the network answers. The scores move per step, from the losses the
two steps measure before learning, so ``learn_one`` and ``learn_many`` keep giving the same model. Measured in
``benchmarks/linear_companion.py`` and the scenario suite (``benchmarks/README.md``, "A linear companion"):
neither gate alone (the score, or the confidence) is safe on every stream; together they are.

The companion is built at the first step when the network's first layer keeps a memory (so its own memory,
``n_inputs x n_inputs`` like that one's with fewer outputs, costs less than that one) and the network has a
hidden layer; a classifier with ``companion=False`` never builds one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["LinearCompanion", "HALF_LIFE"]

HALF_LIFE = 500.0  # samples over which a score's weight halves


class LinearCompanion:
    """The linear ``engine`` beside a network, and ``scores``: ``[network, companion]`` recent mean log-likelihoods
    (0 before any step: a tie, which lets the more confident one answer)."""

    def __init__(self, engine: Any, scores: tuple[float, float] = (0.0, 0.0)) -> None:
        self.engine = engine
        self.scores = [float(s) for s in scores]

    def learn(self, x: torch.Tensor, y: torch.Tensor, network_loss: float) -> None:
        """Step the companion on the batch the network just learned (``x`` already validated by the network's
        step, ``network_loss`` the mean loss it measured before learning it) and move both scores."""
        stats = self.engine.partial_fit(x, y)
        keep = 0.5 ** (float(stats["n"]) / HALF_LIFE)
        for i, loss in enumerate((network_loss, float(stats["loss"]))):
            self.scores[i] = keep * self.scores[i] - (1.0 - keep) * loss

    @property
    def trusted(self) -> bool:
        """Whether the companion's recent score is at least the network's (it may answer)."""
        return self.scores[1] >= self.scores[0]

    def answer(self, x: torch.Tensor, proba: np.ndarray) -> np.ndarray:
        """The probabilities to give for the rows ``x``, where the network gives ``proba``: the companion's on
        each row where it is trusted and more confident, else the network's."""
        if not self.trusted or not len(proba):
            return proba
        with torch.no_grad():
            out = self.engine.predict(x).detach().cpu().numpy().astype(np.float64)
        mine = np.exp(out - out.max(axis=1, keepdims=True))
        mine /= mine.sum(axis=1, keepdims=True)
        take = mine.max(axis=1) > proba.max(axis=1)
        return np.where(take[:, None], mine, proba)


def check_scores(scores: Any, field: str) -> tuple[float, float]:
    """Saved scores: two finite numbers <= 0 (means of log-likelihoods); ``ValueError`` naming ``field``."""
    if not (isinstance(scores, list) and len(scores) == 2 and all(
            isinstance(s, int | float) and not isinstance(s, bool) and math.isfinite(s) and s <= 0 for s in scores)):
        raise ValueError(f"{field} must be [network score, companion score], two finite numbers <= 0, got {scores!r}")
    return float(scores[0]), float(scores[1])
