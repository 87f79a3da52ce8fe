"""Per-layer variants: which update rule fits each code layer, and the cost model behind ``variant="auto"``.

``variant`` is ``"mem"`` (every code layer solves a co-activation memory), ``"adam"`` (local Adam steps), a
sequence with one of those per code layer, or ``"auto"``: the memory where it is cheap relative to the
layer's backprop step, Adam where it is not.

``auto`` is a cost model of the whole step, in microseconds of one CPU thread (constants measured with
``benchmarks/step_time.py`` and a per-layer timing on the development machine): a backprop step costs, per
layer with ``d`` inputs (bias included), ``k`` outputs and ``b`` samples, ``LAYER_OVERHEAD_US`` plus
``6 b d k`` flops at ``GEMM_RATE``; an AM step with Adam in every code layer costs about ``ADAM_STEP_RATIO``
backprop steps; a memory in place of Adam adds ``MEMORY_OVERHEAD_US`` plus ``2 b d^2`` (fold) and
``(d^3 / 3 + 2 k d^2) / solve_every`` (Cholesky factor, two triangular solves) flops at ``SOLVE_RATE``.
Starting from the top code layer, each ``"auto"`` layer takes the memory while the step stays within
``TARGET_RATIO`` backprop steps, and the first layer that does not fit (or cannot be fitted by a memory)
ends the search: the memories form the top of the network (on digits, a memory layer under an Adam layer
was the least accurate combination we measured; the figures, and the constants' measurements, are in
``benchmarks/README.md``). Image patches of a ``Conv2d`` are not counted in ``b``, which errs towards Adam.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from stream_am.network import CodeBlock, Network

__all__ = ["VARIANTS", "check_variant", "memory_refusal", "backprop_cost", "memory_extra_cost", "resolve_variants"]

VARIANTS = ("mem", "adam", "auto")
GEMM_RATE = 60e3  # flops per microsecond of a backprop layer step
SOLVE_RATE = 30e3  # flops per microsecond of a memory's fold, factor and solves
LAYER_OVERHEAD_US = 250.0
MEMORY_OVERHEAD_US = 50.0
ADAM_STEP_RATIO = 1.6
TARGET_RATIO = 1.9  # 2x, the target, less a margin for measurement noise


def check_variant(variant: Any, n_codes: int | None = None) -> None:
    """``ValueError`` naming ``variant`` unless it is a valid choice (with ``n_codes`` entries if a sequence)."""
    if isinstance(variant, str):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {list(VARIANTS)} or a sequence of them, got {variant!r}")
        return
    if not isinstance(variant, (list, tuple)) or not all(isinstance(v, str) and v in VARIANTS for v in variant):
        raise ValueError(
            f"variant must be 'mem', 'adam', 'auto' or a sequence of them (one per code layer), got {variant!r}"
        )
    if n_codes is not None and len(variant) != n_codes:
        raise ValueError(f"variant has {len(variant)} entries, but the network has {n_codes} code layers")


def memory_refusal(block: CodeBlock) -> str | None:
    """Why the memory cannot fit ``block`` (an affine least-squares map), or ``None`` when it can."""
    if block.norm is not None:
        return f"the memory fits each block as an affine least-squares map and cannot fit {block.norm!r}"
    conv = block.layer
    if isinstance(conv, nn.Conv2d) and (
        conv.groups != 1 or conv.padding_mode != "zeros" or isinstance(conv.padding, str)
    ):
        return f"the memory supports Conv2d with groups=1, padding_mode='zeros' and numeric padding only, got {conv!r}"
    return None


def _per_layer(variant: str | Sequence[str], n_codes: int) -> list[str]:
    return [variant] * n_codes if isinstance(variant, str) else list(variant)


def check_network(variant: str | Sequence[str], net: Network) -> None:
    """``ValueError`` when a layer asked to use the memory cannot (checked before any state exists)."""
    check_variant(variant, net.n_codes)
    for l, (v, block) in enumerate(zip(_per_layer(variant, net.n_codes), net.blocks, strict=True)):  # noqa: E741
        reason = memory_refusal(block)
        if v == "mem" and reason is not None:
            raise ValueError(f"variant asks for the memory at code layer {l}, but {reason}; use 'adam' or 'auto'")


def _shape(layer: nn.Linear | nn.Conv2d) -> tuple[int, int]:
    w = layer.weight
    return w[0].numel() + int(layer.bias is not None), w.shape[0]


def backprop_cost(layer: nn.Linear | nn.Conv2d, batch: int) -> float:
    """Microseconds of ``layer``'s share of a backprop step on ``batch`` samples (the cost model's unit)."""
    d, k = _shape(layer)
    return LAYER_OVERHEAD_US + 6.0 * batch * d * k / GEMM_RATE


def memory_extra_cost(layer: nn.Linear | nn.Conv2d, batch: int, solve_every: int = 1) -> float:
    """Microseconds a memory adds over Adam for ``layer`` per step (see the module docstring)."""
    d, k = _shape(layer)
    flops = 2.0 * batch * d * d + (d**3 / 3.0 + 2.0 * k * d * d) / solve_every
    return MEMORY_OVERHEAD_US + flops / SOLVE_RATE


def resolve_variants(variant: str | Sequence[str], net: Network, batch: int, solve_every: int) -> list[str]:
    """``"mem"`` or ``"adam"`` for each code layer; ``"auto"`` entries decided by the cost model for ``batch``."""
    out = _per_layer(variant, net.n_codes)
    layers = [b.layer for b in net.blocks] + [net.out]
    budget = (TARGET_RATIO - ADAM_STEP_RATIO) * sum(backprop_cost(layer, batch) for layer in layers)
    for l in range(net.n_codes - 1, -1, -1):  # noqa: E741
        if out[l] != "auto":
            continue
        extra = memory_extra_cost(net.blocks[l].layer, batch, solve_every)
        if extra > budget or memory_refusal(net.blocks[l]) is not None:
            break
        out[l], budget = "mem", budget - extra
    return ["adam" if v == "auto" else v for v in out]
