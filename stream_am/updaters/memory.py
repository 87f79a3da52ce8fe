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

__all__ = ["memory_update", "ridge_solve", "MemoryRule"]


@torch.no_grad()
def memory_update(
    A: torch.Tensor, B: torch.Tensor, S: float, a: torch.Tensor, c: torch.Tensor, n_samples: int, decay: float
) -> float:
    """Fold rows ``a`` (n x d, augmented) and ``c`` (n x k) into ``A``, ``B`` in place; return the new ``S``.

    Examples
    --------
    >>> import torch
    >>> A, B = torch.zeros(2, 2), torch.zeros(1, 2)
    >>> a = torch.tensor([[1.0, 2.0], [1.0, 4.0]])
    >>> S = memory_update(A, B, 0.0, a, torch.tensor([[1.0], [3.0]]), 2, 0.0)
    >>> S, A.tolist(), B.tolist()
    (2.0, [[1.0, 3.0], [3.0, 10.0]], [[2.0, 7.0]])
    """
    n = a.shape[0]
    keep = S * (1.0 - decay) ** n_samples
    total = keep + n
    A.mul_(keep / total).addmm_(a.T, a, alpha=1.0 / total)
    B.mul_(keep / total).addmm_(c.T, a, alpha=1.0 / total)
    return total


@torch.no_grad()
def ridge_solve(A: torch.Tensor, B: torch.Tensor, W_prev: torch.Tensor, ridge: float) -> torch.Tensor:
    """Return ``(B + ridge W_prev) (A + ridge I)^-1`` from a Cholesky factor and two triangular solves.

    Chosen by measurement (``benchmarks/memory_solvers.py``, one CPU thread): a Cholesky factor and two
    triangular solves applied from the right is the fastest exact solve from 257 x 256 up (257/256: 1.16 ms
    against 1.91 for ``torch.cholesky_solve``, 2.60 for LU, 1.30 for an explicit inverse; 1025/1024: 62.9,
    76.6, 98.1, 68.5 ms), within 2% of ``cholesky_solve`` at 785/64 (9.52 against 9.41 ms), and beaten only
    at 65/64 by an explicit inverse (0.096 against 0.116 ms, with ten times the residual); with few outputs
    (257/10) solving from the left is faster. A factorisation
    that fails (a matrix not numerically positive definite) is retried with a ridge ten times larger.

    Examples
    --------
    >>> import torch
    >>> A = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> B = torch.tensor([[2.0, 3.0]])
    >>> ridge_solve(A, B, torch.zeros(1, 2), 1e-12).tolist()
    [[1.0, 3.0]]
    """
    rhs = B + ridge * W_prev
    r = ridge
    for _ in range(6):
        M = A.clone()
        M.diagonal().add_(r)
        L, info = torch.linalg.cholesky_ex(M)
        if A.is_cuda:  # no device-to-host sync: a failed factorisation keeps the previous weights
            return torch.where(info == 0, _triangular_solves(L, rhs), W_prev)
        if int(info) == 0:
            return _triangular_solves(L, rhs)
        r = max(r * 10.0, 1e-6)
    raise FloatingPointError("memory matrix is not positive definite even with a large ridge")


def _triangular_solves(L: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """``W`` with ``W L L^T = rhs``: from the right for many outputs, from the left for few (measured)."""
    if rhs.shape[0] >= 32 or rhs.shape[0] * 8 >= L.shape[0]:
        Z = torch.linalg.solve_triangular(L.T, rhs, upper=True, left=False)
        return torch.linalg.solve_triangular(L, Z, upper=False, left=False)
    Y = torch.linalg.solve_triangular(L, rhs.T, upper=False)
    return torch.linalg.solve_triangular(L.T, Y, upper=True).T


class MemoryRule:
    """Co-activation memory of one layer (see the module docstring).

    Parameters
    ----------
    decay
        Per-sample forgetting rate in ``[0, 1)``; 0 remembers everything equally.
    ridge
        Proximal ridge weight, in units of the inputs' mean square.
    bias
        Whether rows are augmented with a constant 1 (the layer has a bias).
    """

    def __init__(self, decay: float = 0.0, ridge: float = 1e-2, bias: bool = True):
        if not (0.0 <= decay < 1.0):
            raise ValueError(f"decay must be in [0, 1), got {decay!r}")
        if not (ridge > 0 and math.isfinite(ridge)):
            raise ValueError(f"ridge must be a positive number, got {ridge!r}")
        self.decay = decay
        self.ridge = ridge
        self.bias = bias
        self.A: torch.Tensor | None = None
        self.B: torch.Tensor | None = None
        self.S = 0.0

    def update(self, a: torch.Tensor, c: torch.Tensor, n_samples: int) -> None:
        """Add rows ``a`` (un-augmented inputs) and ``c`` (targets) to the memory."""
        if self.bias:
            a = torch.cat([a.new_ones(a.shape[0], 1), a], dim=1)
        if self.A is None or self.B is None:
            self.A = a.new_zeros(a.shape[1], a.shape[1])
            self.B = a.new_zeros(c.shape[1], a.shape[1])
        self.S = memory_update(self.A, self.B, self.S, a, c, n_samples, self.decay)

    def solve(self, W_prev: torch.Tensor) -> torch.Tensor:
        """Weights ``[bias | W]`` (``W`` without a bias) fitting the memory, from ``W_prev`` (same layout)."""
        if self.A is None or self.B is None:
            raise RuntimeError("the memory is empty")
        return ridge_solve(self.A, self.B, W_prev, self.ridge)

    def forget(self, factor: float) -> None:
        """Scale the weight of everything remembered by ``factor`` in ``(0, 1]``."""
        if not (0.0 < factor <= 1.0):
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
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
        if self.B is None:
            return
        self.B = torch.cat([self.B, self.B.new_zeros(n_new, self.B.shape[1])], dim=0)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        if self.A is None or self.B is None:
            return {}
        return {
            f"{prefix}A": self.A,
            f"{prefix}B": self.B,
            f"{prefix}S": torch.tensor(self.S, dtype=torch.float64),
        }

    def load_state_dict(
        self, state: dict[str, torch.Tensor], prefix: str, n_in: int, n_out: int, device: torch.device | None = None
    ) -> None:
        """Restore ``A``, ``B``, ``S`` (shapes checked first), on ``device`` when given."""
        if f"{prefix}A" not in state:
            self.A, self.B, self.S = None, None, 0.0
            return
        A, B = state[f"{prefix}A"], state[f"{prefix}B"]
        d = n_in + int(self.bias)
        if tuple(A.shape) != (d, d) or tuple(B.shape) != (n_out, d):
            raise ValueError(
                f"state[{prefix}A/B] have shapes {tuple(A.shape)}/{tuple(B.shape)}, expected {(d, d)}/{(n_out, d)}"
            )
        self.A, self.B = A.to(device=device, copy=True), B.to(device=device, copy=True)
        self.S = float(state[f"{prefix}S"])
