"""Whether the memories of a network of given sizes fit this machine: checked before a job or a run starts, so
that one far too large is refused naming its option instead of exhausting the machine or failing in the
allocator with a traceback (the distributed job, the scenario suite)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from stream_am.updaters.class_state import class_memory_size

__all__ = ["PEAK_BYTES", "memory_problem", "physical_memory"]

#: bytes a class-clocked memory's step holds at its peak per number of its sums (its sums, their copies for a
#: collective and the solve: 21 GB at 9e8 numbers, 10,000 classes on four inputs and one hidden layer of 8)
PEAK_BYTES = 24


def physical_memory() -> int | None:
    """This machine's memory in bytes, or ``None`` where the system does not tell it."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def memory_problem(n_features: int, hidden_sizes: Sequence[int], n_classes: int) -> str | None:
    """Why the memories of ``n_features`` inputs, ``hidden_sizes`` and ``n_classes`` (one ``(d + 1) x (d + 1 +
    m)`` sum per layer and class, every layer counted; ``n_classes=1`` for a regression's single clock) could not
    fit in half this machine's memory, or ``None`` when they could (or the machine's memory is not known).

    Examples
    --------
    >>> memory_problem(4, (8,), 3) is None
    True
    """
    total = physical_memory()
    numbers = class_memory_size(n_features, hidden_sizes, n_classes)
    if total is None or PEAK_BYTES * numbers <= total / 2:
        return None
    return (f"the memories would hold {numbers:,} numbers, about {PEAK_BYTES * numbers / 2**30:,.0f} GiB at a step, "
            f"more than half this machine's {total / 2**30:,.0f} GiB")
