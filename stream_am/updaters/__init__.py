"""Per-layer weight update rules: one protocol, a memory, Adam, and the readout; functional cores inside."""

from stream_am.updaters.adam import AdamState, AdamUpdater, adam_step
from stream_am.updaters.base import Updater
from stream_am.updaters.class_clock import ClassBatch, ClassClock, Labels, class_increments
from stream_am.updaters.class_memory import ClassMemoryUpdater
from stream_am.updaters.collective import Reduce, fit_reduced
from stream_am.updaters.memory import MemoryUpdater, memory_fold, memory_increments, ridge_solve
from stream_am.updaters.readout import AdamReadout, make_readout

__all__ = [
    "AdamReadout",
    "AdamState",
    "AdamUpdater",
    "ClassBatch",
    "ClassClock",
    "ClassMemoryUpdater",
    "Labels",
    "MemoryUpdater",
    "Reduce",
    "Updater",
    "adam_step",
    "class_increments",
    "fit_reduced",
    "make_readout",
    "memory_fold",
    "memory_increments",
    "ridge_solve",
]
