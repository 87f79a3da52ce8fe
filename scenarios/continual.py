"""Continual learning without task boundaries: split-digits, permuted-digits and split-segments.

Each task has a training part, streamed once (test-then-train) in task order, and a held-out test part.
After each task every learner is scored on every task's test part, giving the accuracy matrix ``R``.
The same training samples shuffled i.i.d. give the "joint" reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import datasets
from stream_am.scenarios._common import (
    BASE_LEARNERS,
    Outcome,
    RunConfig,
    Scenario,
    digits,
    make_learner,
    prequential,
    rows,
)
from tqdm.auto import tqdm

from stream_am.evaluate import accuracy_on, continual_metrics

__all__ = ["SCENARIOS", "Task"]

LEARNERS = ("AM-mem", "AM-mem 3 steps", "AM-mem eta=0", *BASE_LEARNERS[1:], "Replay", "EWC", "HAT", "ARF")


@dataclass
class Task:
    train: list[tuple[dict, Any]]
    test_x: list[dict]
    test_y: list[Any]


def _split(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, test: float = 0.3) -> tuple[np.ndarray, ...]:
    order = rng.permutation(len(y))
    n_test = int(round(test * len(y)))
    te, tr = order[:n_test], order[n_test:]
    return X[tr], y[tr], X[te], y[te]


def _make_task(Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray, yte: np.ndarray, prefix: str) -> Task:
    return Task(list(zip(rows(Xtr, prefix), ytr.tolist(), strict=True)), rows(Xte, prefix), yte.tolist())


def _class_split(X: np.ndarray, y: np.ndarray, groups: list[tuple[int, ...]], seed: int, quick: bool,
                 prefix: str) -> list[Task]:
    rng = np.random.default_rng(seed)
    Xtr, ytr, Xte, yte = _split(X, y, rng)
    tasks = []
    for g in groups:
        tr, te = np.isin(ytr, g), np.isin(yte, g)
        idx = rng.permutation(np.flatnonzero(tr))[: 50 if quick else None]
        te_idx = np.flatnonzero(te)[: 30 if quick else None]
        tasks.append(_make_task(Xtr[idx], ytr[idx], Xte[te_idx], yte[te_idx], prefix))
    return tasks


def split_digits(seed: int, quick: bool) -> list[Task]:
    X, y = digits()
    return _class_split(X, y, [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)], seed, quick, "px")


def permuted_digits(seed: int, quick: bool) -> list[Task]:
    X, y = digits()
    rng = np.random.default_rng(seed)
    Xtr, ytr, Xte, yte = _split(X, y, rng)
    if quick:
        Xtr, ytr, Xte, yte = Xtr[:60], ytr[:60], Xte[:30], yte[:30]
    tasks = []
    for k in range(5):
        perm = np.arange(X.shape[1]) if k == 0 else rng.permutation(X.shape[1])
        order = rng.permutation(len(ytr))
        tasks.append(_make_task(Xtr[order][:, perm], ytr[order], Xte[:, perm], yte, "px"))
    return tasks


def split_segments(seed: int, quick: bool) -> list[Task]:
    data = list(datasets.ImageSegments())
    names = list(data[0][0])
    X = np.array([[x[k] for k in names] for x, _ in data], dtype=float)
    labels = sorted({y for _, y in data})
    y = np.array([labels.index(v) for _, v in data])
    return _class_split(X, y, [(0, 1), (2, 3), (4, 5, 6)], seed, quick, "f")


def _continual(make: Callable[[int, bool], list[Task]]) -> Callable[[RunConfig], Outcome]:
    def run(cfg: RunConfig) -> Outcome:
        tasks = make(cfg.seed, cfg.quick)
        T = len(tasks)
        n = sum(len(t.train) for t in tasks)
        bounds = list(np.cumsum([len(t.train) for t in tasks])[:-1])
        window = max(20, min(len(t.train) for t in tasks) // 4)
        learners, curves, matrices = {}, {}, {}
        for name in LEARNERS:
            model = make_learner(name, cfg, **_extra(n, T))
            R = np.zeros((T, T))
            correct = []
            seconds = 0.0
            for i, task in enumerate(tqdm(tasks, desc=name, disable=not cfg.progress, leave=False)):
                res = prequential(model, task.train, len(task.train), cfg, f"{name} task {i}")
                correct.append(res.correct)
                seconds += res.seconds
                R[i] = [accuracy_on(model, t.test_x, t.test_y) for t in tasks]
            joint = _joint(name, tasks, cfg, n)
            m: dict[str, Any] = dict(continual_metrics(R))
            m["joint_avg_acc"] = joint
            m["gap_to_joint"] = joint - m["final_avg_acc"]
            all_correct = np.concatenate(correct)
            m["prequential_accuracy"] = float(all_correct.mean())
            m["time_s"] = seconds
            m["accuracy_matrix"] = R.tolist()
            learners[name] = m
            matrices[name] = R
            res.correct = all_correct
            curves[name] = res.curve(window)
        config = {"n_tasks": T, "n_train": n, "n_test": sum(len(t.test_y) for t in tasks), "task_starts": bounds,
                  "window": window}
        return Outcome(config, learners, curves, marks=bounds, mark_label="task switch", matrices=matrices)

    return run


def _extra(n: int, T: int) -> dict[str, Any]:
    """Replay keeps 10% of the stream; EWC consolidates at about each task's length (it is not told when)."""
    return {"buffer_size": max(20, n // 10), "consolidate_every": max(32, n // T)}


def _joint(name: str, tasks: list[Task], cfg: RunConfig, n: int) -> float:
    """Average test accuracy after one pass over all training samples in a seeded i.i.d. order."""
    data = [s for t in tasks for s in t.train]
    order = np.random.default_rng(cfg.seed + 1).permutation(len(data))
    model = make_learner(name, cfg, **_extra(n, len(tasks)))
    prequential(model, [data[i] for i in order], len(data), cfg, f"{name} joint")
    return float(np.mean([accuracy_on(model, t.test_x, t.test_y) for t in tasks]))


SCENARIOS = [
    Scenario("split-digits", "continual", "Class-incremental digits: 5 tasks of 2 classes (0-1, 2-3, ...).",
             _continual(split_digits)),
    Scenario("permuted-digits", "continual", "Domain-incremental digits: 5 fixed pixel permutations "
             "(the first is the identity), all 10 classes in each.", _continual(permuted_digits)),
    Scenario("split-segments", "continual", "Class-incremental ImageSegments: 3 tasks of 2, 2 and 3 classes.",
             _continual(split_segments)),
]
