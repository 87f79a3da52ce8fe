"""Backprop baselines with the estimators' API: ``BackpropClassifier`` and ``BackpropRegressor``.

They share everything with :class:`~stream_am.estimators.AMClassifier` / ``AMRegressor`` (network builder,
seed, features, labels, batching, standardisation, persistence) except the engine, which is
:class:`stream_am.backprop.BackpropLearner`: one Adam or SGD step on the whole network per mini-batch. A
comparison between the two is therefore like for like.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from stream_am import checks
from stream_am.backprop import BackpropLearner
from stream_am.estimators.classifier import StreamClassifier
from stream_am.estimators.regressor import StreamRegressor
from stream_am.estimators.sklearn_api import SklearnClassifier, SklearnRegressor
from stream_am.hyperparameters import LARGEST

__all__ = ["BackpropClassifier", "BackpropRegressor"]


class _BackpropMixin:
    optimizer: str
    lr: float
    momentum: float
    device: str
    seed: int | None
    _loss: str

    def _check_backprop_params(self) -> None:
        checks.check_choice("optimizer", self.optimizer, ("adam", "sgd"))
        checks.check_float("lr", self.lr, 0.0, LARGEST, low_inclusive=False)  # (as the engine's)
        checks.check_float("momentum", self.momentum, 0.0, 1.0)

    def _make_engine(self, module: nn.Sequential) -> Any:
        return BackpropLearner(module, optimizer=self.optimizer, loss=self._loss, lr=self.lr,
                               momentum=self.momentum, device=str(checks.resolve_device(self.device)),
                               seed=0 if self.seed is None else self.seed)


class BackpropClassifier(_BackpropMixin, SklearnClassifier, StreamClassifier):
    """An MLP classifier trained by end-to-end backprop, one optimiser step per mini-batch.

    Parameters
    ----------
    hidden_sizes, activation, batch_size, standardize, epochs, device, seed
        As in :class:`~stream_am.estimators.AMClassifier`.
    optimizer
        ``"adam"`` or ``"sgd"``.
    lr
        Step size.
    momentum
        SGD momentum (ignored by Adam).

    Examples
    --------
    >>> from river import datasets, evaluate, metrics
    >>> from stream_am.baselines import BackpropClassifier
    >>> model = BackpropClassifier(hidden_sizes=(16,), batch_size=16, seed=0)
    >>> accuracy = evaluate.progressive_val_score(datasets.Phishing().take(500), model, metrics.Accuracy())
    >>> round(accuracy.get(), 1)  # 0.782 on the development machine
    0.8
    """

    _loss = "cross_entropy"

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64,),
        activation: str = "relu",
        optimizer: str = "adam",
        lr: float = 0.005,
        momentum: float = 0.0,
        batch_size: int = 32,
        standardize: bool = True,
        epochs: int = 1,
        device: str = "cpu",
        seed: int | None = 0,
    ) -> None:
        self.hidden_sizes, self.activation, self.optimizer, self.lr = hidden_sizes, activation, optimizer, lr
        self.momentum, self.batch_size, self.standardize = momentum, batch_size, standardize
        self.epochs, self.device, self.seed = epochs, device, seed
        self._check_params()
        self._check_backprop_params()
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"hidden_sizes": (4,), "batch_size": 16}


class BackpropRegressor(_BackpropMixin, SklearnRegressor, StreamRegressor):
    """An MLP regressor trained by end-to-end backprop (mean squared error), one step per mini-batch.

    Parameters are those of :class:`BackpropClassifier`, plus ``standardize_target`` (as in
    :class:`~stream_am.estimators.AMRegressor`).

    Examples
    --------
    >>> from river import datasets, evaluate, metrics
    >>> from stream_am.baselines import BackpropRegressor
    >>> model = BackpropRegressor(hidden_sizes=(16,), batch_size=16, seed=0)
    >>> mae = evaluate.progressive_val_score(datasets.TrumpApproval().take(500), model, metrics.MAE())
    >>> round(mae.get(), 2)
    1.42
    """

    _loss = "mse"

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64,),
        activation: str = "relu",
        optimizer: str = "adam",
        lr: float = 0.005,
        momentum: float = 0.0,
        batch_size: int = 32,
        standardize: bool = True,
        standardize_target: bool = True,
        epochs: int = 1,
        device: str = "cpu",
        seed: int | None = 0,
    ) -> None:
        self.hidden_sizes, self.activation, self.optimizer, self.lr = hidden_sizes, activation, optimizer, lr
        self.momentum, self.batch_size, self.standardize = momentum, batch_size, standardize
        self.standardize_target, self.epochs, self.device, self.seed = standardize_target, epochs, device, seed
        self._check_params()
        self._check_backprop_params()
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"hidden_sizes": (4,), "batch_size": 16}
