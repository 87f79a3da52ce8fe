"""A stand-in classifier for the wrapper tests: fixed predictions, a count of what it learned, and an engine
that records what a wrapper asks of it (``memory_decay``, ``forget``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from river import base

__all__ = ["FakeEngine", "FixedClassifier"]


class FakeEngine:
    def __init__(self) -> None:
        self.memory_decay = 1e-3
        self.forgets: list[float] = []

    def forget(self, factor: float) -> None:
        self.forgets.append(factor)


class FixedClassifier(base.MiniBatchClassifier):
    """Always predicts ``proba`` (default ``{0: 0.9, 1: 0.1}``); exposes a :class:`FakeEngine`."""

    def __init__(self, proba: dict[Any, float] | None = None) -> None:
        self.proba = proba
        self.engine = FakeEngine()
        self.learnt = 0

    def learn_one(self, x: dict, y: Any) -> None:
        self.learnt += 1

    def learn_many(self, X: pd.DataFrame, y: pd.Series) -> None:
        self.learnt += len(X)

    def predict_proba_one(self, x: dict) -> dict[Any, float]:
        return dict(self.proba or {0: 0.9, 1: 0.1})

    def predict_proba_many(self, X: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({k: np.full(len(X), p) for k, p in self.predict_proba_one({}).items()}, index=X.index)
