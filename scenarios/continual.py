"""Continual learning without task boundaries: split and permuted digits, split segments, and long streams.

The long scenarios (``split-rbf``, ``split-led``, ``permuted-rbf``) have tasks of at least 1,500 training
samples each, long enough for a memory that fades on a clock to lose the first tasks before the stream ends.

Each task has a training part, streamed once (test-then-train) in task order, and a held-out test part.
After each task every learner is scored on every task's test part, giving the accuracy matrix ``R``: as it answers
once it has learnt all the task's samples (a copy that steps those it holds for its next mini-batch).
The same training samples shuffled i.i.d. give the "joint" reference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from river import datasets
from river.datasets import synth
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

LEARNERS = ("AM-mem", "AM-mem+drift", "AM-mem 3 steps", "AM-mem eta=0", *BASE_LEARNERS[1:], "Replay", "EWC", "HAT",
            "ARF")
#: the long scenarios leave out the slowest learners (ARF, HAT, BP-SGD, three code steps)
LONG_LEARNERS = ("AM-mem", "AM-mem+drift", "AM-mem sample", "AM-mem eta=0", "AM-Adam", "BP-Adam", "Replay", "EWC")
PAIRS: list[tuple[int, ...]] = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]


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


def _per_class(stream: Any, n_classes: int, quota: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``quota`` samples of each class of ``stream`` (read at most ``limit`` samples), in order."""
    kept: list[tuple[dict, int]] = []
    counts = [0] * n_classes
    for x, y in stream.take(limit):
        if counts[y] < quota:
            counts[y] += 1
            kept.append((x, y))
            if min(counts) == quota:
                break
    if min(counts) < quota:
        raise ValueError(f"the generator gave only {min(counts)} samples of some class in {limit}, need {quota}")
    names = list(kept[0][0])
    return np.array([[x[k] for k in names] for x, _ in kept], dtype=float), np.array([y for _, y in kept])


def _rbf(seed: int, quick: bool) -> tuple[np.ndarray, np.ndarray]:
    """RandomRBF, 10 classes on 10 features, 1,100 samples per class (770 to train: tasks of 2 x 770)."""
    gen = synth.RandomRBF(seed_model=seed, seed_sample=seed + 1, n_classes=10, n_features=10, n_centroids=50)
    return _per_class(gen, 10, 60 if quick else 1100, 200_000)


def split_rbf(seed: int, quick: bool) -> list[Task]:
    X, y = _rbf(seed, quick)
    return _class_split(X, y, PAIRS, seed, quick, "f")


def split_led(seed: int, quick: bool) -> list[Task]:
    """LED digits (7 segments, 10% noise, 17 irrelevant features), 1,100 samples per digit, 2 digits a task."""
    X, y = _per_class(synth.LED(seed=seed, noise_percentage=0.1, irrelevant_features=True), 10,
                      60 if quick else 1100, 100_000)
    return _class_split(X, y, PAIRS, seed, quick, "f")


def permuted_rbf(seed: int, quick: bool) -> list[Task]:
    """Domain-incremental RandomRBF: 5 tasks of 1,540 samples (all 10 classes), features permuted per task."""
    X, y = _rbf(seed, quick)
    rng = np.random.default_rng(seed)
    Xtr, ytr, Xte, yte = _split(X, y, rng)
    per_task = len(ytr) // 5
    tasks = []
    for k in range(5):
        perm = np.arange(X.shape[1]) if k == 0 else rng.permutation(X.shape[1])
        part = slice(k * per_task, (k + 1) * per_task)
        n_test = 30 if quick else None
        tasks.append(_make_task(Xtr[part][:, perm][: 50 if quick else None], ytr[part][: 50 if quick else None],
                                Xte[:n_test, perm], yte[:n_test], "f"))
    return tasks


