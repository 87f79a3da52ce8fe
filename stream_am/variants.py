"""Per-layer variants: which update rule fits each code layer, and the cost model behind ``variant="auto"``.

``variant`` is ``"mem"`` (every code layer solves a co-activation memory), ``"adam"`` (local Adam steps), a
sequence with one of those per code layer, or ``"auto"``: the memory where it is cheap relative to the
network's backprop step, Adam where it is not.

``auto`` is a cost model of the whole step, in microseconds of CPU time of one thread. Its constants were
fitted by ``benchmarks/cost_model.py`` (weighted least squares on the step-to-backprop ratios of 438 timings:
every top-memory mix of ten networks, memories solved every step and every second step, both readouts, class-
and sample-clocked memories, timed as ``benchmarks/step_time.py --clock cpu`` times them, in three runs) on
the development machine; figures in ``benchmarks/README.md``. ``auto`` prices the memories with the clock
they use (:func:`resolve_variants`'s ``class_clock``). Those timings were taken in blocks of four steps, which
under-charge a class-clocked memory's pass over its waiting rows; ``CLASS_RATE``, the one term that pass
enters, was refitted alone on timings on a stream in blocks that span it (``cost_model.py --fit
CLASS_RATE``; a refit of every constant on those timings would trade the hidden memories, and a point or
more of accuracy, for speed).
For a layer with ``d`` inputs (bias included), ``k`` outputs and ``b`` samples:

- a backprop Adam step costs, per layer, ``BP_LAYER_US`` plus ``6 b d k`` flops at ``BP_RATE`` plus the
  Adam update of ``d k`` parameters at ``BP_PARAM_RATE``;
- an AM step costs ``AM_STEP_US`` (its checks, the output layer, bookkeeping), ``AM_CODE_US`` per code
  layer (its forward pass and code steps) and ``b k`` code entries per layer at ``CODE_RATE``; then each
  Adam code layer ``ADAM_US`` plus ``2 b d k`` flops at ``ADAM_RATE`` (an Adam readout, which
  back-propagates its loss: ``READOUT_ADAM_US`` plus ``2 b d k`` at ``READOUT_ADAM_RATE``);
  each memory (the memory readout included) ``MEMORY_US`` plus its fold, ``2 b d (d + k)`` flops at
  ``FOLD_RATE``, plus, on the steps it solves (one in ``solve_every``), ``SOLVE_US``, its statistics read
  and copied (``d (d + k)`` numbers at ``SOLVE_COPY_RATE``), the Cholesky factor (``d^3 / 3`` flops at
  ``FACTOR_RATE``) and two triangular solves (``2 k d^2`` flops at ``TRSM_RATE``);
  class-clocked memories (the default for classification: :mod:`stream_am.updaters.class_memory`) add
  ``CLASS_STEP_US`` per step (the class clock, the labels, a pass's bookkeeping: fitted per memory, this cost
  came out at zero) and each a second product of its rows, by class, ``2 b d (d + k)`` flops at
  ``CLASS_RATE`` (about the fold's rate: the rows are multiplied a second time at the pass).

The ``"auto"`` layers take memories from the top down, as many as keep the predicted step within the
target (a memory that does not solve on every step can cost less than Adam, so this is not always the first
ones that fit one by one), down to the first layer a memory cannot fit: the memories form the top of the
network (on digits, a memory layer under an Adam layer is the least accurate combination).

When ``solve_every`` is not given (``None``) and some layer is ``"auto"``, ``auto`` also chooses the cadence
of every memory (the readout's included): every second step if that gives every code layer a memory within
``SPACED_TARGET_RATIO`` where every step would leave one with Adam (an Adam layer under the memories forgets
what the class clock keeps on class-incremental streams); else every
step if the top code layer gets its memory within ``TARGET_RATIO`` backprop steps; else every second step if
that gives the top layer its memory within ``SPACED_TARGET_RATIO``; else every step if the step fits
``TARGET_RATIO`` without the top memory; else every second step. A cadence the user gives is used as given,
with ``TARGET_RATIO``. ``SPACED_TARGET_RATIO`` is above ``TARGET_RATIO`` by choice, accuracy first: on
digits 64-256-256-10 a memory in every layer solved every second step is close to solving every step and
well above ``adam/adam``, but with class-clocked memories no cadence brings a top memory there within 2
backprop steps, so ``auto`` keeps the memory and misses that target there. The measurements behind each
rule (accuracy over several seeds, step times) are in ``benchmarks/README.md``; they go stale, these rules
do not.

Image patches of a ``Conv2d`` are not counted in ``b``, which errs towards Adam.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from stream_am.network import CodeBlock, Network

__all__ = [
    "VARIANTS",
    "check_variant",
    "memory_refusal",
    "backprop_cost",
    "memory_extra_cost",
    "step_cost",
    "resolve_variants",
]

VARIANTS = ("mem", "adam", "auto")
BP_LAYER_US, BP_RATE, BP_PARAM_RATE = 242.0, 262e3, 329.0  # us; flops and parameters per us
AM_STEP_US, AM_CODE_US, CODE_RATE = 5.0, 331.0, 136.0  # us; code entries per us
ADAM_US, ADAM_RATE = 108.0, 74.0e3
READOUT_ADAM_US, READOUT_ADAM_RATE = 384.0, 1.13e3
MEMORY_US, FOLD_RATE = 18.8, 89.8e3
SOLVE_US, SOLVE_COPY_RATE, FACTOR_RATE, TRSM_RATE = 151.0, 206.0, 202e3, 312e3
CLASS_STEP_US, CLASS_RATE = 150.0, 89.6e3
TARGET_RATIO = 1.9  # 2x, the target, less a margin for measurement noise
SPACED_TARGET_RATIO = 2.1  # for memories solved every second step, the only way to a top memory


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
    """Microseconds of ``layer``'s share of a backprop Adam step on ``batch`` samples (the cost model's unit)."""
    d, k = _shape(layer)
    return BP_LAYER_US + 6.0 * batch * d * k / BP_RATE + d * k / BP_PARAM_RATE


def _adam_cost(layer: nn.Linear | nn.Conv2d, batch: int, readout: bool = False) -> float:
    d, k = _shape(layer)
    if readout:
        return READOUT_ADAM_US + 2.0 * batch * d * k / READOUT_ADAM_RATE
    return ADAM_US + 2.0 * batch * d * k / ADAM_RATE


def _memory_cost(layer: nn.Linear | nn.Conv2d, batch: int, solve_every: int, class_clock: bool) -> float:
    d, k = _shape(layer)
    solve = SOLVE_US + d * (d + k) / SOLVE_COPY_RATE + d**3 / 3.0 / FACTOR_RATE + 2.0 * k * d * d / TRSM_RATE
    classes = 2.0 * batch * d * (d + k) / CLASS_RATE if class_clock else 0.0
    return MEMORY_US + 2.0 * batch * d * (d + k) / FOLD_RATE + solve / solve_every + classes


def memory_extra_cost(
    layer: nn.Linear | nn.Conv2d, batch: int, solve_every: int = 1, class_clock: bool = False
) -> float:
    """Microseconds a memory (class-clocked with ``class_clock``) adds over Adam for ``layer`` per step (see
    the module docstring)."""
    return _memory_cost(layer, batch, solve_every, class_clock) - _adam_cost(layer, batch)


def step_cost(
    net: Network, variants: Sequence[str], batch: int, solve_every: int, readout: str = "memory",
    class_clock: bool = False,
) -> float:
    """Predicted microseconds of one AM step with ``variants`` (``"mem"``/``"adam"`` per code layer), memories
    (class-clocked with ``class_clock``) solved every ``solve_every`` steps and a ``readout`` of ``"memory"``
    or ``"adam"``."""
    layers = [b.layer for b in net.blocks] + [net.out]
    cost = AM_STEP_US + AM_CODE_US * net.n_codes + sum(batch * _shape(layer)[1] / CODE_RATE for layer in layers)
    rules = [*variants, "mem" if readout == "memory" else "adam"]
    if class_clock and "mem" in rules:
        cost += CLASS_STEP_US
    for i, (rule, layer) in enumerate(zip(rules, layers, strict=True)):
        if rule == "mem":
            cost += _memory_cost(layer, batch, solve_every, class_clock)
        else:
            cost += _adam_cost(layer, batch, readout=i == len(layers) - 1)
    return cost


def _backprop_step(net: Network, batch: int) -> float:
    return sum(backprop_cost(layer, batch) for layer in [b.layer for b in net.blocks] + [net.out])


def _fill(
    wanted: list[str], net: Network, batch: int, solve_every: int, readout: str, target: float, class_clock: bool
) -> list[str]:
    """``wanted`` with its ``"auto"`` entries decided at the cadence ``solve_every``: memories in the most top
    ``"auto"`` layers (down to the first one a memory cannot fit) that keep the step within ``target`` backprop
    steps, Adam in the others. (A memory that does not solve on every step can cost less than Adam.)"""
    usable: list[int] = []
    for l in range(net.n_codes - 1, -1, -1):  # noqa: E741
        if wanted[l] != "auto":
            continue
        if memory_refusal(net.blocks[l]) is not None:
            break
        usable.append(l)
    budget = target * _backprop_step(net, batch)
    options = [["mem" if i in usable[:m] else "adam" if v == "auto" else v for i, v in enumerate(wanted)]
               for m in range(len(usable), -1, -1)]
    fits = (o for o in options if step_cost(net, o, batch, solve_every, readout, class_clock) <= budget)
    return next(fits, options[-1])


def resolve_variants(
    variant: str | Sequence[str], net: Network, batch: int, solve_every: int | None, readout: str = "memory",
    class_clock: bool = False,
) -> tuple[list[str], int]:
    """``"mem"`` or ``"adam"`` for each code layer, and the memories' solve cadence: ``"auto"`` entries are
    decided by the cost model for ``batch`` (memories class-clocked with ``class_clock``); so is the cadence
    (1 or 2) when ``solve_every`` is ``None`` and some entry is ``"auto"`` (otherwise ``solve_every``, or 1 if
    ``None``). See the module docstring."""
    wanted = _per_layer(variant, net.n_codes)
    if solve_every is not None or "auto" not in wanted:
        every = solve_every or 1
        return _fill(wanted, net, batch, every, readout, TARGET_RATIO, class_clock), every
    every_step = _fill(wanted, net, batch, 1, readout, TARGET_RATIO, class_clock)
    spaced = _fill(wanted, net, batch, 2, readout, SPACED_TARGET_RATIO, class_clock)
    if every_step.count("mem") < spaced.count("mem") and "adam" not in spaced:
        return spaced, 2  # every layer's memory, spaced, rather than Adam under memories at every step
    if every_step[-1] == "mem":
        return every_step, 1
    if spaced[-1] == "mem":
        return spaced, 2
    if step_cost(net, every_step, batch, 1, readout, class_clock) <= TARGET_RATIO * _backprop_step(net, batch):
        return every_step, 1
    return _fill(wanted, net, batch, 2, readout, TARGET_RATIO, class_clock), 2
