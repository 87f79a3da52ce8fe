"""A river classifier wrapper's read side: everything a learning wrapper passes straight to its classifier."""

from __future__ import annotations

from typing import Any

import pandas as pd
from river import base
from river.base.typing import ClfTarget

__all__ = ["ClassifierWrapper"]


class ClassifierWrapper(base.Wrapper, base.MiniBatchClassifier):
    """Base of wrappers that change how ``classifier`` learns but predict exactly as it does.

    Subclasses store the wrapped model as ``self.classifier`` and define ``learn_one`` / ``learn_many``.
    """

    classifier: base.MiniBatchClassifier

    @property
    def _multiclass(self) -> bool:
        return bool(getattr(self.classifier, "_multiclass", False))

    @property
    def _wrapped_model(self) -> base.MiniBatchClassifier:
        return self.classifier

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[ClfTarget, float]:
        return self.classifier.predict_proba_one(x, **kwargs)

    def predict_one(self, x: dict, **kwargs: Any) -> ClfTarget | None:
        return self.classifier.predict_one(x, **kwargs)

    def predict_proba_many(self, X: pd.DataFrame, **kwargs: Any) -> pd.DataFrame:
        return self.classifier.predict_proba_many(X, **kwargs)

    def predict_many(self, X: pd.DataFrame, **kwargs: Any) -> pd.Series:
        return self.classifier.predict_many(X, **kwargs)
