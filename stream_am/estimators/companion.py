"""A linear companion: a second, linear model that learns every batch the network learns and answers some samples.

Where the world changes, the network's hidden layers hold features of the old concept, and the readout built on
them lags; a linear model on the inputs alone follows a moving linear boundary (river's hyperplane, where river's
logistic regression is ahead of the network) and a new task of separable classes sooner. Where the concept
is not linear, it is worse. The companion is that linear model: an :class:`~stream_am.learner.OnlineAM` on a
network with no hidden layer and the estimator's own settings (its readout, memory and clock), fed the same
standardised rows and targets at every step, re-expressed and grown with the network's first layer.

Which one answers is decided from evidence, per sample, from three running measures of the recent stream (each
decaying with a half-life of ``HALF_LIFE`` samples, tested on every batch before it is learned): each model's
accuracy, each model's mean log-likelihood of the labels (its *score*), and the mean and covariance of the
inputs. The companion answers a sample

1. that looks like the recent inputs (its Mahalanobis distance to their mean, squared, within ``FAMILIAR``
   standard deviations of its expected value, the number of features), when its recent accuracy is above the
   network's and its score at least the network's: there the recent evidence applies;
2. else, where its most probable class is more probable than the network's, while its score is at least the
   network's;

and the network answers every other sample. The first rule follows a drifting concept (the inputs stay, the
labels move); it leaves alone the inputs of earlier tasks, which the network's memories keep better (a global
switch to the model better on the recent stream lost permuted digits' earlier tasks; asking for the better score
as well as the better accuracy keeps stationary streams where the network alone is). The second lets the
companion answer where the network is unsure, but not when it is worse overall. The measures move per step, so
``learn_one`` and ``learn_many`` keep giving the same model. Figures: ``benchmarks/companion.py`` and
``benchmarks/README.md``, "A linear companion".

The companion is built at the first step when the network's first layer keeps a memory (so its own memory,
``n_inputs x n_inputs`` like that one's with fewer outputs, costs less than that one) and the network has a
hidden layer; a classifier with ``companion=False`` never builds one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["LinearCompanion", "HALF_LIFE", "FAMILIAR", "check_meta"]

HALF_LIFE = 500.0  # samples over which a measure's weight halves
FAMILIAR = 3.0  # standard deviations of the squared Mahalanobis distance within which an input looks recent
_RIDGE = 1e-3  # of the mean variance, added to the inputs' covariance (a constant feature has none)


class LinearCompanion:
    """The linear ``engine`` beside a network, and the running measures of the module docstring.

    ``scores`` and ``accuracy``: ``[network, companion]`` (0 before any step: a tie); ``weight``, ``total`` and
    ``outer``: the decayed count, sum and sum of outer products of the network's input rows (float64).
    """

    def __init__(self, engine: Any, scores: tuple[float, float] = (0.0, 0.0),
                 accuracy: tuple[float, float] = (0.0, 0.0), weight: float = 0.0,
                 total: torch.Tensor | None = None, outer: torch.Tensor | None = None) -> None:
        n = engine.n_inputs
        self.engine = engine
        self.scores, self.accuracy, self.weight = [float(s) for s in scores], [float(a) for a in accuracy], weight
        self.total = torch.zeros(n, dtype=torch.float64) if total is None else total
        self.outer = torch.zeros(n, n, dtype=torch.float64) if outer is None else outer
        self._factor = self._cholesky()

    # -- learning --------------------------------------------------------------------------------------
    def learn(self, x: torch.Tensor, y: torch.Tensor, network: dict[str, float]) -> None:
        """Step the companion on the batch the network just learned (``x`` already validated by the network's
        step, ``network`` the statistics that step measured before learning it) and move the measures."""
        stats = self.engine.partial_fit(x, y)
        n = float(stats["n"])
        keep = 0.5 ** (n / HALF_LIFE)
        for i, s in enumerate((network, stats)):
            self.scores[i] = keep * self.scores[i] - (1.0 - keep) * float(s["loss"])
            self.accuracy[i] = keep * self.accuracy[i] + (1.0 - keep) * float(s["accuracy"])
        rows = x.detach().to("cpu", torch.float64)
        self.weight = keep * self.weight + n
        self.total = keep * self.total + rows.sum(dim=0)
        self.outer = keep * self.outer + rows.T @ rows
        self._factor = self._cholesky()

    def grow_inputs(self, n_new: int) -> None:
        """New features: the engine grows; the rows so far held 0 for them."""
        self.engine.grow_inputs(n_new)
        n = self.total.shape[0] + n_new
        self.total = torch.cat([self.total, self.total.new_zeros(n_new)])
        outer = self.outer.new_zeros(n, n)
        outer[: n - n_new, : n - n_new] = self.outer
        self.outer = outer
        self._factor = self._cholesky()

    def grow_outputs(self, n_new: int) -> None:
        self.engine.grow_outputs(n_new)

    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor, max_gain: float | None = None) -> None:
        """The inputs change coordinates (``x -> scale * x + shift``): the engine follows
        (:meth:`~stream_am.learner.OnlineAM.reexpress_inputs`), and the input moments, exactly."""
        self.engine.reexpress_inputs(scale, shift, max_gain=max_gain)
        r, s = scale.to(torch.float64).cpu(), shift.to(torch.float64).cpu()
        rt = r * self.total
        self.outer = r[:, None] * self.outer * r[None, :] + torch.outer(rt, s) + torch.outer(s, rt)
        self.outer += self.weight * torch.outer(s, s)
        self.total = rt + self.weight * s
        self._factor = self._cholesky()

    def _cholesky(self) -> torch.Tensor | None:
        """The Cholesky factor of the inputs' covariance (ridged), None while it rests on too few rows."""
        n = self.total.shape[0]
        if self.weight < 2 * max(n, 1):
            return None
        mean = self.total / self.weight
        cov = self.outer / self.weight - torch.outer(mean, mean)
        cov = (cov + cov.T) / 2
        cov.diagonal().add_(_RIDGE * float(cov.diagonal().clamp(min=0).mean()) + 1e-12)
        factor, info = torch.linalg.cholesky_ex(cov)
        return factor if int(info) == 0 and bool(torch.isfinite(factor).all()) else None  # (None: no rule 1)

    # -- answering -------------------------------------------------------------------------------------
    def familiar(self, x: torch.Tensor) -> np.ndarray:
        """Per row of ``x``, whether it looks like the recent inputs (rule 1 of the module docstring)."""
        if self._factor is None:
            return np.zeros(x.shape[0], dtype=bool)
        n = self.total.shape[0]
        centred = (x.detach().to("cpu", torch.float64) - self.total / self.weight).T
        z = torch.linalg.solve_triangular(self._factor, centred, upper=False)
        return ((z * z).sum(dim=0) <= n + FAMILIAR * math.sqrt(2 * n)).numpy()

    def answer(self, x: torch.Tensor, proba: np.ndarray) -> np.ndarray:
        """The probabilities to give for the rows ``x``, where the network gives ``proba`` (module docstring)."""
        confident = self.scores[1] >= self.scores[0]
        switch = confident and self.accuracy[1] > self.accuracy[0]
        if not (switch or confident) or not len(proba):
            return proba
        with torch.no_grad():
            out = self.engine.predict(x).detach().cpu().numpy().astype(np.float64)
        mine = np.exp(out - out.max(axis=1, keepdims=True))
        mine /= mine.sum(axis=1, keepdims=True)
        take = self.familiar(x) if switch else np.zeros(len(proba), dtype=bool)
        if confident:
            take |= mine.max(axis=1) > proba.max(axis=1)
        return np.where(take[:, None], mine, proba)

    # -- state -----------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"scores": list(self.scores), "accuracy": list(self.accuracy), "weight": self.weight}

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"companion_inputs.{k}": getattr(self, k).numpy().copy() for k in ("total", "outer")}


