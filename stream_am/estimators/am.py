"""``AMClassifier`` and ``AMRegressor``: river estimators trained by Online Alternating Minimization.

They only build the engine, :class:`stream_am.learner.OnlineAM`; features, labels,
batching, scaling and persistence live in :mod:`stream_am.estimators.base` and its two task mixins. The AM
hyperparameters are ``OnlineAM``'s, with its defaults (read from its signature) and meaning; the engine's
``parallel_layers`` (a GPU scheduling switch) keeps its default.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from torch import nn

from stream_am import checks
from stream_am.estimators import inputs
from stream_am.estimators.basis import QUADRATIC_MAX_FEATURES
from stream_am.estimators.classifier import StreamClassifier
from stream_am.estimators.companion import LinearCompanion, quadratic
from stream_am.estimators.novelty import novelty
from stream_am.estimators.regressor import StreamRegressor
from stream_am.estimators.sklearn_api import SklearnClassifier, SklearnRegressor
from stream_am.hyperparameters import HYPERPARAMETERS, check_am_params
from stream_am.learner import OnlineAM

__all__ = ["AMClassifier", "AMRegressor", "AM_HYPERPARAMETERS"]

#: OnlineAM hyperparameters passed through unchanged (the engine's spec, re-exported)
AM_HYPERPARAMETERS = HYPERPARAMETERS


#: the engine's own defaults, so that the estimators never drift from them
_ENGINE_DEFAULTS: dict[str, Any] = {n: p.default for n, p in inspect.signature(OnlineAM).parameters.items()}


class _AMMixin:
    variant: str | Sequence[str]
    readout: str
    hidden_sizes: tuple[int, ...]
    device: str
    seed: int | None
    _loss: str
    _engines: Callable[[], list[Any]]  # (the estimator's: the engine and the companion, once built)
    memory_clock: str = "sample"  # a classifier's constructor argument; a regressor's memories age per sample

    def forget(self, factor: float) -> None:
        """Scale the weight of everything the model remembers by ``factor`` in ``(0, 1]``: the engine's memories
        (``engine.forget``) and the classifier's linear companion's sums, which ``engine.forget`` does not reach
        (:class:`~stream_am.drift.DriftAware` calls this). Nothing before the first step; an invalid ``factor``
        changes nothing."""
        checks.check_float("factor", factor, 0.0, 1.0, low_inclusive=False, high_inclusive=True)
        for part in self._engines():
            part.forget(float(factor))

    def _check_am_params(self) -> None:
        check_am_params(self, self._loss, n_codes=len(self.hidden_sizes))

    def _make_engine(self, module: nn.Sequential) -> Any:
        return OnlineAM(module, variant=self.variant, loss=self._loss, readout=self.readout, device=self.device,
                        seed=self.seed, memory_clock=self.memory_clock,
                        **{k: getattr(self, k) for k in AM_HYPERPARAMETERS})


class AMClassifier(_AMMixin, SklearnClassifier, StreamClassifier):
    """A feed-forward classifier trained online by Alternating Minimization (no end-to-end backprop).

    Parameters
    ----------
    hidden_sizes
        Width of each hidden layer of the MLP built by :func:`~stream_am.estimators.build_mlp`.
    activation
        ``relu``, ``tanh``, ``sigmoid``, ``gelu``, ``leaky_relu``, ``sign`` or ``step`` (the last two are
        non-differentiable; AM trains them all the same).
    variant
        How each hidden layer fits its weights: ``"auto"`` (the default: a co-activation memory in the top
        layers where it is cheap, local Adam steps below, by the cost model of :mod:`stream_am.variants`),
        ``"mem"``, ``"adam"``, or a tuple with one of those per hidden layer. On a few dozen features
        ``"auto"`` is ``"mem"``; on hundreds it takes Adam for the first layer, whose memory would cost
        several backprop steps (figures in ``benchmarks/README.md``). Unless ``solve_every`` is given,
        ``"auto"`` also decides whether the memories solve every step or every second step.
    readout
        ``"memory"`` (ridge readout from the last hidden layer) or ``"adam"``.
    batch_size
        Samples per AM step; ``learn_one`` buffers until it has that many.
    standardize
        Standardise every feature online (see :mod:`stream_am.estimators.base`).
    mu, mu_growth, mu_max_factor, code_steps, code_lr, code_momentum, weight_steps, weight_lr, output_lr
        Passed to :class:`stream_am.learner.OnlineAM`; see its documentation.
    memory_decay, memory_clock, ridge, solve_every, lambda_c, lambda_w
        Passed to :class:`stream_am.learner.OnlineAM`; see its documentation.
    companion
        Keep a linear companion (a linear model on the inputs, learning every batch, gathered in blocks): it
        answers a sample where it is more confident than the network while its recent log-likelihood is at least
        the network's, or one like the recent inputs while it is also more accurate
        (:mod:`stream_am.estimators.companion`). Built where the first layer keeps a memory. With at most 20
        inputs a quadratic companion (the same model on the inputs and their products,
        :mod:`stream_am.estimators.basis`, with a longer memory) is asked first, then the linear one. The default,
        ``True``, follows drifting linear concepts and new separable classes sooner, and draws the thresholds and
        bands of tabular concepts; ``False`` is the network alone.
    epochs
        Passes over the data made by :meth:`fit` (scikit-learn API); every other method learns each sample
        once.
    device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``.
    seed
        Seeds the initial weights and the engine's own generator; no global RNG is touched.

    Examples
    --------
    A river stream, tested then trained sample by sample (``learn_one`` steps every ``batch_size``):

    >>> from river import datasets, evaluate, metrics
    >>> from stream_am import AMClassifier
    >>> model = AMClassifier(hidden_sizes=(16,), batch_size=16, seed=0)
    >>> accuracy = evaluate.progressive_val_score(datasets.Phishing().take(500), model, metrics.Accuracy())
    >>> accuracy.get() > 0.8  # 0.850 on the development machine
    True
    >>> proba = model.predict_proba_one({"empty_server_form_handler": 1.0})
    >>> {label: round(p, 1) for label, p in proba.items()}
    {True: 0.4, False: 0.6}

    The scikit-learn style API, with the labels declared up front:

    >>> import numpy as np
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0], [2.0, 0.0]] * 5)
    >>> clf = AMClassifier(batch_size=4, seed=0).partial_fit(X, ["b", "a", "b", "a"] * 5, classes=["a", "b"])
    >>> clf.classes_.tolist(), clf.n_steps, clf.predict(X[:4]).tolist()
    (['a', 'b'], 5, ['b', 'a', 'b', 'a'])
    >>> clf.learn_one({0: 3.0, 1: 0.0}, "a")
    >>> clf.n_buffered, clf.n_steps
    (1, 5)
    >>> clf.flush()
    >>> clf.n_buffered, clf.n_steps
    (0, 6)
    """

    _loss = "cross_entropy"
    #: what a model saved before a parameter existed had: no companion, one clock for all its memories
    _absent_params = {"companion": False, "memory_clock": "sample"}

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64,),
        activation: str = "relu",
        variant: str | tuple[str, ...] = "auto",
        readout: str = "memory",
        batch_size: int = 32,
        standardize: bool = True,
        mu: float = _ENGINE_DEFAULTS["mu"],
        mu_growth: float = _ENGINE_DEFAULTS["mu_growth"],
        mu_max_factor: float = _ENGINE_DEFAULTS["mu_max_factor"],
        code_steps: int = _ENGINE_DEFAULTS["code_steps"],
        code_lr: float = _ENGINE_DEFAULTS["code_lr"],
        code_momentum: float = _ENGINE_DEFAULTS["code_momentum"],
        weight_steps: int = _ENGINE_DEFAULTS["weight_steps"],
        weight_lr: float = _ENGINE_DEFAULTS["weight_lr"],
        output_lr: float = _ENGINE_DEFAULTS["output_lr"],
        memory_decay: float = _ENGINE_DEFAULTS["memory_decay"],
        memory_clock: str = _ENGINE_DEFAULTS["memory_clock"],
        ridge: float = _ENGINE_DEFAULTS["ridge"],
        solve_every: int | None = _ENGINE_DEFAULTS["solve_every"],
        lambda_c: float = _ENGINE_DEFAULTS["lambda_c"],
        lambda_w: float = _ENGINE_DEFAULTS["lambda_w"],
        companion: bool = True,
        epochs: int = 1,
        device: str = "cpu",
        seed: int | None = 0,
    ) -> None:
        self.hidden_sizes, self.activation, self.variant, self.readout = hidden_sizes, activation, variant, readout
        self.companion = companion
        self.batch_size, self.standardize = batch_size, standardize
        self.mu, self.mu_growth, self.mu_max_factor = mu, mu_growth, mu_max_factor
        self.code_steps, self.code_lr, self.code_momentum = code_steps, code_lr, code_momentum
        self.weight_steps, self.weight_lr, self.output_lr = weight_steps, weight_lr, output_lr
        self.memory_decay, self.ridge, self.lambda_c, self.lambda_w = memory_decay, ridge, lambda_c, lambda_w
        self.solve_every, self.memory_clock = solve_every, memory_clock
        self.epochs = epochs
        self.device, self.seed = device, seed
        self._check_params()
        self._check_am_params()
        if not isinstance(companion, bool):
            raise ValueError(f"companion must be a bool, got {companion!r}")
        self._reset()

    def input_novelty(self, X: pd.DataFrame) -> float | None:
        """How many standard deviations further the rows of ``X`` lie from the inputs the model remembers than rows
        like those would: about 0 or below for rows like them, tens or more for a new domain's
        (:mod:`stream_am.estimators.novelty`; the larger of the companions' figures). None before the first step,
        without a companion (``companion=False``, or a first layer without a memory), without a feature learnt, or
        for no rows. Changes nothing; ``X`` is checked as ``predict_many`` checks it."""
        names, rows, present = inputs.frame_rows(X, limit=self._feature_limit)
        parts = [part for part in (self._companion, self._quadratic) if part is not None]
        if not parts or not len(rows):
            return None
        x = self._network_input(*self._index.spread(names, rows, present), self._frame)
        x[:, self._n_stepped :] = 0.0  # (as predictions read them: a feature learned since the last step is 0)
        scores = [score for score in (novelty(part, x.numpy()) for part in parts) if score is not None]
        return max(scores, default=None)

    def _keeps_companion(self, engine: Any) -> bool:
        return bool(self.companion and self.hidden_sizes and engine.input_memory)

    def _keeps_quadratic(self, engine: Any, n_inputs: int) -> bool:
        return self._keeps_companion(engine) and n_inputs <= QUADRATIC_MAX_FEATURES

    def _make_companions(self, engine: Any) -> tuple[LinearCompanion | None, LinearCompanion | None]:
        (n, k), (decay, ridge) = (engine.n_inputs, engine.n_outputs), self._companion_numbers()
        linear = LinearCompanion(n, k, decay, ridge) if self._keeps_companion(engine) else None
        keeps = self._keeps_quadratic(engine, n)
        return linear, quadratic(n, k, decay, ridge) if keeps else None

    def _companion_numbers(self) -> tuple[float, float]:
        """The companions' ``memory_decay`` and ``ridge``: the parameters' Python numbers (numpy's float32 would
        age and solve in float32)."""
        return float(self.memory_decay), float(self.ridge)

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"hidden_sizes": (4,), "batch_size": 16, "variant": "mem"}
        yield {"hidden_sizes": (4,), "batch_size": 16, "variant": "adam", "readout": "adam"}
        yield {"hidden_sizes": (40, 4), "batch_size": 16, "variant": "auto"}
        yield {"hidden_sizes": (4,), "batch_size": 16, "variant": "mem", "memory_clock": "sample"}
        yield {"hidden_sizes": (4,), "batch_size": 16, "variant": "mem", "companion": False}


class AMRegressor(_AMMixin, SklearnRegressor, StreamRegressor):
    """A feed-forward regressor trained online by Alternating Minimization (no end-to-end backprop).

    Parameters are those of :class:`AMClassifier` (the loss is the mean squared error), plus:

    Parameters
    ----------
    standardize_target
        Learn the standardised target and undo the scaling in predictions (see
        :mod:`stream_am.estimators.regressor`).

    Examples
    --------
    >>> from river import datasets, evaluate, metrics
    >>> from stream_am import AMRegressor
    >>> model = AMRegressor(hidden_sizes=(16,), batch_size=16, seed=0)
    >>> mae = evaluate.progressive_val_score(datasets.TrumpApproval().take(500), model, metrics.MAE())
    >>> round(mae.get(), 2)
    0.96
    """

    _loss = "mse"

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64,),
        activation: str = "relu",
        variant: str | tuple[str, ...] = "auto",
        readout: str = "memory",
        batch_size: int = 32,
        standardize: bool = True,
        standardize_target: bool = True,
        mu: float = _ENGINE_DEFAULTS["mu"],
        mu_growth: float = _ENGINE_DEFAULTS["mu_growth"],
        mu_max_factor: float = _ENGINE_DEFAULTS["mu_max_factor"],
        code_steps: int = _ENGINE_DEFAULTS["code_steps"],
        code_lr: float = _ENGINE_DEFAULTS["code_lr"],
        code_momentum: float = _ENGINE_DEFAULTS["code_momentum"],
        weight_steps: int = _ENGINE_DEFAULTS["weight_steps"],
        weight_lr: float = _ENGINE_DEFAULTS["weight_lr"],
        output_lr: float = _ENGINE_DEFAULTS["output_lr"],
        memory_decay: float = _ENGINE_DEFAULTS["memory_decay"],
        ridge: float = _ENGINE_DEFAULTS["ridge"],
        solve_every: int | None = _ENGINE_DEFAULTS["solve_every"],
        lambda_c: float = _ENGINE_DEFAULTS["lambda_c"],
        lambda_w: float = _ENGINE_DEFAULTS["lambda_w"],
        epochs: int = 1,
        device: str = "cpu",
        seed: int | None = 0,
    ) -> None:
        self.hidden_sizes, self.activation, self.variant, self.readout = hidden_sizes, activation, variant, readout
        self.batch_size, self.standardize, self.standardize_target = batch_size, standardize, standardize_target
        self.mu, self.mu_growth, self.mu_max_factor = mu, mu_growth, mu_max_factor
        self.code_steps, self.code_lr, self.code_momentum = code_steps, code_lr, code_momentum
        self.weight_steps, self.weight_lr, self.output_lr = weight_steps, weight_lr, output_lr
        self.memory_decay, self.ridge, self.lambda_c, self.lambda_w = memory_decay, ridge, lambda_c, lambda_w
        self.solve_every = solve_every
        self.epochs = epochs
        self.device, self.seed = device, seed
        self._check_params()
        self._check_am_params()
        self._reset()

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"hidden_sizes": (4,), "batch_size": 16, "variant": "mem"}
        yield {"hidden_sizes": (4,), "batch_size": 16, "variant": "adam", "readout": "adam"}
        yield {"hidden_sizes": (40, 4), "batch_size": 16, "variant": "auto"}
