"""The engine-agnostic core shared by every stream estimator: features, scaling, buffering, growth, state.

Semantics (the same for the AM estimators and the backprop baselines):

- **Features** are numbered in first-seen order and grow the engine's input layer
  (:class:`~stream_am.estimators.features.FeatureIndex`); a feature absent from a sample contributes 0.
- **Standardisation** (``standardize=True``): each feature keeps a running mean and standard deviation
  (:class:`~stream_am.estimators.moments.RunningMoments`) over the samples in which it was present, updated when
  a sample is *learned* (buffered). A step, and the predictions after it, apply the frame of that step
  (:mod:`~stream_am.estimators.frame`: for the AM engine the statistics of its last refresh, the network
  re-expressed at each; for others those of every step). A missing feature is 0: imputed with its mean.
- **Buffering**: ``batch_size`` learned samples make one engine step
  (:class:`~stream_am.estimators.buffer.SampleBuffer`); ``learn_many`` equals a ``learn_one`` loop bit for bit.
- **Validate, then apply**: every check that can refuse a call (values, magnitude limits, labels, the device)
  runs before anything changes; a call that raises ``ValueError`` leaves the estimator exactly as it was
  (features, statistics, buffer, labels, engine). See :mod:`stream_am.estimators.inputs` for the limits.
- **Predictions** use the weights and the frame of the last completed step (a feature no step learned reads 0).
  The engine is built, from :func:`~stream_am.estimators.networks.build_mlp` and ``seed``, at the first step.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from stream_am import checks
from stream_am.engine import Engine
from stream_am.estimators import inputs, persistence, state
from stream_am.estimators.buffer import SampleBuffer
from stream_am.estimators.companion import LinearCompanion
from stream_am.estimators.features import FeatureIndex
from stream_am.estimators.frame import InputFrame, frame_for
from stream_am.estimators.moments import RunningMoments
from stream_am.estimators.networks import build_mlp, check_network_params
from stream_am.estimators.parameters import CheckedParameters
from stream_am.estimators.rows import RowLearning

__all__ = ["StreamEstimator"]


class StreamEstimator(CheckedParameters, RowLearning, state.Persistent, abc.ABC):
    """Mixin holding the learned state of a stream estimator (see the module docstring). Subclasses store their
    constructor arguments (``hidden_sizes``, ``activation``, ``batch_size``, ``standardize``, ``device``, ``seed``
    at least), call :meth:`_check_params` and :meth:`_reset`, and define ``_make_engine``, ``_n_outputs``,
    ``_encode_targets`` and ``_target_tensor``."""

    hidden_sizes: tuple[int, ...]
    activation: str
    batch_size: int
    standardize: bool
    device: str
    seed: int | None
    _target_dtype: type = np.float64  # dtype of buffered targets (class indices or values)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        persistence.register(cls)  # loadable by name; persistence imports no estimator class

    # -- construction --------------------------------------------------------------------------------
    def _check_params(self) -> None:
        check_network_params(self.hidden_sizes, self.activation, self.batch_size, self.standardize)
        checks.check_device(self.device)
        if self.seed is not None:
            checks.check_seed(self.seed)

    def _reset(self) -> None:
        self._index = FeatureIndex()
        self._moments: RunningMoments | None = None
        self._buffer: SampleBuffer | None = None  # with the moments, from the first learned sample
        self._engine: Engine | None = None
        self._companion: LinearCompanion | None = None  # the classifier's linear companion (companion.py)
        self._quadratic: LinearCompanion | None = None  # and its quadratic one, for narrow inputs (basis.py)
        self._frame: InputFrame | None = None  # the standardisation applied, from the first step
        self._n_learned, self._n_stepped = 0, 0  # samples learned; features the engine has stepped on
        self._last_stats: dict[str, float] = {}

    @property
    def _feature_limit(self) -> float:
        """Largest accepted feature magnitude: values reach float32 unscaled without ``standardize``."""
        return inputs.MAX_MAGNITUDE if self.standardize else inputs.MAX_RAW_MAGNITUDE

    def _check_can_step(self, n_new: int) -> None:
        """Refuse, before anything changes, a call whose first step could not build the engine (no device), and
        any learning inside ``torch.inference_mode()`` (its steps could not run)."""
        checks.check_can_learn()
        if self._engine is None and self.n_buffered + n_new >= self.batch_size:
            checks.resolve_device(self.device)

    # -- hooks (abstract: the concrete classes derive from river's ABCs) ------------------------------
    @abc.abstractmethod
    def _make_engine(self, module: torch.nn.Sequential) -> Engine:
        """The engine that will train ``module`` (built at the first step)."""

    @abc.abstractmethod
    def _n_outputs(self) -> int:
        """Width of the network's output layer for the targets registered so far."""

    @abc.abstractmethod
    def _encode_targets(self, ys: list[Any]) -> list[Any]:
        """Register the targets of rows being learned (growing outputs, updating target statistics)."""

    def _new_target_rows(self, ys: list[Any]) -> set[int]:
        """Where in ``ys`` a target the model does not know yet first appears (a classifier's new labels)."""
        return set()

    @abc.abstractmethod
    def _target_tensor(self, ys: list[Any]) -> torch.Tensor:
        """The engine's target tensor for encoded targets ``ys``."""

    def _keeps_companion(self, engine: Engine) -> bool:
        """Whether the estimator keeps a linear companion beside ``engine`` (built: after its first step)."""
        return False

    def _keeps_quadratic(self, engine: Any, n_inputs: int) -> bool:
        """Whether the estimator keeps a quadratic companion beside ``engine`` at ``n_inputs`` inputs."""
        return False

    def _make_companions(self, engine: Engine) -> tuple[LinearCompanion | None, LinearCompanion | None]:
        """New linear and quadratic companions of ``engine``, None where not kept (the default: none)."""
        return None, None

    def _engines(self) -> list[Any]:
        """What reads the network's inputs (grown and re-expressed with them): the engine and the companions."""
        return [e for e in (self._engine, self._quadratic, self._companion) if e is not None]

    # -- public helpers ------------------------------------------------------------------------------
    @property
    def n_features_in_(self) -> int:
        """Number of features learned so far."""
        return len(self._index)

    @property
    def feature_names_in_(self) -> list[Hashable]:
        """Names of the features learned so far, in input-layer order (positions for the numpy API)."""
        return list(self._index.names)

    @property
    def engine(self) -> Engine | None:
        """The live engine (``OnlineAM`` or ``BackpropLearner``), ``None`` before the first step. It is the model
        itself, not a copy: what is done to it (``forget``, a new ``memory_decay``) changes the estimator."""
        return self._engine

    @property
    def n_buffered(self) -> int:
        """Samples learned but not yet used by a step."""
        return 0 if self._buffer is None else len(self._buffer)

    @property
    def n_steps(self) -> int:
        """Engine steps run so far."""
        return 0 if self._engine is None else int(self._engine.n_steps)

    @property
    def last_step_stats(self) -> dict[str, float]:
        """What the engine's last ``partial_fit`` returned (``{}`` before the first step)."""
        return dict(self._last_stats)

    def flush(self) -> None:
        """Run one engine step on the buffered samples now, even if fewer than ``batch_size``.

        Afterwards the buffer is empty and the next step happens ``batch_size`` learned samples later.
        Nothing happens when the buffer is empty.
        """
        if self.n_buffered:
            self._check_can_step(0)
            self._step()

    # -- learning (the rows: RowLearning) ------------------------------------------------------------
    def _step(self) -> None:
        moments, buffer = self._start()
        rows, mask, targets = buffer.rows()
        engine, frame = self._engine, self._frame
        if engine is None:
            seed = secrets.randbits(31) if self.seed is None else self.seed  # None: fresh OS entropy
            module = build_mlp(len(self._index), self._n_outputs(), self.hidden_sizes, self.activation, seed)
            engine = self._make_engine(module)
        if self.standardize and frame is None:  # the moments' at the first step (its kind once the engine is built)
            frame = InputFrame.of(moments)
        x = self._network_input(rows, mask, frame)  # refreshed when due (frame.py), the engine following:
        if frame is not None and frame is self._frame and frame.due(engine.n_steps, x.numpy()):
            frame.refresh(moments, *self._engines())
            x = self._network_input(rows, mask, frame)
        y = self._target_tensor(targets)
        stats = engine.partial_fit(x, y)
        new = self._engine is None
        companion, quadratic = self._make_companions(engine) if new else (self._companion, self._quadratic)
        for part in (quadratic, companion):
            if part is not None:
                part.learn(x, y, stats)
        if frame is not None and frame is not self._frame:  # the first step: its kind, now the engine is built
            frame = frame_for(engine, frame)
        self._engine, self._companion, self._quadratic, self._frame = engine, companion, quadratic, frame
        self._n_stepped = len(self._index)
        self._last_stats = {k: float(v) for k, v in stats.items()}
        buffer.clear()

    # -- inference -----------------------------------------------------------------------------------
    def _network_input(self, rows: np.ndarray, mask: np.ndarray | None, frame: InputFrame | None) -> torch.Tensor:
        """float32 network input from rows over *all* features (``mask``: cells observed), in ``frame`` if any."""
        if frame is not None:
            rows = frame.apply(rows)
        if mask is not None:
            rows = np.where(mask, rows, 0.0)
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32))

    def _outputs(
        self, names: Sequence[Hashable], rows: np.ndarray, proba: bool, present: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Engine outputs (probabilities when ``proba``) for rows over ``names``; None before the first step."""
        if self._engine is None:
            return None
        x = self._network_input(*self._index.spread(names, rows, present), self._frame)
        if self._n_stepped < x.shape[1]:  # a feature learned since the last step: its weights are not fitted yet
            x[:, self._n_stepped :] = 0.0
        with torch.no_grad():
            out = self._engine.predict(x).detach().cpu().numpy().astype(np.float64)
        if proba:  # softmax in float64, so that probabilities sum to 1 to double precision
            out = np.exp(out - out.max(axis=1, keepdims=True))
            out /= out.sum(axis=1, keepdims=True)
            for part in (self._quadratic, self._companion):  # the linear one last: it overrides where it holds
                if part is not None:
                    out = part.answer(x, out)
        return out