def _continual(make: Callable[[int, bool], list[Task]],
               names: tuple[str, ...] = LEARNERS) -> Callable[[RunConfig], Outcome]:
    def run(cfg: RunConfig) -> Outcome:
        tasks = make(cfg.seed, cfg.quick)
        T = len(tasks)
        n = sum(len(t.train) for t in tasks)
        bounds = list(np.cumsum([len(t.train) for t in tasks])[:-1])
        window = max(20, min(len(t.train) for t in tasks) // 4)
        learners, curves, matrices = {}, {}, {}
        for name in cfg.pick(names):
            model = make_learner(name, cfg, **_extra(n, T))
            R = np.zeros((T, T))
            correct = []
            seconds = 0.0
            for i, task in enumerate(tqdm(tasks, desc=name, disable=not cfg.progress, leave=False)):
                res = prequential(model, task.train, len(task.train), cfg, f"{name} task {i}")
                correct.append(res.correct)
                seconds += res.seconds
                learnt = _learnt(model)
                R[i] = [accuracy_on(learnt, t.test_x, t.test_y) for t in tasks]
            joint = _joint(name, tasks, cfg, n)
            m: dict[str, Any] = dict(continual_metrics(R))
            m["joint_avg_acc"] = joint
            m["gap_to_joint"] = joint - m["final_avg_acc"]
            all_correct = np.concatenate(correct)
            m["prequential_accuracy"] = float(all_correct.mean())
            m["time_s"] = seconds
            m["accuracy_matrix"] = R.tolist()
            if hasattr(model, "drifts_"):  # drift-aware: the detections it forgot at, and those taken for new inputs
                m["detected_at"], m["domain_shifts_at"] = list(model.drifts_), list(model.shifts_)
            learners[name] = m
            matrices[name] = R
            res.correct = all_correct
            curves[name] = res.curve(window)
        config = {"n_tasks": T, "n_train": n, "n_test": sum(len(t.test_y) for t in tasks), "task_starts": bounds,
                  "window": window}
        return Outcome(config, learners, curves, marks=bounds, mark_label="task switch", matrices=matrices)

    return run


def _learnt(model: Any) -> Any:
    """``model`` as it answers once it has learnt every sample it was given: a copy whose stream estimator (``model``
    or the one it wraps) has stepped the samples it holds for its next mini-batch, or ``model`` when it holds none.
    The learner itself streams on untouched: no step at a task's end tells it where the task ends."""
    def inner(m: Any) -> Any:
        while m is not None and not hasattr(m, "n_buffered"):
            m = getattr(m, "classifier", None)
        return m

    if inner(model) is None or not inner(model).n_buffered:
        return model
    settled = copy.deepcopy(model)
    inner(settled).flush()
    return settled


def _extra(n: int, T: int) -> dict[str, Any]:
    """Replay keeps 10% of the stream; EWC consolidates at about each task's length (it is not told when)."""
    return {"buffer_size": max(20, n // 10), "consolidate_every": max(32, n // T)}


def _joint(name: str, tasks: list[Task], cfg: RunConfig, n: int) -> float:
    """Average test accuracy after one pass over all training samples in a seeded i.i.d. order."""
    data = [s for t in tasks for s in t.train]
    order = np.random.default_rng(cfg.seed + 1).permutation(len(data))
    model = make_learner(name, cfg, **_extra(n, len(tasks)))
    prequential(model, [data[i] for i in order], len(data), cfg, f"{name} joint")
    learnt = _learnt(model)
    return float(np.mean([accuracy_on(learnt, t.test_x, t.test_y) for t in tasks]))


SCENARIOS = [
    Scenario("split-digits", "continual", "Class-incremental digits: 5 tasks of 2 classes (0-1, 2-3, ...).",
             _continual(split_digits), LEARNERS),
    Scenario("permuted-digits", "continual", "Domain-incremental digits: 5 fixed pixel permutations "
             "(the first is the identity), all 10 classes in each.", _continual(permuted_digits), LEARNERS),
    Scenario("split-segments", "continual", "Class-incremental ImageSegments: 3 tasks of 2, 2 and 3 classes.",
             _continual(split_segments), LEARNERS),
    Scenario("split-rbf", "continual", "Class-incremental RandomRBF (10 classes, 10 features): 5 tasks of 2 "
             "classes, 1,540 training samples each.", _continual(split_rbf, LONG_LEARNERS), LONG_LEARNERS),
    Scenario("split-led", "continual", "Class-incremental LED digits (24 binary features, 10% noise): 5 tasks of "
             "2 digits, 1,540 training samples each.", _continual(split_led, LONG_LEARNERS), LONG_LEARNERS),
    Scenario("permuted-rbf", "continual", "Domain-incremental RandomRBF: 5 tasks of 1,540 training samples of all "
             "10 classes, each with its own fixed feature permutation (the first is the identity).",
             _continual(permuted_rbf, LONG_LEARNERS), LONG_LEARNERS),
]
