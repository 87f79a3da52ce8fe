"""A linear companion: a second, linear model that learns every batch the network learns and answers some samples.

Where the world changes, the network's hidden layers hold features of the old concept, and the readout built on
them lags; a linear model on the inputs alone follows a moving linear boundary (river's hyperplane, where river's
logistic regression is ahead of the network) and a new task of separable classes sooner. Where the concept
is not linear, it is worse. The companion is that linear model: a ridge fit of one-hot targets on the network's
standardised input rows ``x`` (a bias first), as the memory readout fits them on the last hidden layer, on the
clock of each class as the memories are (:mod:`stream_am.updaters.class_memory`): it keeps ``A_c = sum x x^T``
over the rows of each class ``c``, aged by ``(1 - memory_decay)`` per sample of the batches that hold ``c``
only (with one clock for all, a class-incremental stream's first classes faded from it, and it answered their
inputs for the classes of the last task), and solves ``W = (A + ridge * mean(diag A) * I)^-1 B`` at every step,
where ``A`` is the sum of the ``A_c`` and ``B``'s column ``c`` is ``A_c``'s first column (the sum of ``c``'s
rows). It is re-expressed (exactly: the sums are statistics of the rows) and grown with the network's first
layer.

Which one answers is decided from evidence, per sample, from three running measures of the recent stream (each
decaying with a half-life of ``HALF_LIFE`` samples, tested on every batch before it is learned): each model's
accuracy and each model's mean log-likelihood of the labels (its *score*), and ``R``, the sum of ``x x^T`` over
the recent rows, which gives each input row's leverage ``x^T (R / r_00)^-1 x - 1``: its Mahalanobis distance,
squared, to their mean. The companion answers a sample

1. that looks like the recent inputs (its leverage within ``FAMILIAR`` standard deviations of its expected
   value, the number of features), when its recent accuracy is above the network's and its score at least the
   network's: there the recent evidence applies;
2. else, where its most probable class is more probable than the network's, while its score is at least the
   network's;

and the network answers every other sample. The first rule follows a drifting concept (the inputs stay, the
labels move); it leaves alone the inputs of earlier tasks, which the network's memories keep better (a global
switch to the model better on the recent stream lost permuted digits' earlier tasks; asking for the better score
as well as the better accuracy keeps stationary streams where the network alone is). The second lets the
companion answer where the network is unsure, but not when it is worse overall. The measures move per step, so
``learn_one`` and ``learn_many`` keep giving the same model. Figures: ``benchmarks/companion.py`` and
``benchmarks/README.md``, "A linear companion".

The companion is built at the first step when the network's first layer keeps a memory (so its sums, ``n_inputs
x n_inputs`` like that memory's with fewer outputs and one clock, cost less than that one) and the network has a
hidden layer; a classifier with ``companion=False`` never builds one. It computes in float64 on the CPU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from stream_am.updaters.memory import ROUNDING

__all__ = ["LinearCompanion", "HALF_LIFE", "FAMILIAR", "check_state", "size"]

HALF_LIFE = 500.0  # samples over which a score's weight halves
FAMILIAR = 3.0  # standard deviations of the squared Mahalanobis distance within which an input looks recent
_F64 = torch.float64
_EPS = torch.finfo(_F64).eps
_ROUNDING = 1e-9  # relative to the largest diagonal entry: what rounding leaves of a sum's symmetry and eigenvalues
_LARGEST = 1e150  # the largest magnitude a saved sum or weight may hold: products of two stay finite


class LinearCompanion:
    """The ridge fit of the module docstring on ``n_inputs`` features and ``n_outputs`` classes.

    ``scores`` and ``accuracy``: ``[network, companion]`` (0 before any step: a tie); ``A``: the sums of each
    class (``n_outputs x (n_inputs + 1) x (n_inputs + 1)``, the bias first); ``R``: the recent rows' sum
    (``(n_inputs + 1)`` square); ``W``: the weights (``(n_inputs + 1) x n_outputs``); ``decay`` and ``ridge``:
    the estimator's ``memory_decay`` and ``ridge``.
    """

    def __init__(self, n_inputs: int, n_outputs: int, decay: float, ridge: float,
                 scores: tuple[float, float] = (0.0, 0.0), accuracy: tuple[float, float] = (0.0, 0.0),
                 A: torch.Tensor | None = None, R: torch.Tensor | None = None, W: torch.Tensor | None = None) -> None:
        self.decay, self.ridge = decay, ridge
        self.scores, self.accuracy = [float(s) for s in scores], [float(a) for a in accuracy]
        self.A = torch.zeros(n_outputs, n_inputs + 1, n_inputs + 1, dtype=_F64) if A is None else A
        self.R = torch.zeros(n_inputs + 1, n_inputs + 1, dtype=_F64) if R is None else R
        self.W = torch.zeros(n_inputs + 1, n_outputs, dtype=_F64) if W is None else W
        self._watch()

    @property
    def n_inputs(self) -> int:
        return self.R.shape[0] - 1

    def _rows(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(_numpy_rows(x))

    def _solve(self) -> None:
        """New weights from the sums: ``W = (A + r I)^-1 (B + r W)`` with ``r`` the ridge times ``A``'s mean
        diagonal entry (proximal, as the memories' solves: it pulls toward the weights before, not toward 0;
        measured against a ridge toward 0 in ``benchmarks/README.md``); the weights stay if ``A`` has no factor."""
        A = self.A.sum(dim=0)
        factor = _cholesky(A, self.ridge)
        if factor is not None:
            self.W = torch.cholesky_solve(torch.add(self.A[:, :, 0].T, self.W, alpha=self.ridge * float(
                A.diagonal().mean())), factor).contiguous()  # (row-major, as loaded: the same rounding)

    def _watch(self) -> None:
        """What rule 1 reads, while it may apply (the measures decide: it is derived): the inverse of the
        Cholesky factor of ``R``, scaled so that a row's leverage is ``|row @ _recent|^2 - 1`` (numpy, for
        answers one row at a time)."""
        self._recent: np.ndarray | None = None
        switch = self.accuracy[1] > self.accuracy[0] and self.scores[1] >= self.scores[0]
        if switch and float(self.R[0, 0]) >= 2 * self.R.shape[0]:
            factor = _cholesky(self.R, self.ridge)
            if factor is not None:
                inverse = torch.linalg.solve_triangular(factor, torch.eye(factor.shape[0], dtype=_F64), upper=False)
                self._recent = (inverse.T * math.sqrt(float(self.R[0, 0]))).numpy()

    # -- learning --------------------------------------------------------------------------------------
    def learn(self, x: torch.Tensor, y: torch.Tensor, network: dict[str, float]) -> None:
        """Learn the batch the network just learned (``x`` its input rows, already validated by its step, ``y``
        the class indices), after measuring the companion on it; ``network``: what the network's step measured
        before learning it. Moves the scores and accuracies of both."""
        rows, labels = self._rows(x), y.detach().to("cpu")
        n = rows.shape[0]
        logp = torch.log_softmax(rows @ self.W, dim=1)
        loss = float(-logp.gather(1, labels[:, None]).mean())
        hits = float((logp.argmax(dim=1) == labels).to(_F64).mean())
        keep = 0.5 ** (n / HALF_LIFE)
        for i, (l, a) in enumerate(((float(network["loss"]), float(network["accuracy"])), (loss, hits))):
            self.scores[i] = keep * self.scores[i] - (1.0 - keep) * l
            self.accuracy[i] = keep * self.accuracy[i] + (1.0 - keep) * a
        counts = torch.bincount(labels, minlength=self.A.shape[0]).tolist()
        A, age = self.A, (1.0 - self.decay) ** n  # (in place: nothing can refuse the batch now)
        for c, chunk in enumerate(torch.split(rows[torch.argsort(labels, stable=True)], counts)):
            if counts[c]:  # a class this batch holds: it ages, and takes its rows
                A[c].mul_(age).addmm_(chunk.T, chunk)
        self.A, self.R = A, torch.addmm(self.R, rows.T, rows, beta=keep)
        self._solve()
        self._watch()

    def grow_inputs(self, n_new: int) -> None:
        """New features: the rows so far held 0 for them (their mean, in the frame)."""
        d = self.R.shape[0]
        A, R = self.A.new_zeros(self.A.shape[0], d + n_new, d + n_new), self.R.new_zeros(d + n_new, d + n_new)
        A[:, :d, :d], R[:d, :d] = self.A, self.R
        self.A, self.R, self.W = A, R, torch.cat([self.W, self.W.new_zeros(n_new, self.W.shape[1])])
        self._watch()

    def grow_outputs(self, n_new: int) -> None:
        """New classes: no row learned so far held them."""
        self.A = torch.cat([self.A, self.A.new_zeros(n_new, *self.A.shape[1:])])
        self.W = torch.cat([self.W, self.W.new_zeros(self.W.shape[0], n_new)], dim=1)

    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor, max_gain: float | None = None) -> None:
        """The inputs change coordinates, ``x -> scale * x + shift``: so do the rows in the sums, exactly, and the
        weights, so that they compute the same function of the same samples (``max_gain``, which bounds a
        network's weights against an outlier's spread, is not needed: the next solve refits these)."""
        T = torch.zeros_like(self.R)
        T[0, 0] = 1.0
        T[1:, 0] = shift.to("cpu", _F64)
        T[1:, 1:] = torch.diag(scale.to("cpu", _F64))
        self.A, self.R = T @ self.A @ T.T, T @ self.R @ T.T
        self.W = torch.linalg.solve_triangular(T.T, self.W, upper=True).contiguous()  # a W = a' T^-T W
        self._watch()

    # -- answering -------------------------------------------------------------------------------------
    def familiar(self, x: torch.Tensor) -> np.ndarray:
        """Per row of ``x``, whether it looks like the recent inputs (rule 1 of the module docstring); none while
        rule 1 does not apply or too few rows were seen to tell."""
        if self._recent is None:
            return np.zeros(x.shape[0], dtype=bool)
        return self._familiar(_numpy_rows(x))

    def _familiar(self, rows: np.ndarray) -> np.ndarray:
        d, z = self.n_inputs, rows @ self._recent
        return np.einsum("ij,ij->i", z, z) - 1.0 <= d + FAMILIAR * math.sqrt(2 * d)

    def answer(self, x: torch.Tensor, proba: np.ndarray) -> np.ndarray:
        """The probabilities to give for the rows ``x``, where the network gives ``proba`` (module docstring)."""
        if self.scores[1] < self.scores[0] or not len(proba):
            return proba
        rows = _numpy_rows(x)  # (numpy: a prediction is often one row, where torch's per-call cost dominates)
        out = rows @ self.W.numpy()
        mine = np.exp(out - out.max(axis=1, keepdims=True))
        mine /= mine.sum(axis=1, keepdims=True)
        take = mine.max(axis=1) > proba.max(axis=1)
        if self._recent is not None:
            take |= self._familiar(rows)
        return np.where(take[:, None], mine, proba)

    # -- state -----------------------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {"scores": list(self.scores), "accuracy": list(self.accuracy)}

    def arrays(self) -> dict[str, np.ndarray]:
        return {f"companion.{k}": getattr(self, k).numpy().copy() for k in ("A", "R", "W")}


def _numpy_rows(x: torch.Tensor) -> np.ndarray:
    """The rows of ``x`` (on the CPU) as float64 with a bias first."""
    rows = x.detach().cpu().numpy()
    out = np.ones((rows.shape[0], rows.shape[1] + 1))
    out[:, 1:] = rows
    return out


def size(n_inputs: int, n_outputs: int) -> int:
    """Numbers a companion of these sizes holds: one ``(n_inputs + 1)`` square sum per class, and the recent one."""
    return (n_outputs + 1) * (n_inputs + 1) ** 2


def _cholesky(A: torch.Tensor, ridge: float) -> torch.Tensor | None:
    """The Cholesky factor of ``A`` with ``ridge`` times its mean diagonal entry, and a margin for rounding as
    :func:`~stream_am.updaters.memory.ridge_solve`'s, on the diagonal; None if there is none."""
    M = A.clone()
    diagonal = M.diagonal()
    diagonal += ridge * diagonal.mean() + 1e-12 + ROUNDING * M.shape[0] * _EPS * diagonal.abs().max()
    L, info = torch.linalg.cholesky_ex(M)  # (reads the lower triangle only)
    return None if info.item() else L


