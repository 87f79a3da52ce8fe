"""What :func:`stream_am.network.decompose` checks of a network's modules beyond their layout.

The engine computes each block itself (often in closed form, with the layer's weights read directly) and fits
each layer on its own, so a module is refused (``ValueError`` naming it, before any state exists) where the
engine would silently compute something else than ``module(x)``, train what the user froze, or fail inside a
step. See :func:`check_modules`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["check_modules"]


def _own_forward(m: nn.Module, known: tuple[type[nn.Module], ...]) -> bool:
    """Whether ``m`` runs the ``forward`` of the supported type it is an instance of (not a subclass's own)."""
    return any(isinstance(m, base) and type(m).forward is base.forward for base in known)


def _hooked(m: nn.Module) -> bool:
    return bool(m._forward_hooks or m._forward_pre_hooks) or parametrize.is_parametrized(m)


def _check_containers(module: nn.Module) -> None:
    """The ``nn.Sequential`` containers (``module`` and nested ones): plain, with no hooks."""
    for name, seq in module.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        where = "module" if not name else f"module.{name}"
        if type(seq).forward is not nn.Sequential.forward:
            raise ValueError(f"{where} ({type(seq).__name__}) overrides forward(), which OnlineAM does not run "
                             "(it applies the modules in order): use a plain nn.Sequential")
        if _hooked(seq):
            raise ValueError(f"{where} ({type(seq).__name__}) has forward hooks, which OnlineAM does not run")


def _check_tensors(i: int, m: nn.Module, weighted: tuple[type[nn.Module], ...], trainable: bool) -> None:
    tensors = [*m.parameters(), *m.buffers()]
    if any(nn.parameter.is_lazy(t) for t in tensors):
        raise ValueError(f"module[{i}] ({m!r}) has uninitialized (lazy) parameters: run one forward pass first")
    if trainable and any(t.device.type == "meta" for t in tensors):
        raise ValueError(f"module[{i}] ({m!r}) has tensors on the 'meta' device, which hold no values")
    odd = next((t.dtype for t in tensors if t.is_floating_point() and t.dtype != torch.float32), None)
    if odd is not None:
        raise ValueError(f"module[{i}] ({m!r}) holds {odd} tensors, but the engine computes in float32: convert the "
                         "module with module.float()")
    if isinstance(m, weighted) and not all(p.requires_grad for p in m.parameters()):
        raise ValueError(f"module[{i}] ({m!r}) has parameters with requires_grad=False; OnlineAM fits every "
                         "layer with weights (it cannot keep one frozen)")


def check_modules(
    module: nn.Module,
    mods: Sequence[nn.Module],
    known: tuple[type[nn.Module], ...],
    weighted: tuple[type[nn.Module], ...],
    trainable: bool = False,
) -> None:
    """``ValueError`` naming the first module of ``module`` (flattened as ``mods``) that OnlineAM cannot train.

    ``known`` are the supported module types and ``weighted`` those whose weights the engine fits (the layout
    itself is checked by :func:`stream_am.network.decompose`; modules of other types are left to it). Without
    ``trainable`` (a layout read for its shapes only, such as a cost estimate) tensors on ``meta`` may be. Refused:

    - a subclass of a supported type (or of ``nn.Sequential``) that overrides ``forward``, and a module with
      forward hooks or parametrizations (``weight_norm``, ``spectral_norm``): the engine computes the block
      itself and writes the weights in place, so it would not run them;
    - uninitialized (lazy) parameters, tensors on the ``meta`` device (with ``trainable``), floating tensors that
      are not float32, and parameters of a layer with weights with ``requires_grad=False`` (the engine would train
      them);
    - a ``Dropout`` with ``p=1`` (it drops every unit);
    - a parameter or buffer held by two modules (weight tying, or a module with weights used twice): each
      layer is fitted on its own, so the tied copies would undo each other's fits. A weightless module (an
      activation) may appear several times.
    """
    _check_containers(module)
    owner: dict[int, int] = {}
    for i, m in enumerate(mods):
        if not isinstance(m, known):
            continue  # decompose names it as not supported
        _check_tensors(i, m, weighted, trainable)  # (first: a lazy module's own initialisation is a hook)
        if isinstance(m, nn.Dropout) and m.p >= 1:  # (its learning-step mask would divide by 1 - p = 0)
            raise ValueError(f"module[{i}] ({m!r}) drops every unit (p=1): the layers above it could learn nothing")
        if _hooked(m):
            raise ValueError(f"module[{i}] ({m!r}) has forward hooks or parametrizations (weight_norm, "
                             "spectral_norm), which OnlineAM does not run: remove them")
        if not _own_forward(m, known):
            raise ValueError(f"module[{i}] ({m!r}) is a {type(m).__name__} that overrides forward(), which the "
                             "engine does not run (it computes the supported modules itself)")
        for t in [*m.parameters(), *m.buffers()]:
            j = owner.setdefault(id(t), i)
            if j != i:
                raise ValueError(f"module[{i}] ({m!r}) shares its weights with module[{j}] (weight tying, or one "
                                 "module used twice); OnlineAM fits every layer on its own: give each layer its own")
