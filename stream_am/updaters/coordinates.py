"""A change of input coordinates, ``x -> scale * x + shift`` per feature, applied to a memory's sums.

A memory keeps sums over rows ``a = [1 | x]`` (``[x]`` for a layer without bias) of products ``a a^T`` and
``a c^T``. When the same inputs are expressed in new coordinates (an estimator's standardisation refreshed,
:mod:`stream_am.estimators.frame`), every row becomes ``P a`` with ``P = [[1, 0], [shift, diag(scale)]]``, so
the sums become ``P (a a^T) P^T`` and ``P (a c^T)``: the same statistics of the same samples, with no sample
needed. :func:`map_rows` multiplies by ``P`` from the left, :func:`map_columns` by ``P^T`` from the right.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from stream_am import checks
from stream_am.grad_mode import no_grad

__all__ = ["map_rows", "map_columns", "check_change", "fits"]


def check_change(scale: object, shift: object, n: int, bias: bool, max_gain: object) -> None:
    """``ValueError`` naming the argument unless ``scale`` and ``shift`` are finite floating-point tensors of ``n``
    values, ``scale > 0``, ``shift`` is 0 without a ``bias``, and ``max_gain`` is None or a number >= 1."""
    for name, t in (("scale", scale), ("shift", shift)):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (n,) or not t.is_floating_point():
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"{name} must be a floating-point tensor of shape ({n},), got {got}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must be finite")
    assert isinstance(scale, torch.Tensor) and isinstance(shift, torch.Tensor)  # (checked above)
    if not bool((scale > 0).all()):
        raise ValueError("scale must be > 0")
    if not bias and bool((shift != 0).any()):
        raise ValueError("shift must be 0: the first layer has no bias")
    if max_gain is not None:
        checks.check_float("max_gain", max_gain, 1.0, math.inf)


def fits(sums: Iterable[torch.Tensor], scale: torch.Tensor, shift: torch.Tensor) -> bool:
    """Whether mapping ``sums`` by ``P`` on both sides keeps each within half its dtype's range: an entry grows by
    at most ``g^2``, ``g = 1 + max |scale| + max |shift|`` (a row of ``P`` sums to at most that in magnitude). A
    bound, read in one pass over each sum: a change that passes it cannot overflow them."""
    g = 1.0 + (float(scale.abs().max()) + float(shift.abs().max()) if scale.numel() else 0.0)
    for t in sums:
        if t.is_floating_point() and t.numel():
            top = float(t.abs().max())
            if not math.isfinite(top * g * g) or top * g * g > torch.finfo(t.dtype).max / 2:
                return False
    return True


@no_grad
def map_rows(X: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, bias: bool) -> None:
    """``X <- P X`` in place over the input rows of ``X`` (dimension -2: the constant row first if ``bias``,
    then one row per feature; ``X`` may be a batch of such matrices).

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[2.0, 1.0], [4.0, 3.0]])  # rows: the constant, then one feature
    >>> map_rows(X, torch.tensor([0.5]), torch.tensor([1.0]), bias=True)
    >>> X.tolist()
    [[2.0, 1.0], [4.0, 2.5]]
    """
    n, start = scale.shape[0], int(bias)
    part = X[..., start : start + n, :]
    part.mul_(scale[:, None].to(X.dtype))
    if bias:
        part.add_(shift[:, None].to(X.dtype) * X[..., :1, :])


@no_grad
def map_columns(X: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, bias: bool) -> None:
    """``X <- X P^T`` in place over the input columns of ``X`` (dimension -1: the constant column first if
    ``bias``, then one per feature; any later columns, such as codes, are left alone).

    Examples
    --------
    >>> import torch
    >>> X = torch.tensor([[1.0, 4.0, 7.0]])  # a row [1 | x | c]
    >>> map_columns(X, torch.tensor([0.5]), torch.tensor([1.0]), bias=True)
    >>> X.tolist()
    [[1.0, 3.0, 7.0]]
    """
    n, start = scale.shape[0], int(bias)
    part = X[..., start : start + n]
    part.mul_(scale.to(X.dtype))
    if bias:
        part.add_(X[..., :1] * shift.to(X.dtype))
