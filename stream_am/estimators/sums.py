"""Dense kernels of the companions (:mod:`~stream_am.estimators.companion`): a symmetric sum aged and added to in
place, the Cholesky factor of a sum with its ridge (both on float64 numpy arrays, through LAPACK's and BLAS's own
calls: scipy's checking wrappers cost more than the operations at these sizes), and the bound every sum and weight
is held within (:data:`LARGEST`)."""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas, lapack

from stream_am.updaters.memory import ROUNDING

__all__ = ["age_and_add", "cholesky", "LARGEST", "held"]

_EPS = float(np.finfo(np.float64).eps)
LARGEST = 1e150  # the largest magnitude a companion's sum or weight may hold (saved too): products of two stay finite


def age_and_add(A: np.ndarray, age: float, rows: np.ndarray) -> None:
    """``A <- age A + rows^T rows`` in place, ``A`` symmetric (one ``dgemm`` writes its F-ordered transpose)."""
    out = blas.dgemm(1.0, rows.T, rows.T, beta=age, c=A.T, trans_b=1, overwrite_c=1)
    if not np.shares_memory(out, A):  # (BLAS wrote a copy: A was not C-ordered)
        A[...] = out.T


def cholesky(A: np.ndarray, ridge: float) -> np.ndarray | None:
    """The lower Cholesky factor of ``A`` with ``ridge`` times its mean diagonal entry, and a margin for rounding
    as :func:`~stream_am.updaters.memory.ridge_solve`'s, on the diagonal; None if there is none."""
    M, d = A.copy(), A.shape[0]
    diagonal = M.reshape(-1)[:: d + 1]  # (a writable view)
    diagonal += ridge * (diagonal.sum() / d) + 1e-12 + ROUNDING * d * _EPS * np.abs(diagonal).max()
    factor, info = lapack.dpotrf(M, lower=True, clean=True)
    return None if info else factor


def held(S: np.ndarray, gain: float = 1.0) -> np.ndarray:
    """``S``, scaled down in place where ``gain`` times its largest magnitude passes :data:`LARGEST` (to half of it;
    zeros if that is not finite). A change of coordinates whose entries sum, per row, to at most ``sqrt(gain)`` keeps
    the scaled sums within the bound. Only a loaded state's sums come near it (those of standardised rows are far
    inside); as each fit reads its sums up to a common factor (its ridge is relative), this forgets, and changes
    no fit."""
    top = gain * float(np.abs(S).max(initial=0.0))
    if not math.isfinite(top):
        S[...] = 0.0
    elif top > LARGEST:
        S *= 0.5 * LARGEST / top
    return S
