"""``no_grad``: ``torch.no_grad()`` as a decorator, free when gradients are already off.

A step calls a dozen decorated functions; ``torch.no_grad()`` enters a new context in each, a few percent
of a step on a small network. :meth:`stream_am.OnlineAM.partial_fit` turns gradients off once for the whole
step, and these functions then only ask whether they are off (several times cheaper per call; figures in
``benchmarks/README.md``). Called on their own, with gradients on, they behave as under ``torch.no_grad()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import torch

__all__ = ["no_grad"]

P = ParamSpec("P")
R = TypeVar("R")


def no_grad(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` run with gradients off (the caller's mode is restored after).

    Examples
    --------
    >>> import torch
    >>> @no_grad
    ... def double(x):
    ...     return x * 2
    >>> w = torch.ones(2, requires_grad=True)
    >>> double(w).requires_grad, torch.is_grad_enabled()
    (False, True)
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not torch.is_grad_enabled():
            return fn(*args, **kwargs)
        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper
