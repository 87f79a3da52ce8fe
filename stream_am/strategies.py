"""Reference continual-learning strategies beside naive backprop: reservoir replay and online EWC.

Both are small, honest river classifiers. Neither is told where tasks begin: replay keeps a uniform sample of
everything seen (reservoir sampling); EWC consolidates every ``consolidate_every`` samples."""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from river import base
from river.base.typing import ClfTarget
from torch import nn
from torch.func import functional_call, grad, vmap

from stream_am import checks
from stream_am.estimators import inputs
from stream_am.estimators.networks import ACTIVATIONS, build_mlp, check_hidden_sizes
from stream_am.hyperparameters import LARGEST
from stream_am.output_growth import grow_output, pad_rows
from stream_am.strategies_checks import first_features, labelled_frame, labelled_row
from stream_am.wrapping import ClassifierWrapper

__all__ = ["ReplayClassifier", "EWCClassifier"]


class ReplayClassifier(ClassifierWrapper):
    """Experience replay: each mini-batch, then a sample from a reservoir buffer, in one ``classifier.learn_many``.

    Samples are checked as the stream estimators check them (:mod:`stream_am.strategies_checks`): numeric
    features only (encode others upstream, not inside ``classifier``); a call refused by those checks or by
    ``classifier`` changes nothing here (pending samples, reservoir, generator).

    Parameters
    ----------
    classifier
        A river mini-batch classifier (``learn_many``): the backprop baseline, say (a step every ``batch_size`` rows).
    buffer_size
        Capacity of the reservoir; it holds a uniform sample of the whole stream seen so far.
    replay_ratio
        Replayed samples per new sample in each step.
    batch_size
        ``learn_one`` gathers this many samples before a step.
    seed
        Seed of the reservoir's own random generator: an int in ``[0, 2**63 - 1]``.

    Examples
    --------
    >>> from river import linear_model
    >>> model = ReplayClassifier(linear_model.LogisticRegression(), buffer_size=8, batch_size=4)
    >>> for i in range(20):
    ...     model.learn_one({"a": float(i % 2)}, i % 2 == 1)
    >>> len(model.buffer_), model.n_seen_
    (8, 20)
    """

    def __init__(
        self,
        classifier: base.MiniBatchClassifier,
        buffer_size: int = 1000,
        replay_ratio: float = 1.0,
        batch_size: int = 32,
        seed: int = 0,
    ) -> None:
        checks.check_int("buffer_size", buffer_size, low=1)
        checks.check_float("replay_ratio", replay_ratio, 0.0, math.inf)
        checks.check_int("batch_size", batch_size, low=1)
        checks.check_seed(seed)
        self.classifier = classifier
        self.buffer_size = buffer_size
        self.replay_ratio = replay_ratio
        self.batch_size = batch_size
        self.seed = seed
        self.buffer_: list[tuple[dict, Any]] = []
        self.n_seen_ = 0
        self._pending: list[tuple[dict, Any]] = []
        self._rng: np.random.Generator | None = None

    def _unit_test_skips(self) -> set[str]:
        return {"check_learn_many_matches_learn_one"}  # each learn_many also learns replayed samples

    @classmethod
    def _unit_test_params(cls) -> Any:
        from river import linear_model

        yield {"classifier": linear_model.LogisticRegression(), "buffer_size": 16, "batch_size": 4}

    def _known_labels(self) -> list[Any]:
        """A label already accepted (all have one type), or none before the first one."""
        return [label for _, label in self._pending[:1] or self.buffer_[:1]]

    def learn_one(self, x: dict, y: Any, **kwargs: Any) -> None:
        checks.check_can_learn()
        pending = [*self._pending, labelled_row(x, y, self._known_labels())]
        if len(pending) >= self.batch_size:
            xs, ys = zip(*pending, strict=True)
            self.learn_many(inputs.records_frame(list(xs)), pd.Series(list(ys)))  # (refused: the pending ones stay)
            pending = []
        self._pending = pending

    def learn_many(self, X: pd.DataFrame, y: pd.Series, **kwargs: Any) -> None:
        checks.check_can_learn()
        records, labels = labelled_frame(X, y, self._known_labels())
        if not labels:
            return
        # the draws are made on a copy, kept only once the classifier has learnt: a refusal changes nothing
        rng = np.random.default_rng(self.seed) if self._rng is None else copy.deepcopy(self._rng)
        new = list(zip(records, labels, strict=True))
        k = int(round(min(float(self.replay_ratio) * len(new), len(self.buffer_))))  # (Python's float; inf fits)
        picks: list[int] = rng.choice(len(self.buffer_), size=k, replace=False).tolist() if k else []
        rows = new + [self.buffer_[i] for i in picks]
        xs, ys = zip(*rows, strict=True)
        self.classifier.learn_many(inputs.records_frame(list(xs)), pd.Series(list(ys)))
        self._rng = rng
        for item in new:  # reservoir sampling (Vitter's algorithm R)
            self.n_seen_ += 1
            if len(self.buffer_) < self.buffer_size:
                self.buffer_.append(item)
            else:
                j = int(rng.integers(self.n_seen_))
                if j < self.buffer_size:
                    self.buffer_[j] = item


