"""Stationary streams: river's Phishing, Bananas and ImageSegments, and scikit-learn's digits."""

from __future__ import annotations

from collections.abc import Callable

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
    summary,
)

__all__ = ["SCENARIOS"]

LEARNERS = (BASE_LEARNERS[0], "AM-mem sample", *BASE_LEARNERS[1:], "LogReg", "HAT", "ARF")
QUICK_SAMPLES = 200


def _river(dataset: Callable[[], datasets.base.Dataset], seed: int) -> list[tuple[dict, object]]:
    """The dataset's rows in a seeded random order (the files are sorted by class in places)."""
    data = list(dataset())
    order = np.random.default_rng(seed).permutation(len(data))
    return [data[i] for i in order]


def _digits(seed: int) -> list[tuple[dict, object]]:
    X, y = digits()
    order = np.random.default_rng(seed).permutation(len(y))
    return list(zip(rows(X[order], "px"), y[order].tolist(), strict=True))


def _runner(load: Callable[[int], list[tuple[dict, object]]]) -> Callable[[RunConfig], Outcome]:
    def run(cfg: RunConfig) -> Outcome:
        data = load(cfg.seed)
        n = min(len(data), QUICK_SAMPLES) if cfg.quick else len(data)
        window = max(20, n // 10)
        learners, curves = {}, {}
        for name in cfg.pick(LEARNERS):
            res = prequential(make_learner(name, cfg), data, n, cfg, name)
            learners[name] = summary(res)
            learners[name]["final_window_accuracy"] = float(res.correct[-window:].mean())
            curves[name] = res.curve(window)
        return Outcome({"n_samples": n, "window": window}, learners, curves)

    return run


SCENARIOS = [
    Scenario("phishing", "stationary", "river Phishing: 1250 web pages, 9 features, binary.",
             _runner(lambda s: _river(datasets.Phishing, s)), LEARNERS),
    Scenario("bananas", "stationary", "river Bananas: 5300 points, 2 features, binary, non-linear.",
             _runner(lambda s: _river(datasets.Bananas, s)), LEARNERS),
    Scenario("image-segments", "stationary", "river ImageSegments: 2310 samples, 18 features, 7 classes.",
             _runner(lambda s: _river(datasets.ImageSegments, s)), LEARNERS),
    Scenario("digits", "stationary", "scikit-learn digits: 1797 8x8 images, 64 pixels, 10 classes.",
             _runner(_digits), LEARNERS),
]
