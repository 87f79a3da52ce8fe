"""The engine's hyperparameter spec: one table of ranges, used by OnlineAM and by the AM estimators.

Each entry is ``name -> (low, high, low_inclusive)``; ``high is None`` marks an integer (``>= low``), any
other entry a finite float in ``[low, high)`` or ``(low, high)``; a name in :data:`OPTIONAL` may also be
``None`` (the engine decides: ``solve_every``, see :mod:`stream_am.variants`). Choices (``variant``, ``loss``,
``readout``) are checked by :func:`check_choices`; :func:`check_am_params` checks all of an AM learner's or
estimator's parameters.
"""

from __future__ import annotations

import math
from typing import Any

from stream_am import checks
from stream_am.variants import check_variant

__all__ = [
    "HYPERPARAMETERS",
    "OPTIONAL",
    "LOSSES",
    "MEMORY_CLOCKS",
    "READOUTS",
    "check_am_params",
    "check_hyperparameters",
    "check_choices",
]

HYPERPARAMETERS: dict[str, tuple[float, float | None, bool]] = {
    "mu": (0.0, math.inf, False),
    "mu_growth": (0.0, math.inf, True),
    "mu_max_factor": (1.0, math.inf, True),
    "code_steps": (0, None, True),
    "code_lr": (0.0, math.inf, True),
    "code_momentum": (0.0, 1.0, True),
    "weight_steps": (1, None, True),
    "weight_lr": (0.0, math.inf, False),
    "output_lr": (0.0, math.inf, False),
    "memory_decay": (0.0, 1.0, True),
    "ridge": (0.0, math.inf, False),
    "solve_every": (1, None, True),
    "lambda_c": (0.0, math.inf, True),
    "lambda_w": (0.0, math.inf, True),
}
OPTIONAL = ("solve_every",)
LOSSES = ("cross_entropy", "mse")
READOUTS = ("memory", "adam")
MEMORY_CLOCKS = ("sample", "class")


def check_hyperparameters(obj: Any) -> None:
    """``ValueError`` naming the first attribute of ``obj`` outside its range in :data:`HYPERPARAMETERS`."""
    for name, (low, high, inclusive) in HYPERPARAMETERS.items():
        if name in OPTIONAL and getattr(obj, name) is None:
            continue
        if high is None:
            checks.check_int(name, getattr(obj, name), low=int(low))
        else:
            checks.check_float(name, getattr(obj, name), low, high, inclusive)


def check_choices(variant: Any, readout: Any, loss: Any = "cross_entropy", n_codes: int | None = None) -> None:
    """``ValueError`` naming ``variant``, ``readout`` or ``loss`` when it is not one of its choices."""
    check_variant(variant, n_codes)
    checks.check_choice("readout", readout, READOUTS)
    checks.check_choice("loss", loss, LOSSES)


def check_am_params(obj: Any, loss: Any, n_codes: int | None = None) -> None:
    """``ValueError`` naming the first invalid AM parameter of ``obj``: its choices (``variant``, ``readout``,
    ``loss``, ``memory_clock``), then the ranges of :data:`HYPERPARAMETERS`."""
    check_choices(obj.variant, obj.readout, loss, n_codes)
    checks.check_choice("memory_clock", obj.memory_clock, MEMORY_CLOCKS)
    check_hyperparameters(obj)
