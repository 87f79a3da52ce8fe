"""Validation of hyperparameters and tensor inputs: every error is a ``ValueError`` naming the field."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from stream_am.scalars import is_finite_number, is_int, native

__all__ = [
    "InputError",
    "is_int",
    "native",
    "MAX_SEED",
    "MAX_VALUE",
    "MAX_COUNT",
    "FLOAT32_MAX",
    "holds_values",
    "check_choice",
    "check_int",
    "check_float",
    "is_finite_number",
    "check_seed",
    "check_device",
    "resolve_device",
    "check_device_exists",
    "check_x",
    "all_finite",
    "within",
    "check_can_learn",
    "check_batch",
    "shape_errors",
]


#: the largest seed accepted (``torch.Generator.manual_seed`` takes 64-bit values; numpy's generators too)
MAX_SEED = 2**63 - 1
#: largest absolute value of an input (or regression target) the engine takes: it computes in float32, and
#: within this bound the memories' co-activation sums and Adam's second moments cannot overflow (a fuzz of
#: networks, variants and batch sizes in ``tests/test_magnitudes.py`` keeps every state finite up to ten times it)
MAX_VALUE = 1e9
#: the largest counter (samples, steps, updates) a loaded state may hold: int64 then has room for 4.6e18 more, so
#: no counter a model goes on to keep overflows before it is saved again (an edited one at 2**63 - 1 did)
MAX_COUNT = 2**62
#: the largest magnitude a tensor of a loaded learner state may hold: the learners compute in float32
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


class InputError(ValueError):
    """A refused input value, with where it was: ``field`` (``"x"``, ``"X"``, ``"y"``), ``row`` and ``key``.

    ``row`` is the position in the batch (``None`` for a single sample), ``key`` the feature (``None`` for a
    label or target). Callers such as the HTTP service map these to their own field names.
    """

    def __init__(self, msg: str, field: str, row: int | None = None, key: Any = None) -> None:
        super().__init__(msg)
        self.field = field
        self.row = row
        self.key = key


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    if not isinstance(value, Hashable) or value not in choices:  # (an array compares elementwise: not a choice)
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_seed(value: Any, name: str = "seed") -> None:
    """``ValueError`` naming ``name`` unless ``value`` is an int in ``[0, MAX_SEED]`` (what numpy's and torch's
    generators take)."""
    check_int(name, value, low=0, high=MAX_SEED)


def check_int(name: str, value: Any, low: int = 0, high: int | None = None) -> None:
    if not is_int(value) or native(value) < low or (high is not None and native(value) > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an int {bounds}, got {value!r}")


def same_value(a: Any, b: Any) -> bool:
    """Whether setting ``b`` where ``a`` is would change nothing: the same object, or equal and of the same type
    (``1`` is not ``1.0`` nor ``True``; numpy's scalars as Python's, :func:`native`); a comparison without a truth
    value (arrays) is a change."""
    a, b = native(a), native(b)
    try:
        return a is b or (type(a) is type(b) and bool(a == b))
    except (TypeError, ValueError, RuntimeError):
        return False


def check_float(
    name: str, value: Any, low: float, high: float, low_inclusive: bool = True, high_inclusive: bool = False
) -> None:
    ok, x = is_finite_number(value), native(value)  # (compared as Python's number: what learns from it)
    if ok:
        ok = (x >= low if low_inclusive else x > low) and (
            high == math.inf or (x <= high if high_inclusive else x < high)
        )
    if not ok:
        lo, hi = "[" if low_inclusive else "(", "]" if high_inclusive else ")"
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}{hi}, got {value!r}")


def check_device(device: Any) -> None:
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "auto":
        return
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}") from exc
    if kind not in ("cpu", "cuda"):  # 'meta' holds no data, others are not supported
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")


def check_device_exists(device: str) -> torch.device:
    """:func:`resolve_device`, and for ``cuda:N`` also that device ``N`` exists on this host."""
    dev = resolve_device(device)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r} but this host has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def resolve_device(device: str) -> torch.device:
    """``"auto"`` becomes CUDA when available; asking for CUDA without it is a ``ValueError``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available")
    return dev


