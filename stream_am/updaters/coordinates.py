"""A change of input coordinates, ``x -> scale * x + shift`` per feature, applied to a memory's sums.

A memory keeps sums over rows ``a = [1 | x]`` (``[x]`` for a layer without bias) of products ``a a^T`` and
``a c^T``. When the same inputs are expressed in new coordinates (an estimator's standardisation refreshed,
:mod:`stream_am.estimators.frame`), every row becomes ``P a`` with ``P = [[1, 0], [shift, diag(scale)]]``, so
the sums become ``P (a a^T) P^T`` and ``P (a c^T)``: the same statistics of the same samples, with no sample
needed. :func:`map_rows` multiplies by ``P`` from the left, :func:`map_columns` by ``P^T`` from the right.
"""

from __future__ import annotations

import torch

from stream_am.grad_mode import no_grad

__all__ = ["map_rows", "map_columns"]


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
