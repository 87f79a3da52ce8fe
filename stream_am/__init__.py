"""stream_am: train neural networks online, on data streams, without backpropagation."""

from stream_am._version import __version__
from stream_am.estimators import AMClassifier, AMRegressor
from stream_am.learner import OnlineAM

__all__ = ["AMClassifier", "AMRegressor", "OnlineAM", "__version__"]