def check_x(
    x: Any, *, device: torch.device, n_inputs: int | None, name: str = "x", allow_empty: bool = False,
    limit: float = math.inf,
) -> torch.Tensor:
    """A finite float tensor with a batch dimension, on ``device`` (0 samples only with ``allow_empty``), its
    values at most ``limit`` in absolute value (learning passes :data:`MAX_VALUE`; a prediction changes no
    state, so it only needs finite values)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    _check_dense(name, x)
    if not (x.is_floating_point()):
        raise ValueError(f"{name} must have a floating dtype, got {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name} must have shape (n_samples, ...), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is an empty batch")
    if n_inputs is not None and (x.ndim != 2 or x.shape[1] != n_inputs):
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}, but the network expects (n_samples, {n_inputs})"
        )
    if x.device.type == "meta":
        raise ValueError(f"{name} is on the 'meta' device, which holds no values")
    x = x.to(device=device, dtype=torch.float32)
    if not within(x, limit):
        beyond = "" if limit == math.inf else f" or values beyond +-{limit:g} (the engine's float32 bound)"
        raise ValueError(f"{name} contains NaN, infinite{beyond} values")
    return x


def _check_dense(name: str, t: torch.Tensor) -> None:
    if t.layout != torch.strided:
        raise ValueError(f"{name} must be a dense tensor, got layout {t.layout} (convert it with .to_dense())")


def all_finite(x: torch.Tensor) -> bool:
    """Whether every entry of the floating tensor ``x`` is finite.

    The smallest and largest entries are finite exactly when all are (both propagate NaN): one reading pass
    and two numbers to the host, several times faster than ``torch.isfinite(x).all()`` (which writes a boolean
    tensor first; figures in ``benchmarks/README.md``). It is :func:`within` with no bound.

    Examples
    --------
    >>> import torch
    >>> all_finite(torch.tensor([[1.0, -2.0]])), all_finite(torch.tensor([[1.0, float("nan")]]))
    (True, False)
    >>> all_finite(torch.tensor([[float("-inf"), 0.0]])), all_finite(torch.zeros(0, 3))
    (False, True)
    """
    return within(x, math.inf)


def holds_values(value: object) -> bool:
    """Whether ``value``, read from a state to load, is a tensor with values (one on the ``meta`` device has none).

    Examples
    --------
    >>> import torch
    >>> holds_values(torch.zeros(2)), holds_values(torch.zeros(2, device="meta")), holds_values([0.0])
    (True, False, False)
    """
    return isinstance(value, torch.Tensor) and value.device.type != "meta"


def within(x: torch.Tensor, limit: float) -> bool:
    """Whether every entry of the floating tensor ``x`` is finite and at most ``limit`` in absolute value (one
    pass, as :func:`all_finite`; NaN fails every comparison).

    Examples
    --------
    >>> import torch
    >>> within(torch.tensor([[1.0, -2.0]]), 2.0), within(torch.tensor([3.0]), 2.0), within(torch.zeros(0), 1.0)
    (True, False, True)
    >>> within(torch.tensor([float("nan")]), 2.0), within(torch.tensor([float("inf")]), float("inf"))
    (False, False)
    >>> within(torch.tensor([3e38]), float("inf"))
    True
    """
    if x.numel() == 0:
        return True
    low, high = (v.item() for v in torch.aminmax(x))
    return -limit <= low and high <= limit and math.isfinite(low) and math.isfinite(high)


def check_can_learn() -> None:
    """``ValueError`` when learning is asked inside ``torch.inference_mode()``: tensors made there cannot enter
    autograd, which learning uses (so every learner refuses there, before anything changes)."""
    if torch.is_inference_mode_enabled():
        raise ValueError("learning cannot run inside torch.inference_mode(): learn outside that block")


def check_batch(
    x: Any, y: Any, *, loss: str, n_outputs: int, device: torch.device, n_inputs: int | None,
    allow_empty: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a learning batch; returns ``(x, y)`` on ``device`` (a data-parallel share may be empty)."""
    check_can_learn()
    x = check_x(x, device=device, n_inputs=n_inputs, allow_empty=allow_empty, limit=MAX_VALUE)
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"y must be a torch.Tensor, got {type(y).__name__}")
    _check_dense("y", y)
    if y.device.type == "meta":
        raise ValueError("y is on the 'meta' device, which holds no values")
    if y.shape[0:1] != x.shape[0:1]:
        raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0] if y.ndim else 0}")
    if loss == "cross_entropy":
        if y.ndim != 1 or y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
            raise ValueError(
                f"y must be a 1-d integer tensor of class indices, got {y.dtype} {tuple(y.shape)}"
            )
        y = y.to(device=device, dtype=torch.long)  # (unsigned labels beyond int64 wrap to negative: refused)
        if y.numel():
            low, high = (int(v) for v in torch.aminmax(y))
            if low < 0 or high >= n_outputs:
                raise ValueError(f"y has labels outside [0, {n_outputs}): min {low}, max {high}")
        return x, y
    if y.is_complex():  # (converting drops the imaginary part)
        raise ValueError(f"y must hold real numbers, got {y.dtype}")
    if y.ndim == 1 and n_outputs == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise ValueError(f"y must have shape (n_samples, {n_outputs}), got {tuple(y.shape)}")
    y = y.to(device=device, dtype=torch.float32)
    if not within(y, MAX_VALUE):
        raise ValueError(f"y contains NaN, infinite or values beyond +-{MAX_VALUE:g} (the engine's float32 bound)")
    return x, y


@contextmanager
def shape_errors(x: torch.Tensor, name: str = "x") -> Iterator[None]:
    """Turn torch's shape errors inside the block into a ``ValueError`` naming ``name`` and its shape."""
    try:
        yield
    except RuntimeError as exc:
        if "shape" not in str(exc) and "size" not in str(exc) and "dimension" not in str(exc):
            raise
        raise ValueError(f"{name} has shape {tuple(x.shape)}, which the network cannot take: {exc}") from exc
