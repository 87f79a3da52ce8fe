"""A class-clocked memory's saved state: its classes' sums, their clock, the rows not yet in the sums, and ``T``.

Functions of tensors (not of the memory), so that :mod:`stream_am.updaters.class_memory` can keep to its step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from stream_am.checks import all_finite

__all__ = ["check_values", "class_memory_size", "class_state", "load_class_state", "widen"]


def class_memory_size(
    n_features: int, hidden_sizes: Sequence[int], n_classes: int, memories: Sequence[bool] | None = None
) -> int:
    """Numbers held by the class-clocked memories of a classifier of these sizes: one ``(d + 1) x (d + 1 + m)``
    sum per class for each layer of ``d`` inputs and ``m`` outputs that keeps a memory (``memories``, one flag
    per layer, the readout last; every layer when not given)."""
    widths = [n_features, *hidden_sizes, n_classes]
    flags = [True] * (len(widths) - 1) if memories is None else list(memories)
    pairs = zip(widths[:-1], widths[1:], flags, strict=True)
    return n_classes * sum((d + 1) * (d + 1 + m) for d, m, kept in pairs if kept)


def class_state(
    prefix: str, Vc: torch.Tensor, T: torch.Tensor, S: torch.Tensor, scale: torch.Tensor, bound: float
) -> dict[str, torch.Tensor]:
    """Each class's stored sums ``VAc`` (K x d x d) and ``VBc`` (K x m x d), the clock's ``scale`` and ``Sc``
    (weights, in samples), and their sum over the classes ``T = [TA | TB^T]`` (``TA`` d x d, ``TB`` m x d, in
    samples; so that each tensor grows as a prefix): the means of class ``c`` are ``scale[c] / Sc[c]`` times
    its sums. And the clock's ``bound`` of the smallest scale, which decides when it folds (on a GPU a product of
    the steps' factors, not the smallest scale itself: a loaded clock must fold when the original does)."""
    K, d = Vc.shape[0], Vc.shape[1]
    return {
        f"{prefix}VAc": Vc[:, :, :d].contiguous(),
        f"{prefix}VBc": Vc[:, :, d:].transpose(1, 2).contiguous(),
        f"{prefix}scale": scale[:K].clone(),
        f"{prefix}Sc": S[:K].clone(),
        f"{prefix}TA": T[:, :d].contiguous(),
        f"{prefix}TB": T[:, d:].T.contiguous(),
        f"{prefix}bound": torch.tensor(bound, dtype=torch.float64, device=S.device),
    }


def _get(state: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in state:
        raise ValueError(f"state is missing {key}")
    return state[key]


def check_values(key: str, t: torch.Tensor, low: float | None = None, positive: bool = False) -> None:
    """``ValueError`` naming ``key`` unless ``t`` is a floating tensor of finite values (``>= low``; ``> 0``
    where ``positive``)."""
    if not t.is_floating_point():
        raise ValueError(f"state[{key}] must be a floating tensor, got {t.dtype}")
    if not all_finite(t):
        raise ValueError(f"state[{key}] holds values that are not finite")
    if (low is not None and bool((t < low).any())) or (positive and bool((t <= 0).any())):
        raise ValueError(f"state[{key}] holds values {'<= 0' if positive else f'< {low}'}")


def load_class_state(
    state: dict[str, torch.Tensor], prefix: str, A_shape: tuple[int, ...], B_shape: tuple[int, ...],
    like: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor, float | None]:
    """``(Vc, T, S, scale, bound)`` from :func:`class_state` (``T`` or ``bound`` is ``None`` in a state saved
    without it), on the device and in the dtype of ``like``; a state that holds each class's means instead (``Ac``,
    ``Bc``, as the first class-clocked memory saved them) is accepted too. ``ValueError`` naming the keys if one is
    missing, if a shape does not fit ``A_shape`` and ``B_shape``, or if a value is not finite (or a weight
    negative, a scale not positive, a bound outside [0, 1])."""
    legacy = f"{prefix}VAc" not in state
    VA, VB, Sc = (_get(state, f"{prefix}{k}") for k in (("Ac", "Bc") if legacy else ("VAc", "VBc")) + ("Sc",))
    scale = Sc.new_ones(Sc.shape) if legacy else _get(state, f"{prefix}scale")
    TA, TB = state.get(f"{prefix}TA"), state.get(f"{prefix}TB")
    K = Sc.shape[0] if Sc.ndim == 1 else -1
    T_shapes = None if TA is None or TB is None else (TA.shape, TB.shape)
    if (VA.shape, VB.shape, scale.shape, Sc.ndim) != ((K, *A_shape), (K, *B_shape), (K,), 1) or (
        (TA is None) != (TB is None) or T_shapes not in (None, (A_shape, B_shape))
    ):
        raise ValueError(
            f"state[{prefix}VAc/VBc/Sc/scale/TA/TB] have shapes {tuple(VA.shape)}/{tuple(VB.shape)}/"
            f"{tuple(Sc.shape)}/{tuple(scale.shape)}/{None if TA is None else tuple(TA.shape)}/"
            f"{None if TB is None else tuple(TB.shape)}, expected (K, *A.shape)/(K, *B.shape)/(K,)/(K,)/A.shape/B.shape"
        )
    for key, t in (("VAc", VA), ("VBc", VB), ("TA", TA), ("TB", TB)):
        if t is not None:
            check_values(prefix + key, t)
    check_values(f"{prefix}Sc", Sc, low=0.0)
    check_values(f"{prefix}scale", scale, positive=True)
    bound = state.get(f"{prefix}bound")
    if bound is not None and (bound.numel() != 1 or not bound.is_floating_point() or not 0.0 <= float(bound) <= 1.0):
        raise ValueError(f"state[{prefix}bound] must hold one floating number in [0, 1], got {bound.tolist()!r:.60}")
    dev, dtype = like.device, like.dtype
    S = Sc.to(dev, dtype, copy=True)
    V = torch.cat([VA, VB.transpose(1, 2)], dim=2).to(dev, dtype)
    Vc = (V * S[:, None, None]).contiguous() if legacy else V.contiguous()  # legacy: means
    T = None if TA is None or TB is None else torch.cat([TA, TB.T], dim=1).to(dev, dtype).contiguous()
    return Vc, T, S, scale.to(dev, dtype, copy=True), None if bound is None else float(bound)


def widen(X: torch.Tensor, n_new: int) -> torch.Tensor:
    """Sums ``[A | B^T]`` (``... x d x (d + m)``) with ``n_new`` more inputs: zero rows and columns after ``A``'s."""
    d, cols = X.shape[-2:]
    W = X.new_zeros(*X.shape[:-2], d + n_new, cols + n_new)
    W[..., :d, :d], W[..., :d, d + n_new :] = X[..., :d], X[..., d:]
    return W
