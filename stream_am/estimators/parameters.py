"""An estimator's parameters set as attributes (``model.batch_size = 16``): checked before it learns, fixed after.

scikit-learn and river keep the constructor's arguments as public attributes, and users set them. Until
2026-12-03 such a value was stored unchecked: an invalid one broke the first step (and every later one, the
buffer left full), a new one after learning was ignored by the running model while ``get_params`` reported it
(a smaller ``batch_size`` made ``learn_many`` loop for ever), and ``save``/``load`` rebuilt another model, or
none. Now, before the model has learned its first sample, a new value gets every check of the constructor (an
estimator of the same parameters is built aside: nothing of this one changes if it is refused); after, a new
value is refused with a ``ValueError`` naming it: ``model.clone({name: value})`` is a new model that has it
(``clone`` with ``include_attributes=True`` copies what was learned, so it refuses a new value too). Setting the
value a parameter already has is no change, and always allowed; :data:`ANY_TIME` may change after learning.
"""

from __future__ import annotations

from typing import Any

from stream_am.checks import same_value

__all__ = ["ANY_TIME", "CheckedParameters"]


#: parameters that may change after learning: ``epochs`` is read by ``fit``, which forgets everything first
ANY_TIME = ("epochs",)


class CheckedParameters:
    """Mixin of the stream estimators: the constructor's parameters, set as attributes, are checked first."""

    _n_learned: int

    def __setattr__(self, name: str, value: Any) -> None:
        # constructed (a subclass's own parameter, set for the first time after ``super().__init__``, is not checked)
        if not name.startswith("_") and "_n_learned" in self.__dict__ and name in self.__dict__:
            self._check_new_parameter(name, value)
        super().__setattr__(name, value)

    def clone(self, new_params: dict[str, Any] | None = None, include_attributes: bool = False) -> Any:
        """river's ``clone``, checked: ``new_params`` must be a dict of the estimator's parameters (``ValueError``
        naming the first that is not), and with ``include_attributes`` (what was learned, copied) it may not
        change a parameter once the model has learned, as an attribute may not."""
        if new_params is not None and not isinstance(new_params, dict):
            raise ValueError(f"new_params must be a dict of parameters, got {type(new_params).__name__}")
        known = self._get_params()  # type: ignore[attr-defined]
        if unknown := sorted(map(repr, set(new_params or {}) - set(known))):
            raise ValueError(f"new_params: {unknown[0]} is not a parameter of {type(self).__name__} ({sorted(known)})")
        for name, value in (new_params or {}).items() if include_attributes else ():
            self._check_new_parameter(name, value, "new_params with include_attributes=True: ")
        return super().clone(new_params, include_attributes)  # type: ignore[misc]

    def _learned(self) -> bool:
        return self._n_learned > 0 or self.__dict__.get("_engine") is not None

    def _check_new_parameter(self, name: str, value: Any, where: str = "") -> None:
        params = self._get_params()  # type: ignore[attr-defined]  # (river's: the constructor's arguments)
        if name not in params or same_value(value, params[name]):
            return
        if self._learned() and name not in ANY_TIME:
            raise ValueError(f"{where}{name} cannot change once the model has learned (it is {params[name]!r:.60}, "
                             f"got {value!r:.60}); model.clone({{{name!r}: ...}}) is a new model with it")
        type(self)(**{**params, name: value})  # every check of the constructor, on an estimator built aside
