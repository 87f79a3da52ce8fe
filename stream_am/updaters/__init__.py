"""Per-layer weight update rules: one protocol, a memory, Adam, and the readout; functional cores inside."""

from stream_am.updaters.adam import AdamState, AdamUpdater, adam_step
from stream_am.updaters.base import Updater
from stream_am.updaters.class_clock import ClassBatch, ClassClock, Labels, class_increments
from stream_am.updaters.class_memory import ClassMemoryUpdater
from stream_am.updaters.collective import Reduce, fit_reduced
from stream_am.updaters.concurrent import fit_layers, layer_streams
from stream_am.updaters.factory import class_clocked, make_readout, make_updaters
from stream_am.updaters.memory import MemoryUpdater, memory_fold, memory_increments, ridge_solve
from stream_am.updaters.readout import AdamReadout

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
    "class_clocked",
    "class_increments",
    "fit_layers",
    "fit_reduced",
    "layer_streams",
    "make_readout",
    "make_updaters",
    "memory_fold",
    "memory_increments",
    "ridge_solve",
]
