"""River-compatible estimators with a numpy ``partial_fit`` API (see :mod:`stream_am.estimators.base`)."""

from stream_am.estimators.am import AMClassifier, AMRegressor
from stream_am.estimators.base import StreamEstimator
from stream_am.estimators.classifier import StreamClassifier
from stream_am.estimators.networks import ACTIVATIONS, build_mlp
from stream_am.estimators.persistence import load, save
from stream_am.estimators.regressor import StreamRegressor

__all__ = [
    "ACTIVATIONS",
    "AMClassifier",
    "AMRegressor",
    "StreamClassifier",
    "StreamEstimator",
    "StreamRegressor",
    "build_mlp",
    "load",
    "save",
]
