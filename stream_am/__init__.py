"""stream_am: train neural networks online, on data streams, without backpropagation."""

from stream_am.estimators import AMClassifier, AMRegressor
from stream_am.learner import OnlineAM

__version__ = "0.1.0"

__all__ = ["AMClassifier", "AMRegressor", "OnlineAM", "__version__"]
