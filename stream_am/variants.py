"""Per-layer variants: which update rule fits each code layer, and the cost model behind ``variant="auto"``.

``variant`` is ``"mem"`` (every code layer solves a co-activation memory), ``"adam"`` (local Adam steps), a
sequence with one of those per code layer, or ``"auto"``: the memory where it is cheap relative to the
layer's backprop step, Adam where it is not.

The cost model counts multiply-adds per step for a layer with ``d`` inputs (bias included), ``k`` outputs and
``b`` rows (samples; image patches are not counted, which only errs towards Adam for a ``Conv2d``):

- backprop step of the layer: ``6 b d k`` (forward, input gradient, weight gradient);
- memory: ``2 b d^2`` to fold the batch in, plus ``SOLVE_FACTOR (d^3 / 3 + 2 k d^2) / solve_every`` for the
  Cholesky factor and the two triangular solves, which run at a fraction of a matrix product's speed
  (``SOLVE_FACTOR``, measured by ``benchmarks/step_time.py``).

``auto`` chooses the memory when its cost is at most ``MEMORY_BUDGET`` times the layer's backprop step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from stream_am.network import CodeBlock, Network

__all__ = ["VARIANTS", "check_variant", "memory_refusal", "memory_cost_ratio", "resolve_variants"]

VARIANTS = ("mem", "adam", "auto")
LAYER_VARIANTS = ("mem", "adam")
SOLVE_FACTOR = 4.0
MEMORY_BUDGET = 1.5


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


def memory_cost_ratio(layer: nn.Linear | nn.Conv2d, batch: int, solve_every: int = 1) -> float:
    """The memory's cost per step over the layer's backprop step (see the module docstring)."""
    w = layer.weight
    d, k = w[0].numel() + int(layer.bias is not None), w.shape[0]
    memory = 2.0 * batch * d * d + SOLVE_FACTOR * (d**3 / 3.0 + 2.0 * k * d * d) / solve_every
    return memory / (6.0 * batch * d * k)


def resolve_variants(variant: str | Sequence[str], net: Network, batch: int, solve_every: int) -> list[str]:
    """``"mem"`` or ``"adam"`` for each code layer; ``"auto"`` entries decided by the cost model for ``batch``."""
    out = []
    for v, block in zip(_per_layer(variant, net.n_codes), net.blocks, strict=True):
        if v == "auto":
            cheap = memory_cost_ratio(block.layer, batch, solve_every) <= MEMORY_BUDGET
            v = "mem" if cheap and memory_refusal(block) is None else "adam"
        out.append(v)
    return out
