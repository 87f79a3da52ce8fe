"""The features a companion (:mod:`stream_am.estimators.companion`) fits its ridge model on: a basis of the inputs.

A basis maps the network's standardised input rows ``x`` (``d`` features) to float64 feature rows, a bias first.
Both bases here are closed under the frame's change of coordinates ``x -> scale * x + shift`` (per feature): the
features of the new rows are ``T`` times those of the old, so a companion's sums and weights are re-expressed
exactly (``T A T^T`` and ``T^-T W``), as the network's memories are.

- :data:`LINEAR`: ``[1, x]``, ``d + 1`` features;
- :data:`QUADRATIC`: ``[1, x, x_i x_j for i <= j]``, ``1 + d + d (d + 1) / 2`` features: a ridge model on them draws
  the bands, rings and products of two features that a linear one cannot (river's Agrawal concepts are
  thresholds on age and on age with salary or education, ImageSegments' classes curved regions), and which the
  network's random hidden features draw only roughly where its code steps are undone. Its size grows with
  ``d^2``: the classifier keeps one only for narrow inputs (:data:`QUADRATIC_MAX_FEATURES`).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

__all__ = ["Basis", "LINEAR", "QUADRATIC", "QUADRATIC_MAX_FEATURES", "QUADRATIC_DECAY"]

QUADRATIC_MAX_FEATURES = 20  # inputs up to which a classifier keeps a quadratic companion (231 features)
# its memory_decay, as a share of the estimator's: its many more features need more samples to fit, and a
# memory as short as the network's followed a domain-incremental stream's last task into its earlier ones
QUADRATIC_DECAY = 0.3


class Basis:
    """The linear basis ``[1, x]``; subclasses add features (module docstring)."""

    name = "linear"
    largest_input = float(np.finfo(np.float32).max)  # a gathered row's largest input: its features' stay in float32

    def width(self, d: int) -> int:
        """Features of rows of ``d`` inputs, the bias included."""
        return d + 1

    def rows(self, x: np.ndarray) -> np.ndarray:
        """The feature rows (float64, C order) of the input rows ``x`` (``n x d``)."""
        out = np.ones((x.shape[0], self.width(x.shape[1])))
        out[:, 1 : x.shape[1] + 1] = x
        return out

    def transform(self, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
        """``T``, lower triangular: the features of ``scale * x + shift`` are ``T`` times those of ``x``."""
        d = scale.shape[0]
        T = np.zeros((self.width(d), self.width(d)))
        T[0, 0] = 1.0
        T[1 : d + 1, 0] = shift
        T[np.arange(1, d + 1), np.arange(1, d + 1)] = scale
        return T

    def embed(self, d: int, n_new: int) -> np.ndarray:
        """Where the features of ``d`` inputs sit among those of ``d + n_new`` (the new inputs appended)."""
        return np.arange(d + 1)

    def congruence(self, T: np.ndarray, A: np.ndarray) -> np.ndarray:
        """``T A T^T`` for each square matrix of the stack ``A`` (``... x w x w``), ``T`` from :meth:`transform`.

        ``T`` is its diagonal ``D`` plus the shifts ``t`` in its first column: ``T A = D A + t a_0^T`` (``a_0``: ``A``'s
        first row) and ``(T A) T^T = (T A) D + (T A)_{:,0} t^T``, in ``w^2`` operations per matrix where two dense
        products take ``w^3`` (a second, on 1,000 features, at every refresh of the frame)."""
        diagonal, t = np.diagonal(T), T[:, 0].copy()
        t[0] = 0.0  # (T's first entry is its diagonal's)
        TA = A * diagonal[:, None]
        TA += t[:, None] * A[..., :1, :]
        out = TA * diagonal
        out += TA[..., :1] * t
        return out


class Quadratic(Basis):
    """``[1, x, x_i x_j for i <= j]``: the linear features, then the products in ``numpy.triu_indices`` order."""

    name = "quadratic"
    largest_input = float(np.sqrt(np.finfo(np.float32).max))  # (its squares are features)

    def width(self, d: int) -> int:
        return 1 + d + d * (d + 1) // 2

    def rows(self, x: np.ndarray) -> np.ndarray:
        out = super().rows(x)
        i, j = _pairs(x.shape[1])
        np.multiply(x[:, i], x[:, j], out=out[:, x.shape[1] + 1 :])
        return out

    def transform(self, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
        # (s_i x_i + t_i)(s_j x_j + t_j) = s_i s_j x_i x_j + s_i t_j x_i + t_i s_j x_j + t_i t_j
        T = super().transform(scale, shift)
        d = scale.shape[0]
        i, j = _pairs(d)
        p = d + 1 + np.arange(i.shape[0])
        T[p, p] = scale[i] * scale[j]
        np.add.at(T, (p, 1 + i), scale[i] * shift[j])
        np.add.at(T, (p, 1 + j), shift[i] * scale[j])
        T[p, 0] = shift[i] * shift[j]
        return T

    def congruence(self, T: np.ndarray, A: np.ndarray) -> np.ndarray:
        # T is its diagonal D plus E, whose entries off the diagonal all lie in the first d + 1 columns (a product's
        # row reads only the bias and the linear features): (D + E) A (D + E)^T with products of width d + 1, half
        # the time of two dense products of width w for 18 or 20 inputs (w = 190, 231; a linear basis is faster dense)
        d = (math.isqrt(1 + 8 * T.shape[0]) - 3) // 2  # (the inputs of w = 1 + d + d (d + 1) / 2 features)
        low, diagonal = T[:, : d + 1].copy(), np.diagonal(T)
        np.fill_diagonal(low, 0.0)  # (its first d + 1 rows' diagonal entries are D's)
        TA = A * diagonal[:, None]
        TA += low @ A[..., : d + 1, :]
        out = TA * diagonal
        out += TA[..., : d + 1] @ low.T
        return out

    def embed(self, d: int, n_new: int) -> np.ndarray:
        i, j = np.triu_indices(d)
        e = d + n_new
        # the product (i, j) of e inputs sits after the rows of products of the earlier first factors
        start = d + n_new + 1 + i * e - i * (i - 1) // 2
        return np.concatenate([np.arange(d + 1), start + (j - i)])


@lru_cache(maxsize=64)
def _pairs(d: int) -> tuple[np.ndarray, np.ndarray]:
    """The factors ``i <= j`` of the products of ``d`` inputs, in ``numpy.triu_indices`` order (read-only)."""
    i, j = np.triu_indices(d)
    i.flags.writeable = j.flags.writeable = False
    return i, j


LINEAR = Basis()
QUADRATIC = Quadratic()
