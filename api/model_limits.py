"""Limits that protect the host: model settings, features and classes, checked before anything changes.

A model whose settings the host cannot serve (a device it lacks, a batch or a layer too large for its
memory) is refused at creation or import with 422 naming the parameter and the limit, instead of failing
on every later request.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stream_am.server.errors import FieldError
from stream_am.server.settings import Settings
from torch import nn

from stream_am import checks
from stream_am.estimators import companion
from stream_am.estimators.basis import QUADRATIC, QUADRATIC_MAX_FEATURES
from stream_am.estimators.networks import ACTIVATIONS
from stream_am.network import decompose
from stream_am.updaters.class_state import class_memory_size
from stream_am.variants import resolve_variants

__all__ = ["check_config", "check_growth", "class_memory", "class_memory_size", "memory_layers"]

Row = dict[str, float]


def check_config(config: dict[str, Any], settings: Settings, field: str = "params") -> None:
    """Refuse an estimator configuration (``_get_params()``) this host cannot serve."""
    try:
        checks.check_device_exists(str(config.get("device", "cpu")))
    except ValueError as exc:
        raise FieldError(f"{field}.device", str(exc)) from exc
    batch_size = int(config.get("batch_size", 1))
    if batch_size > settings.max_model_batch_size:
        raise FieldError(
            f"{field}.batch_size", f"{batch_size} exceeds max_model_batch_size={settings.max_model_batch_size}"
        )
    for name in ("code_steps", "weight_steps"):
        steps = int(config.get(name, 0))
        if steps > settings.max_inner_steps:
            raise FieldError(f"{field}.{name}", f"{steps} exceeds max_inner_steps={settings.max_inner_steps}")
    sizes = list(config.get("hidden_sizes", ()))
    if len(sizes) > settings.max_hidden_layers:
        limit = settings.max_hidden_layers
        raise FieldError(f"{field}.hidden_sizes", f"{len(sizes)} layers exceed max_hidden_layers={limit}")
    for i, h in enumerate(sizes):
        if int(h) > settings.max_hidden_size:
            raise FieldError(f"{field}.hidden_sizes[{i}]", f"{h} exceeds max_hidden_size={settings.max_hidden_size}")


def memory_layers(est: Any, n_features: int, n_classes: int) -> list[bool]:
    """Which layers of the AM classifier ``est`` keep a memory once it has ``n_features`` and ``n_classes``:
    the rules its engine chose, or (before its first step) those ``variant`` would choose for that shape,
    priced on a network on the ``meta`` device (no memory allocated)."""
    readout = est.readout == "memory"
    engine = getattr(est, "_engine", None)
    if engine is not None and engine.variants_:
        return [v == "mem" for v in engine.variants_] + [readout]
    widths = [n_features, *est.hidden_sizes, n_classes]
    layers: list[nn.Module] = []
    for i, (d, m) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers += [nn.Linear(d, m, device="meta")] + ([ACTIVATIONS[est.activation]()] if i < len(widths) - 2 else [])
    variants, _ = resolve_variants(est.variant, decompose(nn.Sequential(*layers)), est.batch_size, est.solve_every,
                                   est.readout, class_clock=True)
    return [v == "mem" for v in variants] + [readout]


def class_memory(est: Any, n_features: int, n_classes: int) -> int:
    """Numbers the per-class sums of the classifier ``est`` would hold with ``n_features`` and ``n_classes``:
    :func:`class_memory_size` of the layers that keep a class-clocked memory (none with ``memory_clock="sample"``),
    plus its companions' (:mod:`stream_am.estimators.companion`: per class whatever the memories' clock; the
    quadratic one up to ``QUADRATIC_MAX_FEATURES`` inputs) if it keeps them; 0 for a classifier that is not an AM
    one, or before it has two classes."""
    if getattr(est, "memory_clock", None) is None or n_classes < 2:  # (the network is built with two classes)
        return 0
    kept = memory_layers(est, n_features, n_classes)
    size = class_memory_size(n_features, est.hidden_sizes, n_classes, kept) if est.memory_clock == "class" else 0
    if getattr(est, "companion", False) and est.hidden_sizes and kept[0]:  # its companions' sums
        size += companion.size(n_features, n_classes)
        if n_features <= QUADRATIC_MAX_FEATURES:
            size += companion.size(n_features, n_classes, QUADRATIC)
    return size


def check_growth(
    features: Sequence[str], classes: Sequence[Any], rows: Sequence[Row], targets: Sequence[Any] | None,
    settings: Settings, rows_field: str = "instances", classifier: Any = None,
) -> None:
    """Refuse rows or labels that would take a model past ``max_features`` or ``max_classes``, or (given the
    ``classifier`` itself) its per-class memories past ``max_class_memory``."""
    known = set(features)
    new = set().union(*rows) - known
    if len(known) + len(new) > settings.max_features:
        raise FieldError(
            rows_field,
            f"learning these rows would give the model {len(known) + len(new)} features, "
            f"more than max_features={settings.max_features}",
        )
    if targets is None:
        return
    labels = set(classes)
    fresh = {y for y in targets if y not in labels}
    if len(labels) + len(fresh) > settings.max_classes:
        raise FieldError(
            "targets",
            f"learning these labels would give the model {len(labels) + len(fresh)} classes, "
            f"more than max_classes={settings.max_classes}",
        )
    if classifier is not None:
        size = class_memory(classifier, len(known) + len(new), len(labels) + len(fresh))
        if size > settings.max_class_memory:
            raise FieldError(
                "targets" if fresh else rows_field,
                f"learning these rows would give the model's per-class memories {size:,} numbers, more than "
                f"max_class_memory={settings.max_class_memory:,} (fewer features, classes or hidden units fit)",
            )
