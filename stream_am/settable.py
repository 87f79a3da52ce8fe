"""What may be set on an :class:`~stream_am.learner.OnlineAM` after construction, checked before it is set.

Every number of :data:`~stream_am.hyperparameters.HYPERPARAMETERS` may change between steps: it is checked
against its range (``lambda_c`` with ``mu``) and the built step follows it. The parameters that decide what the
first step builds (:data:`STRUCTURAL`) may change only before that step, each checked as the constructor checks
it; after it a new value is refused, because the learner would go on as built while its attribute said otherwise.
The module never changes: it was taken apart into blocks at construction. A refused value changes nothing.

Examples
--------
>>> from torch import nn
>>> from stream_am import OnlineAM
>>> am = OnlineAM(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)), variant="mem")
>>> am.readout = "adam"  # before the first step: checked, and used when it builds
>>> am.variant = "sgd"
Traceback (most recent call last):
    ...
ValueError: variant must be one of ['mem', 'adam', 'auto'] or a sequence of them, got 'sgd'
>>> am.variant
'mem'
"""

from __future__ import annotations

from typing import Any

from stream_am.checks import same_value
from stream_am.hyperparameters import HYPERPARAMETERS, check_hyperparameter, check_sparsity
from stream_am.variants import check_network

__all__ = ["STRUCTURAL", "check_setting"]

#: the parameters the first step builds from (the module is taken apart at construction); ``parallel_layers`` is
#: not one of them: every step reads it
STRUCTURAL = ("module", "variant", "loss", "readout", "device", "seed", "memory_clock")


def check_setting(learner: Any, name: str, value: Any) -> None:
    """``ValueError`` naming ``name`` unless ``learner`` (constructed) may take ``value`` for it now."""
    if name in HYPERPARAMETERS:
        check_hyperparameter(name, value)
        if name in ("lambda_c", "mu"):  # and with the other one (the engine's mu only grows from mu)
            pair = {"lambda_c": learner.__dict__["lambda_c"], "mu": learner.__dict__["mu"], name: value}
            check_sparsity(pair["lambda_c"], min(pair["mu"], learner.__dict__.get("_mu", pair["mu"])))
    elif name in STRUCTURAL:
        _check_structural(learner, name, value)
    elif name == "parallel_layers" and not isinstance(value, bool):
        raise ValueError(f"parallel_layers must be a bool, got {value!r}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return [type(v) for v in a] == [type(v) for v in b] and list(a) == list(b)
    return same_value(a, b)


def _check_structural(learner: Any, name: str, value: Any) -> None:
    old = learner.__dict__[name]
    if _same(value, old):
        return
    if name == "module" or learner.__dict__["_built"]:
        when = "at construction" if name == "module" else "by the first step"
        raise ValueError(f"{name} is fixed {when} (it is {old!r:.60}, got {value!r:.60}); build a new OnlineAM to "
                         "change it")
    object.__setattr__(learner, name, value)  # checked in place as the constructor checks it, then put back
    try:
        learner._validate_params()
        check_network(learner.variant, learner._net)
    finally:
        object.__setattr__(learner, name, old)
