"""Co-activation memory (AM-mem): normalised input/code statistics and their ridge least-squares solve.

For a layer with input rows ``a`` (augmented with a leading constant 1, so the bias is fitted too) and
code rows ``c`` the memory keeps the *weighted means*

    A = sum_t w_t a_t a_t^T / S,    B = sum_t w_t c_t a_t^T / S,    S = sum_t w_t,

with each remembered sample's weight ``w_t`` multiplied by ``(1 - decay)`` for every later sample. Means stay
bounded however long the stream (the authors' sums grow without bound and lose float32 precision), and
``decay > 0`` forgets exponentially for non-stationary streams. The weights solve the proximal ridge problem

    W = argmin  1/2 Tr(W A W^T) - Tr(W B^T) + ridge/2 ||W - W_prev||^2
      = (B + ridge W_prev) (A + ridge I)^-1,

one Cholesky solve per layer and step (no loop over columns). Directions the data has not spanned (dead or
new inputs) keep their previous weights, so every weight stays finite.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from stream_am.affine import get_affine, rows, set_affine
from stream_am.checks import MAX_COUNT
from stream_am.grad_mode import no_grad
from stream_am.updaters.class_clock import Labels
from stream_am.updaters.class_state import check_values
from stream_am.updaters.coordinates import map_columns, map_rows

__all__ = ["memory_increments", "memory_fold", "ridge_solve", "MemoryUpdater"]


@no_grad
def memory_increments(a: torch.Tensor, c: torch.Tensor) -> list[torch.Tensor]:
    """The additive statistics of rows ``a`` (n x d, augmented) and ``c`` (n x k): ``[a^T a, c^T a]``.

    Sums, not means, so that statistics of several shards of a batch add up to those of the whole batch.
    """
    return [a.T @ a, c.T @ a]


@no_grad
def memory_fold(
    A: torch.Tensor, B: torch.Tensor, S: float, increments: list[torch.Tensor], rows: int, n_samples: int,
    decay: float,
) -> float:
    """Fold :func:`memory_increments` of ``rows`` rows (from ``n_samples`` samples) into ``A``, ``B`` in place.

    Returns the new total weight ``S``.

    Examples
    --------
    >>> import torch
    >>> A, B = torch.zeros(2, 2), torch.zeros(1, 2)
    >>> a = torch.tensor([[1.0, 2.0], [1.0, 4.0]])
    >>> S = memory_fold(A, B, 0.0, memory_increments(a, torch.tensor([[1.0], [3.0]])), 2, 2, 0.0)
    >>> S, A.tolist(), B.tolist()
    (2.0, [[1.0, 3.0], [3.0, 10.0]], [[2.0, 7.0]])
    """
    keep = S * (1.0 - decay) ** n_samples
    total = keep + rows
    A.mul_(keep / total).add_(increments[0], alpha=1.0 / total)
    B.mul_(keep / total).add_(increments[1], alpha=1.0 / total)
    return total


ROUNDING = 4.0  # the margin for rounding in ridge_solve, in units of d * eps * max diag(A)


@no_grad
def ridge_solve(A: torch.Tensor, B: torch.Tensor, W_prev: torch.Tensor, ridge: float | torch.Tensor) -> torch.Tensor:
    """Return ``(B + ridge W_prev) (A + ridge I)^-1`` from a Cholesky factor and two triangular solves
    (``ridge`` a number, or a 0-d tensor on the device).

    Chosen by measurement (``benchmarks/memory_solvers.py``; figures in ``benchmarks/README.md``): the fastest
    exact solve from 257 x 256 up; with few outputs the solves run from the left. A factorisation
    that fails (a matrix not numerically positive definite) keeps the previous weights, on every device: on a
    GPU the test is a ``torch.where`` (so the GPU never waits for it), on the CPU a Python branch (the
    selection costs a few percent of a whole AM-mem step there; figures in ``benchmarks/README.md``).

    The factorised matrix also gets ``ROUNDING * d * eps`` times ``A``'s largest diagonal entry on its diagonal
    (``d``: its order, ``eps``: its dtype's): what rounding can take off the smallest eigenvalue of sums of
    many rows kept in float32. Without it, inputs of very different sizes (activations of 1 and of 1e5) made
    ``A`` indefinite by more than ``ridge``; the Cholesky factor still existed, and each solve multiplied
    ``W_prev`` along that direction (by up to 16), until the weights overflowed. This margin pulls toward 0,
    not toward ``W_prev``, so no solve can enlarge the weights that way.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> B = torch.tensor([[2.0, 3.0]])
    >>> ridge_solve(A, B, torch.zeros(1, 2), 1e-12).round(decimals=4).tolist()
    [[1.0, 3.0]]
    >>> ridge_solve(-A, B, torch.ones(1, 2), 1e-12).tolist()  # not positive definite: nothing changes
    [[1.0, 1.0]]
    """
    M = A.clone()
    M.diagonal().add_(ridge).add_(A.diagonal().abs().amax() * (ROUNDING * A.shape[0] * torch.finfo(A.dtype).eps))
    L, info = torch.linalg.cholesky_ex(M)
    rhs = B + ridge * W_prev if isinstance(ridge, torch.Tensor) else torch.add(B, W_prev, alpha=ridge)
    if info.device.type == "cpu":
        return _triangular_solves(L, rhs) if int(info) == 0 else W_prev
    return torch.where(info == 0, _triangular_solves(L, rhs), W_prev)


def _triangular_solves(L: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``W`` with ``W L L^T = rhs``: from the right for many outputs, from the left for few (measured)."""
    if rhs.shape[0] >= 32 or rhs.shape[0] * 8 >= L.shape[0]:
        Z = torch.linalg.solve_triangular(L.T, rhs, upper=True, left=False)
        return torch.linalg.solve_triangular(L, Z, upper=False, left=False)
    Y = torch.linalg.solve_triangular(L, rhs.T, upper=False)
    return torch.linalg.solve_triangular(L.T, Y, upper=True).T


class MemoryUpdater:
    """Co-activation memory of one ``Linear`` or ``Conv2d`` layer (AM-mem), solved for its weights.

    Parameters
    ----------
    layer
        The layer it fits (read and written in place; its bias, if any, is fitted too).
    decay
        Per-sample forgetting rate in ``[0, 1)``; 0 remembers everything equally. Settable between steps.
    ridge
        Proximal ridge weight of the solve.
    solve_every
        Memories absorb every batch but are solved on the first and then every ``solve_every``-th one.
    """

    name = "mem"
    steps = 1  # fresh statistics per batch: one

    def __init__(self, layer: nn.Linear | nn.Conv2d, decay: float, ridge: float, solve_every: int = 1):
        self.layer, self.decay, self.ridge, self.solve_every = layer, decay, ridge, solve_every
        self.bias = layer.bias is not None
        self.A: torch.Tensor | None = None
        self.B: torch.Tensor | None = None
        self.S = 0.0
        self.n_updates = 0
        self._rows_per_sample = 1

    def statistics(
        self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
        labels: Labels | None = None,
    ) -> list[torch.Tensor]:
        rows_a, rows_c = rows(self.layer, a, target)
        if self.bias:
            rows_a = torch.cat([rows_a.new_ones(rows_a.shape[0], 1), rows_a], dim=1)
        self._rows_per_sample = math.prod(target.shape[2:])  # image patches per sample for a Conv2d
        return memory_increments(rows_a, rows_c)

    def apply(self, stats: list[torch.Tensor], n: int) -> None:
        if self.A is None or self.B is None:
            self.A, self.B = stats[0].new_zeros(stats[0].shape), stats[1].new_zeros(stats[1].shape)
        self.S = memory_fold(self.A, self.B, self.S, stats, n * self._rows_per_sample, n, self.decay)
        if self.n_updates % self.solve_every == 0:
            set_affine(self.layer, ridge_solve(self.A, self.B, get_affine(self.layer), self.ridge))
        self.n_updates += 1

    def fit(self, a: torch.Tensor, target: torch.Tensor, n: int, known: torch.Tensor | None = None,
            labels: Labels | None = None) -> None:
        self.apply(self.statistics(a, target, n), n)

    def forget(self, factor: float) -> None:
        self.S *= factor

    def grow_inputs(self, n_new: int) -> None:
        if self.A is None or self.B is None:
            return
        d = self.A.shape[0]
        A = self.A.new_zeros(d + n_new, d + n_new)
        A[:d, :d] = self.A
        self.A = A
        self.B = torch.cat([self.B, self.B.new_zeros(self.B.shape[0], n_new)], dim=1)

    def grow_outputs(self, n_new: int) -> None:
        if self.B is not None:
            self.B = torch.cat([self.B, self.B.new_zeros(n_new, self.B.shape[1])], dim=0)

    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        """``A <- P A P^T``, ``B <- B P^T`` (:mod:`stream_am.updaters.coordinates`): the same means of the same
        rows in the new coordinates."""
        if self.A is not None and self.B is not None:
            map_rows(self.A, scale, shift, self.bias)
            map_columns(self.A, scale, shift, self.bias)
            map_columns(self.B, scale, shift, self.bias)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        if self.A is None or self.B is None:
            return {}
        return {
            f"{prefix}A": self.A,
            f"{prefix}B": self.B,
            f"{prefix}S": torch.tensor(self.S, dtype=torch.float64, device=self.A.device),
            f"{prefix}updates": torch.tensor(self.n_updates, dtype=torch.int64, device=self.A.device),
        }

    def load_state_dict(self, state: dict[str, torch.Tensor], prefix: str) -> None:
        if f"{prefix}A" not in state:
            self.A, self.B, self.S, self.n_updates = None, None, 0.0, 0
            return
        w = self.layer.weight
        for key in ("B", "S", "updates"):
            if f"{prefix}{key}" not in state:
                raise ValueError(f"state is missing {prefix}{key}")
        A, B = state[f"{prefix}A"], state[f"{prefix}B"]
        d, n_out = w[0].numel() + int(self.bias), w.shape[0]
        if tuple(A.shape) != (d, d) or tuple(B.shape) != (n_out, d):
            raise ValueError(
                f"state[{prefix}A/B] have shapes {tuple(A.shape)}/{tuple(B.shape)}, expected {(d, d)}/{(n_out, d)}"
            )
        check_values(f"{prefix}A", A)
        check_values(f"{prefix}B", B)
        if state[f"{prefix}S"].numel() != 1:
            raise ValueError(f"state[{prefix}S] must hold one number, got shape {tuple(state[f'{prefix}S'].shape)}")
        check_values(f"{prefix}S", state[f"{prefix}S"].reshape(-1), low=0.0)
        updates = state[f"{prefix}updates"]
        if (updates.numel() != 1 or updates.is_floating_point() or updates.dtype == torch.bool
                or not 0 <= int(updates) <= MAX_COUNT):
            raise ValueError(f"state[{prefix}updates] must hold one integer in [0, 2**62], got {updates.tolist()!r}")
        self.A, self.B = A.to(w.device, w.dtype, copy=True), B.to(w.device, w.dtype, copy=True)
        self.S = float(state[f"{prefix}S"])
        self.n_updates = int(updates)
