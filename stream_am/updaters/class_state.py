"""A class-clocked memory's saved state: its classes' sums, their clock, the rows not yet in the sums, and ``T``.

Functions of tensors (not of the memory), so that :mod:`stream_am.updaters.class_memory` can keep to its step.
"""

from __future__ import annotations

import torch

__all__ = ["class_state", "load_class_state"]


def class_state(
    prefix: str, Vc: torch.Tensor, T: torch.Tensor, S: torch.Tensor, scale: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Each class's stored sums ``VAc`` (K x d x d) and ``VBc`` (K x m x d), the clock's ``scale`` and ``Sc``
    (weights, in samples), and their sum over the classes ``T = [TA | TB^T]`` (``TA`` d x d, ``TB`` m x d, in
    samples; so that each tensor grows as a prefix): the means of class ``c`` are ``scale[c] / Sc[c]`` times
    its sums."""
    K, d = Vc.shape[0], Vc.shape[1]
    return {
        f"{prefix}VAc": Vc[:, :, :d].contiguous(),
        f"{prefix}VBc": Vc[:, :, d:].transpose(1, 2).contiguous(),
        f"{prefix}scale": scale[:K].clone(),
        f"{prefix}Sc": S[:K].clone(),
        f"{prefix}TA": T[:, :d].contiguous(),
        f"{prefix}TB": T[:, d:].T.contiguous(),
    }


def load_class_state(
    state: dict[str, torch.Tensor], prefix: str, A_shape: tuple[int, ...], B_shape: tuple[int, ...],
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``(Vc, T, S, scale)`` from :func:`class_state` (``T`` is ``None`` in a state saved without it); a state
    that holds each class's means instead (``Ac``, ``Bc``, as the first class-clocked memory saved them) is
    accepted too. ``ValueError`` naming the keys if a shape does not fit ``A_shape`` and ``B_shape``."""
    legacy = f"{prefix}VAc" not in state
    VA, VB, Sc = (state[f"{prefix}{k}"] for k in (("Ac", "Bc") if legacy else ("VAc", "VBc")) + ("Sc",))
    scale = Sc.new_ones(Sc.shape) if legacy else state[f"{prefix}scale"]
    TA, TB = state.get(f"{prefix}TA"), state.get(f"{prefix}TB")
    K = Sc.shape[0]
    T_shapes = None if TA is None or TB is None else (TA.shape, TB.shape)
    if (VA.shape, VB.shape, scale.shape) != ((K, *A_shape), (K, *B_shape), (K,)) or (
        (TA is None) != (TB is None) or T_shapes not in (None, (A_shape, B_shape))
    ):
        raise ValueError(
            f"state[{prefix}VAc/VBc/Sc/scale/TA/TB] have shapes {tuple(VA.shape)}/{tuple(VB.shape)}/"
            f"{tuple(Sc.shape)}/{tuple(scale.shape)}/{None if TA is None else tuple(TA.shape)}/"
            f"{None if TB is None else tuple(TB.shape)}, expected (K, *A.shape)/(K, *B.shape)/(K,)/(K,)/A.shape/B.shape"
        )
    S = Sc.to(device=device, copy=True)
    V = torch.cat([VA, VB.transpose(1, 2)], dim=2).to(device=device)
    Vc = (V * S[:, None, None]).contiguous() if legacy else V.contiguous()  # legacy: means
    T = None if TA is None or TB is None else torch.cat([TA, TB.T], dim=1).to(device=device).contiguous()
    return Vc, T, S, scale.to(device=device, copy=True)
