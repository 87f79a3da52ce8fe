"""The engine's hyperparameter spec: one table of ranges, used by OnlineAM and by the AM estimators.

Each entry is ``name -> (low, high, low_inclusive)``; ``high is None`` marks an integer (``>= low``, at most
:data:`LARGEST_INT`), any other entry a finite float in ``[low, high)`` or ``(low, high)``; a name in
:data:`OPTIONAL` may also be ``None`` (the engine decides: ``solve_every``, see :mod:`stream_am.variants`).
Choices (``variant``, ``loss``, ``readout``) are checked by :func:`check_choices`; :func:`check_am_params`
checks all of an AM learner's or estimator's parameters.
"""

from __future__ import annotations

from typing import Any

from stream_am import checks
from stream_am.variants import check_variant

__all__ = [
    "HYPERPARAMETERS",
    "LARGEST",
    "LARGEST_INT",
    "MAX_SPARSITY",
    "OPTIONAL",
    "LOSSES",
    "MEMORY_CLOCKS",
    "READOUTS",
    "check_am_params",
    "check_hyperparameter",
    "check_hyperparameters",
    "check_choices",
    "check_sparsity",
]

#: the upper end of the step sizes and weights below: far beyond any useful setting, and low enough that the
#: float32 engine cannot overflow on their account (a learning rate of 1e20 or a ridge of 1e308 used to be
#: accepted and break the first step)
LARGEST = 1e6
#: the largest integer setting: a learner's state holds ``solve_every`` in an int64 (``2**63`` used to be taken, and
#: then no step could be saved)
LARGEST_INT = checks.MAX_SEED  # (int64's largest, as a seed's)
HYPERPARAMETERS: dict[str, tuple[float, float | None, bool]] = {
    "mu": (0.0, LARGEST, False),
    "mu_growth": (0.0, LARGEST, True),
    "mu_max_factor": (1.0, LARGEST, True),
    "code_steps": (0, None, True),
    "code_lr": (0.0, LARGEST, True),
    "code_momentum": (0.0, 1.0, True),
    "weight_steps": (1, None, True),
    "weight_lr": (0.0, 10.0, False),  # an Adam step moves each weight by about this much
    "output_lr": (0.0, 10.0, False),
    "memory_decay": (0.0, 1.0, True),
    "ridge": (0.0, LARGEST, False),
    "solve_every": (1, None, True),
    "lambda_c": (0.0, LARGEST, True),
    "lambda_w": (0.0, LARGEST, True),
}
#: the largest weight ``lambda_c / mu`` of the codes' L1 term: the float32 engine applies it as one factor (the
#: largest float32, 3.4e38, rounded down); a tiny ``mu`` with a positive ``lambda_c`` (``mu=1e-300, lambda_c=1``,
#: each in its range) used to be accepted and break the first step
MAX_SPARSITY = 1e38
OPTIONAL = ("solve_every",)
LOSSES = ("cross_entropy", "mse")
READOUTS = ("memory", "adam")
MEMORY_CLOCKS = ("sample", "class")


def check_hyperparameter(name: str, value: Any) -> None:
    """``ValueError`` naming ``name`` unless ``value`` is in its range in :data:`HYPERPARAMETERS`."""
    low, high, inclusive = HYPERPARAMETERS[name]
    if name in OPTIONAL and value is None:
        return
    if high is None:
        checks.check_int(name, value, low=int(low), high=LARGEST_INT)
    else:
        checks.check_float(name, value, low, high, inclusive)


def check_hyperparameters(obj: Any) -> None:
    """``ValueError`` naming the first attribute of ``obj`` outside its range in :data:`HYPERPARAMETERS`."""
    for name in HYPERPARAMETERS:
        check_hyperparameter(name, getattr(obj, name))


def check_sparsity(lambda_c: float, mu: float) -> None:
    """``ValueError`` naming ``lambda_c`` when ``lambda_c / mu`` (both in range) exceeds :data:`MAX_SPARSITY`."""
    lam, m = checks.native(lambda_c), checks.native(mu)
    if lam > 0 and lam / m > MAX_SPARSITY:
        raise ValueError(f"lambda_c must be at most {MAX_SPARSITY:g} * mu (the codes' L1 weight lambda_c / mu must "
                         f"fit float32), got lambda_c={lambda_c!r} with mu={mu!r}")


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
    check_sparsity(obj.lambda_c, obj.mu)
