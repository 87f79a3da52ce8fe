"""Initialise the default process group with a timeout that surfaces a dead peer in about a minute."""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

from stream_am.arguments import digits

__all__ = ["ENV", "GroupFailure", "init_process_group", "MIN_TIMEOUT", "MAX_TIMEOUT", "ranks"]

MIN_TIMEOUT = 1.0  #: shortest collective timeout, in seconds (less does not leave time to connect the ranks)
MAX_TIMEOUT = 86_400.0  #: longest, in seconds (a day)
ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  #: what torchrun sets and env:// reads


def _whole(name: str, low: int, high: int) -> int:
    text = os.environ[name]
    value = digits(text)
    if value is None or not low <= value <= high:
        raise ValueError(f"the environment variable {name} must be a whole number in {low}..{high}, got {text!r}")
    return value


def ranks() -> tuple[int, int] | None:
    """``(rank, world size)`` from the environment ``torchrun`` sets, or ``None`` when neither ``RANK`` nor
    ``WORLD_SIZE`` is set (a plain ``python -m``: a group of one); ``ValueError`` naming a variable that is missing
    while one of those is set (a ``RANK`` left in the shell), or that is not a number in its range."""
    if "RANK" not in os.environ and "WORLD_SIZE" not in os.environ:
        return None
    given = [name for name in ENV if name in os.environ]
    missing = [name for name in ENV if name not in os.environ]
    if missing:
        raise ValueError(f"the environment sets {', '.join(given)} but not {', '.join(missing)}: torchrun sets all "
                         f"four; unset {', '.join(given)} to run as one process")
    world = _whole("WORLD_SIZE", 1, 2**31 - 1)
    _whole("MASTER_PORT", 0, 65535)
    return _whole("RANK", 0, world - 1), world


class GroupFailure(RuntimeError):
    """The process group failed: it could not start, a peer stopped or did not answer within the timeout, or the
    ranks' weights were found to differ.

    Raised in place of torch's own errors (``RuntimeError`` and its subclasses from gloo, NCCL and the store),
    whose message it keeps after its own.
    """


def init_process_group(backend: str = "auto", timeout_s: float = 60.0) -> None:
    """``torch.distributed.init_process_group`` from the environment ``torchrun`` sets, with ``timeout_s``.

    ``backend``: ``"gloo"`` (CPU), ``"nccl"`` (CUDA) or ``"auto"`` (NCCL when CUDA is available). torch's own
    default timeout is 30 minutes; a collective that waits longer than ``timeout_s`` for a peer raises.
    Nothing happens when the default group is already initialised. :class:`GroupFailure` when the group cannot
    start: a rank missing past ``timeout_s``, an address that cannot be reached.
    """
    if backend not in ("auto", "gloo", "nccl"):
        raise ValueError(f"backend must be 'auto', 'gloo' or 'nccl', got {backend!r}")
    if (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
            or not MIN_TIMEOUT <= timeout_s <= MAX_TIMEOUT):
        raise ValueError(f"timeout_s must be a number of seconds in [{MIN_TIMEOUT:g}, {MAX_TIMEOUT:g}], "
                         f"got {timeout_s!r}")
    if dist.is_initialized():
        return
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    try:
        _init(backend, datetime.timedelta(seconds=float(timeout_s)))
    except RuntimeError as exc:  # (the store's DistStoreError, gloo's and NCCL's errors are RuntimeErrors)
        raise GroupFailure(f"the process group of {os.environ.get('WORLD_SIZE')} processes could not start within "
                           f"{timeout_s:g} s: was every rank started, and can each reach MASTER_ADDR "
                           f"{os.environ.get('MASTER_ADDR')}? ({exc})") from exc


def _init(backend: str, timeout: datetime.timedelta) -> None:
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if attempt is None or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        dist.init_process_group(backend, timeout=timeout)
        return
    # Under torchrun the workers of every attempt share the agent's store; without a prefix of its own, an
    # attempt after a restart can read the addresses of the previous attempt's (dead) workers (measured with
    # torch 2.13: gloo's connectFullMesh is then refused).
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                          timeout=timeout)
    dist.init_process_group(backend, store=dist.PrefixStore(f"stream_am/attempt_{attempt}", store), rank=rank,
                            world_size=world, timeout=timeout)
