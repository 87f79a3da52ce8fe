"""Drifting streams: abrupt, gradual, incremental, recurring and RBF drift; AM with and without drift-awareness.

Concept switches use river's sigmoid schedule (as in ``ConceptDriftStream``): around a drift at ``p`` with
width ``w`` a sample comes from the next concept with probability ``1 / (1 + exp(-4 (t - p) / w))``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from river.datasets import synth
from stream_am.scenarios._common import BASE_LEARNERS, Outcome, RunConfig, Scenario, make_learner, prequential, summary

from stream_am.evaluate import drift_recovery

__all__ = ["SCENARIOS", "switching"]

LEARNERS = ("AM-mem", "AM-mem sample", "AM-mem+drift", "AM-Adam", "AM-Adam+drift", *BASE_LEARNERS[2:], "LogReg", "HAT",
            "ARF")


def switching(
    concepts: Sequence[Iterator[tuple[dict, Any]]], order: Sequence[int], positions: Sequence[int], width: int,
    seed: int,
) -> Iterator[tuple[dict, Any]]:
    """Samples from ``concepts[order[k]]``, switching to ``order[k + 1]`` around ``positions[k]``.

    A concept that comes back continues its own iterator (same generating function).
    """
    if len(positions) != len(order) - 1:
        raise ValueError(f"need len(order) - 1 positions, got {len(positions)} for {len(order)} concepts")
    rng = np.random.default_rng(seed)
    for t in itertools.count():
        k = 0
        while k < len(positions):
            z = -4.0 * (t - positions[k]) / max(width, 1)
            if rng.random() >= 1.0 / (1.0 + math.exp(min(z, 700.0))):
                break
            k += 1
        yield next(concepts[order[k]])


def _agrawal(order: Sequence[int], width: Callable[[int], int]) -> Callable[..., Any]:
    def make(seed: int, n: int) -> tuple[Iterator[tuple[dict, Any]], list[int], int]:
        functions = sorted(set(order))
        gens = {f: iter(synth.Agrawal(classification_function=f, seed=seed + f)) for f in functions}
        seg = n // len(order)
        points = [seg * (k + 1) for k in range(len(order) - 1)]
        concepts = [gens[f] for f in functions]
        idx = [functions.index(f) for f in order]
        w = width(seg)
        return switching(concepts, idx, points, w, seed), points, w

    return make


def _hyperplane(seed: int, n: int) -> tuple[Iterator[tuple[dict, Any]], list[int], int]:
    stream = synth.Hyperplane(seed=seed, n_features=10, n_drift_features=5, mag_change=0.001, sigma=0.1)
    return iter(stream), [], 0


def _rbf(seed: int, n: int) -> tuple[Iterator[tuple[dict, Any]], list[int], int]:
    stream = synth.RandomRBFDrift(seed_model=seed, seed_sample=seed + 1, n_classes=4, n_features=10,
                                  n_centroids=50, change_speed=0.001, n_drift_centroids=25)
    return iter(stream), [], 0


def _runner(make: Callable[..., Any], full: int) -> Callable[[RunConfig], Outcome]:
    def run(cfg: RunConfig) -> Outcome:
        n = 800 if cfg.quick else full
        window = 50 if cfg.quick else 500
        learners, curves = {}, {}
        points: list[int] = []
        width = 0
        for name in cfg.pick(LEARNERS):
            stream, points, width = make(cfg.seed, n)
            model = make_learner(name, cfg)
            res = prequential(model, stream, n, cfg, name, points)
            m = summary(res)
            if points:
                starts = [p - width // 2 for p in points]  # a gradual drift starts half a width early
                rec = drift_recovery(res.correct, starts, window=window)
                m["mean_drop"] = float(np.mean([r.drop for r in rec]))
                m["mean_recovery"] = float(np.mean([r.recovery for r in rec]))
                m["drops"] = [r.drop for r in rec]
                m["recoveries"] = [r.recovery for r in rec]
            if hasattr(model, "drifts_"):
                m["detections"] = len(model.drifts_)
                m["detected_at"] = list(model.drifts_)
                m["domain_shifts_at"] = list(model.shifts_)
            learners[name] = m
            curves[name] = res.curve(window)
        config = {"n_samples": n, "window": window, "drift_points": points, "drift_width": width}
        return Outcome(config, learners, curves, marks=points)

    return run


def _abrupt(seg: int) -> int:
    return 1


def _gradual(seg: int) -> int:
    return seg // 3


SCENARIOS = [
    Scenario("agrawal-abrupt", "drift", "Agrawal, functions 1 -> 3 -> 5 -> 1, abrupt switches.",
             _runner(_agrawal((1, 3, 5, 1), _abrupt), 40_000), LEARNERS),
    Scenario("agrawal-gradual", "drift",
             "Agrawal, functions 1 -> 3 -> 5, each switch spread over a third of a segment.",
             _runner(_agrawal((1, 3, 5), _gradual), 30_000), LEARNERS),
    Scenario("hyperplane", "drift", "Rotating hyperplane: 10 features, 5 drifting (mag 0.001), 5% noise; "
             "incremental drift, no drift points.", _runner(_hyperplane, 20_000), LEARNERS),
    Scenario("recurring", "drift", "Agrawal functions 2 and 6 alternating: 2 -> 6 -> 2 -> 6 -> 2, abrupt.",
             _runner(_agrawal((2, 6, 2, 6, 2), _abrupt), 40_000), LEARNERS),
    Scenario("rbf-drift", "drift", "RandomRBFDrift: 4 classes, 10 features, 25 of 50 centroids moving at "
             "speed 0.001; incremental drift.", _runner(_rbf, 20_000), LEARNERS),
]