def check_meta(meta: Any, arrays: dict[str, Any], n_features: int, batch_size: int) -> dict[str, Any]:
    """The constructor arguments of a saved companion (besides its engine) from ``meta.companion`` and the
    ``companion_inputs.*`` arrays; ``ValueError`` naming the field unless :meth:`LinearCompanion.meta` and
    :meth:`LinearCompanion.arrays` could have written them."""
    if not (isinstance(meta, dict) and set(meta) == {"scores", "accuracy", "weight"}):
        raise ValueError(f"meta.companion must be a dict of scores, accuracy and weight, got {meta!r}")
    pairs = {}
    for key, low, high in (("scores", -math.inf, 0.0), ("accuracy", 0.0, 1.0)):
        v = meta[key]
        if not (isinstance(v, list) and len(v) == 2 and all(_number(a) and low <= a <= high for a in v)):
            raise ValueError(f"meta.companion.{key} must be two finite numbers in [{low}, {high}], got {v!r}")
        pairs[key] = (float(v[0]), float(v[1]))
    most = batch_size / (1.0 - 0.5 ** (batch_size / HALF_LIFE))  # the decayed count of steps of batch_size rows
    if not (_number(meta["weight"]) and 0 <= meta["weight"] <= most * 1.001):
        raise ValueError(f"meta.companion.weight must be a number in [0, {most:.1f}], got {meta['weight']!r}")
    shapes = {"companion_inputs.total": (n_features,), "companion_inputs.outer": (n_features, n_features)}
    tensors = {}
    for key, shape in shapes.items():
        a = arrays.get(key)
        if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != shape:
            got = getattr(a, "shape", None), getattr(a, "dtype", type(a).__name__)
            raise ValueError(f"array {key} must hold float64 of shape {shape}, got {got}")
        if not np.isfinite(a).all():
            raise ValueError(f"array {key} holds non-finite values")
        tensors[key.split(".")[1]] = torch.from_numpy(a.copy())
    return {**pairs, "weight": float(meta["weight"]), **tensors}


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