def check_state(meta: Any, arrays: dict[str, Any], n_features: int, n_classes: int, n_learned: int) -> dict[str, Any]:
    """The saved state of a companion (``meta.companion`` and the ``companion.*`` arrays) as keyword arguments of
    :class:`LinearCompanion`; ``ValueError`` naming the field unless :meth:`LinearCompanion.meta` and
    :meth:`LinearCompanion.arrays` could have written them."""
    if not (isinstance(meta, dict) and set(meta) == {"scores", "accuracy"}):
        raise ValueError(f"meta.companion must be a dict of scores and accuracy, got {meta!r}")
    saved: dict[str, Any] = {}
    for key, low, high in (("scores", -math.inf, 0.0), ("accuracy", 0.0, 1.0)):
        v = meta[key]
        if not (isinstance(v, list) and len(v) == 2 and all(_number(a) and low <= a <= high for a in v)):
            raise ValueError(f"meta.companion.{key} must be two finite numbers in [{low}, {high}], got {v!r}")
        saved[key] = (float(v[0]), float(v[1]))
    d = n_features + 1
    for key, shape in (("A", (n_classes, d, d)), ("R", (d, d)), ("W", (d, n_classes))):
        a = arrays.get(f"companion.{key}")
        if not isinstance(a, np.ndarray) or a.dtype != np.float64 or a.shape != shape:
            got = getattr(a, "shape", None), getattr(a, "dtype", type(a).__name__)
            raise ValueError(f"array companion.{key} must hold float64 of shape {shape}, got {got}")
        if not np.isfinite(a).all() or (np.abs(a) > _LARGEST).any():
            raise ValueError(f"array companion.{key} must hold finite values at most {_LARGEST:g} in magnitude")
        saved[key] = torch.from_numpy(a.copy())
    for key in ("A", "R"):
        a = saved[key]
        if not (0 <= float(a[..., 0, 0].sum()) <= n_learned) or bool((a.diagonal(dim1=-2, dim2=-1) < 0).any()):
            raise ValueError(f"array companion.{key} must have a non-negative diagonal and row counts (its first "
                             f"entries) in [0, meta.n_learned = {n_learned}]")
        # sums of outer products: symmetric and positive semi-definite, but for rounding (else the proximal
        # solves, a contraction for such sums, can multiply the weights at every step)
        top = a.diagonal(dim1=-2, dim2=-1).amax(dim=-1, keepdim=True).clamp(min=1e-300)
        asymmetric = bool(((a - a.transpose(-2, -1)).abs().amax(dim=(-2, -1)) > _ROUNDING * top[..., 0]).any())
        if asymmetric or bool((torch.linalg.eigvalsh((a + a.transpose(-2, -1)) / 2) < -_ROUNDING * top).any()):
            raise ValueError(f"array companion.{key} must hold sums of outer products of rows (symmetric and "
                             "positive semi-definite)")
    return saved


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
