"""Numbers as parameters: which values are ints and finite numbers, Python's or numpy's, and numpy's as Python's.

A parameter may come as numpy's number (a grid of ``numpy.arange`` or ``numpy.logspace``): the checks
(:mod:`stream_am.checks`) take it where they take Python's, and what learns from it or saves it takes
:func:`native`'s Python number of the same value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["is_int", "is_finite_number", "native"]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int: Python's or numpy's (``numpy.arange`` gives those), not a bool."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.timedelta64))


def native(value: Any) -> Any:
    """``value`` with numpy's scalars as Python's (an ``np.int64`` as an ``int``, an ``np.float32`` as the ``float``
    of the same value, an ``np.str_`` as a ``str``), item by item in a tuple; anything else as it is. A checked
    parameter may be numpy's (a grid of ``numpy.logspace``); what learns from it, and what saves it, takes the
    Python number, so no step computes in a parameter's float32.

    Examples
    --------
    >>> import numpy as np
    >>> native((np.int64(64), np.float32(0.5), "relu"))
    (64, 0.5, 'relu')
    """
    if isinstance(value, np.timedelta64):  # (an np.integer, but a duration: no number)
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_, np.str_)):
        return value.item() if not isinstance(value, np.floating) else float(value)
    if isinstance(value, tuple):
        return tuple(native(v) for v in value)
    return value


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (not a bool; numpy's too) with a finite float value: an int too large for
    a float is not (``math.isfinite`` raises ``OverflowError`` on it)."""
    if isinstance(value, (bool, np.timedelta64)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(native(value))
    except OverflowError:
        return False
