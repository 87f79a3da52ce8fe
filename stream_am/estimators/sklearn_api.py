"""scikit-learn's estimator protocol over the estimators' numpy API: parameters, ``fit``, ``score``, tags.

:class:`SklearnClassifier` and :class:`SklearnRegressor` sit before the river base class in the MRO of every
public estimator (``AMClassifier(_AMMixin, SklearnClassifier, StreamClassifier)``). They add:

- ``get_params`` / ``set_params``, so that ``sklearn.base.clone``, ``Pipeline`` and ``GridSearchCV`` work.
  Parameters are the constructor arguments, stored unchanged (river's ``_get_params``). ``set_params``
  validates the new values like the constructor and **forgets everything learned**: the network, its engine
  and the feature statistics are built from the parameters, so a model keeping them would not be the one
  its parameters describe. Invalid values raise and leave the estimator unchanged.
- ``fit(X, y)``: forget everything, then learn the rows ``epochs`` times in order (the same as
  ``partial_fit`` on the rows repeated ``epochs`` times), then ``flush()`` so that every row is learned
  even when there are fewer than ``batch_size``. A classifier's labels are declared from ``y``, sorted.
- ``partial_fit`` never forgets; a classifier's ``classes=`` is sorted, so that ``classes_`` and the columns
  of ``predict_proba`` are in sorted order, as in scikit-learn (labels learned before the declaration keep
  their outputs; the new ones follow them, sorted).
- ``score(X, y)``: accuracy (classifiers) or R² (regressors).
- scikit-learn's input conventions: sparse input is refused (``TypeError``), a column-vector ``y`` is
  accepted with a ``DataConversionWarning``, a classifier refuses continuous targets, ``predict`` before
  any learning raises ``NotFittedError``, the column names of a DataFrame given to ``fit`` are kept in
  ``feature_names_in_`` and checked by the other methods, ``n_features_in_`` exists once features are known.

The river API (``learn_one``, ``learn_many``, ``predict_one`` ...) is unchanged by all this.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from stream_am import checks
from stream_am.estimators.column_names import check_names, column_names, object_array, sorted_labels
from stream_am.estimators.inputs import check_label, check_label_types, check_target
from stream_am.estimators.sk_inputs import declared_labels, sk_rows

if TYPE_CHECKING:  # the mixins are always combined with these classes; mypy checks them as such
    from stream_am.estimators.base import StreamEstimator as _Base
    from stream_am.estimators.classifier import StreamClassifier as _ClassifierBase
    from stream_am.estimators.regressor import StreamRegressor as _RegressorBase
else:
    _Base = _ClassifierBase = _RegressorBase = object

__all__ = ["SklearnClassifier", "SklearnRegressor", "check_epochs"]


def check_epochs(epochs: Any) -> None:
    """``epochs``, the passes over the data made by ``fit``: an int of at least 1."""
    checks.check_int("epochs", epochs, low=1)


class _SklearnAPI(_Base):
    """What the classifier and the regressor mixins share."""

    epochs: int

    # -- parameters -------------------------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments, unchanged (``deep`` is accepted for scikit-learn; nothing is nested)."""
        return dict(self._get_params())  # type: ignore[attr-defined]

    def set_params(self, **params: Any) -> Any:
        """Set constructor arguments and forget everything learned; returns ``self``. With no argument nothing
        changes (as scikit-learn's). Unknown names and invalid values raise ``ValueError`` and change nothing.
        """
        if not params:
            return self
        current = self._get_params()  # type: ignore[attr-defined]
        unknown = sorted(set(params) - set(current))
        if unknown:
            raise ValueError(
                f"Invalid parameter {unknown[0]!r} for estimator {type(self).__name__}. "
                f"Valid parameters are: {sorted(current)!r}."
            )
        fresh = type(self)(**{**current, **params})
        vars(self).clear()
        vars(self).update(vars(fresh))
        return self

    def _check_params(self) -> None:
        super()._check_params()  # type: ignore[misc]
        check_epochs(self.epochs)

    # -- state ------------------------------------------------------------------------------------
    def __sklearn_is_fitted__(self) -> bool:
        return self._n_learned > 0

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' or 'partial_fit' with "
                "appropriate arguments before using this estimator."
            )

    @property
    def n_features_in_(self) -> int:
        """Number of features learned so far (absent before the first feature is learned)."""
        if not self._index.names:
            raise AttributeError(f"{type(self).__name__} has not learned any feature yet")
        return len(self._index.names)

    @property
    def feature_names_in_(self) -> Any:  # an object ndarray (the base class's type is a list)
        """Feature names in input-layer order: the columns of the DataFrame given to ``fit`` or the first
        ``partial_fit``, or the keys learned through the river API; absent for plain arrays."""
        names = getattr(self, "_sk_feature_names", None)
        if names is not None:
            return names.copy()
        if self._index.names and self._index.names != list(range(len(self._index.names))):
            return object_array(self._index.names)  # type: ignore[return-value]
        raise AttributeError(f"{type(self).__name__} has no feature names (it learned plain arrays)")

    def _payload(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._payload()  # type: ignore[misc]
        names = getattr(self, "_sk_feature_names", None)
        meta["sklearn_feature_names"] = None if names is None else names.tolist()
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super()._restore(meta, arrays)  # type: ignore[misc]
        self._sk_feature_names = object_array(meta.get("sklearn_feature_names"))

    # -- input conventions ------------------------------------------------------------------------
    def _sk_X(self, X: Any, reset: bool) -> np.ndarray:
        """``X`` as a 2-d numeric array; DataFrame column names are checked unless ``reset`` (then the caller
        keeps them with :meth:`_sk_keep_names` once the rows were learned: a refused batch changes nothing)."""
        if sp.issparse(X):
            raise TypeError(
                f"{type(self).__name__} does not accept sparse data; convert it to a dense array with "
                "X.toarray()."
            )
        if not reset:
            check_names(getattr(self, "_sk_feature_names", None), column_names(X))
        return sk_rows(X)

    def _sk_keep_names(self, X: Any) -> None:
        self._sk_feature_names = column_names(X)

    def _sk_fit(self, X: Any, learn: Any) -> None:
        """``fit``: learn into a fresh copy with ``learn(copy)`` and take its state only once it succeeded,
        so a refused ``fit`` leaves the estimator as it was."""
        fresh = self.clone()  # type: ignore[attr-defined]  # river's Base.clone: a new instance, same parameters
        learn(fresh)
        fresh.flush()
        fresh._sk_keep_names(X)
        self.__dict__.update(fresh.__dict__)

    def _sk_y(self, y: Any) -> np.ndarray:
        """``y`` as a 1-d array; a list of values of several types keeps them (numpy would make them strings)."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None")
        if isinstance(y, (list, tuple)) and len({type(v) for v in y}) > 1:
            y = object_array(list(y))  # (element by element: a list of lists stays a column of lists, refused later)
        return column_or_1d(y, warn=True)

    def __sklearn_tags__(self) -> Tags:
        return Tags(estimator_type=None, target_tags=TargetTags(required=True), input_tags=InputTags())


class SklearnClassifier(_SklearnAPI, _ClassifierBase):
    """scikit-learn's classifier protocol for :class:`~stream_am.estimators.classifier.StreamClassifier`.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from stream_am import AMClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> model = AMClassifier(epochs=2, seed=0).fit(X[:1000], y[:1000])
    >>> model.classes_.tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    >>> accuracy = model.score(X[1000:], y[1000:])  # held-out accuracy, about 0.9
    >>> bool(0.85 < accuracy <= 1.0)
    True
    """

    _classes: list[Any]

    def fit(self, X: Any, y: Any) -> SklearnClassifier:
        """Forget everything, then learn the rows ``epochs`` times in order and flush; returns ``self``."""
        rows = self._sk_X(X, reset=True)
        labels = self._sk_labels(y, [])
        classes = sorted_labels(list(dict.fromkeys(labels.tolist())))

        def learn(model: SklearnClassifier) -> None:
            for _ in range(self.epochs):
                super().partial_fit(rows, labels, classes=classes)  # binds to `model`

        self._sk_fit(X, learn)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> SklearnClassifier:
        """Learn the rows in order (never forgets); ``classes`` declares every label, see the class doc."""
        first = not self.__sklearn_is_fitted__()
        rows = self._sk_X(X, reset=first)
        labels = self._sk_labels(y, self._classes)
        if classes is not None:  # declared labels take their outputs in sorted order
            classes = sorted_labels(declared_labels(classes))
        super().partial_fit(rows, labels, classes=classes)
        if first:
            self._sk_keep_names(X)
        return self

    def _sk_labels(self, y: Any, classes: list[Any]) -> np.ndarray:
        """Class labels of one type (``classes``' if any: the labels learned), as scikit-learn's checks want them."""
        labels = self._sk_y(y)
        if labels.dtype == object:  # (numpy's own dtypes hold one type)
            checked = [check_label(v, f"y[{i}]", i) for i, v in enumerate(labels.tolist())]
            check_label_types(checked, classes)
            if checked and type(checked[0]) in (str, int, float, bool):  # (numpy scalars were mixed in: now one type)
                labels = np.asarray(checked)
        try:
            check_classification_targets(labels)
        except TypeError as error:  # (labels numpy cannot compare)
            raise ValueError(f"y must hold class labels of one type, got {error}") from error
        return labels

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(n_samples, n_classes)`` probabilities, columns in :attr:`classes_` order."""
        self._check_fitted()
        return super().predict_proba(self._sk_X(X, reset=False))

    def predict(self, X: Any) -> np.ndarray:
        """Most probable label per row."""
        self._check_fitted()
        return super().predict(self._sk_X(X, reset=False))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy of :meth:`predict` on ``X`` against ``y``."""
        return float(accuracy_score(self._sk_y(y), self.predict(X), sample_weight=sample_weight))

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "classifier"
        tags.classifier_tags = ClassifierTags()
        return tags


class SklearnRegressor(_SklearnAPI, _RegressorBase):
    """scikit-learn's regressor protocol for :class:`~stream_am.estimators.regressor.StreamRegressor`."""

    def fit(self, X: Any, y: Any) -> SklearnRegressor:
        """Forget everything, then learn the rows ``epochs`` times in order and flush; returns ``self``."""
        rows = self._sk_X(X, reset=True)
        targets = self._sk_targets(y)

        def learn(model: SklearnRegressor) -> None:
            for _ in range(self.epochs):
                super().partial_fit(rows, targets)  # binds to `model`

        self._sk_fit(X, learn)
        return self

    def partial_fit(self, X: Any, y: Any) -> SklearnRegressor:
        """Learn the rows in order (never forgets)."""
        first = not self.__sklearn_is_fitted__()
        rows = self._sk_X(X, reset=first)
        super().partial_fit(rows, self._sk_targets(y))
        if first:
            self._sk_keep_names(X)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """One prediction per row."""
        self._check_fitted()
        return super().predict(self._sk_X(X, reset=False))

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """R² of :meth:`predict` on ``X`` against ``y``."""
        return float(r2_score(self._sk_targets(y), self.predict(X), sample_weight=sample_weight))

    def _sk_targets(self, y: Any) -> np.ndarray:
        """Real targets; strings (which ``check_array`` would parse) and values numpy cannot hold are refused."""
        values = self._sk_y(y)
        if values.dtype.kind in "OUS":
            return np.array([check_target(v, f"y[{i}]", math.inf, i) for i, v in enumerate(values.tolist())])
        return check_array(values, ensure_2d=False, dtype="numeric", input_name="y")

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.estimator_type = "regressor"
        tags.regressor_tags = RegressorTags()
        return tags

