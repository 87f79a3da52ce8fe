"""How new a few input rows are to what a companion remembers: a new domain, or a changed concept?

A drift detector (:class:`~stream_am.drift.DriftAware`) sees the loss rise in two kinds of streams that want
opposite answers. Where the concept changed (the same inputs, new labels: river's Agrawal switching functions,
recurring concepts), the old memory is wrong and forgetting it makes room for the new one. Where a new domain
begins (new inputs, the same labels: permuted pixels or features), the old memory is right for the old inputs,
and forgetting it loses them (the domain-incremental scenarios' final accuracy fell to it:
``benchmarks/README.md``). The two differ in the inputs. A companion's class sums ``A_c`` (of its rows ``b``, the
features of its basis: :mod:`~stream_am.estimators.basis`) age on the classes' clock, so their total ``A`` is a
long memory of the inputs. Under it each row has a leverage ``b^T (A / a_00)^-1 b - 1`` (its squared Mahalanobis
distance to the remembered mean, about ``d``, the number of features less the bias, for a row like those
remembered, with variance about ``2 d``). :func:`novelty` is how many standard deviations the mean leverage of
``n`` rows lies above ``d``: ``(mean - d) / sqrt(2 d / n)``, each leverage first capped at :data:`CAP` times ``d``
(a row far from everything remembered moves the mean by at most ``CAP * d / n``: a few outliers do not make a
domain). Where a new domain moves the inputs' means or spreads (permuted digits: pixels that were always blank
are not), its rows score far above 3; where it keeps them (permuted RandomRBF features: the clusters move, their
spread over the cube does not), they score about as a changed concept's rows do, near 0, and the two are not
told apart. A feature that arrives late reads as new until the memory holds enough rows with it. Figures:
``benchmarks/README.md``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import solve_triangular

from stream_am.estimators.blas_threads import blas_thread_limit
from stream_am.estimators.companion import LinearCompanion
from stream_am.estimators.sums import cholesky

__all__ = ["novelty", "CAP"]

CAP = 4.0  # a row's leverage counts up to CAP times its expected value


def novelty(companion: LinearCompanion, x: np.ndarray) -> float | None:
    """Standard deviations by which the rows ``x`` (the network's float64 input rows, at least one) lie further
    from ``companion``'s remembered inputs than rows like them would (module docstring); None while it
    remembers too few rows to tell (fewer than twice its features), its sums have no factor, or it has no feature
    (only the bias: no row can be new).

    Examples
    --------
    >>> import numpy as np
    >>> from stream_am.estimators.companion import LinearCompanion
    >>> rng = np.random.default_rng(0)
    >>> companion = LinearCompanion(3, 2, decay=0.0, ridge=1e-3)
    >>> rows = np.hstack([np.ones((600, 1)), rng.normal(size=(600, 3))])
    >>> companion.A[0] = rows.T @ rows  # (as if all 600 rows were of class 0)
    >>> bool(abs(novelty(companion, rng.normal(size=(64, 3)))) < 3)  # rows like the remembered ones
    True
    >>> bool(novelty(companion, rng.normal(size=(64, 3)) + 2.0) > 3)  # rows moved away from them
    True
    """
    A = companion.A.sum(axis=0)
    if len(A) < 2 or A[0, 0] < 2 * len(A):
        return None
    factor = cholesky(A, companion.ridge)
    if factor is None:
        return None
    with blas_thread_limit():
        rows = companion.basis.rows(np.asarray(x, dtype=np.float64))
        z = solve_triangular(factor, rows.T, lower=True, check_finite=False)
    d, n = len(A) - 1, rows.shape[0]
    leverage = np.minimum(np.einsum("ij,ij->j", z, z) * float(A[0, 0]) - 1.0, CAP * d)
    return float((leverage.mean() - d) / math.sqrt(2.0 * d / n))