class EWCClassifier(base.MiniBatchClassifier):
    """An MLP trained by backprop with an online elastic-weight-consolidation penalty.

    The loss is ``CE + (ewc_lambda / 2) * sum_i F_i (theta_i - theta*_i)^2``. ``F`` is the diagonal empirical
    Fisher (mean squared per-sample gradient of the log-likelihood). Task boundaries are unknown, so every
    ``consolidate_every`` samples the Fisher of that window is folded in, ``F <- fisher_decay * F + F_window``
    (online EWC, Schwarz et al. 2018), and the anchor ``theta*`` moves to the current weights. With
    ``consolidate_every`` near a task's length this behaves like per-task EWC. Inputs are used as given: put a
    ``river.preprocessing.StandardScaler`` in front. New classes grow the output layer; its Adam state is carried
    over. Features are fixed, in sorted order, at the first step (which must see one); later new ones are ignored,
    missing ones (NaN in a DataFrame) read as 0. Inputs are checked as the stream estimators check them, up to the
    engine's bound (:data:`~stream_am.checks.MAX_VALUE`: they reach float32 unscaled); a refused call changes
    nothing. ``lr`` and ``ewc_lambda`` are at most :data:`~stream_am.hyperparameters.LARGEST`.

    Examples
    --------
    >>> model = EWCClassifier(hidden_sizes=(8,), batch_size=4, consolidate_every=8)
    >>> for i in range(16):
    ...     model.learn_one({"a": float(i % 2)}, "odd" if i % 2 else "even")
    >>> model.n_consolidations_, model.classes_
    (2, ['even', 'odd'])
    """

    def __init__(
        self,
        hidden_sizes: tuple[int, ...] = (64, 64),
        activation: str = "relu",
        lr: float = 0.005,
        batch_size: int = 32,
        ewc_lambda: float = 100.0,
        consolidate_every: int = 500,
        fisher_decay: float = 1.0,
        seed: int = 0,
    ) -> None:
        check_hidden_sizes(hidden_sizes)
        checks.check_choice("activation", activation, sorted(ACTIVATIONS))
        checks.check_float("lr", lr, 0.0, LARGEST, low_inclusive=False)  # (float32: 1e300 would be inf, NaN weights)
        checks.check_int("batch_size", batch_size, low=1)
        checks.check_int("consolidate_every", consolidate_every, low=1)
        checks.check_float("ewc_lambda", ewc_lambda, 0.0, LARGEST)
        checks.check_float("fisher_decay", fisher_decay, 0.0, 1.0, high_inclusive=True)
        checks.check_seed(seed)
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.lr = lr
        self.batch_size = batch_size
        self.ewc_lambda = ewc_lambda
        self.consolidate_every = consolidate_every
        self.fisher_decay = fisher_decay
        self.seed = seed
        self.classes_: list[Any] = []
        self.n_consolidations_ = 0
        self._features: list[str] | None = None
        self._pending: list[tuple[dict, Any]] = []

    def _build(self, features: list[str]) -> None:
        # the estimators' network builder: same layers and initialisation as the baselines for one seed
        self._net = build_mlp(len(features), 1, self.hidden_sizes, self.activation, self.seed)
        self._features = features
        self._opt = torch.optim.Adam(self._net.parameters(), lr=checks.native(self.lr))
        self._zeros()
        self._n_window = 0

    def _zeros(self) -> None:
        self._fisher = [torch.zeros_like(p) for p in self._net.parameters()]
        self._window = [torch.zeros_like(p) for p in self._net.parameters()]
        self._anchor = [p.detach().clone() for p in self._net.parameters()]

    def _grow(self, n_classes: int) -> None:
        extra = grow_output(self._net, self._opt, n_classes)
        for tensors in (self._fisher, self._window, self._anchor):
            tensors[-2:] = [pad_rows(t, extra) for t in tensors[-2:]]

    def _n_outputs(self) -> int:
        out: nn.Linear = self._net[-1]  # type: ignore[assignment]
        return out.out_features

    def _tensor(self, X: pd.DataFrame) -> torch.Tensor:
        assert self._features is not None
        values = X.reindex(columns=self._features).fillna(0.0).to_numpy(float)
        return torch.tensor(values, dtype=torch.float32)

    @property
    def _multiclass(self) -> bool:
        return True

    def _unit_test_skips(self) -> set[str]:
        return {"check_learn_many_matches_learn_one"}  # one Adam step per mini-batch, not per sample

    def _add_classes(self, labels: list[Any]) -> None:
        for label in labels:
            if label not in self.classes_:
                self.classes_.append(label)
        if self._features is not None and len(self.classes_) > self._n_outputs():
            self._grow(len(self.classes_))

    def learn_one(self, x: dict, y: Any) -> None:
        checks.check_can_learn()
        row, label = labelled_row(x, y, self.classes_, inputs.MAX_RAW_MAGNITUDE)
        first_features(self._features is not None or any(r for r, _ in self._pending), len(row), "x")
        pending = [*self._pending, (row, label)]
        if len(pending) >= self.batch_size:
            xs, ys = zip(*pending, strict=True)
            self._learn_rows(inputs.records_frame(list(xs)), list(ys))
            pending = []
        self._add_classes([label])
        self._pending = pending

    def learn_many(self, X: pd.DataFrame, y: pd.Series) -> None:
        """One step on the rows of ``X`` (NaN = missing, read as 0); an empty frame changes nothing."""
        checks.check_can_learn()
        _, labels = labelled_frame(X, y, self.classes_, inputs.MAX_RAW_MAGNITUDE)
        if labels:
            first_features(self._features is not None, len(X.columns), "X")
            self._learn_rows(X, labels)

    def _learn_rows(self, X: pd.DataFrame, labels: list[Any]) -> None:
        """One Adam step on validated rows, then their Fisher."""
        if self._features is None:
            self._build(sorted(X.columns, key=str))
        self._add_classes(labels)
        x = self._tensor(X)
        t = torch.tensor([self.classes_.index(v) for v in labels])
        loss = nn.functional.cross_entropy(self._net(x), t)
        if self.ewc_lambda > 0 and self.n_consolidations_:
            triples = zip(self._fisher, self._net.parameters(), self._anchor, strict=True)
            loss = loss + 0.5 * checks.native(self.ewc_lambda) * sum((f * (p - a) ** 2).sum() for f, p, a in triples)
        self._opt.zero_grad()
        loss.backward()
        self._opt.step()
        self._accumulate_fisher(x, t)

    def _accumulate_fisher(self, x: torch.Tensor, t: torch.Tensor) -> None:
        params = {k: v.detach() for k, v in self._net.named_parameters()}

        def nll(p: dict[str, torch.Tensor], xi: torch.Tensor, ti: torch.Tensor) -> torch.Tensor:
            out = functional_call(self._net, p, (xi.unsqueeze(0),))
            return nn.functional.cross_entropy(out, ti.unsqueeze(0))

        grads = vmap(grad(nll), in_dims=(None, 0, 0))(params, x, t)
        for w, g in zip(self._window, grads.values(), strict=True):
            w += (g**2).sum(dim=0)
        self._n_window += len(t)
        if self._n_window >= self.consolidate_every:
            pairs = zip(self._fisher, self._window, strict=True)
            self._fisher = [checks.native(self.fisher_decay) * f + w / self._n_window for f, w in pairs]
            self._window = [torch.zeros_like(w) for w in self._window]
            self._anchor = [p.detach().clone() for p in self._net.parameters()]
            self._n_window = 0
            self.n_consolidations_ += 1

    def predict_proba_many(self, X: pd.DataFrame) -> pd.DataFrame:
        inputs.frame_rows(X, limit=inputs.MAX_RAW_MAGNITUDE)
        if not self.classes_:
            return pd.DataFrame(index=X.index)
        if self._features is None:  # labels seen, no step yet: uniform
            return pd.DataFrame(1.0 / len(self.classes_), columns=self.classes_, index=X.index)
        with torch.no_grad():
            p = torch.softmax(self._net(self._tensor(X))[:, : len(self.classes_)].double(), dim=1).numpy()
        return pd.DataFrame(p, columns=self.classes_, index=X.index)

    def predict_proba_one(self, x: dict, **kwargs: Any) -> dict[ClfTarget, float]:
        inputs.dict_row(x, inputs.MAX_RAW_MAGNITUDE)  # NaN in a dict is refused, as by the stream estimators
        proba = self.predict_proba_many(inputs.records_frame([x]))
        return {c: float(proba[c].iloc[0]) for c in proba.columns}

    def predict_many(self, X: pd.DataFrame) -> pd.Series:
        proba = self.predict_proba_many(X)
        if proba.shape[1] == 0:
            return pd.Series([None] * len(X), index=X.index, dtype=object)
        return proba.idxmax(axis=1)

