"""A linear companion: a second, linear model that learns every batch the network learns and answers some samples.

Where the world changes, the network's hidden layers hold features of the old concept, and the readout built on
them lags; a linear model on the inputs alone follows a moving linear boundary (river's hyperplane, where river's
logistic regression is ahead of the network) and a new task of separable classes sooner. Where the concept is not
linear, it is worse. The companion is that linear model: a ridge fit of one-hot targets on the network's
standardised input rows ``x`` (a bias first; or on the features of another basis of them, as the classifier's
quadratic companion: :mod:`~stream_am.estimators.basis`), as the memory readout fits them on the last hidden layer,
on the clock of each class as the memories are (:mod:`stream_am.updaters.class_memory`): it keeps ``A_c = sum x
x^T`` over the rows of each class ``c``, aged by ``(1 - memory_decay)`` per sample of the batches that hold ``c``
only (with one clock for all, a class-incremental stream's first classes faded from it, and it answered their
inputs for the classes of the last task), and solves ``W = (A + ridge * mean(diag A) * I)^-1 B`` as it learns,
where ``A`` is the sum of the ``A_c`` and ``B``'s column ``c`` is ``A_c``'s first column (the sum of ``c``'s
rows). It is re-expressed (exactly: the sums are statistics of the rows) and grown with the network's first layer.

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
labels move); it leaves alone the inputs of earlier tasks, which the network's memories keep better. The second
lets the companion answer where the network is unsure, but not when it is worse overall. A gated companion
(:func:`quadratic`, whose memory is longer than the network's) also keeps both scores with a half-life of
``GATE_HALF_LIFE`` samples and answers nothing while its score there is under the network's: after an abrupt
change it stops answering within a block or two. The measures move per batch the network learns, so ``learn_one``
and ``learn_many`` keep giving the same model. Why, and figures: ``docs/method.md``, ``benchmarks/README.md``.

It learns in blocks: it gathers the batches the network learned (their rows, labels and the network's
measures) until they hold ``BLOCK`` samples, then measures and learns them in one pass, with the weights
batch-by-batch learning gives each row (a class's rows age by the samples of the later batches that hold it;
the measures move batch by batch); only its weights, and so its answers and its measured losses, wait for the
block. A batch holding a class whose sums hold fewer than ``NEW`` rows (aged) is learned at once, with what was
gathered: a new class, or a new task's, is answered from its first batches, as batch-by-batch learning did
(``docs/method.md`` says what blocks alone lost). A block is a few dozen small array operations whatever their
size, run on one BLAS thread (:mod:`~stream_am.estimators.blas_threads`). The gathered rows are part of its state
(saved, grown and re-expressed as the sums).

The companion is built at the first step when the network's first layer keeps a memory (so its sums, ``n_inputs
x n_inputs`` like that memory's with fewer outputs and one clock, cost less than that one) and the network has a
hidden layer; a classifier with ``companion=False`` never builds one. It computes in float64 on the CPU.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from scipy.linalg import blas, lapack, solve_triangular

from stream_am.estimators.basis import LINEAR, QUADRATIC, QUADRATIC_DECAY, Basis
from stream_am.estimators.blas_threads import blas_thread_limit, one_blas_thread
from stream_am.estimators.sums import age_and_add, cholesky, held

__all__ = ["LinearCompanion", "quadratic", "HALF_LIFE", "GATE_HALF_LIFE", "FAMILIAR", "BLOCK", "size"]

HALF_LIFE = 500.0  # samples over which a score's weight halves
GATE_HALF_LIFE = 128.0  # the same for the recent scores of a gated companion: one block (module docstring)
FAMILIAR = 3.0  # standard deviations of the squared Mahalanobis distance within which an input looks recent
BLOCK = 128  # samples the companion gathers before it learns them (module docstring)
NEW = 32  # rows a class's sums hold (aged) below which the companion learns a batch that holds it at once


class LinearCompanion:
    """The ridge fit of the module docstring on ``n_inputs`` inputs, mapped to ``w = basis.width(n_inputs)`` features
    (``n_inputs + 1`` for the linear basis, the bias first), and ``n_outputs`` classes.

    ``scores``, ``recent`` (the scores at :data:`GATE_HALF_LIFE`, read with ``gate``) and ``accuracy``:
    ``[network, companion]`` (0 before any step: a tie); ``A``: the sums of each class (``n_outputs x w x w``);
    ``R``: the recent rows' sum (``w`` square); ``W``: the weights (``w x n_outputs``); all float64 numpy arrays (a
    step is a few small products, where numpy's cost per call is a fraction of torch's); ``pending``: the batches
    gathered and not yet learned, ``(size, network loss, network accuracy)`` each, whose rows and labels are
    ``pending_rows`` (``size`` rows each, ``n_inputs`` wide) and ``pending_labels``; ``decay`` and ``ridge``: the
    estimator's ``memory_decay`` and ``ridge``.
    """

    def __init__(self, n_inputs: int, n_outputs: int, decay: float, ridge: float,
                 scores: tuple[float, float] = (0.0, 0.0), accuracy: tuple[float, float] = (0.0, 0.0),
                 A: np.ndarray | None = None, R: np.ndarray | None = None, W: np.ndarray | None = None,
                 pending: list[tuple[int, float, float]] | None = None, pending_rows: np.ndarray | None = None,
                 pending_labels: np.ndarray | None = None, basis: Basis = LINEAR, gate: bool = False,
                 recent: tuple[float, float] = (0.0, 0.0)) -> None:
        self.decay, self.ridge, self.basis, self.n_inputs, self.gate = decay, ridge, basis, n_inputs, gate
        self.scores, self.recent, self.accuracy = ([float(v) for v in pair] for pair in (scores, recent, accuracy))
        w = basis.width(n_inputs)
        self.A, self.R = np.zeros((n_outputs, w, w)) if A is None else A, np.zeros((w, w)) if R is None else R
        self.W = np.zeros((w, n_outputs)) if W is None else W
        self._pending = [(int(n), float(loss), float(hits)) for n, loss, hits in (pending or [])]
        self._n_pending = sum(n for n, _, _ in self._pending)
        self._rows_pending = [] if pending_rows is None else [torch.from_numpy(pending_rows)]
        self._labels_pending = [] if pending_labels is None else [torch.from_numpy(pending_labels)]
        self._watch()
        self._find_young()

    def _find_young(self) -> None:
        """Which classes' sums hold fewer than :data:`NEW` rows (None if none does), whose batches learn at once."""
        young = self.A[:, 0, 0] < NEW
        self._young: np.ndarray | None = young if young.any() else None

    def _solve(self) -> None:
        """New weights from the sums: ``W = (A + r I)^-1 (B + r W)`` with ``r`` the ridge times ``A``'s mean
        diagonal entry (proximal, as the memories' solves: it pulls toward the weights before, not toward 0;
        measured against a ridge toward 0 in ``benchmarks/README.md``); the weights stay if ``A`` has no factor."""
        A = self.A.sum(axis=0)
        factor = cholesky(A, self.ridge)
        if factor is not None:  # (LAPACK's own calls: scipy's checking wrappers cost more than the solve here)
            W, info = lapack.dpotrs(factor, self.A[:, :, 0].T + self.ridge * (np.trace(A) / A.shape[0]) * self.W,
                                    lower=True)
            if not info:
                self.W = np.ascontiguousarray(W)  # (row-major, as loaded: the same rounding)

    @one_blas_thread
    def _watch(self) -> None:
        """What rule 1 reads, while it may apply (the measures decide: it is derived): ``R``'s Cholesky factor,
        scaled so that a row's leverage is ``|factor^-1 row|^2 - 1`` (solved per answer: no inverse per block)."""
        self._recent: np.ndarray | None = None
        if (self.accuracy[1] > self.accuracy[0] and self.scores[1] >= self.scores[0]
                and self.R[0, 0] >= 2 * len(self.R) and not self._silent()):
            factor = cholesky(self.R, self.ridge)
            if factor is not None:
                self._recent = factor / math.sqrt(float(self.R[0, 0]))

    # -- learning --------------------------------------------------------------------------------------
    def learn(self, x: torch.Tensor, y: torch.Tensor, network: dict[str, float]) -> None:
        """Gather the batch the network just learned (``x`` its input rows, already validated by its step, ``y``
        the class indices; ``network``: what the network's step measured before learning it), and learn the
        batches gathered once they hold :data:`BLOCK` samples."""
        self._rows_pending.append(x.detach().to("cpu", copy=True))  # (torch: fewer conversions a batch)
        self._labels_pending.append(y.detach().to("cpu", torch.int64, copy=True))
        self._pending.append((int(y.shape[0]), float(network["loss"]), float(network["accuracy"])))
        self._n_pending += int(y.shape[0])
        if self._n_pending >= BLOCK or (self._young is not None
                                        and bool(self._young[self._labels_pending[-1].numpy()].any())):
            self._learn_block()

    @one_blas_thread
    def _learn_block(self) -> None:
        """Measure the companion on the gathered batches, move the measures of both models batch by batch, and
        learn the rows with the weights batch-by-batch learning gives them (module docstring)."""
        sizes = np.array([n for n, _, _ in self._pending])
        rows = self.basis.rows(torch.cat(self._rows_pending).numpy().astype(np.float64))  # (float32 rows, exactly)
        labels = torch.cat(self._labels_pending).numpy()
        n, k, m = rows.shape[0], self.A.shape[0], sizes.shape[0]
        batch, starts = np.repeat(np.arange(m), sizes), np.cumsum(sizes) - sizes
        out = rows @ self.W  # the weights every gathered batch was answered with
        out -= out.max(axis=1, keepdims=True)
        measured = np.empty((2, n))
        measured[0] = np.log(np.exp(out).sum(axis=1)) - out[np.arange(n), labels]
        measured[1] = out.argmax(axis=1) == labels
        loss, hits = np.add.reduceat(measured, starts, axis=1) / sizes
        for (size, network_loss, network_hits), *mine in zip(self._pending, loss.tolist(), hits.tolist(),
                                                              strict=True):
            keep, fast = 0.5 ** (size / HALF_LIFE), 0.5 ** (size / GATE_HALF_LIFE)
            for i, (l, a) in enumerate(((network_loss, network_hits), mine)):
                self.scores[i] = keep * self.scores[i] - (1.0 - keep) * l
                self.recent[i] = fast * self.recent[i] - (1.0 - fast) * l
                self.accuracy[i] = keep * self.accuracy[i] + (1.0 - keep) * a
        # a class's sums age by the samples of each gathered batch that holds it, and a row by those of the
        # later ones; rows scaled by the square roots of their weights and grouped by class give each class's sums
        # aged and added in one BLAS call
        holds = np.zeros((m, k), dtype=bool)
        holds[batch, labels] = True
        aging = holds * sizes[:, None]
        later = np.cumsum(aging[::-1], axis=0)[::-1] - aging
        scaled = rows * (math.sqrt(1.0 - self.decay) ** later[batch, labels])[:, None]
        counts, ages = np.bincount(labels, minlength=k), (1.0 - self.decay) ** aging.sum(axis=0)
        grouped, ends = scaled[np.argsort(labels, kind="stable")], np.cumsum(counts)
        for c in np.flatnonzero(counts).tolist():
            age_and_add(self.A[c], float(ages[c]), grouped[ends[c] - counts[c] : ends[c]])
        recent = rows * np.repeat(math.sqrt(0.5) ** ((n - np.cumsum(sizes)) / HALF_LIFE), sizes)[:, None]
        age_and_add(self.R, 0.5 ** (n / HALF_LIFE), recent)
        self._pending, self._rows_pending, self._labels_pending, self._n_pending = [], [], [], 0
        self._solve()
        self._watch()
        self._find_young()

    def forget(self, factor: float) -> None:
        """Scale the classes' sums by ``factor`` (checked), once what was gathered is learned; the weights stay."""
        if factor != 1.0 and self._pending:  # (batch by batch, learned already; 1 moves no block's boundary)
            self._learn_block()
        self.A *= factor
        self._find_young()

    def grow_inputs(self, n_new: int) -> None:
        """New features: the rows so far held 0 for them (their mean, in the frame)."""
        self._rows_pending = [torch.from_numpy(np.pad(self._gathered()[0], ((0, 0), (0, n_new))))]
        w, k, at = self.basis.width(self.n_inputs + n_new), self.A.shape[0], self.basis.embed(self.n_inputs, n_new)
        A, R, W = np.zeros((k, w, w)), np.zeros((w, w)), np.zeros((w, self.W.shape[1]))
        if at[-1] == len(at) - 1:  # the old features first (the linear basis): blocks copied, a tenth of scatters' time
            old = slice(0, len(at))
            A[:, old, old], R[old, old], W[old] = self.A, self.R, self.W
        else:
            A[:, at[:, None], at], R[at[:, None], at], W[at] = self.A, self.R, self.W
        self.A, self.R, self.W, self.n_inputs = A, R, W, self.n_inputs + n_new
        self._watch()

    def grow_outputs(self, n_new: int) -> None:
        """New classes: no row learned so far held them."""
        self.A = np.concatenate([self.A, np.zeros((n_new, *self.A.shape[1:]))])
        self.W = np.concatenate([self.W, np.zeros((self.W.shape[0], n_new))], axis=1)
        self._find_young()

    @one_blas_thread
    def reexpress_inputs(self, scale: torch.Tensor, shift: torch.Tensor, max_gain: float | None = None) -> None:
        """The inputs change coordinates, ``x -> scale * x + shift``: so do the rows in the sums, exactly, and the
        weights, so that they compute the same function of the same samples (``max_gain``, which bounds a
        network's weights against an outlier's spread, is not needed: the next solve refits these)."""
        s, t = (v.detach().cpu().double().numpy() for v in (scale, shift))
        T = self.basis.transform(s, t)
        row = float(np.abs(T).sum(axis=1).max())
        gain = row * row  # (a bound on what T multiplies an entry by: see held; inf rather than an OverflowError)
        self.A, self.R = (self.basis.congruence(T, held(S, gain)) for S in (self.A, self.R))
        top = self.basis.largest_input  # (only a loaded row could pass it: the load bound holds after a refresh)
        self._rows_pending = [torch.from_numpy(np.clip(self._gathered()[0] * s + t, -top, top))]
        self.W = held(np.ascontiguousarray(solve_triangular(T.T, self.W, lower=False, check_finite=False)))  # T^-T W
        self._watch()

    # -- answering -------------------------------------------------------------------------------------
    def familiar(self, x: torch.Tensor) -> np.ndarray:
        """Per row of ``x``, whether it looks like the recent inputs (rule 1 of the module docstring); none while
        rule 1 does not apply or too few rows were seen to tell."""
        if self._recent is None:
            return np.zeros(x.shape[0], dtype=bool)
        with blas_thread_limit() if x.shape[0] > 1 else nullcontext():  # (one row's products never use a second)
            return self._familiar(self.basis.rows(_numpy_rows(x)))

    def _familiar(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 1:  # (a vector's solve: half the time of a matrix's for one row)
            z = blas.dtrsv(self._recent, rows[0], lower=1)[:, None]
        else:
            z = blas.dtrsm(1.0, self._recent, rows.T, lower=1)  # (the rows' columns: z^T)
        d = self.R.shape[0] - 1
        return np.einsum("ij,ij->j", z, z) - 1.0 <= d + FAMILIAR * math.sqrt(2 * d)

    def answer(self, x: torch.Tensor, proba: np.ndarray) -> np.ndarray:
        """The probabilities to give for the rows ``x``, where the network gives ``proba`` (module docstring)."""
        if self.scores[1] < self.scores[0] or self._silent() or not len(proba):
            return proba
        with blas_thread_limit() if len(proba) > 1 else nullcontext():  # (as familiar's)
            return self._answer(self.basis.rows(_numpy_rows(x)), proba)

    def _silent(self) -> bool:  # (a gated companion, while its recent score is under the network's)
        return self.gate and self.recent[1] < self.recent[0]

    def _answer(self, rows: np.ndarray, proba: np.ndarray) -> np.ndarray:
        out = rows @ self.W
        mine = np.exp(out - out.max(axis=1, keepdims=True))
        mine /= mine.sum(axis=1, keepdims=True)
        take = mine.max(axis=1) > proba.max(axis=1)
        if self._recent is not None:
            take |= self._familiar(rows)
        return np.where(take[:, None], mine, proba)

    # -- state -----------------------------------------------------------------------------------------
    def _gathered(self) -> tuple[np.ndarray, np.ndarray]:
        """The rows and labels of the batches gathered, one array each."""
        if not self._pending:
            return np.zeros((0, self.n_inputs)), np.zeros(0, dtype=np.int64)
        return (torch.cat(self._rows_pending).to(torch.float64).numpy().copy(),
                torch.cat(self._labels_pending).numpy().copy())

    def meta(self) -> dict[str, Any]:
        return {"scores": list(self.scores), "recent": list(self.recent), "accuracy": list(self.accuracy),
                "pending": [list(batch) for batch in self._pending]}

    def arrays(self, prefix: str = "companion") -> dict[str, np.ndarray]:
        rows, labels = self._gathered()
        return {**{f"{prefix}.{k}": np.array(getattr(self, k), order="C") for k in ("A", "R", "W")},
                f"{prefix}.pending_rows": rows, f"{prefix}.pending_labels": labels}


def _numpy_rows(x: torch.Tensor) -> np.ndarray:
    """The rows of ``x`` (on the CPU) as float64."""
    return x.detach().cpu().numpy().astype(np.float64)


def quadratic(n_inputs: int, n_outputs: int, memory_decay: float, ridge: float, **saved: Any) -> LinearCompanion:
    """The classifier's quadratic companion: on :data:`QUADRATIC`, at ``QUADRATIC_DECAY * memory_decay``, gated."""
    return LinearCompanion(n_inputs, n_outputs, QUADRATIC_DECAY * memory_decay, ridge, **saved, basis=QUADRATIC,
                           gate=True)


def size(n_inputs: int, n_outputs: int, basis: Basis = LINEAR) -> int:
    """Numbers a companion holds at most: its square sums (each class's, the recent one), weights, gathered rows."""
    return (n_outputs + 1) * basis.width(n_inputs) ** 2 + basis.width(n_inputs) * n_outputs + BLOCK * (n_inputs + 1)
