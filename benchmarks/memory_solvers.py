"""Ways to solve one AM-mem layer's memory, timed per width, against one backprop step of that layer.

The memory step of a layer with ``n_in`` inputs (bias included) and ``n_out`` outputs solves the proximal
ridge system ``W (A + ridge I) = B + ridge W_prev`` (see :mod:`stream_am.updaters.memory`). This script times,
for each shape, on one thread, median of ``--repeats``:

- ``fold``: folding one batch into ``A`` and ``B`` (every variant pays it);
- exact solves: Cholesky + two triangular solves (what stream_am uses; on the CPU it tests the factorisation
  with a Python branch, and the same solve with the GPU's ``torch.where`` selection is timed beside it),
  ``torch.cholesky_solve``,
  LU (``torch.linalg.solve``), and an explicit inverse (``torch.cholesky_inverse``) times the right-hand side;
- inexact ones: one vectorised Jacobi iteration, and one sweep of the authors' block coordinate descent over
  the columns (a Python loop, as in their code), each warm-started from ``W_prev``;
- ``Woodbury``: the rank-``batch`` update of a kept inverse, as recursive least squares would do it. It is
  timed for its cost only: it is exact only when the ridge decays with the memory, which is not our problem
  (the proximal ridge adds a full-rank term every step), so its residual is not comparable;
- ``backprop layer``: forward and backward of the same ``Linear`` on the batch (the yardstick).

Each exact or inexact solver also prints its relative residual ``||W M - rhs|| / ||rhs||``, beside that of
``W_prev`` itself (the warm start: the exact solve before the last batch was folded in).

    python benchmarks/memory_solvers.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from stream_am.updaters.memory import memory_fold, memory_increments, ridge_solve

SHAPES = [(65, 64, 32), (257, 256, 128), (785, 64, 32), (785, 256, 128), (1025, 1024, 256)]
RIDGE = 1e-2


def _time(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def _problem(n_in: int, n_out: int, batch: int, gen: torch.Generator):
    """A memory after 40 batches of correlated ReLU inputs, with ``W_prev`` the exact solve after 39 of them
    (so warm starts start where a learner would), and the last batch ``(a, c)``."""
    A, B, S = torch.zeros(n_in, n_in), torch.zeros(n_out, n_in), 0.0
    mix = torch.randn(n_in - 1, n_in - 1, generator=gen) / (n_in - 1) ** 0.5
    true_w = torch.randn(n_out, n_in - 1, generator=gen) / (n_in - 1) ** 0.5
    W_prev = torch.zeros(n_out, n_in)
    for k in range(40):
        x = torch.relu(torch.randn(batch, n_in - 1, generator=gen) @ mix)
        a = torch.cat([torch.ones(batch, 1), x], dim=1)
        c = x @ true_w.T + 0.1 * torch.randn(batch, n_out, generator=gen)
        if k == 39:
            W_prev = ridge_solve(A, B, W_prev, RIDGE)
        S = memory_fold(A, B, S, memory_increments(a, c), batch, batch, 1e-3)
    return A, B, W_prev, a, c


def _residual(W: torch.Tensor, M: torch.Tensor, rhs: torch.Tensor) -> float:
    return float(torch.linalg.matrix_norm(W @ M - rhs) / torch.linalg.matrix_norm(rhs))


def measure(n_in: int, n_out: int, batch: int, repeats: int, seed: int = 0) -> dict[str, tuple[float, float | None]]:
    gen = torch.Generator().manual_seed(seed)
    A, B, W_prev, a, c = _problem(n_in, n_out, batch, gen)
    M = A.clone()
    M.diagonal().add_(RIDGE)
    rhs = B + RIDGE * W_prev
    L = torch.linalg.cholesky(M)
    out: dict[str, tuple[float, float | None]] = {}

    def fold() -> None:
        memory_fold(A.clone(), B.clone(), 1000.0, memory_increments(a, c), batch, batch, 1e-3)

    out["fold"] = (_time(fold, repeats), None)

    def chol_triangular() -> torch.Tensor:
        return ridge_solve(A, B, W_prev, RIDGE)

    def chol_triangular_where() -> torch.Tensor:  # plus the selection that the GPU path makes
        ok = torch.zeros((), dtype=torch.int32) == 0
        return torch.where(ok, ridge_solve(A, B, W_prev, RIDGE), W_prev)

    def chol_solve() -> torch.Tensor:
        return torch.cholesky_solve(rhs.T, torch.linalg.cholesky(M)).T

    def lu() -> torch.Tensor:
        return torch.linalg.solve(M, rhs.T).T

    def inverse() -> torch.Tensor:
        return rhs @ torch.cholesky_inverse(torch.linalg.cholesky(M))

    def jacobi() -> torch.Tensor:
        return W_prev + (rhs - W_prev @ M) / M.diagonal()

    def bcd_sweep() -> torch.Tensor:
        W = W_prev.clone()
        for j in range(n_in):
            W[:, j] += (rhs[:, j] - W @ M[:, j]) / M[j, j]
        return W

    out["no update (W_prev)"] = (0.0, _residual(W_prev, M, rhs))
    for name, fn in (
        ("Cholesky + triangular (stream_am)", chol_triangular),
        ("the same, tested by torch.where", chol_triangular_where),
        ("cholesky_solve", chol_solve),
        ("LU solve", lu),
        ("explicit inverse", inverse),
        ("1 Jacobi iteration", jacobi),
        ("1 BCD column sweep", bcd_sweep),
    ):
        W = fn()
        out[name] = (_time(fn, repeats if name != "1 BCD column sweep" else max(3, repeats // 5)), _residual(W, M, rhs))

    P = torch.cholesky_inverse(L)
    gamma = 1.0 / 1000.0

    def woodbury() -> None:
        PX = P @ a.T  # n_in x batch
        K = torch.linalg.solve(torch.eye(batch) / gamma + a @ PX, PX.T)  # batch x n_in
        P_new = P - PX @ K
        E = c - a @ W_prev.T
        _ = W_prev + E.T @ (K * gamma)
        _ = P_new

    out["Woodbury rank-batch update (cost only)"] = (_time(woodbury, repeats), None)

    layer = torch.nn.Linear(n_in - 1, n_out)
    x = a[:, 1:].clone().requires_grad_(True)

    def backprop() -> None:
        layer.zero_grad(set_to_none=True)
        loss = (layer(x) - c).pow(2).mean()
        loss.backward()

    out["backprop layer (forward + backward)"] = (_time(backprop, repeats), None)
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, tuple[float, float | None]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shapes", nargs="*", default=[f"{i}x{o}/b{b}" for i, o, b in SHAPES])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = {}
    for spec in args.shapes:
        dims, b = spec.split("/b")
        n_in, n_out = (int(v) for v in dims.split("x"))
        res = measure(n_in, n_out, int(b), args.repeats)
        results[spec] = res
        bp = res["backprop layer (forward + backward)"][0]
        print(f"\n## n_in x n_out = {n_in} x {n_out}, batch {b}, {args.threads} thread(s)\n")
        print("| step | ms | / backprop layer | relative residual |\n|---|---|---|---|")
        for name, (ms, resid) in res.items():
            r = "" if resid is None else f"{resid:.1e}"
            if name.startswith("no update"):
                print(f"| {name} | | | {r} |")
                continue
            print(f"| {name} | {ms:.3f} | {ms / bp:.2f} | {r} |", flush=True)
    return results


if __name__ == "__main__":
    main()
