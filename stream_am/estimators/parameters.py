"""An estimator's parameters set as attributes (``model.batch_size = 16``): checked before it learns, fixed after.

scikit-learn and river keep the constructor's arguments as public attributes, and users set them. Until
2026-12-03 such a value was stored unchecked: an invalid one broke the first step (and every later one, the
buffer left full), a new one after learning was ignored by the running model while ``get_params`` reported it
(a smaller ``batch_size`` made ``learn_many`` loop for ever), and ``save``/``load`` rebuilt another model, or
none. Now, before the model has learned its first sample, a new value gets every check of the constructor (an
estimator of the same parameters is built aside: nothing of this one changes if it is refused); after, a new
value is refused with a ``ValueError`` naming it: ``model.clone({name: value})`` is a new model that has it.
Setting the value a parameter already has is no change, and always allowed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CheckedParameters"]


def _same(a: Any, b: Any) -> bool:
    try:
        return a is b or (type(a) is type(b) and bool(a == b))
    except (TypeError, ValueError, RuntimeError):  # (an array's elementwise comparison has no truth value)
        return False


class CheckedParameters:
    """Mixin of the stream estimators: the constructor's parameters, set as attributes, are checked first."""

    _n_learned: int

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and "_n_learned" in self.__dict__:  # constructed: a user's assignment
            self._check_new_parameter(name, value)
        super().__setattr__(name, value)

    def _check_new_parameter(self, name: str, value: Any) -> None:
        params = self._get_params()  # type: ignore[attr-defined]  # (river's: the constructor's arguments)
        if name not in params or _same(value, params[name]):
            return
        if self._n_learned > 0 or self.__dict__.get("_engine") is not None:
            raise ValueError(f"{name} cannot change once the model has learned (it is {params[name]!r:.60}); "
                             f"model.clone({{{name!r}: ...}}) is a new model with it")
        type(self)(**{**params, name: value})  # every check of the constructor, on an estimator built aside
