"""Running prequential (test-then-train) metrics of a served model, JSON-serialisable."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["Prequential"]

_MAX_ERROR = 1e100  # errors of a diverged regressor are clipped here


class Prequential:
    """Accuracy for classifiers, MAE and RMSE for regressors, over every labelled sample scored.

    A sample is scored with the prediction the model made before learning it: the prediction
    returned by ``/predict`` for delayed labels, else a prediction made just before the update.
    """

    def __init__(self, classifier: bool, state: dict[str, Any] | None = None) -> None:
        self.classifier = classifier
        state = state or {}
        self.n = int(state.get("n", 0))
        self.correct = int(state.get("correct", 0))
        self.abs_err = float(state.get("abs_err", 0.0))
        self.sq_err = float(state.get("sq_err", 0.0))

    def update(self, preds: Sequence[Any], targets: Sequence[Any]) -> None:
        for p, y in zip(preds, targets, strict=True):
            self.n += 1
            if self.classifier:
                self.correct += int(p is not None and p == y and type(p) is type(y))
            else:  # a missing or non-finite prediction (a diverged model) scores as 0.0
                err = float(y) - (float(p) if p is not None and math.isfinite(float(p)) else 0.0)
                err = max(-_MAX_ERROR, min(_MAX_ERROR, err))  # the sums stay finite (JSON has no infinity)
                self.abs_err += abs(err)
                self.sq_err += err * err

    def state(self) -> dict[str, Any]:
        return {"n": self.n, "correct": self.correct, "abs_err": self.abs_err, "sq_err": self.sq_err}

    def summary(self) -> dict[str, float | int | None]:
        if self.classifier:
            return {"scored": self.n, "accuracy": self.correct / self.n if self.n else None}
        return {
            "scored": self.n,
            "mae": _finite(self.abs_err / self.n) if self.n else None,
            "rmse": _finite(math.sqrt(self.sq_err / self.n)) if self.n else None,
        }


def _finite(value: float) -> float | None:
    """JSON has no infinities: an overflowed error sum is reported as unknown."""
    return value if math.isfinite(value) else None
